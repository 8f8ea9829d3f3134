// pmm::alloc::detail::SegmentStrategy<Index> — the part of best_fit and tlsf
// that is the same: segments tiling [0, size) in address order, handles
// naming live blocks' segments, argument checks, splitting on allocate,
// coalescing on release, barriers, stats and the invariant walk. The Index
// (BestFitIndex or TlsfIndex) decides which free extent an ordinary request
// takes; a request that must stay in one run (with barriers) is answered by
// the OneRunIndex both share (one_run_index.h).
//
// Allocation takes the extent E the index picks, places the block at
// align_up(E.start, align) (a one-run request: where Runs::place() says),
// and leaves the pieces before and after it free. Release merges the block
// with its free neighbours. A free extent keeps its record while it shrinks
// or grows (a block cut from its front takes a fresh record; a block given
// back is absorbed by its free neighbour), so the index re-keys it rather
// than removing and inserting it (fit_index.h). Barriers split nothing: free extents are always
// maximal between blocks, which check_invariants verifies, and an ordinary
// block may span runs; only a one-run request consults them (runs.h).
//
// Usage: not used directly; see best_fit.h and tlsf.h.
//
// Thread safety: none. One owner calls it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "alloc/one_run_index.h"
#include "alloc/runs.h"
#include "alloc/segment.h"
#include "alloc/strategy.h"

namespace pmm::alloc::detail {

// An alignment or size limit as people read it: "1 GiB", "4096 bytes".
std::string describe_bytes(uint64_t n);

// The refusal of an invalid request (check_request's slow half).
[[gnu::cold]] Status refuse_request(uint64_t region, uint64_t size, uint64_t alignment);

// The shared argument checks of allocate(); empty when the request is
// valid. Inline, and a power of two tested with a mask: std::has_single_bit
// is a libgcc popcount call on a baseline x86-64 build.
inline Status check_request(uint64_t region, uint64_t size, uint64_t alignment) {
  if (size != 0 && size <= region && alignment != 0 && (alignment & (alignment - 1)) == 0 &&
      alignment <= region) [[likely]] {
    return {};
  }
  return refuse_request(region, size, alignment);
}

template <typename Index>
class SegmentStrategy final : public Strategy {
 public:
  SegmentStrategy(std::string_view name, uint64_t size) : name_(name), size_(size) { rebuild(); }

  [[nodiscard]] std::string_view name() const override { return name_; }

  [[nodiscard]] Result<Allocation> allocate(uint64_t size, uint64_t alignment, Span span) override {
    steps_ = 0;
    if (Status ok = check_request(size_, size, alignment); !ok) return std::unexpected(ok.error());
    const Runs* runs = span == Span::kOneRun && runs_.has_barriers() ? &runs_ : nullptr;
    uint64_t at = 0;
    // A one-run request searches the one-run index (complete, see
    // one_run_index.h); any other, the strategy's own.
    uint32_t e = runs != nullptr ? one_run_.find(segs_.data(), size, alignment, runs_, at, steps_)
                                 : index_.find(segs_.data(), size, alignment, at, steps_);
    if (e == kNil) return no_fit(size, alignment, runs != nullptr);
    if (!segs_.reserve_spare(2))
      return fail(Errc::kNoMemory,
                  "allocate {} bytes: the strategy's limit of {} records is reached", size,
                  SegmentPool::kMaxSegments);
    Segment* s = segs_.data();
    const uint64_t start = s[e].start;
    const uint64_t end = start + s[e].len;
    uint32_t b;
    if (at == start && at + size < end) {
      // The common case, a block cut from the front of e: the block takes a
      // fresh record and e keeps the free rest, re-keyed in its index
      // rather than removed and inserted again (the same order results).
      b = segs_.take();
      link_before(s, e, b);
      if (head_ == e) head_ = b;
      s[b].start = at;
      s[b].len = size;
      const uint64_t was = s[e].len;
      s[e].start = at + size;
      s[e].len = end - (at + size);
      index_rekey(e, was, steps_);
    } else {
      index_remove(e, steps_);
      b = e;
      if (at > start) {  // the piece before stays free, in e
        b = segs_.take();
        s[e].len = at - start;
        index_insert(e, steps_);
        link_after(s, e, b);
        s[b].start = at;
      } else {
        segs_.set_free_bit(e, false);
      }
      s[b].len = size;
      if (at + size < end) {  // the piece after becomes a new free extent
        uint32_t t = segs_.take();
        s[t].start = at + size;
        s[t].len = end - (at + size);
        segs_.set_free_bit(t, true);
        link_after(s, b, t);
        index_insert(t, steps_);
      }
    }
    // A block is in no free index, so its link words are free to hold the
    // stamp its handle must match (strategy.h, "Handles").
    const uint32_t stamp = next_stamp_++;
    s[b].link[kStampLink] = stamp;
    ++live_;
    bytes_used_ += size;
    return Allocation{.offset = at, .handle = Handle{(uint64_t{stamp} << 32) | b}};
  }

