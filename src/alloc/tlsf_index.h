// pmm::alloc::detail::TlsfIndex — tlsf's index of free extents: two-level
// segregated free lists with bitmaps, threaded through Segment::link.
//
// Bins: lengths below 64 each have their own bin (bin = length). Above, the
// first level is the power of two and the second splits it into 32 equal
// ranges, so a bin spans at most 1/32 of its lower bound. 1920 bins cover
// every 64-bit length. A bitmap per level finds the first non-empty bin at or
// above a given one with two count-trailing-zeros: O(1).
//
// The rule, exactly (kScanLimit = 16). For a request (size, align):
//   1. By size: walk the extents of the bins from tlsf_search_bin(size) up
//      (every one of them is >= size), in bin order and list order, at most
//      kScanLimit extents, and take the first that holds the request at its
//      aligned start. An extent whose start already satisfies the alignment
//      always holds it, so a request is never padded into a higher bin than
//      its size needs; only a misaligned extent costs a further look.
//   2. Otherwise, when align > 1: take the head of the first non-empty bin
//      whose lower bound is >= size + align - 1; such an extent holds the
//      request wherever it starts.
//   3. Otherwise, before failing, scan the bin of `size` itself (extents
//      that may be shorter than size), at most kScanLimit extents, and take
//      the first that holds the request. This finds an exact fit in the
//      request's own bin.
// So a request fails only when: the extents of step 1's bins, if at most
// kScanLimit, none holds it; no extent reaches step 2's bin; and among the
// first kScanLimit extents of the request's own bin none holds it. Free
// lists are LIFO. Work per call: at most 3 + kScanLimit * 4 steps. A request
// that must stay inside one physical run never comes here: with barriers,
// both strategies answer it from the one-run index (one_run_index.h).
//
// Usage (by SegmentStrategy only):
//   TlsfIndex t;  t.insert(segs, i, steps);  t.find(segs, 4096, 64, steps);
//
// Thread safety: none; owned by one strategy.
#pragma once

#include <array>
#include <cstdint>

#include "alloc/runs.h"
#include "alloc/segment.h"
#include "base/error.h"

namespace pmm::alloc::detail {

inline constexpr int kTlsfSlLog2 = 5;
inline constexpr uint32_t kTlsfSl = 1u << kTlsfSlLog2;  // 32 second-level bins
inline constexpr uint32_t kTlsfFl = 60;                 // first levels 0..59
inline constexpr uint32_t kTlsfBins = kTlsfFl * kTlsfSl;
inline constexpr uint32_t kTlsfNoBin = UINT32_MAX;

// The bin an extent of `len` (>= 1) bytes lives in.
[[nodiscard]] constexpr uint32_t tlsf_bin_of(uint64_t len) {
  if (len < 2 * kTlsfSl) return static_cast<uint32_t>(len);
  unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(len));
  uint32_t fl = msb - kTlsfSlLog2 + 1;
  uint32_t sl = static_cast<uint32_t>(len >> (msb - kTlsfSlLog2)) & (kTlsfSl - 1);
  return fl * kTlsfSl + sl;
}

// The smallest length that lives in `bin`.
[[nodiscard]] constexpr uint64_t tlsf_bin_floor(uint32_t bin) {
  if (bin < 2 * kTlsfSl) return bin;
  uint32_t fl = bin / kTlsfSl;
  uint32_t sl = bin % kTlsfSl;
  return static_cast<uint64_t>(kTlsfSl + sl) << (fl - 1);
}

// The first bin whose every extent is >= need, or kTlsfNoBin.
[[nodiscard]] constexpr uint32_t tlsf_search_bin(uint64_t need) {
  uint32_t b = tlsf_bin_of(need);
  if (tlsf_bin_floor(b) >= need) return b;
  return b + 1 < kTlsfBins ? b + 1 : kTlsfNoBin;
}

class TlsfIndex {
 public:
  static constexpr int kScanLimit = 16;

  TlsfIndex() { clear(); }
  void clear();
  [[nodiscard]] uint64_t count() const { return count_; }

  void insert(Segment* s, uint32_t i, uint64_t& steps);
  void remove(Segment* s, uint32_t i, uint64_t& steps);
  // Exactly remove(i) under its old length `was` then insert(i): segment i
  // stayed free and its length changed. Still first in the same bin, it
  // stays where it is.
  void rekey(Segment* s, uint32_t i, uint64_t was, uint64_t& steps);

  // The extent the rule above picks, or kNil; `at` is where the request
  // goes in it.
  [[nodiscard]] uint32_t find(const Segment* s, uint64_t size, uint64_t align, uint64_t& at,
                              uint64_t& steps) const;

  // The largest free extent; walks the highest non-empty bin's list, so it
  // is not O(1): used for stats and error messages, not for allocation.
  [[nodiscard]] uint32_t largest(const Segment* s) const;

  // Checks every list (links, bins, lengths), the bitmaps against the lists,
  // and the count.
  [[nodiscard]] Status check(const SegmentPool& segs) const;

 private:
  void remove_from(Segment* s, uint32_t i, uint32_t bin, uint64_t& steps);
  // First non-empty bin >= bin, or kTlsfNoBin.
  [[nodiscard]] uint32_t first_nonempty(uint32_t bin) const;

  std::array<uint32_t, kTlsfBins> heads_{};
  std::array<uint32_t, kTlsfFl> sl_bitmap_{};
  uint64_t fl_bitmap_ = 0;
  uint64_t count_ = 0;
};

}  // namespace pmm::alloc::detail
