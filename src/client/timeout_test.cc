// Bounded waits of pmm::client::Connection against FakeDaemon: a request the
// daemon never answers times out with a message naming it and the wait,
// other threads' requests on the same connection are answered meanwhile, a
// late reply is undone and never taken for a later request's, and connect
// itself is bounded when the daemon accepts nobody. A real stopped pmmd is
// in tests/integration/client_timeout_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "client/connection.h"
#include "client/fake_daemon.h"
#include "os/memory.h"
#include "os/socket.h"

namespace pmm::client {
namespace {

using testing::block_info;
using testing::kPoolSize;

using namespace std::chrono_literals;
using testing::FakeDaemon;
using Answer = std::optional<FakeDaemon::Answer>;
using Clock = std::chrono::steady_clock;

Result<std::unique_ptr<Connection>> connect(const FakeDaemon& d, std::chrono::milliseconds t) {
  return Connection::connect(
      ConnectOptions{.socket_path = d.path(), .device = "dev", .timeout = t});
}

TEST(ConnectionTimeout, SilentDaemonTimesOutNamingTheCallAndTheWait) {
  FakeDaemon d([](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Get>(m.body)) return FakeDaemon::Ignore{};
    return std::nullopt;
  });
  auto c = connect(d, 200ms);
  ASSERT_TRUE(c) << c.error().describe();
  const auto start = Clock::now();
  auto g = (*c)->get(1);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, Errc::kTimeout);
  EXPECT_NE(g.error().message.find("did not answer Get within 200 ms"), std::string::npos)
      << g.error().message;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 3s);
  EXPECT_FALSE((*c)->dead());  // abandoned, not dead
}

TEST(ConnectionTimeout, OtherThreadsAreAnsweredWhileOneWaits) {
  FakeDaemon d([](const proto::Message& m) -> Answer {
    if (auto* g = std::get_if<proto::Get>(&m.body)) {
      if (g->block_id == 1) return FakeDaemon::Ignore{};
      return FakeDaemon::Reply{proto::Ok{}};
    }
    return std::nullopt;
  });
  auto c = connect(d, 1000ms);
  ASSERT_TRUE(c) << c.error().describe();
  std::atomic<bool> slow_done{false};
  std::thread slow([&] {
    auto g = (*c)->get(1);
    EXPECT_EQ(g.error().code, Errc::kTimeout);
    slow_done = true;
  });
  while (d.requests() < 2) std::this_thread::sleep_for(1ms);  // Hello, Get 1
  // While thread `slow` waits for its reply, this thread's calls go through.
  for (uint64_t id = 2; id < 20; ++id) {
    auto g = (*c)->get(id);
    EXPECT_TRUE(g) << g.error().describe();
  }
  EXPECT_FALSE(slow_done.load());
  slow.join();
}

TEST(ConnectionTimeout, LateReplyIsUndoneAndNeverTakenForALaterRequest) {
  os::UniqueFd pool;
  {
    auto f = os::memfd_create("fake-pool", MFD_CLOEXEC);
    ASSERT_TRUE(f);
    pool = std::move(*f);
    ASSERT_TRUE(os::resize(pool.get(), kPoolSize));
  }
  std::optional<uint32_t> wedged;  // the Allocate left unanswered
  std::vector<uint64_t> puts;
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Allocate>(m.body)) {
      if (!wedged) {
        wedged = m.request_id;
        return FakeDaemon::Ignore{};
      }
      return FakeDaemon::Reply{block_info(8, 8192, false)};
    }
    if (auto* g = std::get_if<proto::Get>(&m.body)) {
      // First the late BlockInfo (bringing the pool's fd), then this
      // request's own answer, a refusal naming it.
      return FakeDaemon::Replies{
          FakeDaemon::Reply{block_info(7, 0, true), pool.get(), *wedged},
          FakeDaemon::Reply{proto::ErrorReply{.code = Errc::kNotFound,
                                              .message = "get " + std::to_string(g->block_id)}}};
    }
    if (auto* p = std::get_if<proto::Put>(&m.body)) {
      puts.push_back(p->block_id);
      return FakeDaemon::Reply{proto::Ok{}};
    }
    return std::nullopt;
  });
  auto c = connect(d, 200ms);
  ASSERT_TRUE(c) << c.error().describe();
  auto a = (*c)->allocate({"general"}, 8192, 0, 0);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::kTimeout);
  EXPECT_NE(a.error().message.find("Allocate"), std::string::npos) << a.error().message;

  auto g = (*c)->get(3);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, Errc::kNotFound);  // its own answer, not the late BlockInfo
  EXPECT_EQ(g.error().message, "get 3");
  // The late block was put back, and the fd it brought was kept: the next
  // block of the pool (sent without the fd) maps.
  auto b = (*c)->allocate({"general"}, 8192, 0, 0);
  ASSERT_TRUE(b) << b.error().describe();
  EXPECT_EQ(b->id, 8u);
  b->data[0] = std::byte{1};
  ASSERT_TRUE((*c)->put(8));
  EXPECT_EQ(puts, (std::vector<uint64_t>{7, 8}));
}