  [[nodiscard]] Status release(Handle h) override {
    steps_ = 0;
    uint32_t b = live_block(h);
    if (b == kNil) return not_a_block("release", h);
    --live_;
    // The free bitmap says whether a neighbour is free, so a neighbour's
    // record is loaded only to merge it (segment.h).
    Segment* s = segs_.data();
    bytes_used_ -= s[b].len;
    // A free neighbour absorbs the block and stays in its index, re-keyed
    // (the same order as removing it and inserting the merged extent).
    const uint32_t n = s[b].next;
    const uint32_t p = s[b].prev;
    const bool next_free = n != kNil && segs_.free_bit(n);
    if (p != kNil && segs_.free_bit(p)) {
      ++steps_;
      const uint64_t was = s[p].len;
      if (next_free) {
        ++steps_;
        index_remove(n, steps_);
        s[p].len += s[n].len;
        unlink(s, n);
        segs_.put(n);
      }
      s[p].len += s[b].len;
      unlink(s, b);
      segs_.put(b);
      index_rekey(p, was, steps_);
    } else if (next_free) {
      ++steps_;
      const uint64_t was = s[n].len;
      s[n].start = s[b].start;
      s[n].len += s[b].len;
      unlink(s, b);
      if (head_ == b) head_ = n;
      segs_.put(b);
      index_rekey(n, was, steps_);
    } else {
      segs_.set_free_bit(b, true);
      index_insert(b, steps_);
    }
    // The last block gone: start afresh, so the records a crowd of blocks
    // needed go back to the heap (the daemon's RSS returns to idle). O(1):
    // the space is one free extent again.
    if (live_ == 0 && segs_.extent() > kShrinkAbove) {
      ++steps_;
      rebuild();
    }
    return {};
  }

  [[nodiscard]] Result<Extent> block(Handle h) const override {
    const uint32_t b = live_block(h);
    if (b == kNil) return not_a_block("block", h);
    return Extent{.offset = segs_[b].start, .size = segs_[b].len};
  }

  [[nodiscard]] Status set_barriers(std::span<const uint64_t> offsets) override {
    if (live_ != 0)
      return fail(Errc::kInvalidArgument,
                  "set_barriers with {} live blocks: barriers can only be set while no block is "
                  "live (right after the strategy is made)",
                  live_);
    for (uint64_t b : offsets) {
      if (b == 0 || b >= size_)
        return fail(Errc::kInvalidArgument,
                    "barrier at offset {} is outside (0, {}): a barrier must lie strictly inside "
                    "the region; 0 and the region's size are barriers already",
                    b, size_);
    }
    std::vector<uint64_t> all = barriers_;
    all.insert(all.end(), offsets.begin(), offsets.end());
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    // Runs are numbered in 32 bits (runs.h); a pool has one per huge page
    // at most, far fewer.
    if (all.size() > kMaxBarriers)
      return fail(Errc::kInvalidArgument, "{} barriers: at most {} are supported", all.size(),
                  kMaxBarriers);
    barriers_ = std::move(all);
    runs_.assign(barriers_, size_);
    // No block is live: the one free extent is all the one-run index needs.
    one_run_.clear();
    uint64_t steps = 0;
    if (runs_.has_barriers()) one_run_.insert(segs_.data(), segs_.extent(), head_, runs_, steps);
    return {};
  }

