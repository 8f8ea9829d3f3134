// Our strategies (src/alloc) behind the benchmark's adapter, plus the factory
// that picks any of the allocators by Kind.
//
// The adapter forwards to pmm::alloc::Strategy and drops the error values:
// the benchmark only needs "fitted or not", and formatting the kNoMemory
// message is part of what a failed allocate costs in the daemon too, so it
// stays inside the timed call.
#include <cstdlib>

#include <fmt/format.h>

#include "adapter.h"
#include "alloc/strategy.h"

namespace pmm::bench {
namespace {

class PmmAllocator final : public BenchAllocator {
 public:
  PmmAllocator(std::unique_ptr<alloc::Strategy> s, uint64_t region_size)
      : strategy_(std::move(s)), region_size_(region_size) {}

  std::optional<Placed> allocate(uint64_t size, uint64_t alignment) override {
    Result<alloc::Allocation> r = strategy_->allocate(size, alignment);
    if (!r) return std::nullopt;
    return Placed{.offset = r->offset, .ref = r->handle.bits};
  }

  void release(uint64_t ref) override {
    Status s = strategy_->release(alloc::Handle{ref});
    if (!s) {
      // The harness only releases what it allocated: a refusal is a bug in
      // the strategy, and numbers measured after it would mean nothing.
      fmt::print(stderr, "{} refused release({:#x}): {}\n", strategy_->name(), ref,
                 s.error().describe());
      std::abort();
    }
  }

  std::optional<uint64_t> last_op_steps() const override { return strategy_->last_op_steps(); }

  uint64_t region_size() const override { return region_size_; }

 private:
  std::unique_ptr<alloc::Strategy> strategy_;
  uint64_t region_size_;
};

}  // namespace

Result<std::unique_ptr<BenchAllocator>> make_pmm_allocator(std::string_view name,
                                                           uint64_t region_size) {
  auto s = alloc::make_strategy(name, region_size);
  if (!s) return std::unexpected(s.error());
  return std::make_unique<PmmAllocator>(std::move(*s), region_size);
}

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::kBestFit:
      return "best_fit";
    case Kind::kTlsf:
      return "tlsf";
    case Kind::kBoostRbtree:
      return "boost-rbtree";
    case Kind::kMultimapScan:
      return "multimap-scan";
    case Kind::kMultimapMap:
      return "multimap+map";
    case Kind::kPeer:
      return peer_name();
  }
  return "?";
}

Result<std::unique_ptr<BenchAllocator>> make_bench_allocator(Kind kind, uint64_t region_size) {
  switch (kind) {
    case Kind::kBestFit:
      return make_pmm_allocator("best_fit", region_size);
    case Kind::kTlsf:
      return make_pmm_allocator("tlsf", region_size);
    case Kind::kBoostRbtree:
      return make_boost_allocator(region_size);
    case Kind::kMultimapScan:
      return make_multimap_allocator(true, region_size);
    case Kind::kMultimapMap:
      return make_multimap_allocator(false, region_size);
    case Kind::kPeer:
      return make_peer_allocator(region_size);
  }
  return fail(Errc::kInvalidArgument, "unknown allocator kind {}", static_cast<int>(kind));
}

}  // namespace pmm::bench
