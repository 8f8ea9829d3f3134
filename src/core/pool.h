// pmm::core::Pool — a Region, an allocation Strategy over it, and accounting.
//
// A pool turns offsets from its strategy into blocks of its region. When the
// region knows its physical runs, the pool sets a strategy barrier at every
// run edge, so a block that asks to be `contiguous` never straddles one, and
// each block learns its physical address. Mappable alignment defaults to the
// region's page size.
//
// Because barriers sit at every run edge, *no* block of a pool with
// physical runs crosses one, contiguous or not: a request larger than the
// largest run fails (kNoMemory, naming the run size). A block's physical
// address is that of its first byte; within a run, offset and physical
// address advance together, so the block is physically contiguous and has
// the same alignment physically as in offsets up to the huge page size.
//
// Zeroing (zero_on_alloc, or AllocRequest::zero) is a memset through the
// daemon's mapping before the block is handed out: simple, and bounded by
// the block size (about 10 GB/s; a 64 MiB block takes some 6 ms).
//
// Usage:
//   auto pool = Pool::create(PoolOptions{.name = "general",
//                                        .region = {.size = 256 << 20}});
//   auto b = (*pool)->allocate({.size = 1 << 20});
//   (*pool)->release(b->offset);
//
// Not thread-safe; the daemon's single thread owns its pools.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "alloc/strategy.h"
#include "base/error.h"
#include "base/invariants.h"
#include "mem/region.h"

namespace pmm::core {

struct PoolOptions {
  std::string name{};  // unique among the daemon's pools
  mem::RegionOptions region{};
  std::string strategy = "best_fit";  // or "tlsf"
  bool zero_on_alloc = false;         // zero every block before handing it out
};

struct AllocRequest {
  uint64_t size = 0;
  uint64_t alignment = 0;   // 0: the region's page size
  bool contiguous = false;  // one physically contiguous run; needs physical info
  bool zero = false;        // zero this block (also when zero_on_alloc)
};

struct Block {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t phys = 0;  // physical address of the first byte; 0 when unknown
};

struct PoolStats {
  alloc::Stats alloc;
  uint64_t physical_runs = 0;  // 0 when physical addresses are unknown
  uint64_t largest_run = 0;
  uint64_t allocations = 0;         // successful allocate() calls, ever
  uint64_t failed_allocations = 0;  // refused allocate() calls, ever
  uint64_t peak_bytes_used = 0;     // highest alloc.bytes_used seen
  uint64_t bytes_zeroed = 0;        // written by zeroing, ever
};

class Pool {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Pool>> create(PoolOptions opts);
  // For tests and for regions made elsewhere.
  [[nodiscard]] static Result<std::unique_ptr<Pool>> create(
      std::string name, std::unique_ptr<mem::Region> region,
      std::unique_ptr<alloc::Strategy> strategy, bool zero_on_alloc = false);

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool();

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const mem::Region& region() const { return *region_; }
  [[nodiscard]] const alloc::Strategy& strategy() const { return *strategy_; }
  [[nodiscard]] bool has_physical() const { return !region_->runs().empty(); }

  // Errors: see Strategy::allocate; plus kUnsupported for `contiguous` on a
  // pool without physical addresses, and kNoMemory for a size beyond the
  // largest physical run. An alignment below the page size is honoured as
  // asked (the block then shares a page with its neighbours); 0 means the
  // region's page size. Messages name the pool.
  [[nodiscard]] Result<Block> allocate(const AllocRequest& req);
  [[nodiscard]] Status release(uint64_t offset);
  [[nodiscard]] PoolStats stats() const;

  // The physical address of byte `offset`, 0 when unknown (or out of range).
  [[nodiscard]] uint64_t physical_address(uint64_t offset) const;

  // The strategy's own check (which covers barriers) plus the pool's
  // accounting. O(n) in blocks. Builds with PMM_CHECK_INVARIANTS run it
  // after allocate() and release() (paced, see base/invariants.h).
  [[nodiscard]] Status check_invariants() const;

 private:
  Pool(std::string name, std::unique_ptr<mem::Region> region,
       std::unique_ptr<alloc::Strategy> strategy, bool zero_on_alloc);

  // Why `contiguous` cannot be honoured here ("normal pages ...").
  [[nodiscard]] std::string why_no_physical() const;
  [[nodiscard]] const mem::PhysicalRun* run_of(uint64_t offset) const;

  std::string name_;
  std::unique_ptr<mem::Region> region_;
  std::unique_ptr<alloc::Strategy> strategy_;
  bool zero_on_alloc_ = false;
  uint64_t largest_run_ = 0;
  uint64_t allocations_ = 0;
  uint64_t failed_allocations_ = 0;
  uint64_t peak_bytes_used_ = 0;
  uint64_t bytes_zeroed_ = 0;
  InvariantCadence checks_;
};

}  // namespace pmm::core