  [[nodiscard]] Stats stats() const override {
    Stats st;
    st.size = size_;
    st.bytes_used = bytes_used_;
    st.bytes_free = size_ - bytes_used_;
    st.free_extents = index_.count();
    uint32_t big = index_.largest(segs_.data());
    st.largest_free = big == kNil ? 0 : segs_[big].len;
    st.live_blocks = live_;
    return st;
  }

  [[nodiscard]] uint64_t bytes_used() const override { return bytes_used_; }

  [[nodiscard]] uint64_t last_op_steps() const override { return steps_; }

  [[nodiscard]] Status check_invariants() const override;

 private:
  static void link_after(Segment* s, uint32_t a, uint32_t b) {
    s[b].prev = a;
    s[b].next = s[a].next;
    if (s[a].next != kNil) s[s[a].next].prev = b;
    s[a].next = b;
  }
  static void link_before(Segment* s, uint32_t a, uint32_t b) {
    s[b].next = a;
    s[b].prev = s[a].prev;
    if (s[a].prev != kNil) s[s[a].prev].next = b;
    s[a].prev = b;
  }
  // Every free extent is in index_, and with barriers in one_run_ too.
  void index_insert(uint32_t i, uint64_t& steps) {
    index_.insert(segs_.data(), i, steps);
    if (runs_.has_barriers()) one_run_.insert(segs_.data(), segs_.extent(), i, runs_, steps);
  }
  void index_remove(uint32_t i, uint64_t& steps) {
    index_.remove(segs_.data(), i, steps);
    if (runs_.has_barriers()) one_run_.remove(i, steps);
  }
  // Free extent i, indexed under length `was`, has a new start or length.
  // The one-run index takes it out and in again (its key depends on both).
  void index_rekey(uint32_t i, uint64_t was, uint64_t& steps) {
    index_.rekey(segs_.data(), i, was, steps);
    if (runs_.has_barriers()) {
      one_run_.remove(i, steps);
      one_run_.insert(segs_.data(), segs_.extent(), i, runs_, steps);
    }
  }

  static void unlink(Segment* s, uint32_t x) {
    if (s[x].prev != kNil) s[s[x].prev].next = s[x].next;
    if (s[x].next != kNil) s[s[x].next].prev = s[x].prev;
  }

  // One free extent covering [0, size).
  void rebuild() {
    segs_.clear();
    index_.clear();
    one_run_.clear();
    live_ = 0;
    bytes_used_ = 0;
    uint64_t steps = 0;
    head_ = segs_.take();
    Segment& seg = segs_[head_];
    seg.start = 0;
    seg.len = size_;
    segs_.set_free_bit(head_, true);
    index_insert(head_, steps);
  }

  [[nodiscard]] std::unexpected<Error> no_fit(uint64_t size, uint64_t alignment,
                                              bool one_run) const {
    uint32_t big = index_.largest(segs_.data());
    uint64_t largest = big == kNil ? 0 : segs_[big].len;
    std::string where = big == kNil
                            ? std::string("none is free")
                            : fmt::format("{} bytes at offset {}", largest, segs_[big].start);
    return fail(Errc::kNoMemory,
                "no free extent holds {} bytes aligned to {}{} ({}): largest free extent is {}; {} "
                "of {} bytes free in {} extents",
                size, alignment,
                one_run ? fmt::format(" inside one of the {} physical runs", barriers_.size() + 1)
                        : std::string(),
                name_, where, size_ - bytes_used_, size_, index_.count());
  }

  // Fewer records than this are kept when the last block goes (a pool that
  // empties often should not rebuild each time for a few KiB).
  static constexpr uint32_t kShrinkAbove = 4096;

  static constexpr size_t kMaxBarriers = size_t{1} << 30;

  // The word of a live block's record that holds its handle's stamp.
  static constexpr int kStampLink = 0;

