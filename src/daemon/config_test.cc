// Config parsing: the built-in default, every key, and refusals that name
// the file, the line and the reason.
#include "daemon/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

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

TEST(Config, TheBuiltInDefaultHasAShmemAndASysvPoolForPmmdsOwnUidAndRoot) {
  Config c = default_config();
  EXPECT_EQ(c.source, "(built-in default)");
  ASSERT_EQ(c.pools.size(), 2u);
  EXPECT_EQ(c.pools[0].options.name, "general");
  EXPECT_EQ(c.pools[0].options.region.type, mem::MemoryType::kShmem);
  EXPECT_EQ(c.pools[0].options.region.size, 256u << 20);
  EXPECT_EQ(c.pools[1].options.name, "display");
  EXPECT_EQ(c.pools[1].options.region.type, mem::MemoryType::kSysv);
  EXPECT_EQ(c.pools[1].options.region.size, 64u << 20);
  for (const auto& p : c.pools) {
    EXPECT_FALSE(p.access.everyone) << p.options.name;
    EXPECT_FALSE(p.access.allows(12345, 12345)) << p.options.name;
    EXPECT_TRUE(p.access.allows(0, 0)) << p.options.name;
    EXPECT_TRUE(p.access.allows(::geteuid(), 12345)) << p.options.name;
  }
  // Closed, so the display segment is too: owned by pmmd, mode 0600.
  EXPECT_EQ(c.pools[1].options.region.sysv_mode, 0600u);
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
  why = refusal(std::string(kPool) + "[limitz]\n");
  EXPECT_EQ(why.rfind("pmmd.toml:4:", 0), 0u) << why;
}

TEST(Config, AdminNamesUidsAndGidsBesidesRoot) {
  auto c = parse_config(std::string(kPool) + "[admin]\nuids = [1000]\ngids = [4, 27]\n", "t");
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(c->admin.uids, (std::vector<uint32_t>{1000}));
  EXPECT_EQ(c->admin.gids, (std::vector<uint32_t>{4, 27}));
  const std::vector<uint32_t> none, wheel{27};
  EXPECT_TRUE(c->admin.includes(0, 0, none));         // root always
  EXPECT_TRUE(c->admin.includes(1000, 1000, none));   // by uid
  EXPECT_TRUE(c->admin.includes(2000, 4, none));      // by primary gid
  EXPECT_TRUE(c->admin.includes(2000, 2000, wheel));  // by supplementary group
  EXPECT_FALSE(c->admin.includes(2000, 2000, none));
  EXPECT_EQ(c->admin.describe(), "root; uids 1000; gids 4, 27");
  // None: root only.
  auto d = parse_config(kPool, "t");
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->admin.includes(1000, 1000, none));
  EXPECT_NE(
      refusal(std::string(kPool) + "[admin]\nusers = [1]\n").find("unknown key 'users' in [admin]"),
      std::string::npos);
  EXPECT_NE(refusal(std::string(kPool) + "[admin]\ngids = [\"wheel\"]\n").find("numeric id"),
            std::string::npos);
  EXPECT_NE(refusal("admin = 1\n" + std::string(kPool)).find("[admin]"), std::string::npos);
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

