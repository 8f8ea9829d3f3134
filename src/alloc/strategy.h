// pmm::alloc::Strategy — an allocation strategy over an offset space [0, size).
//
// A strategy hands out non-overlapping ranges of an abstract offset space. It
// makes no system calls and keeps every record on its own heap, never inside
// the managed memory (which may be device memory, or mapped by other
// processes). The pool (src/core/) puts a Region behind the offsets.
//
// Barriers cut the offset space into runs; the pool sets them at the edges
// of physically contiguous runs. An ordinary block (Span::kAny) ignores
// them: free extents merge across barriers and a block may span several
// runs. A block asked for with Span::kOneRun lies inside one run (never
// straddles a barrier); the strategy finds it by best fit among the free
// extents whose longest piece inside one run is long enough, in bounded
// steps, so it is not refused while some extent can hold it inside one run
// (one_run_index.h; runs.h says where inside a candidate it goes).
//
// Usage:
//   auto s = pmm::alloc::make_strategy("best_fit", 64 << 20);
//   if (!s) { ... s.error().message ... }
//   pmm::Result<pmm::alloc::Allocation> a = (*s)->allocate(4096, 64);
//   use(a->offset);
//   (*s)->release(a->handle);
//
// Handles. allocate() returns the block's offset and a Handle; release()
// takes the handle, so it reaches the block's record directly (no lookup by
// offset). A handle is the record's index and a stamp the strategy wrote
// into the record when it allocated the block; release() checks both, so a
// handle that was released already (stale), never issued, or made up is
// refused with kNotFound and never touches another block's record. Stamps
// are 32 bits: a stale handle could only pass after 2^32 further
// allocations happened to reuse its very record.
//
// Errors: size 0, an alignment that is not a power of two, a size or an
// alignment larger than the region -> Errc::kInvalidArgument; nothing that
// fits -> Errc::kNoMemory (the message names the largest free extent);
// release of a stale, unknown or forged handle -> Errc::kNotFound. No input
// causes undefined behaviour.
//
// Thread safety: none. One owner (the daemon's single thread) calls it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "base/error.h"

namespace pmm::alloc {

struct Stats {
  uint64_t size = 0;          // the whole offset space
  uint64_t bytes_used = 0;    // sum of live block sizes (as allocated)
  uint64_t bytes_free = 0;    // size - bytes_used
  uint64_t free_extents = 0;  // maximal free ranges (barriers do not split them)
  uint64_t largest_free = 0;  // length of the largest free extent
  uint64_t live_blocks = 0;
};

// Names one live block of one strategy; see "Handles" above. Opaque to
// callers, who only store it and give it back.
struct Handle {
  uint64_t bits = 0;
  friend bool operator==(Handle, Handle) = default;
};

// Whether a block may span barriers (see above).
enum class Span : uint8_t {
  kAny,     // anywhere: barriers do not matter
  kOneRun,  // inside one run: straddles no barrier
};

struct Allocation {
  uint64_t offset = 0;
  Handle handle{};
};

class Strategy {
 public:
  virtual ~Strategy() = default;

  // The name it was made with: "best_fit" or "tlsf".
  [[nodiscard]] virtual std::string_view name() const = 0;

  // A block of `size` bytes whose offset is a multiple of `alignment` (a
  // power of two, >= 1); with Span::kOneRun, not straddling a barrier.
  [[nodiscard]] virtual Result<Allocation> allocate(uint64_t size, uint64_t alignment,
                                                    Span span = Span::kAny) = 0;

  // Returns the block `h` names to the free space.
  [[nodiscard]] virtual Status release(Handle h) = 0;

  // Offset and size of the live block `h` names, or kNotFound as release().
  struct Extent {
    uint64_t offset = 0;
    uint64_t size = 0;
  };
  [[nodiscard]] virtual Result<Extent> block(Handle h) const = 0;

  // Adds barriers. Only allowed while no block is live (the pool calls it
  // right after creation); offsets outside (0, size) are rejected.
  [[nodiscard]] virtual Status set_barriers(std::span<const uint64_t> offsets) = 0;

  [[nodiscard]] virtual Stats stats() const = 0;
  // stats().bytes_used alone, without finding the largest free extent: the
  // pool asks it after every allocation.
  [[nodiscard]] virtual uint64_t bytes_used() const { return stats().bytes_used; }

  // Work done by the most recent allocate() or release(): tree nodes visited,
  // bins and free-list entries scanned, free neighbours merged.
  // Deterministic; the benchmark reports the maximum to show bounded time
  // without timing anything: best_fit is O(log n), tlsf O(1), per operation,
  // not on average; with barriers, every operation also keeps the one-run
  // index (O(log n + log runs), one_run_index.h) and a Span::kOneRun request
  // adds O(log runs) for each of the at most 33 candidates it looks at
  // (runs.h). Not counted: growing the segment vector
  // (amortised, like any std::vector) and formatting an error message. A call rejected for its
  // arguments, or for its handle, counts 0.
  [[nodiscard]] virtual uint64_t last_op_steps() const = 0;

  // Walks every structure and checks it against every other (free extents
  // disjoint from blocks, coalesced, indexes agree,
  // stats add up). Returns the first violation found, as Errc::kProtocol
  // (the structure is inconsistent) with the offset involved. For tests and
  // debug builds; O(n).
  [[nodiscard]] virtual Status check_invariants() const = 0;
};

// "best_fit" (default) or "tlsf". An unknown name, or size 0, is an error
// whose message lists the accepted names.
[[nodiscard]] Result<std::unique_ptr<Strategy>> make_strategy(std::string_view name, uint64_t size);

}  // namespace pmm::alloc
