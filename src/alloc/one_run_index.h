// pmm::alloc::detail::OneRunIndex — the index both strategies search for a
// request that must stay inside one physical run (Span::kOneRun), kept only
// while the space has barriers.
//
// Every free extent is in it under its longest piece inside one run
// (Runs::longest_piece), and a one-run request is found by FitIndex's rule
// (fit_index.h) on that key: walk the extents whose longest piece is >= the
// size, smallest first, and take the first one where Runs::place() finds a
// place; after 32 misses (pieces too short for the alignment), the first
// extent whose longest piece is >= size + align - 1. So the search is
// complete: an extent that straddles barriers is never a candidate unless
// one of its pieces is long enough, and a request is refused only when no
// extent has a piece that holds it, or (alignment > 1) 32 pieces that are
// too short for its alignment come first and no piece is long enough to
// hold it wherever it starts. Before, the strategies looked at the first 32
// candidates by whole length and refused a request that only a later one
// could hold inside one run.
//
// Its words live beside the segment pool (16 B per record, only with
// barriers), since a free segment's own link words belong to the strategy's
// main index. Work: each insert adds a Runs::longest_piece() (at most
// Runs::place_bound() steps) to FitIndex's insert; find is FitIndex's find
// with (kScanLimit + 1) Runs::place() calls at most.
//
// Usage (by SegmentStrategy only):
//   OneRunIndex o;  o.insert(segs, extent, i, runs, steps);
//   uint32_t e = o.find(segs, 4096, 4096, runs, at, steps);
//
// Thread safety: none; owned by one strategy.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "alloc/fit_index.h"
#include "alloc/runs.h"
#include "alloc/segment.h"
#include "base/error.h"

namespace pmm::alloc::detail {

class OneRunIndex {
 public:
  // Empty, with no memory held.
  void clear() {
    index_.reset();
    std::vector<Side>().swap(side_);
  }
  [[nodiscard]] uint64_t count() const { return index_ ? index_->count() : 0; }

  // `extent` is the segment pool's extent(); i < extent.
  void insert(const Segment* s, uint32_t extent, uint32_t i, const Runs& runs, uint64_t& steps) {
    if (side_.size() < extent) side_.resize(extent);
    side_[i].key = runs.longest_piece(s[i].start, s[i].len, steps);
    if (!index_) index_ = std::make_unique<FitIndex<SideLinks>>();
    index_->insert({side_.data()}, i, steps);
  }
  // `i` must be in the index.
  void remove(uint32_t i, uint64_t& steps) { index_->remove({side_.data()}, i, steps); }

  [[nodiscard]] uint32_t find(const Segment* s, uint64_t size, uint64_t align, const Runs& runs,
                              uint64_t& at, uint64_t& steps) const {
    if (!index_) return kNil;
    return index_->find({const_cast<Side*>(side_.data())}, s, size, align, &runs, at, steps);
  }

  // The index against the free segments and their current longest pieces.
  [[nodiscard]] Status check(const SegmentPool& segs, const Runs& runs) const {
    const Segment* s = segs.data();
    const uint32_t extent = segs.extent();
    for (uint32_t x = 0; x < extent; ++x) {
      if (!segs.free_bit(x)) continue;
      uint64_t steps = 0;
      if (x >= side_.size() || side_[x].key != runs.longest_piece(s[x].start, s[x].len, steps))
        return fail(Errc::kProtocol, "one-run index: extent at {} has a stale key", s[x].start);
    }
    if (!index_) return {};
    return index_->check({const_cast<Side*>(side_.data())}, extent,
                         [&](uint32_t x) { return segs.free_bit(x); });
  }

 private:
  struct Side {
    uint64_t key = 0;
    uint32_t prev = kNil;
    uint32_t next = kNil;
  };
  struct SideLinks {
    Side* side;
    [[nodiscard]] uint64_t key(uint32_t i) const { return side[i].key; }
    [[nodiscard]] uint32_t& prev(uint32_t i) const { return side[i].prev; }
    [[nodiscard]] uint32_t& next(uint32_t i) const { return side[i].next; }
  };

  // Made at the first insert: its bins are a fixed 66 KiB that a space
  // without barriers never pays.
  std::unique_ptr<FitIndex<SideLinks>> index_;
  std::vector<Side> side_;  // by segment index
};

}  // namespace pmm::alloc::detail
