// pmm::alloc tlsf — two-level segregated fit: O(1) allocate and release.
//
// Free extents sit in 1920 size-class lists (32 per power of two) found
// through two bitmaps (detail::TlsfIndex); records live in a heap pool, with
// 64-bit offsets and sizes. A request looks first among the classes whose
// every member is at least its size and takes the first extent that holds
// it at its alignment (at most 16 looked at), so an extent whose start is
// already aligned is never passed over for padding; then the first class
// whose members hold it wherever they start; then, before failing, up to
// 16 extents of its own class. The precise rule is in tlsf_index.h. Faster
// and more predictable than best_fit, at some cost in utilisation.
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
