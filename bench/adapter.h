// BenchAllocator — the one small interface the allocation benchmark drives.
//
// Every allocator compared in BENCHMARKS.md (our best_fit and tlsf, Boost's
// rbtree_best_fit, two std::multimap best fits) is wrapped in it, so one
// trace runs unchanged through all of them. Offsets are relative to the start
// of the region; an allocator that needs real memory (Boost keeps its headers
// inside the blocks) maps it itself and converts pointers to offsets.
//
// Usage:
//   auto a = pmm::bench::make_bench_allocator(pmm::bench::Kind::kBestFit, 1 << 30);
//   if (!a) { fmt::print(stderr, "{}\n", a.error().describe()); return 1; }
//   std::optional<pmm::bench::Placed> p = (*a)->allocate(4096, 64);
//   if (p) (*a)->release(p->ref);
//
// allocate() returns the block's offset and a `ref`, whatever the allocator
// wants back to free it (our strategies' handle, an OffsetAllocator
// metadata index, or simply the offset); release() takes the ref. The
// adapter does no checking of its own in the timed path: allocate() says
// "no" with std::nullopt whatever the reason, release() must be given a live
// ref (the harness only releases what it allocated).
//
// An outside allocator ("peer") runs on the same traces without its code
// in this repository: build it as a shared object that exports this C ABI,
// and pass `--peer PATH.so` to pmm_bench_alloc (bench/README.md shows one
// built from sebbbi/OffsetAllocator in /tmp):
//
//   const char* pmm_peer_name(void);                     // for the tables
//   void* pmm_peer_create(uint64_t region_size);         // NULL: cannot
//   // 0 and *offset, *ref set when it fits; nonzero when nothing fits.
//   int pmm_peer_allocate(void* self, uint64_t size, uint64_t alignment,
//                         uint64_t* offset, uint64_t* ref);
//   void pmm_peer_release(void* self, uint64_t ref);    // a live ref only
//   void pmm_peer_destroy(void* self);
//
// Its heap use counts in the "B/block" column like ours (malloc'ed memory).
//
// Thread safety: none; the harness is single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace pmm::bench {

enum class Kind {
  kBestFit,       // pmm::alloc::make_strategy("best_fit")
  kTlsf,          // pmm::alloc::make_strategy("tlsf")
  kBoostRbtree,   // boost::interprocess rbtree_best_fit on an external buffer
  kMultimapScan,  // std::multimap<size, offset>, neighbours found by a linear scan
  kMultimapMap,   // std::multimap<size, offset> + std::map<offset, size>
  kPeer,          // a shared object given with --peer (see above); not in kAllKinds
};

inline constexpr Kind kAllKinds[] = {Kind::kBestFit, Kind::kTlsf, Kind::kBoostRbtree,
                                     Kind::kMultimapMap, Kind::kMultimapScan};

// The short name printed in the tables.
[[nodiscard]] std::string_view kind_name(Kind k);

struct Placed {
  uint64_t offset = 0;
  uint64_t ref = 0;  // what release() takes
};

class BenchAllocator {
 public:
  virtual ~BenchAllocator() = default;

  // A block of `size` bytes at a multiple of `alignment` (a power of two), or
  // nullopt when nothing fits.
  [[nodiscard]] virtual std::optional<Placed> allocate(uint64_t size, uint64_t alignment) = 0;

  // Frees the live block allocate() returned `ref` for.
  virtual void release(uint64_t ref) = 0;

  // Work done by the last allocate() or release(), for allocators that count
  // it (ours); nullopt for the peers, printed as "n/a".
  [[nodiscard]] virtual std::optional<uint64_t> last_op_steps() const { return std::nullopt; }

  // Bytes the caller can use in total: the region the allocator was made with.
  [[nodiscard]] virtual uint64_t region_size() const = 0;
};

// Makes one allocator over a fresh region of `region_size` bytes. Fails when
// the allocator cannot be made (our strategies refuse, mmap fails).
[[nodiscard]] Result<std::unique_ptr<BenchAllocator>> make_bench_allocator(Kind kind,
                                                                           uint64_t region_size);

// Per-kind factories, one per adapter file.
[[nodiscard]] Result<std::unique_ptr<BenchAllocator>> make_pmm_allocator(std::string_view name,
                                                                         uint64_t region_size);
[[nodiscard]] Result<std::unique_ptr<BenchAllocator>> make_boost_allocator(uint64_t region_size);
[[nodiscard]] std::unique_ptr<BenchAllocator> make_multimap_allocator(bool scan,
                                                                      uint64_t region_size);
// Loads the peer (dlopen, every symbol above resolved) for Kind::kPeer;
// kind_name(Kind::kPeer) is then its pmm_peer_name(). Once per process.
[[nodiscard]] Status load_peer(const std::string& path);
[[nodiscard]] std::string_view peer_name();
[[nodiscard]] Result<std::unique_ptr<BenchAllocator>> make_peer_allocator(uint64_t region_size);

}  // namespace pmm::bench