TEST(ConnectionTimeout, ConnectIsBoundedWhenTheDaemonAcceptsNobody) {
  char dir[] = "/tmp/pmm-timeout-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/pmm.sock";
  // A listener that never accepts, with the smallest backlog: the first
  // connections are queued (their Hello is never answered), then connect()
  // itself would wait.
  auto l = os::listen_unix(path, 0);
  ASSERT_TRUE(l) << l.error().describe();
  bool hello_timed_out = false;
  bool connect_timed_out = false;
  for (int i = 0; i < 8 && !connect_timed_out; ++i) {
    const auto start = Clock::now();
    auto c =
        Connection::connect(ConnectOptions{.socket_path = path, .device = "dev", .timeout = 150ms});
    EXPECT_LT(Clock::now() - start, 3s);
    ASSERT_FALSE(c);
    ASSERT_EQ(c.error().code, Errc::kTimeout) << c.error().describe();
    if (c.error().message.find("did not answer Hello within 150 ms") != std::string::npos)
      hello_timed_out = true;
    else if (c.error().message.find("accepted no connection") != std::string::npos)
      connect_timed_out = true;
    else
      ADD_FAILURE() << c.error().message;
  }
  EXPECT_TRUE(hello_timed_out);
  EXPECT_TRUE(connect_timed_out);
  l->reset();
  ::unlink(path.c_str());
  ::rmdir(dir);
}

// Disconnecting waits for the daemon to close its side, so that what the
// session held is back in the pools; a daemon that never does (stopped,
// wedged) holds it only min(timeout, 2 s): the goodbye's read is bounded by
// SO_RCVTIMEO, which is never longer.
TEST(ConnectionTimeout, DisconnectFromADaemonThatNeverClosesIsBounded) {
  for (auto [timeout, bound] : {std::pair{300ms, 300ms}, std::pair{3000ms, 2000ms}}) {
    auto pair = os::socket_pair();
    ASSERT_TRUE(pair) << pair.error().describe();
    os::UniqueFd daemon_side = std::move(pair->second);
    std::thread welcome([&] {  // answers the Hello, then neither reads nor closes
      for (;;) {
        auto in = proto::receive_request(daemon_side.get());
        if (!in) return;
        if (!*in) continue;
        (void)proto::send(daemon_side.get(),
                          {.request_id = (*in)->message.request_id,
                           .body = proto::Welcome{.protocol_version = proto::kProtocolVersion,
                                                  .session_id = 7,
                                                  .daemon_version = "wedged"}});
        return;
      }
    });
    auto c = Connection::handshake(std::move(pair->first), "pair", "dev", timeout);
    welcome.join();
    ASSERT_TRUE(c) << c.error().describe();
    const auto start = Clock::now();
    c->reset();
    const auto took = Clock::now() - start;
    EXPECT_GE(took, bound / 2) << "the goodbye did not wait for the daemon at all";
    EXPECT_LT(took, bound + 500ms) << "timeout " << timeout.count() << " ms";
  }
}

}  // namespace
}  // namespace pmm::client
