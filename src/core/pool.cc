// Implementation of core/pool.h: region + strategy + barriers at physical
// run edges + accounting.
#include "core/pool.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/units.h"

namespace pmm::core {
namespace {

std::unexpected<Error> in_pool(const std::string& name, Error e) {
  e.message = fmt::format("pool {}: {}", name, e.message);
  return std::unexpected(std::move(e));
}

}  // namespace

Result<std::unique_ptr<Pool>> Pool::create(PoolOptions opts) {
  if (opts.name.empty())
    return fail(Errc::kInvalidArgument, "a pool needs a name (letters, digits, - or _)");
  auto region = mem::make_region(opts.name, opts.region);
  if (!region) return std::unexpected(region.error());
  auto strategy = alloc::make_strategy(opts.strategy, (*region)->size());
  if (!strategy) return in_pool(opts.name, strategy.error());
  return create(std::move(opts.name), std::move(*region), std::move(*strategy), opts.zero_on_alloc);
}

Result<std::unique_ptr<Pool>> Pool::create(std::string name, std::unique_ptr<mem::Region> region,
                                           std::unique_ptr<alloc::Strategy> strategy,
                                           bool zero_on_alloc) {
  if (!region || !strategy)
    return fail(Errc::kInvalidArgument, "pool {}: needs both a region and a strategy", name);
  const alloc::Stats st = strategy->stats();
  if (st.size != region->size())
    return fail(Errc::kInvalidArgument,
                "pool {}: the strategy manages {} bytes but the region has {}; they must match",
                name, st.size, region->size());
  if (st.live_blocks != 0)
    return fail(Errc::kInvalidArgument, "pool {}: the strategy already has {} live blocks", name,
                st.live_blocks);
  std::vector<uint64_t> barriers;
  uint64_t expect = 0;
  for (const mem::PhysicalRun& run : region->runs()) {
    if (run.offset != expect || run.length == 0)
      return fail(Errc::kInvalidArgument,
                  "pool {}: physical runs must cover the region in order; a run starts at {} "
                  "where {} was expected",
                  name, run.offset, expect);
    if (run.offset != 0) barriers.push_back(run.offset);
    expect = run.offset + run.length;
  }
  if (!region->runs().empty() && expect != region->size())
    return fail(Errc::kInvalidArgument, "pool {}: physical runs cover {} of {} bytes", name, expect,
                region->size());
  if (auto s = strategy->set_barriers(barriers); !s) return in_pool(name, s.error());
  auto pool = std::unique_ptr<Pool>(
      new Pool(std::move(name), std::move(region), std::move(strategy), zero_on_alloc));
  for (const mem::PhysicalRun& run : pool->region_->runs())
    pool->largest_run_ = std::max(pool->largest_run_, run.length);
  return pool;
}

Pool::Pool(std::string name, std::unique_ptr<mem::Region> region,
           std::unique_ptr<alloc::Strategy> strategy, bool zero_on_alloc)
    : name_(std::move(name)),
      region_(std::move(region)),
      strategy_(std::move(strategy)),
      zero_on_alloc_(zero_on_alloc) {}

Pool::~Pool() = default;

std::string Pool::why_no_physical() const {
  if (!mem::uses_huge_pages(*region_))
    return fmt::format(
        "a {} pool of normal pages has no physically contiguous runs; use a "
        "hugetlb pool (or sysv with huge_pages)",
        mem::memory_type_name(region_->type()));
  return "its physical addresses are unknown (/proc/self/pagemap shows them only to a daemon "
         "with CAP_SYS_ADMIN)";
}

const mem::PhysicalRun* Pool::run_of(uint64_t offset) const {
  const auto runs = region_->runs();
  auto it =
      std::upper_bound(runs.begin(), runs.end(), offset,
                       [](uint64_t off, const mem::PhysicalRun& r) { return off < r.offset; });
  if (it == runs.begin()) return nullptr;
  --it;
  return offset < it->offset + it->length ? &*it : nullptr;
}

uint64_t Pool::physical_address(uint64_t offset) const {
  const mem::PhysicalRun* run = run_of(offset);
  return run != nullptr ? run->phys + (offset - run->offset) : 0;
}

Result<Block> Pool::allocate(const AllocRequest& req) {
  PMM_CHECK_ON_EXIT("Pool::allocate", checks_, strategy_->stats().live_blocks, check_invariants());
  auto refuse = [this](Error e) {
    ++failed_allocations_;
    return in_pool(name_, std::move(e));
  };
  if (req.contiguous && !has_physical())
    return refuse(Error{Errc::kUnsupported,
                        fmt::format("a physically contiguous block of {} cannot be promised: {}",
                                    format_size(req.size), why_no_physical()),
                        0});
  if (has_physical() && req.size > largest_run_)
    return refuse(Error{Errc::kNoMemory,
                        fmt::format("a block of {} bytes is larger than the largest physically "
                                    "contiguous run ({} bytes, {}); no block crosses a run edge",
                                    req.size, largest_run_, format_size(largest_run_)),
                        0});
  const uint64_t alignment = req.alignment == 0 ? region_->page_size() : req.alignment;
  auto off = strategy_->allocate(req.size, alignment);
  if (!off) return refuse(off.error());
  Block b{.offset = *off, .size = req.size, .phys = physical_address(*off)};
  if (req.zero || zero_on_alloc_) {
    std::memset(region_->data() + b.offset, 0, b.size);
    bytes_zeroed_ += b.size;
  }
  ++allocations_;
  peak_bytes_used_ = std::max(peak_bytes_used_, strategy_->stats().bytes_used);
  return b;
}

Status Pool::release(uint64_t offset) {
  PMM_CHECK_ON_EXIT("Pool::release", checks_, strategy_->stats().live_blocks, check_invariants());
  if (auto s = strategy_->release(offset); !s) return in_pool(name_, s.error());
  return {};
}

PoolStats Pool::stats() const {
  PoolStats s;
  s.alloc = strategy_->stats();
  s.physical_runs = region_->runs().size();
  s.largest_run = largest_run_;
  s.allocations = allocations_;
  s.failed_allocations = failed_allocations_;
  s.peak_bytes_used = peak_bytes_used_;
  s.bytes_zeroed = bytes_zeroed_;
  return s;
}

Status Pool::check_invariants() const {
  if (auto s = strategy_->check_invariants(); !s) return in_pool(name_, s.error());
  const alloc::Stats st = strategy_->stats();
  if (st.size != region_->size())
    return fail(Errc::kInvalidArgument, "pool {}: strategy size {} != region size {}", name_,
                st.size, region_->size());
  if (st.bytes_used > peak_bytes_used_)
    return fail(Errc::kInvalidArgument, "pool {}: {} bytes used but the peak says {}", name_,
                st.bytes_used, peak_bytes_used_);
  return {};
}

}  // namespace pmm::core
