// pmm::alloc::detail::FitIndex<Links> — an exact best-fit index of free
// extents by a 64-bit key: exact-length bins (SizeBins) for keys below
// SizeBins::kBins, a tree of the distinct longer keys (LengthTree), and per
// bin or tree node a LIFO list of the extents with that key.
//
// best_fit's index (BestFitIndex, key = the extent's length) and the
// one-run index of both strategies (OneRunIndex, key = the longest piece of
// the extent inside one physical run) are this class with different Links.
//
// The order, exactly: by key ascending; among equal keys, the extent most
// recently inserted first (LIFO). An insert happens when an extent becomes
// free or changes length: on allocate, the free piece before the block (if
// any) is inserted, then the piece after it (if any); on release, the merged
// extent. The rule (kScanLimit = 32): walk the extents of key >= size in
// that order; the answer is the first one that holds the request, unless
// kScanLimit extents that do not hold it come first; then the answer is the
// first extent of key >= size + align - 1 (which holds the request wherever
// it starts), if it holds it, or none. "Holds": the request fits at the
// extent's aligned start; for the one-run index, Runs::place() finds it a
// place (runs.h). With align == 1, and whenever the extents' starts are
// aligned, the walk stops at its first step: the answer is the smallest
// extent that holds the request. It can differ from that only when 32
// extents that are too short for this request's alignment come first.
//
// Work (steps): insert is 1 for a short key, 1 + the tree's descent and
// retrace for a long one; remove is 1 for a short key, 1 + a descent for a
// long one, plus an erase when it empties a length of the tree. find is at
// most (kScanLimit + 1) list or bin steps, two tree descents and a walk of
// kScanLimit successors. The tree holds at most as many nodes as there are
// free extents, so all of it is O(log n) in the worst case, and O(1) while
// the extents are shorter than SizeBins::kBins. rekey (a free extent's
// length changed) is a remove and an insert, or, when the extent is alone
// under its long key and the new key keeps the tree's order, one descent
// and a walk to the node's neighbour on the side the key moves to.
//
// Links gives the per-extent words the index owns: key(i), and references
// prev(i), next(i) (the list). A long key's tree node is found again by
// its key (a descent) when the extent is removed, so a record needs no word
// for it.
//
// Usage (by BestFitIndex and OneRunIndex only):
//   FitIndex<L> f;  f.insert(links, i, steps);  f.find(links, segs, 4096, 64, nullptr, at, steps);
//
// Thread safety: none; owned by one strategy.
#pragma once

#include <cstdint>
#include <vector>

#include "alloc/length_tree.h"
#include "alloc/runs.h"
#include "alloc/segment.h"
#include "alloc/size_bins.h"
#include "base/error.h"

namespace pmm::alloc::detail {

template <typename Links>
class FitIndex {
 public:
  static constexpr int kScanLimit = 32;

  void clear() {
    bins_.clear();
    tree_.clear();
    count_ = 0;
  }
  [[nodiscard]] uint64_t count() const { return count_; }

  void insert(Links l, uint32_t i, uint64_t& steps) {
    ++steps;
    const uint64_t k = l.key(i);
    uint32_t* head;
    if (k < SizeBins::kBins) {
      head = &bins_.head(static_cast<uint32_t>(k));
      if (*head == kNil) bins_.mark(static_cast<uint32_t>(k));
    } else {
      head = &tree_.head(tree_.find_or_add(k, steps));
    }
    l.prev(i) = kNil;
    l.next(i) = *head;
    if (*head != kNil) l.prev(*head) = i;
    *head = i;
    ++count_;
  }

  // `i` must be in the index with the key it was inserted with.
  void remove(Links l, uint32_t i, uint64_t& steps) { remove(l, i, l.key(i), steps); }

  // Exactly remove(i) under its old key `was` then insert(i) under its key
  // now (so i comes first among its new equals), for an extent whose length
  // changed while it stayed free. When i is alone under a long key and its
  // new key still lies strictly between the neighbouring keys, its tree node
  // is re-keyed in place: one descent instead of an erase and an insert
  // with their rebalancing (the largest extent shrinking as blocks are cut
  // from it, or growing as they come back, is this case).
  void rekey(Links l, uint32_t i, uint64_t was, uint64_t& steps) {
    const uint64_t k = l.key(i);
    if (was >= SizeBins::kBins && k >= SizeBins::kBins && l.prev(i) == kNil && l.next(i) == kNil) {
      ++steps;
      const LengthTree::Rekeyed r = tree_.rekey(was, k, steps);
      if (r.done) return;
      tree_.erase(r.node, steps);  // i was its only extent
      --count_;
      insert(l, i, steps);
      return;
    }
    remove(l, i, was, steps);
    insert(l, i, steps);
  }

 private:
  void remove(Links l, uint32_t i, uint64_t k, uint64_t& steps) {
    ++steps;
    const uint32_t p = l.prev(i);
    const uint32_t n = l.next(i);
    if (n != kNil) l.prev(n) = p;
    if (p != kNil) {
      l.next(p) = n;
    } else if (k < SizeBins::kBins) {
      bins_.head(static_cast<uint32_t>(k)) = n;
      if (n == kNil) bins_.unmark(static_cast<uint32_t>(k));
    } else {
      const uint32_t t = tree_.find_or_add(k, steps);  // there already
      tree_.head(t) = n;
      if (n == kNil) tree_.erase(t, steps);
    }
    --count_;
  }

