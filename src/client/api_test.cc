// libpmm against the real pmmd (spawned on a private socket by
// DaemonProcess): the C++ API of pmm.hpp, and the C API behaviours that
// need threads or a daemon that dies. The C API from C is c_api_test.c.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/shm.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "daemon_process.h"
#include "pmm/pmm.hpp"

namespace {

using pmm::testing::DaemonProcess;

constexpr uint64_t kMiB = 1 << 20;
constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"

[pools.display]
type = "sysv"
size = "4MiB"
)";

// Whether `bytes` can be allocated from "general" right now.
bool fits(const pmm::Connection& c, uint64_t bytes) {
  try {
    (void)c.alloc("general", bytes);
    return true;
  } catch (const pmm::error& e) {
    EXPECT_EQ(e.status(), PMM_E_NO_MEMORY) << e.what();
    return false;
  }
}

TEST(CppApi, NoDaemonThrowsWithTheReason) {
  try {
    pmm::Connection c("dev", "/tmp/pmm-api-test-nowhere/pmm.sock");
    FAIL() << "connected to nothing";
  } catch (const pmm::error& e) {
    EXPECT_EQ(e.status(), PMM_E_NO_DAEMON);
    EXPECT_NE(std::string(e.what()).find("is pmmd running?"), std::string::npos) << e.what();
  }
}

TEST(CppApi, TokenTextRoundTrips) {
  pmm::Token t = pmm::Token::parse("00112233445566778899aabbccddeeff");
  EXPECT_EQ(t.str(), "00112233445566778899aabbccddeeff");
  EXPECT_EQ(pmm::Token::parse(t.str()), t);
  try {
    (void)pmm::Token::parse("not a token");
    FAIL();
  } catch (const pmm::error& e) {
    EXPECT_EQ(e.status(), PMM_E_INVALID);
  }
}

TEST(CppApi, AllocateWriteShareAndRelease) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::Connection producer("producer", d.socket());
  pmm::Connection consumer("consumer", d.socket());

  pmm::Token token;
  {
    pmm::Block b = producer.alloc("general", kMiB, 0, PMM_ALLOC_ZERO);
    ASSERT_GE(b.size(), kMiB);
    EXPECT_EQ(b.pool(), "general");
    EXPECT_EQ(b.as<uint8_t>()[kMiB - 1], 0);
    b.prefault();  // keeps the zeroes
    EXPECT_EQ(b.as<uint8_t>()[kMiB - 1], 0);
    std::memset(b.data(), 0x3c, b.size());
    token = b.export_token(1);
  }  // the producer's reference goes; the export holds the block
  pmm::Block in = consumer.import(token);
  EXPECT_EQ(in.as<uint8_t>()[4321], 0x3c);
  // The export allowed one import.
  EXPECT_THROW((void)consumer.import(token), pmm::error);
}

TEST(CppApi, CopiesShareOneReference) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::Connection c("dev", d.socket());
  {
    pmm::Block a = c.alloc("general", 12 * kMiB);
    pmm::Block copy = a;
    a.reset();
    EXPECT_FALSE(fits(c, 12 * kMiB));  // the copy still holds it
    pmm::Block extra = copy.get_reference();
    copy.reset();
    EXPECT_FALSE(fits(c, 12 * kMiB));  // the independent reference does
  }
  EXPECT_TRUE(fits(c, 12 * kMiB));
}

TEST(CppApi, BlockMayOutliveItsConnectionObject) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::Block b;
  {
    pmm::Connection c("dev", d.socket());
    b = c.alloc("general", 4096);
  }
  std::memset(b.data(), 1, b.size());  // the mapping is still there
  pmm::Connection other("other", d.socket());
  pmm::Block same = other.import(b.export_token());
  EXPECT_EQ(same.as<uint8_t>()[100], 1);
}

TEST(CppApi, SysvExportReachesASysvAttacher) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::Connection c("display", d.socket());
  pmm::Block b = c.alloc("display", 64 * 1024);
  std::memset(b.data(), 0x7e, b.size());
  pmm::SysvSegment s = b.sysv_export();
  auto* at = static_cast<uint8_t*>(shmat(s.shmid, nullptr, SHM_RDONLY));
  ASSERT_NE(at, reinterpret_cast<uint8_t*>(-1));
  EXPECT_EQ(at[s.offset], 0x7e);
  EXPECT_EQ(at[s.offset + s.size - 1], 0x7e);
  shmdt(at);
  b.sysv_unexport();
  pmm::Block m = c.alloc("general", 4096);
  try {
    (void)m.sysv_export();
    FAIL();
  } catch (const pmm::error& e) {
    EXPECT_EQ(e.status(), PMM_E_UNSUPPORTED) << e.what();
  }
}

