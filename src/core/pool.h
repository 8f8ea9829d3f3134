// pmm::core::Pool — a Region, an allocation Strategy over it, and accounting.
//
// A pool turns offsets from its strategy into blocks of its region. When the
// region knows its physical runs, the pool sets a strategy barrier at every
// run edge, so a block that asks to be `contiguous` never straddles one, and
// each block learns its physical address. Mappable alignment defaults to the
// region's page size.
//
// Barriers bind only `contiguous` blocks (alloc::Span::kOneRun): any other
// block may span runs, so a pool whose huge pages are not physically
// adjacent still gives out blocks as large as its free space. A
// `contiguous` request larger than the largest run fails (kNoMemory, naming
// the run size). A block's physical address is that of its first byte;
// within a run, offset and physical address advance together, so a
// `contiguous` block is physically contiguous and has the same alignment
// physically as in offsets up to the huge page size; a block that spans
// runs is contiguous only in the pool's mapping.
//
// Zeroing (zero_on_alloc, or AllocRequest::zero) is a memset through the
// daemon's mapping before the block is handed out: simple, and bounded by
// the block size (about 10 GB/s; a 64 MiB block takes some 6 ms).
//
// Memory a client can take away. Every client of a pool holds its fd (or
// shmid) and may punch holes in it. The pool never faults on that: before
// a block of a huge page pool (hugetlb, sysv on huge pages) is handed out,
// its pages are faulted back in with MADV_POPULATE_WRITE (os::fault_in),
// which reports a page the kernel cannot supply instead of raising SIGBUS;
// zeroing runs under a SIGBUS guard (os::fill_guarded) for a punch that
// lands in between. A punched normal page (shmem) comes back on the next
// touch, so those pools only count what was punched (resident ones:
// populate/lock) and refilled. Either failure refuses that allocation with
// a message saying why. Then, in a pool with physical runs, the block's
// pages are looked up in the pagemap again: a page that came back
// elsewhere (punched and refilled) or is missing refuses a `contiguous`
// block and gives any other block phys 0 (unknown), never the stale
// address. health() says what was found; take_notices() hands the daemon
// one line per event to log.
//
// Usage:
//   auto pool = Pool::create(PoolOptions{.name = "general",
//                                        .region = {.size = 256 << 20}});
//   auto b = (*pool)->allocate({.size = 1 << 20});
//   (*pool)->release(b->handle);
//
// Not thread-safe; the daemon's single thread owns its pools.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
  uint64_t phys = 0;       // physical address of the first byte; 0 when unknown
  alloc::Handle handle{};  // what release() takes (alloc/strategy.h, "Handles")
};

// What clients took away from the pool's memory (see the header comment).
struct PoolHealth {
  uint64_t punched_bytes = 0;   // now: bytes of a resident pool not in memory
  uint64_t refilled_bytes = 0;  // ever: punched bytes faulted back in for a block
  uint64_t moved_pages = 0;     // ever: pages found away from their recorded address
  uint64_t refused = 0;         // ever: allocations refused because of the above
  [[nodiscard]] bool degraded() const { return punched_bytes != 0 || moved_pages != 0; }
};

// "ok", or "degraded: 3 huge pages punched; 2 pages moved (physical addresses
// re-read); 1 allocation refused for it". `page_size` is the pool's page
// size; `huge` whether those are huge pages (the word "huge" in the text).
[[nodiscard]] std::string describe_health(const PoolHealth& h, uint64_t page_size, bool huge);

struct PoolStats {
  alloc::Stats alloc;
  uint64_t physical_runs = 0;  // 0 when physical addresses are unknown
  uint64_t largest_run = 0;
  uint64_t allocations = 0;         // successful allocate() calls, ever
  uint64_t failed_allocations = 0;  // refused allocate() calls, ever
  uint64_t peak_bytes_used = 0;     // highest alloc.bytes_used seen
  uint64_t bytes_zeroed = 0;        // written by zeroing, ever
  PoolHealth health;
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
  // pool without physical addresses, and kNoMemory for a `contiguous` size
  // beyond the largest physical run. An alignment below the page size is honoured as
  // asked (the block then shares a page with its neighbours); 0 means the
  // region's page size. Messages name the pool.
  [[nodiscard]] Result<Block> allocate(const AllocRequest& req);
  // kNotFound for a handle that names no live block of this pool.
  [[nodiscard]] Status release(alloc::Handle h);
  [[nodiscard]] PoolStats stats() const;
  [[nodiscard]] PoolHealth health() const;
  // Log lines for what allocate() found since the last call (pages punched
  // and refilled, pages moved, allocations refused for it); then clears.
  // const because draining the log changes nothing a caller can observe of
  // the pool (the daemon holds its pools through const views).
  [[nodiscard]] std::vector<std::string> take_notices() const;
  // Whether take_notices() has anything (asked after every allocation).
  [[nodiscard]] bool has_notices() const { return !notices_.empty(); }

  // The physical address of byte `offset`, 0 when unknown (or out of range).
  [[nodiscard]] uint64_t physical_address(uint64_t offset) const;

  // The strategy's own check plus the pool's
  // accounting. O(n) in blocks. Builds with PMM_CHECK_INVARIANTS run it
  // after allocate() and release() (paced, see base/invariants.h).
  [[nodiscard]] Status check_invariants() const;

 private:
  Pool(std::string name, std::unique_ptr<mem::Region> region,
       std::unique_ptr<alloc::Strategy> strategy, bool zero_on_alloc);

  // Why `contiguous` cannot be honoured here ("normal pages ...").
  [[nodiscard]] std::string why_no_physical() const;
  [[nodiscard]] const mem::PhysicalRun* run_of(uint64_t offset) const;
  // Makes the block's memory safe to hand out (see the header comment);
  // may set b.phys to 0. An error refuses the allocation.
  [[nodiscard]] Status make_ready(Block& b, const AllocRequest& req);
  void notice(std::string line);

  std::string name_;
  std::unique_ptr<mem::Region> region_;
  std::unique_ptr<alloc::Strategy> strategy_;
  bool zero_on_alloc_ = false;
  // mem::uses_huge_pages(*region_), fixed with the region: make_ready asks
  // per allocation, and the base page size is a sysconf() call.
  bool huge_ = false;
  uint64_t largest_run_ = 0;
  uint64_t allocations_ = 0;
  uint64_t failed_allocations_ = 0;
  uint64_t peak_bytes_used_ = 0;
  uint64_t bytes_zeroed_ = 0;
  PoolHealth health_;        // punched_bytes is read anew by health()
  std::vector<bool> moved_;  // per page: found away from its recorded address
  mutable std::vector<std::string> notices_;
  InvariantCadence checks_;
};

// describe_health of the pool's health now: the pool's state in
// `pmmctl pools`.
[[nodiscard]] std::string describe_health(const Pool& pool);

}  // namespace pmm::core
