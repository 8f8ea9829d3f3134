// Integration: real pmmd, real client processes, the public C API.
//
// Each test starts its own daemon (DaemonProcess) on a private socket and
// drives one or more pmm_agent processes, or uses the C API in-process as a
// second client. These are the behaviours a user of pmm relies on: blocks
// shared between processes, references dropped when a holder dies, exports
// that outlive their producer, tokens that expire.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>
#include <string>

#include "daemon_process.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"
)";

std::vector<std::string> agent(const DaemonProcess& d, const std::string& device) {
  return {PMM_AGENT_PATH, d.socket(), device};
}

// Asks the agent to do `cmd`, expects "ok ..." and returns what follows "ok".
std::string ok(Child& c, const std::string& cmd) {
  c.write_line(cmd);
  std::string line = c.read_line();
  EXPECT_EQ(line.rfind("ok", 0), 0u) << cmd << " -> " << line;
  return line.size() > 3 ? line.substr(3) : "";
}

struct Conn {
  pmm_conn* c = nullptr;
  explicit Conn(const DaemonProcess& d, const char* device = "test") {
    pmm_status s = pmm_connect(d.socket().c_str(), device, &c);
    EXPECT_EQ(s, PMM_OK) << pmm_last_error();
  }
  ~Conn() { pmm_disconnect(c); }
};

// Bytes in use in `pool`, as a user would read it: allocate everything that
// is left is not precise enough, so ask for the largest block that fits.
uint64_t largest_allocatable(pmm_conn* c, uint64_t pool_size) {
  uint64_t lo = 0, hi = pool_size;  // binary search on page-sized requests
  while (hi - lo > 4096) {
    uint64_t mid = (lo + hi) / 2 / 4096 * 4096;
    if (mid == lo) break;
    pmm_block* b = nullptr;
    if (pmm_alloc(c, "general", mid, 0, 0, &b) == PMM_OK) {
      pmm_block_put(b);
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

TEST(Sharing, TwoProcessesSeeEachOthersWrites) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Child producer(agent(d, "decoder"));
  Child consumer(agent(d, "scaler"));
  ASSERT_EQ(producer.read_line(), "ready");
  ASSERT_EQ(consumer.read_line(), "ready");

  std::string h = ok(producer, "alloc general 1048576");
  ok(producer, "fill " + h + " 0x5a");
  std::string token = ok(producer, "export " + h + " 1 0");
  std::string hc = ok(consumer, "import " + token);
  ok(consumer, "check " + hc + " 0x5a");  // the consumer sees the producer's bytes
  ok(consumer, "fill " + hc + " 0xc3");
  ok(producer, "check " + h + " 0xc3");  // and the producer sees the consumer's

  // Both name the same block.
  std::string pi = ok(producer, "info " + h), ci = ok(consumer, "info " + hc);
  EXPECT_EQ(pi.substr(0, pi.find(' ')), ci.substr(0, ci.find(' ')));
}

TEST(Sharing, SigkillOfHolderReleasesItsReferences) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Conn observer(d);
  uint64_t before = largest_allocatable(observer.c, 16 << 20);

  Child holder(agent(d, "camera"));
  ASSERT_EQ(holder.read_line(), "ready");
  std::string h = ok(holder, "alloc general 8388608");
  ok(holder, "get " + h);  // two references, both the holder's
  EXPECT_LT(largest_allocatable(observer.c, 16 << 20), before);

  EXPECT_EQ(holder.kill_and_wait(SIGKILL), 128 + SIGKILL);
  // The daemon sees the socket close; every reference goes at once.
  for (int i = 0; i < 200 && largest_allocatable(observer.c, 16 << 20) < before; ++i) {
    usleep(10000);
  }
  EXPECT_EQ(largest_allocatable(observer.c, 16 << 20), before) << d.log();
}

TEST(Sharing, ExportOutlivesTheProducer) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  std::string token;
  {
    Child producer(agent(d, "decoder"));
    ASSERT_EQ(producer.read_line(), "ready");
    std::string h = ok(producer, "alloc general 65536");
    ok(producer, "fill " + h + " 0x77");
    token = ok(producer, "export " + h + " 1 0");
    producer.write_line("quit");
    EXPECT_EQ(producer.wait(), 0);
  }
  // As in a shell pipeline: the consumer starts after the producer is gone.
  Child consumer(agent(d, "display"));
  ASSERT_EQ(consumer.read_line(), "ready");
  std::string hc = ok(consumer, "import " + token);
  ok(consumer, "check " + hc + " 0x77");
  // One import was allowed: the token is spent.
  consumer.write_line("import " + token);
  std::string line = consumer.read_line();
  EXPECT_EQ(line.rfind("err", 0), 0u) << line;
}

