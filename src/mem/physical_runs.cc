// Implementation of mem/physical_runs.h.
#include "mem/physical_runs.h"

#include "os/pagemap.h"

namespace pmm::mem {

std::vector<PhysicalRun> merge_physical_runs(std::span<const uint64_t> phys, uint64_t page_size) {
  std::vector<PhysicalRun> runs;
  for (size_t i = 0; i < phys.size(); ++i) {
    if (phys[i] == 0) return {};
    if (!runs.empty() && runs.back().phys + runs.back().length == phys[i]) {
      runs.back().length += page_size;
    } else {
      runs.push_back(PhysicalRun{.offset = i * page_size, .length = page_size, .phys = phys[i]});
    }
  }
  return runs;
}

Result<std::vector<PhysicalRun>> read_physical_runs(const void* addr, uint64_t size,
                                                    uint64_t page_size) {
  auto phys = os::physical_addresses(addr, size, page_size);
  if (!phys) return std::unexpected(phys.error());
  return merge_physical_runs(*phys, page_size);
}

}  // namespace pmm::mem
