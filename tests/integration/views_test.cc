// Views as a local user gets them: a real pmmd, a root client holding
// blocks (one in a hugetlb pool, with a physical address) and an export,
// and `pmmctl sessions|blocks|devices --json` run as uid 65534 (setpriv),
// as members of an [admin] gid, as root, and as root without CAP_SYS_ADMIN.
// A non-admin sees none of root's pids, uids, devices, blocks or token
// bits; admins see everything but other uids' tokens; physical addresses
// only for root with CAP_SYS_ADMIN.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon_process.h"
#include "mem/testing.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

using nlohmann::json;

// Both pools name their users, so the test means the same whatever the
// default for pools without uids/gids is.
std::string config(bool huge) {
  std::string c = R"(
[admin]
gids = [4242]

[pools.general]
type = "shmem"
size = "16MiB"
uids = [0, 65534]

[devices.rootcam]
)";
  if (huge) c += "\n[pools.huge]\ntype = \"hugetlb\"\nsize = \"4MiB\"\nuids = [0]\n";
  return c;
}

const std::vector<std::string> kNobody{"setpriv", "--reuid=65534", "--regid=65534",
                                       "--clear-groups"};
const std::vector<std::string> kAdminByGroup{"setpriv", "--reuid=65534", "--regid=65534",
                                             "--groups=4242"};
const std::vector<std::string> kAdminByPrimaryGid{"setpriv", "--reuid=65534", "--regid=4242",
                                                  "--clear-groups"};
const std::vector<std::string> kRoot{};
// Root whose next exec loses CAP_SYS_ADMIN (out of the bounding set).
const std::vector<std::string> kRootWithoutSysAdmin{"setpriv", "--bounding-set=-sys_admin"};

pmm::testing::Run pmmctl_run(const DaemonProcess& d, const std::vector<std::string>& as,
                             const std::vector<std::string>& args) {
  std::vector<std::string> argv = as;
  for (const auto& a : std::vector<std::string>{PMM_PMMCTL_PATH, "--socket", d.socket(), "--json"})
    argv.push_back(a);
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

json pmmctl(const DaemonProcess& d, const std::vector<std::string>& as,
            const std::vector<std::string>& args) {
  pmm::testing::Run r = pmmctl_run(d, as, args);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  if (r.status != 0) return json::array();
  return json::parse(r.out);
}

std::string token_text(const pmm_token& t) {
  char text[PMM_TOKEN_STRLEN];
  pmm_token_format(&t, text);
  return text;
}

class Views : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d_.ok()) << d_.log();
    ASSERT_EQ(pmm_connect(d_.socket().c_str(), "rootcam", &root_), PMM_OK) << pmm_last_error();
    ASSERT_EQ(pmm_alloc(root_, "general", 1 << 20, 0, 0, &general_), PMM_OK) << pmm_last_error();
    ASSERT_EQ(pmm_export(general_, 2, 60'000, &token_), PMM_OK) << pmm_last_error();
    if (hp_.unavailable().empty()) {
      ASSERT_EQ(pmm_alloc(root_, "huge", 2 << 20, 0, PMM_ALLOC_CONTIGUOUS, &huge_), PMM_OK)
          << pmm_last_error();
    }
    // uid 65534's own: `pmmctl alloc` exports a block, which then holds it.
    pmm::testing::Run r =
        pmmctl_run(d_, kNobody, {"alloc", "general", "64KiB", "--lifetime", "60s"});
    ASSERT_EQ(r.status, 0) << r.err;
    json j = json::parse(r.out);
    nobody_token_ = j["token"];
    nobody_block_ = j["block"];
  }
  void TearDown() override { pmm_disconnect(root_); }

  // What must never reach uid 65534 about root's work.
  void expect_nothing_of_roots(const json& j, const std::string& what) {
    std::string text = j.dump();
    EXPECT_EQ(text.find("rootcam"), std::string::npos) << what << ": " << text;
    EXPECT_EQ(text.find(token_text(token_).substr(0, 16)), std::string::npos)
        << what << ": " << text;
    for (const auto& item : j) {
      if (item.contains("pid")) {
        EXPECT_NE(item["pid"], getpid()) << what << ": " << text;
      }
      if (item.contains("uid")) {
        EXPECT_NE(item["uid"], 0) << what << ": " << text;
      }
      if (item.contains("id") && item.contains("holders")) {
        EXPECT_NE(item["id"], pmm_block_id(general_)) << what << ": " << text;
        if (huge_) {
          EXPECT_NE(item["id"], pmm_block_id(huge_)) << what << ": " << text;
        }
      }
      if (!item.contains("holders")) continue;
      for (const auto& h : item["holders"]) {
        EXPECT_NE(h["pid"], getpid()) << what << ": " << text;
        EXPECT_NE(h["uid"], 0) << what << ": " << text;
      }
    }
  }

  json block(const json& blocks, uint64_t id) {
    for (const auto& b : blocks)
      if (b["id"] == id) return b;
    ADD_FAILURE() << "block " << id << " not listed: " << blocks.dump();
    return json::object();
  }

  mem::testing::HugePages hp_{2 << 20, 2};
  DaemonProcess d_{config(hp_.unavailable().empty())};
  pmm_conn* root_ = nullptr;
  pmm_block* general_ = nullptr;
  pmm_block* huge_ = nullptr;
  pmm_token token_{};
  std::string nobody_token_;
  uint64_t nobody_block_ = 0;
};

