// pmm::alloc::detail::SizeBins — one bin per exact length below kBins bytes,
// and a three-level bitmap that finds the first non-empty bin at or above a
// length in O(1) (at most three words looked at going up, three coming
// down). FitIndex (fit_index.h) keeps each bin's list of free extents.
//
// Why exact lengths: every extent of a bin has the same length, so the
// first extent of the first non-empty bin >= size is a best fit by length
// without comparing anything; short extents (the common case in pools of
// small blocks) never reach the tree. The heads (64 KiB) and the bitmaps
// (about 2 KiB) are allocated once, when the strategy is made; they are a
// fixed cost per pool, not per block.
//
// Usage (by FitIndex only):
//   SizeBins b;  b.head(100) = seg;  b.mark(100);
//   uint32_t first = b.next_nonempty(64);   // kNone when none
//
// Thread safety: none; owned by one index.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace pmm::alloc::detail {

class SizeBins {
 public:
  static constexpr uint32_t kBins = 1u << 14;  // lengths 0 .. 16383
  static constexpr uint32_t kNone = UINT32_MAX;

  SizeBins() : heads_(kBins, kNone) {}

  // Every bin empty; keeps the heads' memory (a fixed cost, see above).
  // O(marked bins): a strategy clears when one free extent is left.
  void clear() {
    for (uint32_t b = next_nonempty(0); b != kNone; b = next_nonempty(b + 1)) heads_[b] = kNone;
    l0_.fill(0);
    l1_.fill(0);
    l2_ = 0;
  }

  [[nodiscard]] uint32_t& head(uint32_t bin) { return heads_[bin]; }
  [[nodiscard]] uint32_t head(uint32_t bin) const { return heads_[bin]; }

  [[nodiscard]] bool marked(uint32_t bin) const { return (l0_[bin / 64] >> (bin % 64)) & 1u; }
  void mark(uint32_t bin) {
    l0_[bin / 64] |= bit(bin);
    l1_[bin / 4096] |= bit(bin / 64);
    l2_ |= bit(bin / 4096);
  }
  void unmark(uint32_t bin) {
    if ((l0_[bin / 64] &= ~bit(bin)) != 0) return;
    if ((l1_[bin / 4096] &= ~bit(bin / 64)) != 0) return;
    l2_ &= ~bit(bin / 4096);
  }

  // The first marked bin >= bin, or kNone.
  [[nodiscard]] uint32_t next_nonempty(uint32_t bin) const {
    if (bin >= kBins) return kNone;
    uint32_t w = bin / 64;
    if (uint64_t m = l0_[w] & (~uint64_t{0} << (bin % 64)); m != 0) return w * 64 + ctz(m);
    const uint32_t w1 = w + 1;  // the next l0 word, as a bit of l1
    uint32_t i1 = w1 / 64;
    if (i1 >= l1_.size()) return kNone;
    if (uint64_t m = l1_[i1] & (~uint64_t{0} << (w1 % 64)); m != 0) {
      w = i1 * 64 + ctz(m);
      return w * 64 + ctz(l0_[w]);
    }
    const uint32_t i2 = i1 + 1;
    if (i2 >= l1_.size()) return kNone;
    const uint64_t m2 = l2_ & (~uint64_t{0} << i2);
    if (m2 == 0) return kNone;
    i1 = ctz(m2);
    w = i1 * 64 + ctz(l1_[i1]);
    return w * 64 + ctz(l0_[w]);
  }

  // The last marked bin, or kNone.
  [[nodiscard]] uint32_t last_nonempty() const {
    if (l2_ == 0) return kNone;
    const uint32_t i1 = 63 - static_cast<uint32_t>(__builtin_clzll(l2_));
    const uint32_t w = i1 * 64 + 63 - static_cast<uint32_t>(__builtin_clzll(l1_[i1]));
    return w * 64 + 63 - static_cast<uint32_t>(__builtin_clzll(l0_[w]));
  }

  // Whether the upper bitmap levels agree with the lowest.
  [[nodiscard]] bool levels_agree() const {
    for (uint32_t w = 0; w < l0_.size(); ++w)
      if (((l1_[w / 64] >> (w % 64)) & 1u) != (l0_[w] != 0)) return false;
    for (uint32_t i = 0; i < l1_.size(); ++i)
      if (((l2_ >> i) & 1u) != (l1_[i] != 0)) return false;
    return true;
  }

 private:
  static uint64_t bit(uint32_t i) { return uint64_t{1} << (i % 64); }
  static uint32_t ctz(uint64_t m) { return static_cast<uint32_t>(__builtin_ctzll(m)); }

  std::vector<uint32_t> heads_;
  std::array<uint64_t, kBins / 64> l0_{};
  std::array<uint64_t, kBins / 4096> l1_{};
  uint64_t l2_ = 0;
};

}  // namespace pmm::alloc::detail
