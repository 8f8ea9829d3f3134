// pmm::os pagemap: physical addresses of this process's pages.
//
// /proc/self/pagemap holds one 64-bit entry per virtual 4 KiB page: bit 63
// "present", bits 0-54 the page frame number (PFN). Since Linux 4.2 the PFN
// reads as 0 for a process without CAP_SYS_ADMIN, so an address of 0 here
// always means "unknown" (absent, swapped, or hidden) and never a real
// physical address: callers must report unknown, not a wrong address.
//
// Physical addresses are what the kernel says at the time of the read. A
// hugetlb page stays where it is while it is mapped unless the kernel
// migrates it (memory hotplug, compaction of gigantic pages); pmm reads them
// once when a region is created.
//
// Usage:
//   auto phys = os::physical_addresses(map.data(), map.size(), 2 << 20);
//   // (*phys)[i]: physical address of byte i * 2 MiB of the mapping, or 0
//
// Thread safety: thread-safe; one descriptor per process, opened on first use
// (and again in a forked child). The kernel decides whether PFNs show from the
// credentials of whoever opened the descriptor, so a process that drops
// CAP_SYS_ADMIN after its first lookup keeps seeing them (pmmd never drops
// it; tests drop it in a forked child, which opens its own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/error.h"

namespace pmm::os {

// One pagemap entry decoded.
struct PagemapEntry {
  bool present = false;
  uint64_t pfn = 0;  // 0 when not present or hidden from this process
};

[[nodiscard]] PagemapEntry decode_pagemap_entry(uint64_t raw);

// Physical address of the first byte of every `step`-sized piece of
// [addr, addr+len): element i is for addr + i*step, 0 when unknown. `addr`
// and `step` are multiples of the base page size.
[[nodiscard]] Result<std::vector<uint64_t>> physical_addresses(const void* addr, size_t len,
                                                               size_t step);

// True when this process can see PFNs in /proc/self/pagemap: it maps,
// touches and looks up a page of its own.
[[nodiscard]] bool pagemap_shows_physical();

}  // namespace pmm::os