  // The segment `h` names if it is a live block with h's stamp, else kNil.
  // Every part of h is checked before it is used as an index.
  [[nodiscard]] uint32_t live_block(Handle h) const {
    const uint64_t i = h.bits & 0xffff'ffffu;
    if (i >= segs_.extent() || segs_.recycled(static_cast<uint32_t>(i))) return kNil;
    const Segment& e = segs_[static_cast<uint32_t>(i)];
    if (segs_.free_bit(static_cast<uint32_t>(i)) ||
        e.link[kStampLink] != static_cast<uint32_t>(h.bits >> 32))
      return kNil;
    return static_cast<uint32_t>(i);
  }

  [[nodiscard]] std::unexpected<Error> not_a_block(std::string_view op, Handle h) const {
    return fail(Errc::kNotFound,
                "{} handle {:#x}: it names no live block (released already, never issued by this "
                "{} strategy, or damaged); {} blocks are live",
                op, h.bits, name_, live_);
  }

  std::string name_;
  uint64_t size_;
  SegmentPool segs_;
  Index index_;
  std::vector<uint64_t> barriers_;  // sorted, unique, all in (0, size)
  Runs runs_;                       // the runs barriers_ cut; for Span::kOneRun
  OneRunIndex one_run_;             // with barriers: every free extent, for Span::kOneRun
  uint32_t head_ = 0;               // the segment at offset 0
  uint64_t live_ = 0;
  uint64_t bytes_used_ = 0;
  uint64_t steps_ = 0;
  uint32_t next_stamp_ = 1;
};

// The full O(n) cross-check: the address walk covers [0, size) exactly once
// with linked, non-recycled segments; no two free neighbours
// are left unmerged; the live count matches the blocks walked; the index holds exactly the
// free segments; the running totals agree. Violations are Errc::kProtocol (the structure itself is
// inconsistent), with the offset involved.
template <typename Index>
Status SegmentStrategy<Index>::check_invariants() const {
  const Segment* s = segs_.data();
  const uint32_t extent = segs_.extent();
  uint64_t at = 0, used = 0, nfree = 0, nused = 0, nseg = 0;
  uint32_t prev = kNil;
  for (uint32_t x = head_; x != kNil; prev = x, x = s[x].next) {
    if (x >= extent || segs_.recycled(x))
      return fail(Errc::kProtocol, "segment walk at offset {} reaches a dead record {}", at, x);
    if (++nseg > segs_.in_use())
      return fail(Errc::kProtocol, "segment walk longer than the {} records in use",
                  segs_.in_use());
    const Segment& e = s[x];
    if (e.prev != prev) return fail(Errc::kProtocol, "segment at {}: wrong prev link", e.start);
    if (e.start != at)
      return fail(Errc::kProtocol, "segment starts at {} where {} was expected", e.start, at);
    if (e.len == 0 || e.len > size_ - at)
      return fail(Errc::kProtocol, "segment at {} has length {} (region {})", at, e.len, size_);
    if (segs_.free_bit(x)) {
      ++nfree;
      if (prev != kNil && segs_.free_bit(prev))
        return fail(Errc::kProtocol, "free extents at {} and {} are not merged", s[prev].start, at);
    } else {
      ++nused;
      used += e.len;
    }
    at += e.len;
  }
  if (at != size_) return fail(Errc::kProtocol, "segments cover {} of {} bytes", at, size_);
  if (nseg != segs_.in_use())
    return fail(Errc::kProtocol, "{} records in use but {} segments reachable", segs_.in_use(),
                nseg);
  if (used != bytes_used_)
    return fail(Errc::kProtocol, "blocks add up to {} bytes, counted {}", used, bytes_used_);
  if (nused != live_)
    return fail(Errc::kProtocol, "{} blocks reachable, {} counted live", nused, live_);
  if (nfree != index_.count())
    return fail(Errc::kProtocol, "{} free extents reachable, index holds {}", nfree,
                index_.count());
  if (runs_.has_barriers()) {
    if (one_run_.count() != nfree)
      return fail(Errc::kProtocol, "{} free extents reachable, one-run index holds {}", nfree,
                  one_run_.count());
    if (Status ok = one_run_.check(segs_, runs_); !ok) return ok;
  }
  return index_.check(segs_);
}

}  // namespace pmm::alloc::detail
