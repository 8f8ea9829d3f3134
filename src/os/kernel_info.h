// pmm::os::KernelInfo — what this kernel offers pmm's memory types.
//
// Like mimalloc's mi_os_mem_config_t: one struct, filled once at daemon
// start (and by `pmmctl info`), that answers the questions a pool
// configuration depends on — which huge page sizes exist and how many are
// free, whether /proc/self/pagemap shows physical addresses to this process,
// the System V shared memory limits, and the NUMA nodes online.
//
// Usage:
//   auto k = os::kernel_info();
//   for (const auto& h : k->huge_pages) fmt::print("{} kB: {} free\n", h.size >> 10, h.free);
//   auto h2m = os::huge_page_counts(2 << 20);   // error lists the sizes there are
//
// The counts are a snapshot: other processes take and return huge pages.
// Thread safety: reentrant; each call reads the files anew.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace pmm::os {

// One huge page size, from /sys/kernel/mm/hugepages/hugepages-<kB>kB/.
struct HugePageSize {
  uint64_t size = 0;        // bytes
  uint64_t total = 0;       // nr_hugepages: the persistent pool
  uint64_t free = 0;        // free_hugepages: not faulted in (includes reserved)
  uint64_t reserved = 0;    // resv_hugepages: promised to a mapping, not yet faulted
  uint64_t surplus = 0;     // surplus_hugepages
  uint64_t overcommit = 0;  // nr_overcommit_hugepages: surplus the kernel may add
  std::string dir;          // the sysfs directory these came from
  // Pages a new mapping can still reserve: free and unreserved, plus the
  // surplus pages the kernel may still create (if memory allows).
  [[nodiscard]] uint64_t available() const {
    const uint64_t unreserved = free > reserved ? free - reserved : 0;
    return unreserved + (overcommit > surplus ? overcommit - surplus : 0);
  }
};

// kernel.shmmax (bytes), kernel.shmall (pages), kernel.shmmni (segments).
struct SysvLimits {
  uint64_t shmmax = 0;
  uint64_t shmall_pages = 0;
  uint64_t shmmni = 0;
};

struct KernelInfo {
  uint64_t page_size = 0;                // base page size
  std::vector<HugePageSize> huge_pages;  // by size, ascending; empty without hugetlbfs
  bool pagemap_physical = false;         // PFNs readable in /proc/self/pagemap
  SysvLimits sysv;
  std::vector<int> numa_nodes;  // online
};

[[nodiscard]] Result<KernelInfo> kernel_info();

[[nodiscard]] Result<std::vector<HugePageSize>> huge_page_sizes();

// The counts for one size. A size the kernel does not have is
// Errc::kUnsupported, naming the sizes it has.
[[nodiscard]] Result<HugePageSize> huge_page_counts(uint64_t size);

// Sets the persistent pool of `size` pages to `count` (writes nr_hugepages;
// needs root). Returns the count the kernel actually reached, which is lower
// when memory is too fragmented for more.
[[nodiscard]] Result<uint64_t> set_huge_page_count(uint64_t size, uint64_t count);

[[nodiscard]] Result<SysvLimits> sysv_limits();

// Reads one unsigned decimal number from a /proc or /sys file.
[[nodiscard]] Result<uint64_t> read_number_file(const std::string& path);
[[nodiscard]] Status write_number_file(const std::string& path, uint64_t value);

}  // namespace pmm::os
