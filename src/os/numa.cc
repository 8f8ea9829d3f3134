// Implementation of os/numa.h with raw system calls (no libnuma).
#include "os/numa.h"

#include <linux/mempolicy.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "os/sys_error.h"

namespace pmm::os {
namespace {

constexpr int kMaxNodes = 1024;  // the kernel's MAX_NUMNODES on the largest configs
constexpr const char* kOnlinePath = "/sys/devices/system/node/online";

Result<int> parse_int(std::string_view s, std::string_view whole) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v < 0)
    return fail(Errc::kInvalidArgument,
                "node list \"{}\": \"{}\" is not a node number; expected a list such as "
                "\"0-3,5\"",
                whole, s);
  return v;
}

}  // namespace

Result<std::vector<int>> parse_node_list(std::string_view text) {
  std::vector<int> nodes;
  std::string_view rest = text;
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const size_t dash = item.find('-');
    auto lo = parse_int(item.substr(0, dash), text);
    if (!lo) return std::unexpected(lo.error());
    int hi_v = *lo;
    if (dash != std::string_view::npos) {
      auto hi = parse_int(item.substr(dash + 1), text);
      if (!hi) return std::unexpected(hi.error());
      hi_v = *hi;
    }
    if (hi_v < *lo || hi_v >= kMaxNodes)
      return fail(Errc::kInvalidArgument,
                  "node list \"{}\": range \"{}\" is empty or beyond node {}; expected a "
                  "list such as \"0-3,5\"",
                  text, item, kMaxNodes - 1);
    for (int n = *lo; n <= hi_v; ++n) nodes.push_back(n);
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

std::string format_node_list(const std::vector<int>& nodes) {
  if (nodes.empty()) return "none";
  std::string out;
  for (size_t i = 0; i < nodes.size();) {
    size_t j = i;
    while (j + 1 < nodes.size() && nodes[j + 1] == nodes[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", nodes[i]) : fmt::format("{}-{}", nodes[i], nodes[j]);
    i = j + 1;
  }
  return out;
}

Result<std::vector<int>> online_numa_nodes() {
  std::ifstream in(kOnlinePath);
  if (!in) return std::vector<int>{0};
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_node_list(ss.str());
}

Status check_node_online(int node) {
  auto nodes = online_numa_nodes();
  if (!nodes) return std::unexpected(nodes.error());
  if (std::find(nodes->begin(), nodes->end(), node) == nodes->end())
    return fail(Errc::kInvalidArgument,
                "NUMA node {} does not exist; the nodes online are {} "
                "(/sys/devices/system/node/online)",
                node, format_node_list(*nodes));
  return {};
}

Status bind_to_node(void* addr, size_t len, int node) {
  if (auto s = check_node_online(node); !s) return s;
  std::array<unsigned long, kMaxNodes / 64> mask{};
  mask[static_cast<size_t>(node) / 64] = 1ul << (static_cast<unsigned>(node) % 64);
  // maxnode counts one past the last bit the kernel reads (it decrements it).
  if (::syscall(SYS_mbind, addr, len, MPOL_BIND, mask.data(), kMaxNodes + 1, 0) != 0) {
    const int err = errno;
    if (err == ENOSYS && node == 0) return {};  // no NUMA: everything is node 0
    return sys_fail(err, "mbind({}, {}, MPOL_BIND, node {})", addr, len, node);
  }
  return {};
}

Result<int> node_of_address(void* addr) {
  int node = -1;
  if (::syscall(SYS_get_mempolicy, &node, nullptr, 0, addr, MPOL_F_NODE | MPOL_F_ADDR) != 0) {
    const int err = errno;
    if (err == ENOSYS) return 0;
    return sys_fail(err, "get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR, {})", addr);
  }
  return node;
}

}  // namespace pmm::os
