// Integration: identity and quotas against a real pmmd, as an unprivileged
// local user (uid 65534 through setpriv) while a root client works beside
// it. The "impersonate" and "grow it without bound" attacks of issue 8:
// a user limited as one device cannot take more under another name or
// claim a device that is not theirs, and a user flooding the daemon with
// blocks and exports meets its limits while the daemon's memory stays
// bounded and root's block stays intact and answered.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon_process.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::unique_ptr<Child> nobody(const DaemonProcess& d, const std::string& device) {
  return std::make_unique<Child>(std::vector<std::string>{"setpriv", "--reuid=65534",
                                                          "--regid=65534", "--clear-groups",
                                                          PMM_AGENT_PATH, d.socket(), device});
}

// The line an agent answers to `command`.
std::string ask(Child& c, const std::string& command) {
  c.write_line(command);
  return c.read_line();
}

uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

// Root's own client: one block with a pattern, checked after the attack,
// and how long the daemon takes to answer it.
struct RootClient {
  pmm_conn* c = nullptr;
  pmm_block* b = nullptr;
  RootClient(const DaemonProcess& d, const char* device, const char* pool, uint64_t size) {
    EXPECT_EQ(pmm_connect(d.socket().c_str(), device, &c), PMM_OK) << pmm_last_error();
    EXPECT_EQ(pmm_alloc(c, pool, size, 0, 0, &b), PMM_OK) << pmm_last_error();
    if (b) std::memset(pmm_block_ptr(b), 0x5a, pmm_block_size(b));
  }
  ~RootClient() { pmm_disconnect(c); }
  bool intact() const {
    const auto* p = static_cast<const unsigned char*>(pmm_block_ptr(b));
    for (uint64_t i = 0; i < pmm_block_size(b); ++i) {
      if (p[i] != 0x5a) return false;
    }
    return true;
  }
  // Milliseconds for an allocation and its put: a request another client
  // could have stalled.
  double answer_ms(const char* pool) {
    auto t0 = std::chrono::steady_clock::now();
    pmm_block* x = nullptr;
    EXPECT_EQ(pmm_alloc(c, pool, 4096, 0, 0, &x), PMM_OK) << pmm_last_error();
    if (x) pmm_block_put(x);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
};

TEST(Identity, AUserLimitedAsOneDeviceGetsNoMoreUnderAnotherNameAndCannotClaimOthers) {
  DaemonProcess d(R"(
[pools.general]
type = "shmem"
size = "64MiB"
everyone = true

[devices.cam]
pools = ["general"]
max = "4MiB"
uids = [65534]

[devices.display]
pools = ["general"]
min = "16MiB"
uids = [0]

[devices.default]
max = "4MiB"
)");
  ASSERT_TRUE(d.ok()) << d.log();
  RootClient root(d, "display", "general", 1 * kMiB);

  auto cam = nobody(d, "cam");
  ASSERT_EQ(cam->read_line(), "ready") << d.log();
  EXPECT_EQ(ask(*cam, "alloc general 4194304").rfind("ok", 0), 0u);
  std::string over = ask(*cam, "alloc general 4096");
  EXPECT_EQ(over.rfind("err 3 ", 0), 0u) << over;  // PMM_E_LIMIT
  EXPECT_NE(over.find("device cam"), std::string::npos) << over;

  // Another name: the uid's share of the default device, 4 MiB, not 40.
  auto other = nobody(d, "totally-not-cam");
  ASSERT_EQ(other->read_line(), "ready") << d.log();
  std::string big = ask(*other, "alloc general 41943040");
  EXPECT_EQ(big.rfind("err 3 ", 0), 0u) << big;
  EXPECT_NE(big.find("device default (uid 65534)"), std::string::npos) << big;
  EXPECT_EQ(ask(*other, "alloc general 4194304").rfind("ok", 0), 0u);
  EXPECT_EQ(ask(*other, "alloc general 4096").rfind("err 3 ", 0), 0u);
  auto unnamed = nobody(d, "");
  ASSERT_EQ(unnamed->read_line(), "ready") << d.log();
  EXPECT_EQ(ask(*unnamed, "alloc general 4096").rfind("err 3 ", 0), 0u)
      << "the unnamed device is the same per-uid default";

  // "display" is root's: refused at connect, naming the device and who may.
  auto display = nobody(d, "display");
  std::string refused = display->read_line();
  EXPECT_EQ(refused.rfind("err 5 ", 0), 0u) << refused;  // PMM_E_PERMISSION
  EXPECT_NE(refused.find("device display"), std::string::npos) << refused;
  EXPECT_NE(refused.find("who may: root"), std::string::npos) << refused;

  // Root's guarantee is whole: display holds 1 MiB and may take its other
  // 15 MiB although nobody took all it could.
  pmm_block* rest = nullptr;
  EXPECT_EQ(pmm_alloc(root.c, "general", 15 * kMiB, 0, 0, &rest), PMM_OK) << pmm_last_error();
  EXPECT_TRUE(root.intact());
  std::printf("root answered in %.2f ms\n", root.answer_ms("general"));
}

TEST(Identity, TheBuiltInConfigLendsToPmmdsOwnUidAndRootOnly) {
  DaemonProcess d;  // no --config: the embedded default
  ASSERT_TRUE(d.ok()) << d.log();
  auto stranger = nobody(d, "");
  ASSERT_EQ(stranger->read_line(), "ready") << d.log();
  for (const char* pool : {"general", "display"}) {
    std::string r = ask(*stranger, std::string("alloc ") + pool + " 4096");
    EXPECT_EQ(r.rfind("err 5 ", 0), 0u) << r;  // PMM_E_PERMISSION
    EXPECT_NE(r.find("uid 65534"), std::string::npos) << r;
  }
  RootClient root(d, "", "general", 1 * kMiB);  // pmmd runs as root here
  EXPECT_TRUE(root.intact());
  auto printed = run_command({PMM_PMMD_PATH, "--print-default-config"});
  EXPECT_EQ(printed.status, 0);
  EXPECT_EQ(printed.out.find("\neveryone"), std::string::npos) << printed.out;
  EXPECT_EQ(printed.out.find("0o666"), std::string::npos) << printed.out;
}

TEST(Identity, CheckConfigRefusesContradictionsWithTheReason) {
  DaemonProcess d;  // for its private directory
  std::string path = d.dir() + "/contradiction.toml";
  std::ofstream(path) << "[pools.general]\ntype = \"shmem\"\nsize = \"16MiB\"\n"
                         "uids = [1000]\n\n[devices.cam]\nuids = [65534]\n";
  auto r = run_command({PMM_PMMD_PATH, "--check-config", "--config", path});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("device cam: uid 65534 may claim it but may use none of its pools"),
            std::string::npos)
      << r.err;
  std::ofstream(path) << "[pools.general]\ntype = \"shmem\"\nsize = \"16MiB\"\n"
                         "everyone = true\ngids = [44]\n";
  r = run_command({PMM_PMMD_PATH, "--check-config", "--config", path});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_NE(r.err.find(":4:12: [pools.general]: everyone = true contradicts uids/gids"),
            std::string::npos)
      << r.err;
}

