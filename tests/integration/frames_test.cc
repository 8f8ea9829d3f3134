// Integration (issue 10): what a stream of frames relies on, against a real
// pmmd and real client processes (pmm_agent), through the public C API.
//   - local references: get/put of a held block are counted in libpmm, the
//     daemon shows ONE reference per process, exact after threads hammer it
//     and after a holder is SIGKILLed;
//   - buffer pools: a buffer shared by token comes back to its pool once its
//     importer puts it or dies, and not before;
//   - allocation that waits: served when memory frees, refused at its
//     deadline with what would have fit, and a waiter that is SIGKILLed
//     leaves the queue;
//   - 8 threads on one connection all get their answers;
//   - PMM_CONNECT_POPULATE: writing a frame then takes no page faults.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "client/connection.h"
#include "daemon_process.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

using namespace std::chrono_literals;

// "frames" holds exactly four 256 KiB frames.
constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"

[pools.frames]
type = "shmem"
size = "1MiB"
)";
constexpr uint64_t kFrame = 256 * 1024;

std::vector<std::string> agent(const DaemonProcess& d, const std::string& device) {
  return {PMM_AGENT_PATH, d.socket(), device};
}

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

// The daemon's view of one block, as an admin (the test runs as root) sees
// it: references per holding session, and the total.
struct Seen {
  bool exists = false;
  uint32_t total = 0;
  std::vector<uint32_t> per_session;  // references of each session holder
};

Seen seen(const DaemonProcess& d, uint64_t block_id) {
  Seen out;
  auto admin = client::Connection::connect(d.socket(), "admin");
  EXPECT_TRUE(admin) << admin.error().describe();
  if (!admin) return out;
  auto blocks = (*admin)->list_blocks();
  EXPECT_TRUE(blocks) << blocks.error().describe();
  if (!blocks) return out;
  for (const proto::BlockEntry& b : *blocks) {
    if (b.id != block_id) continue;
    out.exists = true;
    out.total = b.refcount;
    for (const proto::Holder& h : b.holders)
      if (h.kind == proto::HolderKind::kSession) out.per_session.push_back(h.references);
  }
  return out;
}

// Puts are sent without waiting: poll (bounded) until the daemon's books
// show `want`.
template <typename Pred>
bool eventually(Pred want, std::chrono::milliseconds within = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (want()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return want();
}

std::string token_text(const pmm_token& t) {
  char text[PMM_TOKEN_STRLEN];
  pmm_token_format(&t, text);
  return text;
}

TEST(Frames, LocalReferencesAreExactAcrossThreadsAndAKill) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Conn owner(d);
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_alloc(owner.c, "general", 4096, 0, 0, &b), PMM_OK) << pmm_last_error();
  const uint64_t id = pmm_block_id(b);

  // 8 threads, 20 000 get/put pairs each, plus 5 references kept.
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (pmm_block_get(b) != PMM_OK) ++bad;
        if (pmm_block_put(b) != PMM_OK) ++bad;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(pmm_block_get(b), PMM_OK);
  Seen s = seen(d, id);
  ASSERT_TRUE(s.exists);
  EXPECT_EQ(s.per_session, std::vector<uint32_t>{1}) << "one reference for the whole process";

  // Another process imports it, hammers it from 8 threads, keeps 3 more.
  pmm_token tok;
  ASSERT_EQ(pmm_export(b, 1, 0, &tok), PMM_OK) << pmm_last_error();
  Child consumer(agent(d, "consumer"));
  ASSERT_EQ(consumer.read_line(), "ready");
  std::string h = ok(consumer, "import " + token_text(tok));
  ok(consumer, "getput " + h + " 8 20000");
  ok(consumer, "getn " + h + " 3");
  s = seen(d, id);
  EXPECT_EQ(s.per_session, (std::vector<uint32_t>{1, 1}));
  EXPECT_EQ(s.total, 2u);

  // SIGKILL: the daemon drops the consumer's one reference, the owner's stays.
  consumer.kill_and_wait(SIGKILL);
  EXPECT_TRUE(eventually([&] { return seen(d, id).total == 1; })) << seen(d, id).total;

  // The owner's 6 local references: the sixth put frees the block.
  for (int i = 0; i < 5; ++i) ASSERT_EQ(pmm_block_put(b), PMM_OK);
  EXPECT_TRUE(seen(d, id).exists);
  ASSERT_EQ(pmm_block_put(b), PMM_OK);
  EXPECT_TRUE(eventually([&] { return !seen(d, id).exists; }));
}

