// pmm::alloc::detail::Runs — the physical runs of a strategy's offset space,
// for requests that must stay inside one run.
//
// Barriers (strategy.h) cut [0, size) into runs. Free extents merge across
// barriers and blocks may span them, so an ordinary request sees whole free
// extents; a request that asks for one run (Span::kOneRun) finds its
// candidates by their longest piece inside one run (longest_piece(), the
// key of one_run_index.h) and asks place() where inside a candidate it
// would go. Both are O(log R) for R runs, however many runs the candidate
// covers, which keeps the strategies' step bounds deterministic.
//
// The placement rule, exactly. A free extent [s, e) meets runs r0..r1
// (r0 holds s, r1 holds e - 1). Its pieces, in address order: the first
// piece [s, end of r0) ∩ [s, e); when r1 > r0 + 1, the whole runs
// r0 + 1 .. r1 - 1; when r1 > r0, the last piece [start of r1, e). The
// request (size, align) goes at the aligned start of:
//   1. the first piece, if the request fits there at its aligned start;
//   2. else the first whole run of length >= need, where need = size when
//      align <= A and size + align - A otherwise; A is the largest power of
//      two dividing every barrier (a run starts at a multiple of A, so such
//      a run holds the request; a hugetlb pool's A is at least its huge
//      page size, so page-aligned requests are exact);
//   3. else the last piece, if the request fits there;
// and nowhere in this extent otherwise. With no barriers, place() is the
// ordinary "fits at align_up(s)".
//
// Work: place() counts at most 2 * (bit_width(R) + 1) steps for its two
// binary searches plus 3 * bit_width(L) + 2 for the whole-run search (a max
// segment tree over run lengths with L = bit_ceil(R) leaves); see
// place_bound().
//
// Usage (by SegmentStrategy and the indexes only):
//   Runs r;  r.assign(barriers, size);
//   uint64_t at = r.place(start, len, 4096, 64, steps);  // kNoPlace: none
//
// Thread safety: none; owned by one strategy.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace pmm::alloc::detail {

inline constexpr uint64_t kNoPlace = UINT64_MAX;

// Where a request goes in [start, start + len) ignoring runs: its aligned
// start, or kNoPlace when it does not fit there.
[[nodiscard]] inline uint64_t place_anywhere(uint64_t start, uint64_t len, uint64_t size,
                                             uint64_t align) {
  const uint64_t pad = (0 - start) & (align - 1);
  return len >= size && pad <= len - size ? start + pad : kNoPlace;
}

class Runs {
 public:
  // `barriers`: sorted, unique, each in (0, size).
  void assign(std::span<const uint64_t> barriers, uint64_t size);

  [[nodiscard]] bool has_barriers() const { return bounds_.size() > 2; }

  // Where the rule above puts (size, align) in the free extent
  // [start, start + len), or kNoPlace.
  [[nodiscard]] uint64_t place(uint64_t start, uint64_t len, uint64_t size, uint64_t align,
                               uint64_t& steps) const;

  // The most steps one place() call counts (the header's formula).
  [[nodiscard]] uint64_t place_bound() const;

  // The longest piece of the free extent [start, start + len) inside one
  // run: the first piece, the longest whole run, or the last piece (len
  // itself when the extent meets one run). No request that must stay in one
  // run can go in an extent whose longest piece is shorter than it, which is
  // what makes the one-run search complete (one_run_index.h). At most
  // place_bound() steps.
  [[nodiscard]] uint64_t longest_piece(uint64_t start, uint64_t len, uint64_t& steps) const;

 private:
  // The run holding offset `off` (< size).
  [[nodiscard]] uint32_t run_of(uint64_t off, uint64_t& steps) const;
  // The longest run in [lo, hi) (lo < hi).
  [[nodiscard]] uint64_t longest_run(uint32_t lo, uint32_t hi, uint64_t& steps) const;
  // First run in [lo, hi) of length >= need, or UINT32_MAX.
  [[nodiscard]] uint32_t first_at_least(uint32_t lo, uint32_t hi, uint64_t need,
                                        uint64_t& steps) const;

  std::vector<uint64_t> bounds_;  // 0, the barriers, size: run r is [bounds_[r], bounds_[r + 1])
  std::vector<uint64_t> tree_;    // max run length per node; leaves at [leaves_, 2 * leaves_)
  uint32_t leaves_ = 0;
  uint64_t barrier_align_ = 0;  // A in the rule
};

}  // namespace pmm::alloc::detail
