// pmmctl's tables and views, from daemon records made up here: alignment,
// humanised sizes, and JSON that parses with the documented field names.
#include "views.h"

#include <gtest/gtest.h>

#include <limits>

#include "table.h"

namespace pmmctl {
namespace {

namespace proto = pmm::proto;

TEST(Table, AlignsColumnsAndTrimsTrailingBlanks) {
  Table t({{"NAME"}, {"SIZE", Table::kRight}, {"NOTE"}});
  t.add({"general", "256.0 MiB", ""});
  t.add({"dma", "1.0 KiB", "contiguous"});
  EXPECT_EQ(t.render(),
            "NAME          SIZE  NOTE\n"
            "general  256.0 MiB\n"
            "dma        1.0 KiB  contiguous\n");
}

proto::PoolInfo general() {
  proto::PoolInfo p;
  p.index = 0;
  p.name = "general";
  p.type = proto::PoolType::kShmem;
  p.size = 256ull << 20;
  p.page_size = 4096;
  p.bytes_used = 1 << 20;
  p.bytes_free = (256ull << 20) - (1 << 20);
  p.largest_free = p.bytes_free;
  p.free_extents = 1;
  p.live_blocks = 1;
  p.strategy = "best_fit";
  p.accessible = true;
  return p;
}

TEST(Views, PoolsTableIsHumanised) {
  std::string out = render_pools({general()}, Format::kHuman);
  EXPECT_NE(out.find("NAME"), std::string::npos);
  EXPECT_NE(out.find("general  shmem  256 MiB  1 MiB  255 MiB"), std::string::npos) << out;
  EXPECT_EQ(render_pools({}, Format::kHuman), "no pools\n");
}

TEST(Views, PoolsJsonHasExactBytes) {
  auto j = nlohmann::json::parse(render_pools({general()}, Format::kJson));
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j[0]["name"], "general");
  EXPECT_EQ(j[0]["type"], "shmem");
  EXPECT_EQ(j[0]["size"], 256ull << 20);
  EXPECT_EQ(j[0]["used"], 1u << 20);
  EXPECT_EQ(j[0]["accessible"], true);
}

TEST(Views, BlocksNameTheirPoolAndHolders) {
  proto::BlockEntry b;
  b.id = 7;
  b.pool_index = 0;
  b.offset = 0x100000;
  b.size = 1 << 20;
  b.refcount = 2;
  b.holders.push_back({.kind = proto::HolderKind::kSession,
                       .id = 3,
                       .pid = 42,
                       .device = "decoder",
                       .references = 1});
  b.holders.push_back({.kind = proto::HolderKind::kExport,
                       .id = 0x0123456789abcdefull,
                       .pid = 43,
                       .device = "pmmctl",
                       .references = 1,
                       .token_shown = true});
  // Another user's export as an admin sees it: no token bits.
  b.holders.push_back({.kind = proto::HolderKind::kExport,
                       .id = 0,
                       .pid = 44,
                       .device = "cam",
                       .references = 1,
                       .uid = 1000,
                       .token_shown = false,
                       .imports_left = 2,
                       .expires_ms = 1500});
  std::string out = render_blocks({b}, {general()}, Format::kHuman);
  EXPECT_NE(out.find("general"), std::string::npos) << out;
  EXPECT_NE(out.find("session 3 (decoder, pid 42) x1"), std::string::npos) << out;
  EXPECT_NE(out.find("export 0123456789abcdef..."), std::string::npos) << out;
  EXPECT_NE(out.find("export, token hidden (cam, pid 44, uid 1000, 2 import(s) left, 1500 ms "
                     "left)"),
            std::string::npos)
      << out;
  auto j = nlohmann::json::parse(render_blocks({b}, {general()}, Format::kJson));
  EXPECT_EQ(j[0]["pool"], "general");
  EXPECT_TRUE(j[0]["phys"].is_null());
  EXPECT_EQ(j[0]["holders"][1]["kind"], "export");
  EXPECT_EQ(j[0]["holders"][1]["token_prefix"], "0123456789abcdef");
  EXPECT_TRUE(j[0]["holders"][2]["token_prefix"].is_null());
  EXPECT_EQ(j[0]["holders"][2]["imports_left"], 2);
  EXPECT_EQ(j[0]["holders"][2]["expires_ms"], 1500);
  EXPECT_EQ(j[0]["phys_hidden"], false);
  b.phys_hidden = true;
  EXPECT_NE(render_blocks({b}, {general()}, Format::kHuman).find("hidden"), std::string::npos);
  EXPECT_EQ(render_blocks({}, {}, Format::kHuman), "no blocks\n");
}

TEST(Views, DevicesShowNoLimitAsNone) {
  proto::DeviceEntry d;
  d.id = 1;
  d.name = "display";
  d.max = std::numeric_limits<uint64_t>::max();
  d.min = 8 << 20;
  d.used = 0;
  d.headroom = 8 << 20;
  std::string out = render_devices({d}, Format::kHuman);
  EXPECT_NE(out.find("display  none  8 MiB"), std::string::npos) << out;
  auto j = nlohmann::json::parse(render_devices({d}, Format::kJson));
  EXPECT_TRUE(j[0]["max"].is_null());
  EXPECT_EQ(j[0]["min"], 8u << 20);
}

TEST(Views, StatusSummarisesPools) {
  StatusView s{.socket = "/run/pmm/pmm.sock", .daemon_version = "pmmd 0.1.0", .stats = {}};
  s.stats.sessions = 2;
  s.stats.blocks = 1;
  s.stats.bytes = 1 << 20;
  s.stats.pools = {general()};
  std::string out = render_status(s, Format::kHuman);
  EXPECT_NE(out.find("pmmd 0.1.0 at /run/pmm/pmm.sock"), std::string::npos) << out;
  EXPECT_NE(out.find("blocks    1 (1 MiB)"), std::string::npos) << out;
  EXPECT_NE(out.find("general (shmem): 1 MiB of 256 MiB used (0.4%)"), std::string::npos) << out;
  auto j = nlohmann::json::parse(render_status(s, Format::kJson));
  EXPECT_EQ(j["sessions"], 2);
  EXPECT_EQ(j["pools"][0]["name"], "general");
}

}  // namespace
}  // namespace pmmctl
