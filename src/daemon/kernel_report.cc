// See kernel_report.h.
#include "daemon/kernel_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/units.h"
#include "os/kernel_info.h"

namespace pmm::daemon {

std::vector<std::string> describe_kernel() {
  auto k = os::kernel_info();
  if (!k) return {fmt::format("kernel: cannot read what it offers: {}", k.error().describe())};
  std::vector<std::string> lines;
  lines.push_back(fmt::format("kernel: base pages of {}", format_size(k->page_size)));
  if (k->huge_pages.empty()) {
    lines.push_back("kernel: no huge pages (hugetlbfs absent): hugetlb pools cannot be made");
  }
  for (const auto& h : k->huge_pages) {
    lines.push_back(
        fmt::format("kernel: huge pages of {}: {} in the pool, {} free, {} reserved ({})",
                    format_size(h.size), h.total, h.free, h.reserved, h.dir));
  }
  lines.push_back(k->pagemap_physical
                      ? "kernel: physical addresses readable from /proc/self/pagemap"
                      : "kernel: physical addresses hidden (needs CAP_SYS_ADMIN): hugetlb "
                        "blocks report none and `contiguous` requests are refused");
  lines.push_back(fmt::format("kernel: SysV shared memory: shmmax {}, shmall {} pages, shmmni {}",
                              format_size(k->sysv.shmmax), k->sysv.shmall_pages, k->sysv.shmmni));
  lines.push_back(fmt::format("kernel: NUMA nodes online: {}", fmt::join(k->numa_nodes, ", ")));
  return lines;
}

}  // namespace pmm::daemon
