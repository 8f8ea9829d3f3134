// pmm::mem physical runs: from per-page physical addresses to contiguous runs.
//
// A region of huge pages is physically contiguous inside each page; pages
// that happen to sit next to each other in physical memory form longer
// runs. This file turns the pagemap's per-page addresses into the list of
// runs the pool sets barriers at. An unknown address (0) anywhere makes the
// whole answer "unknown" (no runs): a partial list would let a block claim
// contiguity that nobody checked.
//
// Usage:
//   auto runs = mem::read_physical_runs(map.data(), map.size(), 2 << 20);
//   for (const PhysicalRun& r : *runs) ... r.offset, r.length, r.phys
//
// Thread safety: pure functions (read_physical_runs reads /proc/self/pagemap).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/error.h"
#include "mem/region.h"

namespace pmm::mem {

// Page i starts at region offset i * page_size and physical address
// phys[i]. Pages with phys[i+1] == phys[i] + page_size join one run. Empty
// when any address is 0 (unknown).
[[nodiscard]] std::vector<PhysicalRun> merge_physical_runs(std::span<const uint64_t> phys,
                                                           uint64_t page_size);

// Reads the pagemap for [addr, addr+size) (faulted in) and merges it.
[[nodiscard]] Result<std::vector<PhysicalRun>> read_physical_runs(const void* addr, uint64_t size,
                                                                  uint64_t page_size);

}  // namespace pmm::mem