TEST(Config, AccessIsClosedUnlessOpenedAndContradictionsAreRefused) {
  auto c = parse_config(R"(
[pools.general]
type = "shmem"
size = "16MiB"
everyone = true

[pools.video]
type = "shmem"
size = "16MiB"
gids = [44]

[devices.cam]
pools = ["general"]
uids = [1000]
max = "4MiB"

[devices.anyone]
everyone = true

[devices.closed]

[devices.default]
max = "8MiB"

[limits]
blocks_per_session = 100
blocks_per_uid = 400
exports_per_session = 10
exports_per_uid = 20
sysv_exports_per_session = 5
sysv_exports_per_uid = 6
block_granule = "64KiB"
)",
                        "pmmd.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->pools[0].access.everyone);
  EXPECT_TRUE(c->pools[0].access.allows(12345, 12345));
  EXPECT_FALSE(c->pools[1].access.allows(12345, 12345));
  EXPECT_TRUE(c->pools[1].access.allows(12345, 44));
  ASSERT_EQ(c->devices.size(), 4u);
  EXPECT_EQ(c->devices[0].access.uids, (std::vector<uint32_t>{1000}));
  EXPECT_FALSE(c->devices[0].access.allows(1001, 1001));
  EXPECT_TRUE(c->devices[1].access.allows(1001, 1001));
  EXPECT_FALSE(c->devices[2].access.allows(1001, 1001));  // no keys: closed
  EXPECT_TRUE(c->devices[3].access.everyone);             // default: open to all
  const core::Quotas& q = c->ledger.quotas;
  EXPECT_EQ(q.blocks_per_session, 100u);
  EXPECT_EQ(q.blocks_per_uid, 400u);
  EXPECT_EQ(q.exports_per_session, 10u);
  EXPECT_EQ(q.exports_per_uid, 20u);
  EXPECT_EQ(q.sysv_exports_per_session, 5u);
  EXPECT_EQ(q.sysv_exports_per_uid, 6u);
  EXPECT_EQ(q.block_granule, 64u << 10);

  // Each contradiction is refused with its line and reason.
  auto pool = [](const std::string& extra) { return std::string(kPool) + extra; };
  std::string why = refusal(pool("everyone = true\nuids = [1000]\n"));
  EXPECT_NE(why.find("everyone = true contradicts uids/gids"), std::string::npos) << why;
  why = refusal(pool("uids = [1000, 1000]\n"));
  EXPECT_NE(why.find("uids lists 1000 twice"), std::string::npos) << why;
  why = refusal(pool("[devices.a]\npools = [\"general\", \"general\"]\n"));
  EXPECT_NE(why.find("pools lists 'general' twice"), std::string::npos) << why;
  why = refusal(pool("uids = [1000]\n[devices.a]\nuids = [2000]\n"));
  EXPECT_NE(why.find("device a: uid 2000 may claim it but may use none of its pools: general "
                     "(root; uids 1000)"),
            std::string::npos)
      << why;
  why = refusal(pool("[devices.a]\neveryone = true\n"));
  EXPECT_NE(why.find("device a: everyone may claim it but its pools are for root"),
            std::string::npos)
      << why;
  why = refusal(pool("gids = [44]\n[devices.a]\ngids = [45]\n"));
  EXPECT_NE(why.find("gid 45 may claim it but may use none"), std::string::npos) << why;
  for (const char* k : {"uids = [1]", "everyone = true", "min = \"1MiB\"\npools = [\"general\"]"}) {
    why = refusal(pool(std::string("[devices.default]\n") + k + "\n"));
    EXPECT_NE(why.find("[devices.default] cannot have"), std::string::npos) << why;
  }
  why = refusal(pool("[limits]\nblocks_per_session = 10\nblocks_per_uid = 5\n"));
  EXPECT_NE(why.find("blocks_per_session = 10 is above blocks_per_uid = 5"), std::string::npos)
      << why;
  why = refusal(pool("[limits]\nexports_per_uid = 0\n"));
  EXPECT_NE(why.find("exports_per_uid must be a whole number, at least 1"), std::string::npos)
      << why;
  why = refusal(pool("[limits]\nblock_granule = 512\n"));
  EXPECT_NE(why.find("block_granule 512 B must be a power of two from 1 KiB"), std::string::npos)
      << why;
  why = refusal(pool("[limits]\nblocks = 5\n"));
  EXPECT_NE(why.find("unknown key 'blocks' in [limits]"), std::string::npos) << why;
}

TEST(Config, SessionLimitsAreReadAndCheckedWithDefaults) {
  auto d = parse_config(kPool, "t.toml");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_FALSE(d->session_limits.sessions);  // sized to the fd limit at start
  EXPECT_EQ(d->session_limits.sessions_per_uid, 64u);
  EXPECT_EQ(d->session_limits.hello_timeout, std::chrono::seconds(2));
  auto c = parse_config(std::string(kPool) +
                            "[limits]\nsessions = 300\nsessions_per_uid = 5\n"
                            "hello_timeout = \"250ms\"\n",
                        "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->session_limits.sessions, 300u);
  EXPECT_EQ(c->session_limits.sessions_per_uid, 5u);
  EXPECT_EQ(c->session_limits.hello_timeout, std::chrono::milliseconds(250));
  std::string why = refusal(std::string(kPool) + "[limits]\nsessions = 0\n");
  EXPECT_EQ(why.rfind("pmmd.toml:5:12: [limits] sessions must be a whole number from 1", 0), 0u)
      << why;
  why = refusal(std::string(kPool) + "[limits]\nhello_timeout = 2\n");
  EXPECT_NE(why.find("no unit"), std::string::npos) << why;
  why = refusal(std::string(kPool) + "[limits]\nsesions = 3\n");
  EXPECT_NE(why.find("sessions, sessions_per_uid, hello_timeout"), std::string::npos) << why;
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