TEST(Quotas, AFloodingUserMeetsItsLimitsAndTheDaemonStaysBounded) {
  DaemonProcess d(R"(
[pools.general]
type = "shmem"
size = "256MiB"
everyone = true

[pools.second]
type = "shmem"
size = "32MiB"
everyone = true

[limits]
blocks_per_session = 2000
blocks_per_uid = 4000
exports_per_session = 1000
exports_per_uid = 1500
)");
  ASSERT_TRUE(d.ok()) << d.log();
  RootClient root(d, "", "general", 1 * kMiB);
  uint64_t rss_start = rss_kib(d.pid());
  uint64_t rss_peak = 0;

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto a = nobody(d, "");
    auto b = nobody(d, "");
    auto c = nobody(d, "");
    ASSERT_EQ(a->read_line(), "ready") << d.log();
    ASSERT_EQ(b->read_line(), "ready");
    ASSERT_EQ(c->read_line(), "ready");
    // 1-byte blocks: each is rounded up to the 4 KiB granule.
    std::string r = ask(*a, "flood general 1 1000000");
    EXPECT_EQ(r.rfind("err 3 after 2000: ", 0), 0u) << r;
    EXPECT_NE(r.find("limit blocks_per_session = 2000 reached (2000 in use)"), std::string::npos)
        << r;
    r = ask(*b, "flood second 1 1000000");
    EXPECT_EQ(r.rfind("err 3 after 2000: ", 0), 0u) << r;
    r = ask(*c, "flood general 1 10");
    EXPECT_EQ(r.rfind("err 3 after 0: ", 0), 0u) << r;
    EXPECT_NE(r.find("limit blocks_per_uid = 4000 reached (4000 in use)"), std::string::npos) << r;
    // Exports pin blocks for up to max_lifetime: bounded per session and uid.
    r = ask(*a, "exportall 1000000 3000");
    EXPECT_EQ(r.rfind("err 3 after 1000: ", 0), 0u) << r;
    EXPECT_NE(r.find("limit exports_per_session = 1000 reached (1000 in use)"), std::string::npos)
        << r;
    r = ask(*b, "exportall 1000000 3000");
    EXPECT_EQ(r.rfind("err 3 after 500: ", 0), 0u) << r;
    EXPECT_NE(r.find("limit exports_per_uid = 1500 reached (1500 in use)"), std::string::npos) << r;
    uint64_t rss = rss_kib(d.pid());
    rss_peak = std::max(rss_peak, rss);
    double ms = root.answer_ms("general");
    std::printf(
        "round %d: pmmd RSS %llu KiB at the limits (%llu KiB at start); root answered "
        "in %.2f ms\n",
        round, static_cast<unsigned long long>(rss), static_cast<unsigned long long>(rss_start),
        ms);
    EXPECT_LT(ms, 1000.0);
    EXPECT_TRUE(root.intact());
    // Killed: the sessions' blocks go, but the exports keep their blocks
    // (and count against uid 65534) until they end.
    a->kill_and_wait(SIGKILL);
    b->kill_and_wait(SIGKILL);
    c->kill_and_wait(SIGKILL);
    auto again = nobody(d, "");
    ASSERT_EQ(again->read_line(), "ready");
    r = ask(*again, "flood general 1 3000");
    EXPECT_EQ(r.rfind("err 3 after 2000: ", 0), 0u) << r;
    auto more = nobody(d, "");
    ASSERT_EQ(more->read_line(), "ready");
    r = ask(*more, "flood second 1 3000");
    EXPECT_EQ(r.rfind("err 3 after 500: ", 0), 0u)
        << "1500 exported blocks stay pinned and count for the uid: " << r;
    EXPECT_NE(r.find("limit blocks_per_uid = 4000 reached (4000 in use)"), std::string::npos) << r;
    more->kill_and_wait(SIGKILL);
    r = ask(*again, "exportall 10 3000");
    EXPECT_EQ(r.rfind("err 3 after 0: ", 0), 0u) << r;
    EXPECT_NE(r.find("exports_per_uid"), std::string::npos) << r;
    again->kill_and_wait(SIGKILL);
    // The exports end with their lifetime (3 s), and with them the pins:
    // then the uid has its room back, and the second round starts afresh.
    bool ended = false;
    for (int i = 0; i < 100 && !ended; ++i) {
      auto probe = nobody(d, "");
      ASSERT_EQ(probe->read_line(), "ready");
      ASSERT_EQ(ask(*probe, "flood general 1 1").rfind("ok", 0), 0u);
      ended = ask(*probe, "exportall 1 1").rfind("ok", 0) == 0;
      if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(ended) << "the exports outlived their lifetime";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the probe's own 1 ms export
  }
  // The second wave met the same limits: memory did not grow with it.
  uint64_t rss_end = rss_kib(d.pid());
  std::printf("pmmd RSS: start %llu KiB, peak %llu KiB, end %llu KiB\n",
              static_cast<unsigned long long>(rss_start), static_cast<unsigned long long>(rss_peak),
              static_cast<unsigned long long>(rss_end));
  // 4000 blocks, 1500 exports and a few sessions: about 2 MiB at the
  // measured costs; 16 MiB leaves room for malloc's slack. (SysV export
  // quotas are checked in the ledger's tests: they need a segment uid 65534
  // may attach, which is the sysv pools' own business.)
  if (!kSanitized) {  // ASan's heap is not pmmd's
    EXPECT_LT(rss_peak, rss_start + 16 * 1024);
  }
  EXPECT_TRUE(root.intact());
}