TEST_F(Views, ANonAdminSeesOnlyItsOwnAndNothingOfRoots) {
  json sessions = pmmctl(d_, kNobody, {"sessions"});
  expect_nothing_of_roots(sessions, "sessions");
  ASSERT_EQ(sessions.size(), 1u) << sessions.dump();  // its own pmmctl session
  EXPECT_EQ(sessions[0]["uid"], 65534);

  json blocks = pmmctl(d_, kNobody, {"blocks"});
  expect_nothing_of_roots(blocks, "blocks");
  ASSERT_EQ(blocks.size(), 1u) << blocks.dump();
  EXPECT_EQ(blocks[0]["id"], nobody_block_);
  // Its own export: the token prefix is its to see.
  ASSERT_EQ(blocks[0]["holders"].size(), 1u) << blocks.dump();
  EXPECT_EQ(blocks[0]["holders"][0]["token_prefix"], nobody_token_.substr(0, 16));

  json devices = pmmctl(d_, kNobody, {"devices"});
  expect_nothing_of_roots(devices, "devices");
  for (const auto& dev : devices) EXPECT_NE(dev["name"], "rootcam") << devices.dump();

  // Aggregates are for everyone: status counts root's blocks too.
  pmm::testing::Run st = pmmctl_run(d_, kNobody, {"status"});
  ASSERT_EQ(st.status, 0) << st.err;
  EXPECT_EQ(json::parse(st.out)["blocks"], huge_ ? 3 : 2);
}

TEST_F(Views, RootSeesEverythingWithPhysicalAddressesButNotOthersTokens) {
  json sessions = pmmctl(d_, kRoot, {"sessions"});
  bool saw_root = false;
  for (const auto& s : sessions) saw_root = saw_root || s["pid"] == getpid();
  EXPECT_TRUE(saw_root) << sessions.dump();

  json blocks = pmmctl(d_, kRoot, {"blocks"});
  json g = block(blocks, pmm_block_id(general_));
  bool own_token = false;
  for (const auto& h : g["holders"]) {
    if (h["kind"] == "export") own_token = h["token_prefix"] == token_text(token_).substr(0, 16);
  }
  EXPECT_TRUE(own_token) << "root exported it: " << g.dump();
  // uid 65534's export: root sees that it exists, not its bits.
  json n = block(blocks, nobody_block_);
  ASSERT_EQ(n["holders"].size(), 1u) << n.dump();
  EXPECT_TRUE(n["holders"][0]["token_prefix"].is_null()) << n.dump();
  EXPECT_EQ(n["holders"][0]["uid"], 65534);
  EXPECT_EQ(n["holders"][0]["imports_left"], 1);
  EXPECT_GT(n["holders"][0]["expires_ms"], 0);
  EXPECT_EQ(blocks.dump().find(nobody_token_.substr(0, 16)), std::string::npos) << blocks.dump();

  json devices = pmmctl(d_, kRoot, {"devices"});
  EXPECT_NE(devices.dump().find("rootcam"), std::string::npos) << devices.dump();

  if (!huge_) GTEST_SKIP() << "no hugetlb block (" << hp_.unavailable() << ")";
  if (pmm_block_phys(huge_) == 0) GTEST_SKIP() << "pmmd reads no physical addresses here";
  json h = block(blocks, pmm_block_id(huge_));
  EXPECT_EQ(h["phys"], pmm_block_phys(huge_));
  EXPECT_EQ(h["phys_hidden"], false);
}