// One connection, several threads allocating, writing, sharing and freeing
// at once: every block keeps what its thread wrote.
TEST(CppApi, ThreadsShareOneConnection) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::Connection c("threads", d.socket());
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < 100; ++i) {
          pmm::Block b = c.alloc("general", 64 * 1024);
          std::memset(b.data(), t + 1, b.size());
          pmm::Block again = c.import(b.export_token());  // same handle, +1
          if (again.handle() != b.handle()) ++bad;
          for (uint64_t k = 0; k < b.size(); k += 4096)
            if (b.as<uint8_t>()[k] != t + 1) ++bad;
        }
      } catch (const pmm::error& e) {
        ADD_FAILURE() << e.what();
        ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_TRUE(fits(c, 15 * kMiB));  // everything came back
}

// libpmm reads a reply with recv(), without room for an fd, when no reply
// outstanding can bring one (a pool's fd comes once per session); an
// Import of a block from a pool the connection has not seen must still get
// its fd while another thread's allocations from a known pool are read
// that way. Each round is a fresh connection, so the import is the one
// that brings "frames"' fd, racing with the other thread's traffic.
TEST(CppApi, ImportBringsItsPoolFdWhileAnotherThreadAllocates) {
  DaemonProcess d(R"(
[pools.general]
type = "shmem"
size = "16MiB"

[pools.frames]
type = "shmem"
size = "4MiB"
)");
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::Connection producer("producer", d.socket());
  for (int round = 0; round < 20; ++round) {
    pmm::Block frame = producer.alloc("frames", 64 * 1024);
    std::memset(frame.data(), round + 1, frame.size());
    const pmm::Token token = frame.export_token(1);
    pmm::Connection c("consumer", d.socket());
    (void)c.alloc("general", 4096);  // "general"'s fd is here: its replies bring none
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::thread allocator([&] {
      try {
        while (!stop) (void)c.alloc("general", 4096);
      } catch (const pmm::error& e) {
        ADD_FAILURE() << e.what();
        ++bad;
      }
    });
    try {
      pmm::Block got = c.import(token);
      EXPECT_EQ(got.pool(), "frames");
      for (uint64_t k = 0; k < got.size(); k += 4096)
        if (got.as<uint8_t>()[k] != round + 1) ++bad;
    } catch (const pmm::error& e) {
      ADD_FAILURE() << "round " << round << ": " << e.what();
      ++bad;
    }
    stop = true;
    allocator.join();
    ASSERT_EQ(bad.load(), 0) << "round " << round;
  }
}

// pmm_alloc keeps the last pool list it parsed on each thread, and the
// last Allocate encoded: a list changed in place (same pointer, new text),
// or other sizes, must reach the daemon as written. Handles freed by a last
// put are reused: a new block's handle says the new block's pool and size.
TEST(CApi, ChangedPoolListsAndReusedHandlesSayWhatWasAskedFor) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "dev", &c), PMM_OK) << pmm_last_error();
  char pools[16] = "general";
  for (int round = 0; round < 3; ++round) {
    std::strcpy(pools, "general");
    pmm_block* a = nullptr;
    ASSERT_EQ(pmm_alloc(c, pools, 4096, 0, 0, &a), PMM_OK) << pmm_last_error();
    EXPECT_STREQ(pmm_block_pool(a), "general");
    EXPECT_EQ(pmm_block_size(a), 4096u);
    ASSERT_EQ(pmm_block_put(a), PMM_OK) << pmm_last_error();

    std::strcpy(pools, "display");  // the same buffer, another pool
    pmm_block* b = nullptr;
    ASSERT_EQ(pmm_alloc(c, pools, 2 * 4096, 0, 0, &b), PMM_OK) << pmm_last_error();
    EXPECT_STREQ(pmm_block_pool(b), "display");
    EXPECT_EQ(pmm_block_size(b), 2u * 4096);
    std::memset(pmm_block_ptr(b), 0x5a, pmm_block_size(b));
    ASSERT_EQ(pmm_block_put(b), PMM_OK) << pmm_last_error();

    std::strcpy(pools, "nowhere");
    pmm_block* none = nullptr;
    EXPECT_EQ(pmm_alloc(c, pools, 4096, 0, 0, &none), PMM_E_NOT_FOUND) << pmm_last_error();
    EXPECT_NE(std::string(pmm_last_error()).find("nowhere"), std::string::npos) << pmm_last_error();
  }
  pmm_disconnect(c);
}

