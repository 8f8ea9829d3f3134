// pmm::alloc best_fit — the default strategy: the smallest free extent that
// holds the aligned request, the most recently freed among equals.
//
// Free extents are indexed by their exact length (detail::BestFitIndex, a
// FitIndex: fit_index.h states the rule exactly). Lengths below 16 KiB each
// have a bin of their own, found through a three-level bitmap, so the first
// extent of the first non-empty bin at or above the request's size is a best
// fit without comparing anything: O(1). Longer lengths sit in an AVL tree of
// distinct lengths (detail::LengthTree) whose nodes each hold the list of
// extents of that length, O(log n). Equal lengths are LIFO: the tie rule is
// "most recently freed first", which keeps recently touched records hot and
// costs nothing (a lowest-address rule needs an ordered structure per
// length). A block is found by its handle; the neighbours of a released
// block are one link away (segment.h). With alignment > 1, the one bounded
// case where a run of misaligned short extents makes it settle for a
// slightly larger extent is in fit_index.h.
//
// Why not the AVL tree of every extent it had before: each allocate and
// release did two or three tree updates with rebalancing and a pointer
// chase per level (p50 160 / 250 / 370 ns per pair at 1k / 100k / 1M live
// in the bench's latency trace, against 40 / 40 / 180 now, on the same
// loaded machine); the bins make the common case a bitmap look-up and a list
// push or pop, and the tree holds only the distinct long lengths.
//
// Memory: the 32 B segment record per free extent or live block, as tlsf
// (segment.h); the list words live in the record's link words, and a long
// extent's tree node is found again by its length when it is removed. The
// bins (64 KiB of heads and 2 KiB of bitmap) are a fixed cost per strategy,
// made with it; a tree node (32 B) per distinct length of 16 KiB or more.
//
// A request that must stay inside one physical run (Span::kOneRun, with
// barriers) is answered by the one-run index (one_run_index.h), which both
// strategies share.
//
// Usage:
//   std::unique_ptr<pmm::alloc::Strategy> s = pmm::alloc::make_best_fit(1 << 30);
//   pmm::Result<pmm::alloc::Allocation> a = s->allocate(4096, 4096);
//
// Thread safety: none; see strategy.h.
#pragma once

#include <cstdint>
#include <memory>

#include "alloc/strategy.h"

namespace pmm::alloc {

// `size` must be >= 1 (make_strategy checks it).
[[nodiscard]] std::unique_ptr<Strategy> make_best_fit(uint64_t size);

}  // namespace pmm::alloc
