// Tests of os/numa.h: node list parsing and binding on this machine's nodes.
#include "os/numa.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>

#include "os/memory.h"

namespace pmm::os {
namespace {

TEST(OsNuma, ParsesAndFormatsNodeLists) {
  EXPECT_EQ(parse_node_list("0\n").value(), (std::vector<int>{0}));
  EXPECT_EQ(parse_node_list("0-3,5,7-8").value(), (std::vector<int>{0, 1, 2, 3, 5, 7, 8}));
  EXPECT_EQ(parse_node_list("").value(), std::vector<int>{});
  EXPECT_EQ(format_node_list({0, 1, 2, 3, 5, 7, 8}), "0-3,5,7-8");
  EXPECT_EQ(format_node_list({}), "none");
  auto bad = parse_node_list("0-x");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "node list \"0-x\": \"x\" is not a node number; expected a list such as \"0-3,5\"");
  EXPECT_FALSE(parse_node_list("3-1"));
}

TEST(OsNuma, OnlineNodesIncludeNodeZero) {
  auto nodes = online_numa_nodes();
  ASSERT_TRUE(nodes) << nodes.error().describe();
  ASSERT_FALSE(nodes->empty());
  EXPECT_EQ(nodes->front(), 0);
}

TEST(OsNuma, BindsToAnOnlineNodeAndRefusesOthers) {
  auto nodes = online_numa_nodes().value();
  auto fd = memfd_create("pmm-test-numa", MFD_CLOEXEC);
  ASSERT_TRUE(fd);
  const uint64_t size = 1 << 20;
  ASSERT_TRUE(resize(fd->get(), size));
  auto map = map_shared(fd->get(), size);
  ASSERT_TRUE(map);
  const int node = nodes.back();
  auto s = bind_to_node(map->data(), map->size(), node);
  ASSERT_TRUE(s) << s.error().describe();
  ASSERT_TRUE(populate(map->data(), map->size(), base_page_size()));
  EXPECT_EQ(node_of_address(map->data()).value(), node);
  EXPECT_EQ(node_of_address(map->data() + size - 1).value(), node);

  const int missing = nodes.back() + 1;
  auto bad = bind_to_node(map->data(), map->size(), missing);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message, fmt::format("NUMA node {} does not exist; the nodes online are {} "
                                             "(/sys/devices/system/node/online)",
                                             missing, format_node_list(nodes)));
}

}  // namespace
}  // namespace pmm::os