 public:
  // The extent the rule above picks, or kNil; `at` is where the request
  // goes in it. `runs` (or nullptr) is what "holds" asks (runs.h).
  [[nodiscard]] uint32_t find(Links l, const Segment* s, uint64_t size, uint64_t align,
                              const Runs* runs, uint64_t& at, uint64_t& steps) const {
    auto place = [&](uint32_t x) {
      return runs == nullptr ? place_anywhere(s[x].start, s[x].len, size, align)
                             : runs->place(s[x].start, s[x].len, size, align, steps);
    };
    Pos p = first(size, steps);
    for (int misses = 0; p.seg != kNil; p = next(l, p, steps)) {
      if ((at = place(p.seg)) != kNoPlace) return p.seg;
      if (++misses == kScanLimit) break;
    }
    if (p.seg == kNil) return kNil;  // walked every extent of key >= size
    if (size > UINT64_MAX - (align - 1)) return kNil;
    p = first(size + (align - 1), steps);
    if (p.seg == kNil) return kNil;
    at = place(p.seg);
    return at == kNoPlace ? kNil : p.seg;
  }

  // An extent with the largest key (the first of its list), or kNil.
  [[nodiscard]] uint32_t largest() const {
    if (!tree_.empty()) return tree_.head(tree_.last());
    const uint32_t b = bins_.last_nonempty();
    return b == SizeBins::kNone ? kNil : bins_.head(b);
  }

  // Every list against its bin or node, the bitmaps against the lists, the
  // tree, and the count; `member(x)` says whether segment x may be listed.
  template <typename Member>
  [[nodiscard]] Status check(Links l, uint32_t extent, Member&& member) const {
    std::vector<bool> seen(extent, false);
    uint64_t n = 0;
    auto walk = [&](uint32_t head, uint64_t key) -> Status {
      uint32_t prev = kNil;
      for (uint32_t x = head; x != kNil; prev = x, x = l.next(x)) {
        if (x >= extent || seen[x] || !member(x))
          return fail(Errc::kProtocol, "fit index: segment {} listed twice, unknown or not free",
                      x);
        seen[x] = true;
        if (l.key(x) != key || l.prev(x) != prev)
          return fail(Errc::kProtocol, "fit index: segment {} of key {} in the list of key {}", x,
                      l.key(x), key);
        ++n;
      }
      return {};
    };
    // Only the marked bins are walked: the checks run after every operation
    // in checking builds, and a walk of all 16,384 bins made each one cost
    // that much however few extents there were. An extent in a bin that is
    // not marked is still found out: the lists then hold fewer than count_.
    for (uint32_t b = bins_.next_nonempty(0); b != SizeBins::kNone;
         b = bins_.next_nonempty(b + 1)) {
      if (bins_.head(b) == kNil)
        return fail(Errc::kProtocol, "fit index: bin {} marked but its list is empty", b);
      if (Status ok = walk(bins_.head(b), b); !ok) return ok;
    }
    if (!bins_.levels_agree())
      return fail(Errc::kProtocol, "fit index: the bin bitmap's levels disagree");
    Status ok = tree_.check([&](uint32_t node) -> Status {
      if (tree_.len(node) < SizeBins::kBins)
        return fail(Errc::kProtocol, "fit index: key {} in the tree", tree_.len(node));
      return walk(tree_.head(node), tree_.len(node));
    });
    if (!ok) return ok;
    if (n != count_)
      return fail(Errc::kProtocol, "fit index: lists hold {} extents, counted {}", n, count_);
    return {};
  }

 private:
  // An extent in the walk's order and where its list hangs.
  struct Pos {
    uint32_t seg = kNil;
    uint32_t where = kNil;  // the bin, or the tree node when in_tree
    bool in_tree = false;
  };

  // The first extent of key >= key.
  Pos first(uint64_t key, uint64_t& steps) const {
    if (key < SizeBins::kBins) {
      ++steps;
      const uint32_t b = bins_.next_nonempty(static_cast<uint32_t>(key));
      if (b != SizeBins::kNone) return {bins_.head(b), b, false};
      key = SizeBins::kBins;
    }
    const uint32_t n = tree_.lower_bound(key, steps);
    if (n == LengthTree::kNone) return {};
    return {tree_.head(n), n, true};
  }

  Pos next(Links l, Pos p, uint64_t& steps) const {
    ++steps;
    if (uint32_t x = l.next(p.seg); x != kNil) return {x, p.where, p.in_tree};
    if (!p.in_tree) return first(uint64_t{p.where} + 1, steps);
    const uint32_t n = tree_.successor(p.where, steps);
    if (n == LengthTree::kNone) return {};
    return {tree_.head(n), n, true};
  }

  SizeBins bins_;
  LengthTree tree_;
  uint64_t count_ = 0;
};

}  // namespace pmm::alloc::detail
