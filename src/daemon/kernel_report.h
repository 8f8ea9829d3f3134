// describe_kernel — what this kernel offers pmm, as lines a person reads.
//
// pmmd logs these at start and prints them for `pmmd --kernel-info`, so an
// administrator sizing pools sees the huge pages free, whether physical
// addresses are readable, the SysV limits and the NUMA nodes, in one place.
//
// Usage:
//   for (const auto& line : pmm::daemon::describe_kernel()) fmt::print("{}\n", line);
//
// Thread safety: reads /proc and /sys; no shared state.
#pragma once

#include <string>
#include <vector>

namespace pmm::daemon {

// One line per topic; a topic that cannot be read says why.
[[nodiscard]] std::vector<std::string> describe_kernel();

}  // namespace pmm::daemon
