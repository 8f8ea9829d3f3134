// Integration: libpmm against a real pmmd that stops answering (SIGSTOP).
// Every call, connect included, comes back with PMM_E_TIMEOUT within the
// connection's timeout instead of hanging; once the daemon runs again the
// connection carries on, and what the timed-out call was given late is
// given back, as the daemon's ledger shows.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <string>

#include "client/connection.h"
#include "daemon_process.h"
#include "ledger_probe.h"
#include "pmm/pmm.hpp"

namespace pmm::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"
)";

// Stops the daemon for the scope of the object.
struct Stopped {
  pid_t pid;
  explicit Stopped(pid_t p) : pid(p) { ::kill(pid, SIGSTOP); }
  ~Stopped() { ::kill(pid, SIGCONT); }
};

TEST(ClientTimeout, StoppedDaemonTimesOutEveryCallAndTheConnectionRecovers) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_connect_options o = {};
  o.size = sizeof o;
  o.socket_path = d.socket().c_str();
  o.device = "dev";
  o.timeout_ms = 300;
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect_opts(&o, &c), PMM_OK) << pmm_last_error();
  pmm_block* held = nullptr;
  ASSERT_EQ(pmm_alloc(c, "general", 65536, 0, 0, &held), PMM_OK) << pmm_last_error();
  std::memset(pmm_block_ptr(held), 0x2a, 65536);
  {
    Stopped stop(d.pid());
    auto start = Clock::now();
    pmm_block* b = nullptr;
    ASSERT_EQ(pmm_alloc(c, "general", 65536, 0, 0, &b), PMM_E_TIMEOUT);
    EXPECT_LT(Clock::now() - start, 3s);
    std::string what = pmm_last_error();
    EXPECT_NE(what.find("did not answer Allocate within 300 ms"), std::string::npos) << what;
    // A reference to a held block is counted in libpmm: no daemon needed.
    EXPECT_EQ(pmm_block_get(held), PMM_OK) << pmm_last_error();

    // A new connection times out too (the daemon accepts nothing now).
    start = Clock::now();
    pmm_conn* other = nullptr;
    EXPECT_EQ(pmm_connect_opts(&o, &other), PMM_E_TIMEOUT);
    EXPECT_LT(Clock::now() - start, 5s);
    what = pmm_last_error();
    EXPECT_NE(what.find("Hello"), std::string::npos) << what;
    try {
      pmm::Connection cpp("dev", d.socket(), 200ms);
      FAIL() << "connected to a stopped daemon";
    } catch (const pmm::error& e) {
      EXPECT_EQ(e.status(), PMM_E_TIMEOUT) << e.what();
    }
  }
  // Running again: the connection carries on, its block intact.
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_alloc(c, "general", 4096, 0, 0, &b), PMM_OK) << pmm_last_error();
  EXPECT_EQ(static_cast<uint8_t*>(pmm_block_ptr(held))[1000], 0x2a);
  pmm_token t;
  ASSERT_EQ(pmm_export(held, 1, 0, &t), PMM_OK) << pmm_last_error();
  ASSERT_EQ(pmm_unexport(c, &t), PMM_OK) << pmm_last_error();
  // The late Allocate was given back: two blocks, one reference each.
  EXPECT_EQ(blocks_in_ledger(d), 2u);
  ASSERT_EQ(pmm_block_put(held), PMM_OK) << pmm_last_error();  // the local get's
  ASSERT_EQ(pmm_block_put(held), PMM_OK) << pmm_last_error();
  ASSERT_EQ(pmm_block_put(b), PMM_OK) << pmm_last_error();
  EXPECT_EQ(blocks_in_ledger(d), 0u);
  pmm_disconnect(c);
}

// A program that sets no timeout still never hangs: the default bound (5 s).
TEST(ClientTimeout, DefaultBoundAppliesToPlainPmmConnect) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "dev", &c), PMM_OK) << pmm_last_error();
  {
    Stopped stop(d.pid());
    const auto start = Clock::now();
    pmm_block* b = nullptr;
    EXPECT_EQ(pmm_alloc(c, "general", 4096, 0, 0, &b), PMM_E_TIMEOUT) << pmm_last_error();
    const auto took = Clock::now() - start;
    EXPECT_GE(took, 4s);
    EXPECT_LT(took, 10s);
    EXPECT_NE(std::string(pmm_last_error()).find("5000 ms"), std::string::npos) << pmm_last_error();
  }
  pmm_disconnect(c);
}

}  // namespace
}  // namespace pmm::testing
