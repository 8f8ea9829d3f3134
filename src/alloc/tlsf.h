// pmm::alloc tlsf — two-level segregated fit: O(1) allocate and release.
//
// Free extents sit in 1920 size-class lists (32 per power of two) found
// through two bitmaps (detail::TlsfIndex); records live in a heap pool, with
// 64-bit offsets and sizes. A request looks first among the classes whose
// every member is at least its size and takes the first extent that holds
// it at its alignment (at most 16 looked at), so an extent whose start is
// already aligned is never passed over for padding; then the first class
// whose members hold it wherever they start; then, before failing, up to
// 16 extents of its own class. The precise rule is in tlsf_index.h. As
// fast as best_fit in the common case and O(1) in every case, at some cost
// in utilisation.
//
// A request that must stay inside one physical run (Span::kOneRun, with
// barriers) is answered by the one-run index (one_run_index.h), which both
// strategies share: every free extent keyed by its longest piece inside one
// run, searched by best fit, so such a request is never refused while some
// extent holds it inside a run (alignment aside, see there). That index
// costs O(log n + log runs) per operation and 16 B per record, only in a
// space with barriers.
//
// Usage:
//   std::unique_ptr<pmm::alloc::Strategy> s = pmm::alloc::make_tlsf(1 << 30);
//   pmm::Result<pmm::alloc::Allocation> a = s->allocate(1 << 20, 64);
//
// Thread safety: none; see strategy.h.
#pragma once

#include <cstdint>
#include <memory>

#include "alloc/strategy.h"

namespace pmm::alloc {

// `size` must be >= 1 (make_strategy checks it).
[[nodiscard]] std::unique_ptr<Strategy> make_tlsf(uint64_t size);

}  // namespace pmm::alloc
