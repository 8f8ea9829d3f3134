// Runs: the placement of a one-run request inside a free extent, by two
// binary searches and a segment-tree search. See runs.h for the rule.
#include "alloc/runs.h"

#include <algorithm>
#include <bit>

namespace pmm::alloc::detail {

void Runs::assign(std::span<const uint64_t> barriers, uint64_t size) {
  bounds_.assign(1, 0);
  bounds_.insert(bounds_.end(), barriers.begin(), barriers.end());
  bounds_.push_back(size);
  const auto runs = static_cast<uint32_t>(bounds_.size() - 1);
  leaves_ = std::bit_ceil(runs);
  tree_.assign(2 * size_t{leaves_}, 0);
  for (uint32_t r = 0; r < runs; ++r) tree_[leaves_ + r] = bounds_[r + 1] - bounds_[r];
  for (uint32_t n = leaves_ - 1; n >= 1; --n) tree_[n] = std::max(tree_[2 * n], tree_[2 * n + 1]);
  uint64_t all = 0;
  for (uint64_t b : barriers) all |= b;
  barrier_align_ = all & (0 - all);  // 0 when there are none
}

uint64_t Runs::place_bound() const {
  const auto runs = bounds_.size() - 1;
  return 2 * (std::bit_width(runs) + 1) + 3 * std::bit_width(uint64_t{leaves_}) + 2;
}

uint32_t Runs::run_of(uint64_t off, uint64_t& steps) const {
  // The last r with bounds_[r] <= off, among r in [0, runs).
  size_t lo = 0;
  size_t hi = bounds_.size() - 1;
  while (hi - lo > 1) {
    ++steps;
    const size_t mid = lo + (hi - lo) / 2;
    (bounds_[mid] <= off ? lo : hi) = mid;
  }
  return static_cast<uint32_t>(lo);
}

uint32_t Runs::first_at_least(uint32_t lo, uint32_t hi, uint64_t need, uint64_t& steps) const {
  // The nodes covering [lo, hi), left to right: those met on the left edge
  // in order, then those met on the right edge in reverse.
  uint32_t left[33];
  uint32_t right[33];
  int nl = 0;
  int nr = 0;
  for (uint32_t l = lo + leaves_, r = hi + leaves_; l < r; l >>= 1, r >>= 1) {
    ++steps;
    if (l & 1) left[nl++] = l++;
    if (r & 1) right[nr++] = --r;
  }
  auto descend = [&](uint32_t n) {
    while (n < leaves_) {
      ++steps;
      n = tree_[2 * n] >= need ? 2 * n : 2 * n + 1;
    }
    return n - leaves_;
  };
  for (int i = 0; i < nl; ++i)
    if (tree_[left[i]] >= need) return descend(left[i]);
  for (int i = nr - 1; i >= 0; --i)
    if (tree_[right[i]] >= need) return descend(right[i]);
  return UINT32_MAX;
}

uint64_t Runs::longest_run(uint32_t lo, uint32_t hi, uint64_t& steps) const {
  uint64_t best = 0;
  for (uint32_t l = lo + leaves_, r = hi + leaves_; l < r; l >>= 1, r >>= 1) {
    ++steps;
    if (l & 1) best = std::max(best, tree_[l++]);
    if (r & 1) best = std::max(best, tree_[--r]);
  }
  return best;
}

uint64_t Runs::longest_piece(uint64_t start, uint64_t len, uint64_t& steps) const {
  if (!has_barriers()) return len;
  const uint64_t end = start + len;
  const uint32_t r0 = run_of(start, steps);
  const uint32_t r1 = run_of(end - 1, steps);
  if (r0 == r1) return len;
  uint64_t best = std::max(bounds_[r0 + 1] - start, end - bounds_[r1]);
  if (r1 > r0 + 1) best = std::max(best, longest_run(r0 + 1, r1, steps));
  return best;
}

uint64_t Runs::place(uint64_t start, uint64_t len, uint64_t size, uint64_t align,
                     uint64_t& steps) const {
  if (len < size) return kNoPlace;
  if (!has_barriers()) return place_anywhere(start, len, size, align);
  const uint64_t end = start + len;
  const uint32_t r0 = run_of(start, steps);
  const uint32_t r1 = run_of(end - 1, steps);
  // 1. The first piece.
  const uint64_t first_end = std::min(end, bounds_[r0 + 1]);
  if (uint64_t at = place_anywhere(start, first_end - start, size, align); at != kNoPlace)
    return at;
  // 2. The first whole run long enough wherever in A's multiples it starts.
  if (r1 > r0 + 1) {
    const uint64_t extra = align > barrier_align_ ? align - barrier_align_ : 0;
    if (size <= UINT64_MAX - extra) {
      const uint32_t r = first_at_least(r0 + 1, r1, size + extra, steps);
      if (r != UINT32_MAX) return bounds_[r] + ((0 - bounds_[r]) & (align - 1));
    }
  }
  // 3. The last piece.
  if (r1 > r0) return place_anywhere(bounds_[r1], end - bounds_[r1], size, align);
  return kNoPlace;
}

}  // namespace pmm::alloc::detail
