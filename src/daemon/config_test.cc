// Config parsing: the built-in default, every key, and refusals that name
// the file, the line and the reason.
#include "daemon/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace pmm::daemon {
namespace {

using namespace std::chrono_literals;

// Parses `text` as "pmmd.toml" and returns the refusal's message.
std::string refusal(const std::string& text) {
  auto c = parse_config(text, "pmmd.toml");
  EXPECT_FALSE(c) << "accepted:\n" << text;
  if (c) return "";
  EXPECT_EQ(c.error().code, Errc::kInvalidArgument);
  return c.error().message;
}

constexpr const char* kPool = "[pools.general]\ntype = \"shmem\"\nsize = \"16MiB\"\n";

TEST(Config, TheBuiltInDefaultHasAShmemAndASysvPoolOpenToEveryone) {
  Config c = default_config();
  EXPECT_EQ(c.source, "(built-in default)");
  ASSERT_EQ(c.pools.size(), 2u);
  EXPECT_EQ(c.pools[0].options.name, "general");
  EXPECT_EQ(c.pools[0].options.region.type, mem::MemoryType::kShmem);
  EXPECT_EQ(c.pools[0].options.region.size, 256u << 20);
  EXPECT_EQ(c.pools[1].options.name, "display");
  EXPECT_EQ(c.pools[1].options.region.type, mem::MemoryType::kSysv);
  EXPECT_EQ(c.pools[1].options.region.size, 64u << 20);
  // Open to everyone (empty uids/gids), so the segment is too: 0666 while
  // the built-in default is open to every user.
  EXPECT_EQ(c.pools[1].options.region.sysv_mode,
            c.pools[1].access.allows(12345, 12345) ? 0666u : 0600u);
  EXPECT_TRUE(c.pools[0].access.allows(12345, 12345));
  EXPECT_TRUE(c.devices.empty());
  EXPECT_EQ(c.ledger.default_export_lifetime, 60s);
  EXPECT_EQ(c.ledger.max_export_lifetime, 1h);
}

TEST(Config, ASysvSegmentsOwnerGroupAndModeFollowItsAccess) {
  auto c = parse_config(R"(
[pools.mine]
type = "sysv"
size = "1MiB"
uids = [0, 65534]

[pools.team]
type = "sysv"
size = "1MiB"
uids = [1000]
gids = [44]

[pools.video]
type = "sysv"
size = "1MiB"
gids = [44]
)",
                        "pmmd.toml");
  ASSERT_TRUE(c) << c.error().message;
  const auto& mine = c->pools[0].options.region;
  EXPECT_EQ(mine.sysv_uid, 65534u);
  EXPECT_EQ(mine.sysv_gid, ::getegid());
  EXPECT_EQ(mine.sysv_mode, 0600u);
  const auto& team = c->pools[1].options.region;
  EXPECT_EQ(team.sysv_uid, 1000u);
  EXPECT_EQ(team.sysv_gid, 44u);
  EXPECT_EQ(team.sysv_mode, 0660u);
  const auto& video = c->pools[2].options.region;
  EXPECT_EQ(video.sysv_uid, ::geteuid());
  EXPECT_EQ(video.sysv_gid, 44u);
  EXPECT_EQ(video.sysv_mode, 0660u);
  const auto lines = describe(*c);
  EXPECT_EQ(lines[1],
            "pool team: sysv 1 MiB, best_fit, for root; uids 1000; gids 44; segment "
            "owner uid 1000, gid 44, mode 0660");
}

TEST(Config, ASysvAccessListSysvCannotExpressIsRefusedWithASuggestion) {
  EXPECT_EQ(refusal("[pools.x]\ntype = \"sysv\"\nsize = \"1MiB\"\nuids = [1000, 1001]\n"),
            "pmmd.toml:4:8: sysv pool x: uids 1000, 1001 cannot all be given a SysV segment: "
            "its permissions name one owner uid and one group; give these users a common group "
            "and list it in gids (e.g. gids = [44]) instead, or use a shmem pool (access "
            "checked on the socket only)");
  EXPECT_EQ(refusal("[pools.x]\ntype = \"sysv\"\nsize = \"1MiB\"\ngids = [44, 45]\n")
                .rfind("pmmd.toml:4:8: sysv pool x: gids 44, 45 cannot all be given a SysV "
                       "segment",
                       0),
            0u);
  // The same list is fine for a shmem pool: access is checked on the socket.
  EXPECT_TRUE(parse_config("[pools.x]\ntype = \"shmem\"\nsize = \"1MiB\"\nuids = [1000, 1001]\n",
                           "pmmd.toml"));
}

