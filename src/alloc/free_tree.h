// pmm::alloc::detail::FreeTree — best_fit's index of free extents: an AVL
// tree ordered by (length, start), threaded through Segment::link.
//
// Why our own tree: the nodes are the segments themselves (no second
// allocation per free extent), indices instead of pointers, and every node
// visited is counted, which std::map would not let us do. AVL keeps the
// height below 1.44 log2(n), so every descent is O(log n) in the worst case.
//
// The best-fit rule, exactly (kScanLimit = 32):
//   Order the free extents by (length, start). An extent E holds a request
//   (size, align) when align_up(E.start, align) + size <= E.start + E.len.
//   Walk the extents of length >= size in that order. The answer is the
//   first one that holds the request, unless kScanLimit extents that do not
//   hold it come first; then the answer is the first extent of length
//   >= size + align - 1 (which holds the request wherever it starts), or
//   none. A request that must stay inside one physical run (runs.h) walks
//   the same way with "holds" meaning Runs::place() finds it a place, and
//   takes the fallback extent only if that extent has one. With align == 1 every extent of length
//   >= size holds the request, so the walk stops at its first step and the answer is always the
//   true best fit. With align > 1 only extents of length in [size, size + align - 1) can fail to
//   hold it, so the answer differs from the true best fit only when 32 such extents, all misaligned
//   for this request, are smaller than it; the work stays O(log n + kScanLimit), plus (kScanLimit +
//   1) * Runs::place_bound() for a one-run request.
//
// Usage (by SegmentStrategy only):
//   FreeTree t;  t.insert(segs, i, steps);  t.find(segs, 4096, 64, steps);
//
// Thread safety: none; owned by one strategy.
#pragma once

#include <cstdint>

#include "alloc/runs.h"
#include "alloc/segment.h"
#include "base/error.h"

namespace pmm::alloc::detail {

class FreeTree {
 public:
  static constexpr int kScanLimit = 32;

  void clear() {
    root_ = kNil;
    count_ = 0;
  }
  [[nodiscard]] uint64_t count() const { return count_; }

  void insert(Segment* s, uint32_t i, uint64_t& steps);
  void remove(Segment* s, uint32_t i, uint64_t& steps);

  // The extent the best-fit rule above picks, or kNil; `at` is where the
  // request goes in it. With `runs`, "holds" means runs->place() finds a
  // place (runs.h), and the fallback extent is taken only if it does.
  [[nodiscard]] uint32_t find(const Segment* s, uint64_t size, uint64_t align, const Runs* runs,
                              uint64_t& at, uint64_t& steps) const;

  // The largest free extent (the last in order, so the highest start among
  // equals), or kNil when none. O(log n).
  [[nodiscard]] uint32_t largest(const Segment* s) const;

  // Checks order, parent links, heights and balance, that every node is a
  // free segment, and that the tree holds count() nodes.
  [[nodiscard]] Status check(const Segment* s, uint32_t extent) const;

 private:
  // First node whose length is >= len, or kNil.
  uint32_t lower_bound(const Segment* s, uint64_t len, uint64_t& steps) const;
  uint32_t successor(const Segment* s, uint32_t x, uint64_t& steps) const;
  void replace_child(Segment* s, uint32_t parent, uint32_t old_child, uint32_t new_child);
  uint32_t rotate_left(Segment* s, uint32_t x);
  uint32_t rotate_right(Segment* s, uint32_t x);
  uint32_t rebalance(Segment* s, uint32_t x);
  void retrace(Segment* s, uint32_t x, uint64_t& steps);

  uint32_t root_ = kNil;
  uint64_t count_ = 0;
};

}  // namespace pmm::alloc::detail