TEST(Frames, ImportOfAHeldBlockKeepsOneDaemonReference) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Conn c(d);
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_alloc(c.c, "general", 4096, 0, 0, &b), PMM_OK) << pmm_last_error();
  pmm_token tok;
  ASSERT_EQ(pmm_export(b, 1, 0, &tok), PMM_OK) << pmm_last_error();
  pmm_block* again = nullptr;
  ASSERT_EQ(pmm_import(c.c, &tok, &again), PMM_OK) << pmm_last_error();
  EXPECT_EQ(again, b) << "one handle per block per connection";
  const uint64_t id = pmm_block_id(b);  // the handle goes with its last put
  EXPECT_EQ(seen(d, id).total, 1u) << "the import's extra reference was given back";
  ASSERT_EQ(pmm_block_put(b), PMM_OK);
  EXPECT_TRUE(seen(d, id).exists);
  ASSERT_EQ(pmm_block_put(b), PMM_OK);
  EXPECT_TRUE(eventually([&] { return !seen(d, id).exists; }));
}

TEST(Frames, PoolBuffersComeBackAfterImportersPutOrDie) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Conn c(d, "producer");
  pmm_bufpool_options o{};
  o.size = sizeof o;
  o.pools = "frames";
  o.buffer_size = kFrame;
  o.count = 2;
  pmm_bufpool* pool = nullptr;
  ASSERT_EQ(pmm_bufpool_create(c.c, &o, &pool), PMM_OK) << pmm_last_error();

  pmm_block* a = nullptr;
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_bufpool_acquire(pool, 0, &a), PMM_OK) << pmm_last_error();
  ASSERT_EQ(pmm_bufpool_acquire(pool, 0, &b), PMM_OK) << pmm_last_error();
  pmm_block* none = nullptr;
  EXPECT_EQ(pmm_bufpool_acquire(pool, 20, &none), PMM_E_TIMEOUT);
  EXPECT_NE(std::string(pmm_last_error()).find("no buffer came free within 20 ms"),
            std::string::npos)
      << pmm_last_error();

  // Unshared: back at once, locally.
  ASSERT_EQ(pmm_bufpool_release(pool, a), PMM_OK);
  pmm_block* again = nullptr;
  ASSERT_EQ(pmm_bufpool_acquire(pool, 0, &again), PMM_OK) << pmm_last_error();
  EXPECT_EQ(again, a);
  EXPECT_EQ(pmm_bufpool_release(pool, a), PMM_OK);
  EXPECT_EQ(pmm_bufpool_release(pool, a), PMM_E_INVALID) << "released twice";
  ASSERT_EQ(pmm_bufpool_acquire(pool, 0, &a), PMM_OK);
  EXPECT_EQ(pmm_block_put(a), PMM_E_INVALID) << "the pool's reference is not the user's";

  // Shared with two consumers: one puts, one is killed holding its frame.
  std::memset(pmm_block_ptr(a), 0x11, kFrame);
  std::memset(pmm_block_ptr(b), 0x22, kFrame);
  pmm_token ta, tb;
  ASSERT_EQ(pmm_export(a, 1, 0, &ta), PMM_OK) << pmm_last_error();
  ASSERT_EQ(pmm_export(b, 1, 0, &tb), PMM_OK) << pmm_last_error();
  ASSERT_EQ(pmm_bufpool_release(pool, a), PMM_OK);
  ASSERT_EQ(pmm_bufpool_release(pool, b), PMM_OK);
  pmm_bufpool_stats st{};
  st.size = sizeof st;
  ASSERT_EQ(pmm_bufpool_get_stats(pool, &st), PMM_OK);
  EXPECT_EQ(st.shared, 2u);
  EXPECT_EQ(st.free, 0u);
  EXPECT_EQ(pmm_bufpool_acquire(pool, 50, &none), PMM_E_TIMEOUT)
      << "exported and not yet imported: the buffers are not free";

  Child polite(agent(d, "scaler"));
  Child doomed(agent(d, "display"));
  ASSERT_EQ(polite.read_line(), "ready");
  ASSERT_EQ(doomed.read_line(), "ready");
  std::string ha = ok(polite, "import " + token_text(ta));
  std::string hb = ok(doomed, "import " + token_text(tb));
  ok(polite, "check " + ha + " 0x11");
  ok(doomed, "check " + hb + " 0x22");
  EXPECT_EQ(pmm_bufpool_acquire(pool, 50, &none), PMM_E_TIMEOUT) << "both still held";

  ok(polite, "put " + ha + " last");
  pmm_block* back = nullptr;
  ASSERT_EQ(pmm_bufpool_acquire(pool, 2000, &back), PMM_OK) << pmm_last_error();
  EXPECT_EQ(back, a) << "the buffer the polite consumer put";
  EXPECT_EQ(pmm_bufpool_acquire(pool, 50, &none), PMM_E_TIMEOUT) << "the other is still held";

  doomed.kill_and_wait(SIGKILL);
  pmm_block* back2 = nullptr;
  ASSERT_EQ(pmm_bufpool_acquire(pool, 2000, &back2), PMM_OK) << pmm_last_error();
  EXPECT_EQ(back2, b) << "the buffer of the consumer that died";

  ASSERT_EQ(pmm_bufpool_release(pool, back), PMM_OK);
  ASSERT_EQ(pmm_bufpool_release(pool, back2), PMM_OK);
  pmm_bufpool_destroy(pool);
  EXPECT_TRUE(eventually([&] {
    auto admin = client::Connection::connect(d.socket(), "admin");
    auto stats = admin ? (*admin)->stats() : std::unexpected(admin.error());
    return stats && stats->blocks == 0;
  }));
}

