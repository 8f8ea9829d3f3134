// pmm::alloc::detail::BestFitIndex — best_fit's index of free extents: a
// FitIndex (fit_index.h, which states the rule) keyed by the extent's
// length, its list words threaded through Segment::link (prev, next).
//
// Usage (by SegmentStrategy only):
//   BestFitIndex t;  t.insert(segs, i, steps);  t.find(segs, 4096, 64, at, steps);
//
// Thread safety: none; owned by one strategy.
#pragma once

#include <cstdint>

#include "alloc/fit_index.h"
#include "alloc/runs.h"
#include "alloc/segment.h"
#include "base/error.h"

namespace pmm::alloc::detail {

// A free segment's link words as FitIndex's list. The const paths (find,
// check) only read through it.
struct SegmentLinks {
  Segment* s;
  [[nodiscard]] uint64_t key(uint32_t i) const { return s[i].len; }
  [[nodiscard]] uint32_t& prev(uint32_t i) const { return s[i].link[0]; }
  [[nodiscard]] uint32_t& next(uint32_t i) const { return s[i].link[1]; }
};

class BestFitIndex {
 public:
  static constexpr int kScanLimit = FitIndex<SegmentLinks>::kScanLimit;

  void clear() { index_.clear(); }
  [[nodiscard]] uint64_t count() const { return index_.count(); }

  void insert(Segment* s, uint32_t i, uint64_t& steps) { index_.insert({s}, i, steps); }
  void remove(Segment* s, uint32_t i, uint64_t& steps) { index_.remove({s}, i, steps); }
  // Segment i, free and indexed under length `was`, has a new length.
  void rekey(Segment* s, uint32_t i, uint64_t was, uint64_t& steps) {
    index_.rekey({s}, i, was, steps);
  }

  // The extent fit_index.h's rule picks for an ordinary request, or kNil;
  // `at` is where the request goes in it.
  [[nodiscard]] uint32_t find(const Segment* s, uint64_t size, uint64_t align, uint64_t& at,
                              uint64_t& steps) const {
    return index_.find({const_cast<Segment*>(s)}, s, size, align, nullptr, at, steps);
  }

  // The largest free extent (the most recently freed among equals), or kNil.
  [[nodiscard]] uint32_t largest(const Segment*) const { return index_.largest(); }

  [[nodiscard]] Status check(const SegmentPool& segs) const {
    return index_.check({const_cast<Segment*>(segs.data())}, segs.extent(),
                        [&](uint32_t x) { return segs.free_bit(x); });
  }

 private:
  FitIndex<SegmentLinks> index_;
};

}  // namespace pmm::alloc::detail