TEST(Config, TheRemovedSysvOwnerKeysAreRefusedSayingWhy) {
  for (const char* key : {"sysv_uid = 0", "sysv_gid = 44", "sysv_mode = 0o666"}) {
    const std::string m =
        refusal(fmt::format("[pools.x]\ntype = \"sysv\"\nsize = \"1MiB\"\n{}\n", key));
    EXPECT_EQ(m.rfind("pmmd.toml:4:", 0), 0u) << m;
    EXPECT_NE(m.find("is no longer a key: a sysv pool's segment gets its owner, group and mode "
                     "from the pool's uids and gids"),
              std::string::npos)
        << m;
  }
}

TEST(Config, EveryKeyIsRead) {
  auto c = parse_config(R"(
[exports]
default_lifetime = "5s"
max_lifetime = "10min"

[pools.zeta]          # declared first: tried first
type = "sysv"
size = 8388608
strategy = "tlsf"
huge_pages = true
huge_page_size = "2MiB"
numa_node = 0
lock = true
populate = true
zero = true
uids = [1000]
gids = [44]
description = "frames for the display"

[pools.alpha]
type = "hugetlb"
size = "1.5GiB"
huge_page_size = "1GiB"

[devices.decoder]
pools = ["alpha", "zeta"]
max = "64MiB"
min = "16MiB"
alignment = "64KiB"
contiguous = true
description = "the JPEG decoder"

[devices.display]
)",
                        "pmmd.toml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->pools.size(), 2u);
  const auto& z = c->pools[0];
  EXPECT_EQ(z.options.name, "zeta");
  EXPECT_EQ(z.options.region.type, mem::MemoryType::kSysv);
  EXPECT_EQ(z.options.region.size, 8u << 20);
  EXPECT_EQ(z.options.strategy, "tlsf");
  EXPECT_TRUE(z.options.region.sysv_huge_pages);
  EXPECT_EQ(z.options.region.huge_page_size, 2u << 20);
  EXPECT_EQ(z.options.region.numa_node, 0);
  EXPECT_TRUE(z.options.region.lock);
  EXPECT_TRUE(z.options.region.populate);
  EXPECT_TRUE(z.options.zero_on_alloc);
  EXPECT_EQ(z.access.uids, (std::vector<uint32_t>{1000}));
  EXPECT_EQ(z.access.gids, (std::vector<uint32_t>{44}));
  EXPECT_FALSE(z.access.allows(2000, 2000));
  EXPECT_TRUE(z.access.allows(2000, 44));
  EXPECT_EQ(z.options.region.sysv_uid, 1000u);  // from uids/gids
  EXPECT_EQ(z.options.region.sysv_gid, 44u);
  EXPECT_EQ(z.options.region.sysv_mode, 0660u);
  EXPECT_EQ(c->pools[1].options.region.size, 3ull << 29);
  EXPECT_EQ(c->pools[1].options.region.huge_page_size, 1ull << 30);
  ASSERT_EQ(c->devices.size(), 2u);
  const auto& d = c->devices[0];
  EXPECT_EQ(d.name, "decoder");
  EXPECT_EQ(d.pools, (std::vector<std::string>{"alpha", "zeta"}));
  EXPECT_EQ(d.max_bytes, 64u << 20);
  EXPECT_EQ(d.min_bytes, 16u << 20);
  EXPECT_EQ(d.default_alignment, 64u << 10);
  EXPECT_TRUE(d.contiguous);
  EXPECT_EQ(c->devices[1].name, "display");
  EXPECT_FALSE(c->devices[1].max_bytes);
  EXPECT_EQ(c->ledger.default_export_lifetime, 5s);
  EXPECT_EQ(c->ledger.max_export_lifetime, 10min);
}

TEST(Config, SyntaxErrorsNameFileLineAndColumn) {
  std::string why = refusal("[pools.general]\ntype = \"shmem\"\nsize = \n");
  EXPECT_EQ(why.rfind("pmmd.toml:3:", 0), 0u) << why;
}

TEST(Config, UnknownKeysAreRefusedWithTheKeysThatExist) {
  std::string why = refusal(std::string(kPool) + "colour = \"blue\"\n");
  EXPECT_EQ(why.rfind("pmmd.toml:4:1: unknown key 'colour' in [pools.general]", 0), 0u) << why;
  EXPECT_NE(why.find("strategy"), std::string::npos) << why;
  why = refusal(std::string(kPool) + "[devices.cam]\nmaximum = \"1MiB\"\n");
  EXPECT_EQ(why.rfind("pmmd.toml:5:1: unknown key 'maximum' in [devices.cam]", 0), 0u) << why;
  why = refusal(std::string(kPool) + "[limits]\n");
  EXPECT_EQ(why.rfind("pmmd.toml:4:", 0), 0u) << why;
}