TEST(Frames, PoolGrowsToItsMaximum) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Conn c(d);
  pmm_bufpool_options o{};
  o.size = sizeof o;
  o.pools = "frames";
  o.buffer_size = kFrame;
  o.count = 1;
  o.max_count = 3;
  pmm_bufpool* pool = nullptr;
  ASSERT_EQ(pmm_bufpool_create(c.c, &o, &pool), PMM_OK) << pmm_last_error();
  pmm_block* got[3] = {};
  for (auto& g : got) ASSERT_EQ(pmm_bufpool_acquire(pool, 0, &g), PMM_OK) << pmm_last_error();
  pmm_block* none = nullptr;
  EXPECT_EQ(pmm_bufpool_acquire(pool, 10, &none), PMM_E_TIMEOUT);
  // A release from another thread wakes a waiting acquire.
  std::thread later([&] {
    std::this_thread::sleep_for(50ms);
    (void)pmm_bufpool_release(pool, got[1]);
  });
  pmm_block* woken = nullptr;
  EXPECT_EQ(pmm_bufpool_acquire(pool, 3000, &woken), PMM_OK) << pmm_last_error();
  later.join();
  EXPECT_EQ(woken, got[1]);
  pmm_bufpool_destroy(pool);
}

TEST(Frames, WaitingAllocationIsServedWhenMemoryFrees) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Child hog(agent(d, "hog"));
  Child waiter(agent(d, "waiter"));
  ASSERT_EQ(hog.read_line(), "ready");
  ASSERT_EQ(waiter.read_line(), "ready");
  std::string frames[4];
  for (auto& f : frames) f = ok(hog, "alloc frames " + std::to_string(kFrame));

  waiter.write_line("allocwait frames " + std::to_string(kFrame) + " 5000");
  std::this_thread::sleep_for(100ms);  // it is queued by now, not answered
  ok(hog, "put " + frames[2] + " last");
  const auto freed = std::chrono::steady_clock::now();
  std::string line = waiter.read_line(5000);
  EXPECT_EQ(line.rfind("ok", 0), 0u) << line;
  EXPECT_LT(std::chrono::steady_clock::now() - freed, 2s);
}

TEST(Frames, WaitingAllocationIsRefusedAtItsDeadline) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Conn hog(d, "hog");
  pmm_block* f[4];
  for (auto& b : f) ASSERT_EQ(pmm_alloc(hog.c, "frames", kFrame, 0, 0, &b), PMM_OK);
  Conn c(d, "waiter");
  pmm_alloc_options o{};
  o.size = sizeof o;
  o.pools = "frames";
  o.wait_ms = 200;
  pmm_block* b = nullptr;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(pmm_alloc_opts(c.c, kFrame, &o, &b), PMM_E_NO_MEMORY);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 190ms);
  EXPECT_LT(waited, 3s);
  const std::string msg = pmm_last_error();
  EXPECT_NE(msg.find("waited"), std::string::npos) << msg;
  EXPECT_NE(msg.find("frames"), std::string::npos) << msg;

  // Bad waits are refused at once, with what is accepted.
  o.wait_ms = PMM_ALLOC_MAX_WAIT_MS + 1;
  EXPECT_EQ(pmm_alloc_opts(c.c, kFrame, &o, &b), PMM_E_INVALID);
  EXPECT_NE(std::string(pmm_last_error()).find("PMM_ALLOC_MAX_WAIT_MS"), std::string::npos);
  // Refusals no wait can cure come at once.
  o.wait_ms = 5000;
  o.pools = "nosuchpool";
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(pmm_alloc_opts(c.c, kFrame, &o, &b), PMM_E_NOT_FOUND) << pmm_last_error();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  // So is one larger than every pool it may come from: queued, it would
  // hold up every waiter behind it until its deadline.
  o.pools = "frames";
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_EQ(pmm_alloc_opts(c.c, 2 << 20, &o, &b), PMM_E_NO_MEMORY);
  EXPECT_LT(std::chrono::steady_clock::now() - t1, 1s);
  EXPECT_NE(std::string(pmm_last_error()).find("could never be served"), std::string::npos)
      << pmm_last_error();
  for (auto* x : f) pmm_block_put(x);
}