// What an operator sizes [limits] with: pmmd's RSS per block, per export
// and per session through a real pmmd (docs/config.md quotes the figures at
// PMM_MEASURE_BLOCKS=100000 and 1000000; the default 25000 keeps `make test`
// quick). Printed; the bound only catches a record that grew several times
// over. (Exhaustion.DaemonRssFollowsItsLiveState shows RSS going back.)
TEST(Quotas, DaemonMemoryPerBlockExportAndSessionIsPrinted) {
  if (kSanitized) GTEST_SKIP() << "pmmd's heap is ASan's here; the release build measures this";
  const char* env = std::getenv("PMM_MEASURE_BLOCKS");
  const int kBlocks = std::clamp(env ? std::atoi(env) : 25'000, 1000, 1'000'000);
  constexpr int kSessions = 500;
  // Every 1-byte block takes a 4 KiB granule of the (sparse) pool.
  DaemonProcess d(R"(
[pools.general]
type = "shmem"
size = "4000MiB"

[limits]
blocks_per_session = 1000000
blocks_per_uid = 1000000
exports_per_session = 1000000
exports_per_uid = 1000000
)");
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "", &c), PMM_OK) << pmm_last_error();
  std::vector<pmm_block*> blocks(kBlocks);
  uint64_t before = rss_kib(d.pid());
  for (auto& b : blocks)
    ASSERT_EQ(pmm_alloc(c, "general", 1, 0, 0, &b), PMM_OK) << pmm_last_error();
  uint64_t with_blocks = rss_kib(d.pid());
  for (auto* b : blocks) {
    pmm_token t;
    ASSERT_EQ(pmm_export(b, 1, 600'000, &t), PMM_OK) << pmm_last_error();
  }
  uint64_t with_exports = rss_kib(d.pid());
  std::vector<pmm_conn*> others(kSessions);
  for (auto& o : others) ASSERT_EQ(pmm_connect(d.socket().c_str(), "", &o), PMM_OK);
  uint64_t with_sessions = rss_kib(d.pid());
  auto per = [](uint64_t from, uint64_t to, int n) {
    return static_cast<double>(to - from) * 1024.0 / n;
  };
  double per_block = per(before, with_blocks, kBlocks);
  double per_export = per(with_blocks, with_exports, kBlocks);
  double per_session = per(with_exports, with_sessions, kSessions);
  std::printf(
      "pmmd RSS: %.0f B per block, %.0f B per export, %.0f B per session "
      "(%llu KiB at start, %llu KiB with %d blocks, %d exports and %d sessions)\n",
      per_block, per_export, per_session, static_cast<unsigned long long>(before),
      static_cast<unsigned long long>(with_sessions), kBlocks, kBlocks, kSessions + 1);
  EXPECT_LT(per_block, 4096);
  EXPECT_LT(per_export, 4096);
  EXPECT_LT(per_session, 65536);
  for (auto* o : others) pmm_disconnect(o);
  pmm_disconnect(c);
}

}  // namespace
}  // namespace pmm::testing
