// pmm::alloc best_fit — the default strategy: the smallest free extent that
// holds the aligned request, lowest address among equals, in O(log n).
//
// Free extents sit in an AVL tree ordered by (length, start)
// (detail::FreeTree); a block is found by its handle; the neighbours of a
// released block are one link away. Every allocate and release is O(log n)
// in the number of free extents in the worst case. The exact rule, including the one
// bounded case where a misaligned run of small extents makes it settle for a
// slightly larger extent, is in free_tree.h.
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