TEST(Sharing, UnimportedExportExpiresAndFreesTheBlock) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Conn c(d);
  uint64_t before = largest_allocatable(c.c, 16 << 20);
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_alloc(c.c, "general", 8 << 20, 0, 0, &b), PMM_OK) << pmm_last_error();
  pmm_token t;
  ASSERT_EQ(pmm_export(b, 1, 200, &t), PMM_OK) << pmm_last_error();
  ASSERT_EQ(pmm_block_put(b), PMM_OK);  // only the export holds it now
  EXPECT_LT(largest_allocatable(c.c, 16 << 20), before);
  usleep(600 * 1000);
  pmm_block* late = nullptr;
  EXPECT_EQ(pmm_import(c.c, &t, &late), PMM_E_EXPIRED) << pmm_last_error();
  EXPECT_EQ(largest_allocatable(c.c, 16 << 20), before);
}

TEST(Sharing, PrefaultKeepsTheContentsAndTheSharing) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Conn producer(d, "decoder"), consumer(d, "scaler");
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_alloc(producer.c, "general", 3 << 20, 0, 0, &b), PMM_OK) << pmm_last_error();
  memset(pmm_block_ptr(b), 0x33, 3 << 20);
  pmm_token t;
  ASSERT_EQ(pmm_export(b, 1, 0, &t), PMM_OK) << pmm_last_error();
  pmm_block* c = nullptr;
  ASSERT_EQ(pmm_import(consumer.c, &t, &c), PMM_OK) << pmm_last_error();
  ASSERT_EQ(pmm_block_prefault(c), PMM_OK) << pmm_last_error();
  const auto* in = static_cast<const uint8_t*>(pmm_block_ptr(c));
  for (size_t i = 0; i < (3u << 20); i += 4093) ASSERT_EQ(in[i], 0x33) << i;
  memset(pmm_block_ptr(c), 0x44, 3 << 20);
  EXPECT_EQ(static_cast<const uint8_t*>(pmm_block_ptr(b))[(3 << 20) - 1], 0x44);
  EXPECT_EQ(pmm_block_prefault(nullptr), PMM_E_INVALID);
}

TEST(Sharing, NoDaemonIsAClearError) {
  pmm_conn* c = nullptr;
  EXPECT_EQ(pmm_connect("/tmp/pmm-no-such-dir/pmm.sock", "x", &c), PMM_E_NO_DAEMON);
  EXPECT_NE(std::string(pmm_last_error()).find("/tmp/pmm-no-such-dir/pmm.sock"), std::string::npos)
      << pmm_last_error();
  EXPECT_EQ(c, nullptr);
}

TEST(Sharing, DaemonGoingAwayIsReported) {
  auto d = std::make_unique<DaemonProcess>(kConfig);
  ASSERT_TRUE(d->ok()) << d->log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d->socket().c_str(), "x", &c), PMM_OK);
  d.reset();  // SIGTERM: the daemon exits
  pmm_block* b = nullptr;
  EXPECT_EQ(pmm_alloc(c, "general", 4096, 0, 0, &b), PMM_E_DISCONNECTED) << pmm_last_error();
  pmm_disconnect(c);
}

}  // namespace
}  // namespace pmm::testing
