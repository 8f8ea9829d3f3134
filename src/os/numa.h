// pmm::os NUMA: which nodes exist, and binding a mapping to one of them.
//
// pmm needs only two things from NUMA: to refuse a node that does not exist
// with a message listing those that do, and to bind a mapping to a node
// before its pages are faulted (mbind, MPOL_BIND). It calls the mbind and
// get_mempolicy system calls directly, so there is no libnuma dependency.
// On a kernel built without NUMA, node 0 is the only node and binding to it
// is accepted as a no-op.
//
// Usage:
//   auto nodes = os::online_numa_nodes();           // {0, 1}
//   if (auto s = os::bind_to_node(map.data(), map.size(), 1); !s) ...
//   os::node_of_address(map.data());                 // 1, once faulted
//
// Thread safety: reentrant; no shared state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace pmm::os {

// Parses a kernel node or CPU list such as "0-3,5,7-8". The error quotes
// the text and says what is accepted.
[[nodiscard]] Result<std::vector<int>> parse_node_list(std::string_view text);

// "0-3,5" from {0,1,2,3,5}; "none" for an empty list.
[[nodiscard]] std::string format_node_list(const std::vector<int>& nodes);

// The nodes in /sys/devices/system/node/online; {0} when that file does not
// exist (a kernel without NUMA support).
[[nodiscard]] Result<std::vector<int>> online_numa_nodes();

// Errc::kInvalidArgument naming the online nodes when `node` is not one of
// them (negative included).
[[nodiscard]] Status check_node_online(int node);

// mbind(addr, len, MPOL_BIND, {node}): pages of the range faulted from now on
// come from `node` only. A node that is not online is Errc::kInvalidArgument
// naming the online nodes.
[[nodiscard]] Status bind_to_node(void* addr, size_t len, int node);

// The node the page at `addr` lives on (get_mempolicy MPOL_F_NODE |
// MPOL_F_ADDR). The page must be faulted in.
[[nodiscard]] Result<int> node_of_address(void* addr);

}  // namespace pmm::os