// Gets and puts of one handle from several threads at once, with requests
// pipelined: the handle outlives them all and the daemon's count ends where
// it began (the last put frees the block).
TEST(CApi, ConcurrentGetsAndPutsOfOneHandle) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "dev", &c), PMM_OK) << pmm_last_error();
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_alloc(c, "general", 15 * kMiB, 0, 0, &b), PMM_OK) << pmm_last_error();
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        if (pmm_block_get(b) != PMM_OK) ++bad;
        if (pmm_block_put(b) != PMM_OK) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  pmm::Connection other("other", d.socket());
  EXPECT_FALSE(fits(other, 15 * kMiB));  // still held, once
  EXPECT_EQ(pmm_block_put(b), PMM_OK) << pmm_last_error();
  // The last put goes out without waiting for its reply (pmm.h), so another
  // connection may ask before pmmd has read it: it waits for the memory.
  EXPECT_NO_THROW((void)other.alloc_wait("general", 15 * kMiB, std::chrono::seconds(5)));
  pmm_disconnect(c);
}

TEST(CppApi, DaemonKilledMeansDisconnectedNotSigpipe) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::Connection c("victim", d.socket());
  pmm::Block b = c.alloc("general", 4096);
  ::kill(d.pid(), SIGKILL);
  (void)d.stop();
  for (int i = 0; i < 2; ++i) {
    try {
      (void)c.alloc("general", 4096);
      FAIL();
    } catch (const pmm::error& e) {
      EXPECT_EQ(e.status(), PMM_E_DISCONNECTED);
      EXPECT_NE(std::string(e.what()).find(d.socket()), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW((void)b.export_token(), pmm::error);
}

}  // namespace

// pmm.hpp's buffer pool: acquire/release by RAII, a buffer shared with
// another connection comes back once that connection lets it go.
TEST(CppApi, BufferPoolRecyclesAndWaitsForImporters) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::Connection producer("producer", d.socket());
  pmm::BufferPool pool(producer, "general", 64 * 1024, /*count=*/1);
  void* first = nullptr;
  {
    pmm::Buffer b = pool.acquire();
    first = b.data();
    std::memset(b.data(), 0x3c, b.size());
  }  // released
  pmm::Token t;
  {
    pmm::Buffer b = pool.acquire();
    EXPECT_EQ(b.data(), first) << "the same buffer, recycled";
    t = b.export_token();
  }  // released, but exported: it comes back when the importer is done
  EXPECT_EQ(pool.stats().shared, 1u);
  try {
    (void)pool.acquire(std::chrono::milliseconds(30));
    FAIL() << "acquired a buffer an importer may still use";
  } catch (const pmm::error& e) {
    EXPECT_EQ(e.status(), PMM_E_TIMEOUT) << e.what();
  }
  {
    pmm::Connection consumer("consumer", d.socket());
    pmm::Block in = consumer.import(t);
    EXPECT_EQ(static_cast<unsigned char*>(in.data())[100], 0x3c);
  }  // the consumer puts and disconnects
  pmm::Buffer back = pool.acquire(std::chrono::milliseconds(3000));
  EXPECT_EQ(back.data(), first);
}

// Connection(pmm_connect_options) with PMM_CONNECT_POPULATE, and alloc_wait.
TEST(CppApi, PopulatedConnectionAndWaitingAllocation) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_connect_options o = {};
  o.socket_path = d.socket().c_str();
  o.device = "dev";
  o.flags = PMM_CONNECT_POPULATE;
  pmm::Connection c(o);
  pmm::Block big = c.alloc("general", 12 * kMiB);
  std::thread later([b = std::move(big)]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    b.reset();  // frees 12 MiB, which the waiter below needs
  });
  pmm::Block got = c.alloc_wait("general", 12 * kMiB, std::chrono::milliseconds(5000));
  later.join();
  EXPECT_EQ(got.size(), 12 * kMiB);
  o.flags = 0x80;
  try {
    pmm::Connection bad(o);
    FAIL() << "unknown connect flag accepted";
  } catch (const pmm::error& e) {
    EXPECT_EQ(e.status(), PMM_E_INVALID) << e.what();
  }
}