TEST(Config, BadValuesSayWhatIsAccepted) {
  struct Case {
    std::string text;
    std::string starts;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {"[pools.general]\ntype = \"shmem\"\nsize = \"16 parsecs\"\n", "pmmd.toml:3:8:", "MiB"},
      {"[pools.general]\ntype = \"ram\"\nsize = \"16MiB\"\n", "pmmd.toml:2:8:", "shmem"},
      {"[pools.general]\ntype = \"shmem\"\n", "pmmd.toml:1:", "has no size"},
      {"[pools.general]\nsize = \"1MiB\"\n", "pmmd.toml:1:", "has no type"},
      {"[pools.general]\ntype = \"shmem\"\nsize = 0\n", "pmmd.toml:3:8:", "size 0"},
      {std::string(kPool) + "strategy = \"first_fit\"\n", "pmmd.toml:4:12:", "best_fit"},
      {std::string(kPool) + "huge_pages = true\n", "pmmd.toml:4:14:", "sysv pools only"},
      {std::string(kPool) + "lock = \"yes\"\n", "pmmd.toml:4:8:", "true or false"},
      {std::string(kPool) + "uids = [\"alice\"]\n", "pmmd.toml:4:9:", "numeric id"},
      {"[pools.\"dma,general\"]\ntype = \"shmem\"\nsize = 4096\n", "pmmd.toml:1:", "letters"},
      {"[pools.h]\ntype = \"hugetlb\"\nsize = \"4MiB\"\nhuge_page_size = \"4MiB\"\n",
       "pmmd.toml:4:18:", "\"2MiB\" or \"1GiB\""},
      {"", "pmmd.toml:", "declares no pools"},
      {std::string(kPool) + "[exports]\ndefault_lifetime = \"2h\"\n",
       "pmmd.toml:4:", "longer than max_lifetime"},
      {"[pools.general]\ntype = \"shmem\"\nsize = \"1GB\"\n", "pmmd.toml:3:8:", "write 1GiB"},
      {std::string(kPool) + "[exports]\nmax_lifetime = 60\n", "pmmd.toml:5:16:", "has no unit"},
      {std::string(kPool) + "[exports]\nmax_lifetime = \"60\"\n",
       "pmmd.toml:5:16:", "write a unit: 500ms, 60s"},
      {std::string(kPool) + "[devices.cam]\nalignment = 3000\n", "pmmd.toml:5:13:", "power of two"},
  };
  for (const auto& c : cases) {
    std::string why = refusal(c.text);
    EXPECT_EQ(why.rfind(c.starts, 0), 0u) << why << "\nfor:\n" << c.text;
    EXPECT_NE(why.find(c.mentions), std::string::npos) << why;
  }
}

TEST(Config, DeviceRulesThatCannotHoldAreRefusedWhereTheyAreWritten) {
  std::string why = refusal(std::string(kPool) + "[devices.cam]\npools = [\"general\", \"dma\"]\n");
  EXPECT_EQ(why.rfind("pmmd.toml:5:21: device cam: unknown pool 'dma'; the pools are: general", 0),
            0u)
      << why;
  why = refusal(std::string(kPool) +
                "[devices.a]\npools = [\"general\"]\nmin = \"10MiB\"\n"
                "[devices.b]\npools = [\"general\"]\nmin = \"8MiB\"\n");
  EXPECT_EQ(why.rfind("pmmd.toml:9:7: device b: the mins kept in pool general add up to 18 MiB, "
                      "more than its size 16 MiB",
                      0),
            0u)
      << why;
  why = refusal(std::string(kPool) + "[devices.a]\npools = [\"general\"]\nmax = \"1MiB\"\n" +
                "min = \"2MiB\"\n");
  EXPECT_EQ(why.rfind("pmmd.toml:7:7: device a: min 2 MiB is above its max 1 MiB", 0), 0u) << why;
  why = refusal(std::string(kPool) + "[devices.a]\nmin = \"2MiB\"\n");
  EXPECT_EQ(why.rfind("pmmd.toml:5:7:", 0), 0u) << why;
  EXPECT_NE(why.find("home pool"), std::string::npos) << why;
}

TEST(Config, FilesAreReadAndAMissingOneIsNamed) {
  char dir[] = "/tmp/pmm-config-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/pmmd.toml";
  std::ofstream(path) << kPool;
  auto c = load_config(path);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->source, path);
  std::ofstream(path) << kPool << "size = \"1MiB\"\n";  // a key twice
  auto dup = load_config(path);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().message.rfind(path + ":4:", 0), 0u) << dup.error().message;
  auto missing = load_config(std::string(dir) + "/nope.toml");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope.toml"), std::string::npos);
  std::remove(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace pmm::daemon