TEST(Frames, AKilledWaiterLeavesTheQueue) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Child hog(agent(d, "hog"));
  Child big(agent(d, "big"));
  Child small(agent(d, "small"));
  ASSERT_EQ(hog.read_line(), "ready");
  ASSERT_EQ(big.read_line(), "ready");
  ASSERT_EQ(small.read_line(), "ready");
  std::string frames[4];
  for (auto& f : frames) f = ok(hog, "alloc frames " + std::to_string(kFrame));

  // First in line: a request for the whole pool; behind it, one frame.
  big.write_line("allocwait frames 1048576 20000");
  std::this_thread::sleep_for(100ms);
  small.write_line("allocwait frames " + std::to_string(kFrame) + " 20000");
  std::this_thread::sleep_for(100ms);
  // First come, first served: a frame freed now is not enough for the head
  // of the line, and the request behind it waits its turn.
  ok(hog, "put " + frames[0] + " last");
  EXPECT_EQ(small.read_line(300), "") << "served before the request ahead of it";

  // The head of the line dies: the next in line is served at once.
  big.kill_and_wait(SIGKILL);
  std::string line = small.read_line(3000);
  EXPECT_EQ(line.rfind("ok", 0), 0u) << line;
}

TEST(Frames, EightThreadsShareOneConnection) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Conn c(d);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        pmm_block* b = nullptr;
        if (pmm_alloc(c.c, "general", 4096 * static_cast<uint64_t>(t + 1), 0, 0, &b) != PMM_OK) {
          ++bad;
          continue;
        }
        if (pmm_block_size(b) != 4096 * static_cast<uint64_t>(t + 1)) ++bad;
        std::memset(pmm_block_ptr(b), t, pmm_block_size(b));
        pmm_token tok;
        if (pmm_export(b, 1, 0, &tok) != PMM_OK || pmm_unexport(c.c, &tok) != PMM_OK) ++bad;
        if (pmm_block_put(b) != PMM_OK) ++bad;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0) << pmm_last_error();
  EXPECT_TRUE(eventually([&] {
    auto admin = client::Connection::connect(d.socket(), "admin");
    auto stats = admin ? (*admin)->stats() : std::unexpected(admin.error());
    return stats && stats->blocks == 0;
  }));
}

long minor_faults() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

TEST(Frames, APopulatedConnectionWritesAFrameWithoutFaults) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  constexpr uint64_t kSize = 4 << 20;
  Conn plain(d, "producer");
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_alloc(plain.c, "general", kSize, 0, 0, &b), PMM_OK) << pmm_last_error();
  long before = minor_faults();
  std::memset(pmm_block_ptr(b), 0x5a, kSize);
  const long plain_faults = minor_faults() - before;
  pmm_token tok;
  ASSERT_EQ(pmm_export(b, 1, 0, &tok), PMM_OK) << pmm_last_error();

  pmm_connect_options o{};
  o.size = sizeof o;
  o.socket_path = d.socket().c_str();
  o.device = "consumer";
  o.flags = PMM_CONNECT_POPULATE;
  pmm_conn* populated = nullptr;
  ASSERT_EQ(pmm_connect_opts(&o, &populated), PMM_OK) << pmm_last_error();
  pmm_block* in = nullptr;
  ASSERT_EQ(pmm_import(populated, &tok, &in), PMM_OK) << pmm_last_error();  // maps + populates
  before = minor_faults();
  std::memset(pmm_block_ptr(in), 0xa5, kSize);
  const long populated_faults = minor_faults() - before;
  EXPECT_GE(plain_faults, 256) << "a plain mapping faults page by page (4 MiB = 1024 pages)";
  // Under ASan the write also touches the range's shadow memory for the
  // first time: one byte per 8, faulted in page by page.
  const long shadow_pages = kSanitized ? static_cast<long>(kSize / 8 / 4096) : 0;
  EXPECT_LT(populated_faults, 16 + shadow_pages) << "plain: " << plain_faults;
  EXPECT_EQ(static_cast<unsigned char*>(pmm_block_ptr(b))[kSize - 1], 0xa5);
  pmm_block_put(in);
  pmm_disconnect(populated);
  pmm_block_put(b);
}

}  // namespace
}  // namespace pmm::testing
