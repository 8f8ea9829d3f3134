// pmm::alloc::detail::TlsfIndex — tlsf's index of free extents: two-level
// segregated free lists with bitmaps, threaded through Segment::link.
//
// Bins: lengths below 64 each have their own bin (bin = length). Above, the
// first level is the power of two and the second splits it into 32 equal
// ranges, so a bin spans at most 1/32 of its lower bound. 1920 bins cover
// every 64-bit length. A bitmap per level finds the first non-empty bin at or
// above a given one with two count-trailing-zeros: O(1).
//
// The rule, exactly (kScanLimit = 16): for a request (size, align) let
// need = size + align - 1; any extent of length >= need holds the request
// wherever it starts.
//   1. Good fit: take the head of the first non-empty bin whose lower bound
//      is >= need. This succeeds whenever some free extent is at least
//      need rounded up to the next bin boundary.
//   2. Otherwise, before failing, scan the bins from bin_of(size) up to
//      (not including) that bin, in bin order and list order, at most
//      kScanLimit extents in all, and take the first that holds the request.
//      So a request fails only when no extent reaches step 1's bin and,
//      among the extents in the scanned bins, none of the first 16 holds it
//      (in particular: when those bins hold at most 16 extents, none holds
//      it). This closes good fit's gap where an exact fit sits in the
//      request's own bin.
// Free lists are LIFO. Work per call: at most 2 + kScanLimit * 2 steps.
//
// Usage (by SegmentStrategy only):
//   TlsfIndex t;  t.insert(segs, i, steps);  t.find(segs, 4096, 64, steps);
//
// Thread safety: none; owned by one strategy.
#pragma once

#include <array>
#include <cstdint>

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

  // The extent the rule above picks, or kNil.
  [[nodiscard]] uint32_t find(const Segment* s, uint64_t size, uint64_t align,
                              uint64_t& steps) const;

  // The largest free extent; walks the highest non-empty bin's list, so it
  // is not O(1): used for stats and error messages, not for allocation.
  [[nodiscard]] uint32_t largest(const Segment* s) const;

  // Checks every list (links, bins, lengths), the bitmaps against the lists,
  // and the count.
  [[nodiscard]] Status check(const Segment* s, uint32_t extent) const;

 private:
  // First non-empty bin >= bin, or kTlsfNoBin.
  [[nodiscard]] uint32_t first_nonempty(uint32_t bin) const;

  std::array<uint32_t, kTlsfBins> heads_{};
  std::array<uint32_t, kTlsfFl> sl_bitmap_{};
  uint64_t fl_bitmap_ = 0;
  uint64_t count_ = 0;
};

}  // namespace pmm::alloc::detail
