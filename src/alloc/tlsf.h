// pmm::alloc tlsf — two-level segregated fit: O(1) allocate and release.
//
// Free extents sit in 1920 size-class lists (32 per power of two) found
// through two bitmaps (detail::TlsfIndex); records live in a heap pool, with
// 64-bit offsets and sizes. A request takes the first extent of the first
// non-empty class whose every member holds it at any alignment ("good fit":
// up to 1/32 larger than needed), and before failing scans at most 16
// extents of the classes below that, so an exact fit in the request's own
// class is not missed. The precise rule is in tlsf_index.h. Faster and more
// predictable than best_fit, at some cost in utilisation.
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