TEST_F(Views, PhysicalAddressesAreHiddenFromAnyoneWithoutCapSysAdmin) {
  if (!huge_) GTEST_SKIP() << "no hugetlb block (" << hp_.unavailable() << ")";
  if (pmm_block_phys(huge_) == 0) GTEST_SKIP() << "pmmd reads no physical addresses here";
  // The admin group sees root's block, and root without the capability
  // does too, but neither its physical address.
  for (const auto& as : {kAdminByGroup, kRootWithoutSysAdmin}) {
    json blocks = pmmctl(d_, as, {"blocks"});
    json h = block(blocks, pmm_block_id(huge_));
    EXPECT_TRUE(h["phys"].is_null()) << h.dump();
    EXPECT_EQ(h["phys_hidden"], true) << h.dump();
  }
}

// Not only the listings: the answer to allocate carries a physical address
// only for a client that could read it from pagemap itself. Root with
// CAP_SYS_ADMIN got one in SetUp (huge_); root without it gets none for a
// block of the same pool.
TEST_F(Views, AllocateShowsAPhysicalAddressOnlyWithCapSysAdmin) {
  if (!huge_) GTEST_SKIP() << "no hugetlb block (" << hp_.unavailable() << ")";
  if (pmm_block_phys(huge_) == 0) GTEST_SKIP() << "pmmd reads no physical addresses here";
  json a = pmmctl(d_, kRootWithoutSysAdmin,
                  {"alloc", "huge", "2MiB", "--contiguous", "--lifetime", "500ms"});
  ASSERT_TRUE(a.contains("phys")) << a.dump();
  EXPECT_TRUE(a["phys"].is_null()) << a.dump();
}

TEST_F(Views, AnAdminGidSeesEveryonesSessionsBlocksAndDevices) {
  for (const auto& as : {kAdminByGroup, kAdminByPrimaryGid}) {
    json sessions = pmmctl(d_, as, {"sessions"});
    bool saw_root = false;
    for (const auto& s : sessions) saw_root = saw_root || (s["pid"] == getpid() && s["uid"] == 0);
    EXPECT_TRUE(saw_root) << sessions.dump();
    json blocks = pmmctl(d_, as, {"blocks"});
    json g = block(blocks, pmm_block_id(general_));
    bool saw_export = false;
    for (const auto& h : g["holders"]) {
      if (h["kind"] != "export") continue;
      saw_export = true;
      EXPECT_TRUE(h["token_prefix"].is_null()) << "root's token is root's: " << g.dump();
      EXPECT_EQ(h["imports_left"], 2);
    }
    EXPECT_TRUE(saw_export) << g.dump();
    EXPECT_EQ(blocks.dump().find(token_text(token_).substr(0, 16)), std::string::npos);
    block(blocks, nobody_block_);
    json devices = pmmctl(d_, as, {"devices"});
    EXPECT_NE(devices.dump().find("rootcam"), std::string::npos) << devices.dump();
  }
}

// A user's one block among thousands of root's: each ListBlocks page looks
// at a bounded stretch of ids (64 per item asked, docs/protocol.md), so the
// first pages come back empty with `more`, and `pmmctl blocks` (libpmm's
// listing loop) must follow next_after_id past them to find it.
TEST(ViewsPaging, ANonAdminFindsItsOneBlockPastPagesOfOthers) {
  DaemonProcess d(R"(
[pools.general]
type = "shmem"
size = "64MiB"
uids = [0, 65534]

[limits]
blocks_per_session = 10000
)");
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* root = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "", &root), PMM_OK) << pmm_last_error();
  // More than one page's scan (64 x 64 ids) of root's blocks first.
  constexpr int kRootBlocks = 5000;
  std::vector<pmm_block*> blocks(kRootBlocks);
  for (auto& b : blocks) ASSERT_EQ(pmm_alloc(root, "general", 1, 0, 0, &b), PMM_OK);
  pmm::testing::Run r = pmmctl_run(d, kNobody, {"alloc", "general", "4KiB", "--lifetime", "60s"});
  ASSERT_EQ(r.status, 0) << r.err;
  const uint64_t mine = json::parse(r.out)["block"];
  json listed = pmmctl(d, kNobody, {"blocks"});
  ASSERT_EQ(listed.size(), 1u) << listed.dump();
  EXPECT_EQ(listed[0]["id"], mine);
  EXPECT_EQ(pmmctl(d, kRoot, {"blocks"}).size(), kRootBlocks + 1u) << "root sees every block";
  pmm_disconnect(root);
}

}  // namespace
}  // namespace pmm::testing
