// Protocol-level tests of pmm::client::Connection against FakeDaemon: how
// libpmm copes with a daemon that is missing, dies, lies or misnumbers its
// replies, and that each pool's fd is mapped once. Behaviour with the real
// pmmd is in api_test.cc.
#include "client/connection.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "client/fake_daemon.h"
#include "os/memory.h"
#include "os/sysv.h"

namespace pmm::client {
namespace {

using testing::block_info;
using testing::kPoolSize;

using testing::FakeDaemon;
using Answer = std::optional<FakeDaemon::Answer>;

// A shmem "pool" the fake hands out: a memfd with a recognisable pattern.
struct FakePool {
  os::UniqueFd fd;
  FakePool() {
    auto f = os::memfd_create("fake-pool", MFD_CLOEXEC);
    EXPECT_TRUE(f.has_value());
    fd = std::move(*f);
    EXPECT_TRUE(os::resize(fd.get(), kPoolSize).has_value());
    auto m = os::map_shared(fd.get(), kPoolSize);
    EXPECT_TRUE(m.has_value());
    for (uint64_t i = 0; i < kPoolSize; i += 4096) m->data()[i] = std::byte(i / 4096 % 251);
  }
};

TEST(ConnectionTest, NoDaemonNamesThePathAndAsksIfPmmdRuns) {
  auto c = Connection::connect("/tmp/pmm-no-such-dir/pmm.sock", "dev");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kNoDaemon);
  EXPECT_NE(c.error().message.find("/tmp/pmm-no-such-dir/pmm.sock"), std::string::npos);
  EXPECT_NE(c.error().message.find("is pmmd running?"), std::string::npos) << c.error().message;
}

TEST(ConnectionTest, HandshakeSendsDeviceAndVersion) {
  std::string device;
  uint16_t version = 0;
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (auto* h = std::get_if<proto::Hello>(&m.body)) {
      device = h->device;
      version = h->protocol_version;
    }
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "decoder");
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(device, "decoder");
  EXPECT_EQ(version, proto::kProtocolVersion);
  EXPECT_EQ((*c)->session_id(), 42u);
  EXPECT_EQ((*c)->daemon_version(), "fake");
}

// A thread keeps its last Hello encoded: connecting again as the same
// device sends it again, as another device sends that one, and a name the
// protocol cannot carry is refused without a stale Hello going out.
TEST(ConnectionTest, EachConnectionSaysTheDeviceItWasGiven) {
  std::vector<std::string> devices;
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (auto* h = std::get_if<proto::Hello>(&m.body)) devices.push_back(h->device);
    return std::nullopt;
  });
  for (const char* device : {"decoder", "decoder", "scaler", "decoder"}) {
    auto c = Connection::connect(d.path(), device);
    ASSERT_TRUE(c) << c.error().describe();
  }
  auto c = Connection::connect(d.path(), std::string(proto::kMaxNameLength + 1, 'x'));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kInvalidArgument) << c.error().describe();
  EXPECT_NE(c.error().message.find("device"), std::string::npos) << c.error().message;
  auto again = Connection::connect(d.path(), "scaler");
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(devices,
            (std::vector<std::string>{"decoder", "decoder", "scaler", "decoder", "scaler"}));
}

TEST(ConnectionTest, VersionMismatchIsAProtocolErrorNamingBoth) {
  FakeDaemon d([](const proto::Message&) -> Answer {
    return FakeDaemon::Reply{
        proto::Welcome{.protocol_version = 99, .session_id = 1, .daemon_version = "future"}};
  });
  auto c = Connection::connect(d.path(), "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kProtocol);
  EXPECT_NE(c.error().message.find("99"), std::string::npos) << c.error().message;
}

TEST(ConnectionTest, RefusedHandshakeKeepsTheDaemonsReason) {
  FakeDaemon d([](const proto::Message&) -> Answer {
    return FakeDaemon::Reply{
        proto::ErrorReply{.code = Errc::kPermission, .message = "uid 1000 may use no pool"}};
  });
  auto c = Connection::connect(d.path(), "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kPermission);
  EXPECT_EQ(c.error().message, "uid 1000 may use no pool");
}

TEST(ConnectionTest, PoolFdIsMappedOnceAndBlocksPointIntoIt) {
  FakePool pool;
  int allocs = 0;
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Allocate>(m.body)) {
      ++allocs;
      bool first = allocs == 1;
      return FakeDaemon::Reply{block_info(static_cast<uint64_t>(allocs), 4096 * 3 * allocs, first),
                               first ? pool.fd.get() : -1};
    }
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c) << c.error().describe();
  auto a = (*c)->allocate({"general"}, 8192, 0, 0);
  ASSERT_TRUE(a) << a.error().describe();
  auto b = (*c)->allocate({"general"}, 8192, 0, 0);
  ASSERT_TRUE(b) << b.error().describe();
  // Block 1 at page 3, block 2 at page 6: the pattern the fake wrote there.
  EXPECT_EQ(a->data[0], std::byte(3));
  EXPECT_EQ(b->data[0], std::byte(6));
  EXPECT_EQ(b->data - a->data, 4096 * 3);
  EXPECT_EQ(a->fd, b->fd);
  EXPECT_GE(a->fd, 0);
  // Writes land in the daemon's memory.
  a->data[1] = std::byte{0x5a};
  auto view = os::map_shared(pool.fd.get(), kPoolSize);
  ASSERT_TRUE(view);
  EXPECT_EQ(view->data()[4096 * 3 + 1], std::byte{0x5a});
}

TEST(ConnectionTest, BlockOutsideItsPoolIsRefusedAndGivenBack) {
  FakePool pool;
  std::atomic<int> puts{0};
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Allocate>(m.body))
      return FakeDaemon::Reply{block_info(7, kPoolSize - 4096, true), pool.fd.get()};
    if (auto* p = std::get_if<proto::Put>(&m.body)) {
      if (p->block_id == 7) ++puts;
      return FakeDaemon::Reply{proto::Ok{}};
    }
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  auto a = (*c)->allocate({}, 8192, 0, 0);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::kProtocol);
  EXPECT_NE(a.error().message.find("does not lie inside pool 'general'"), std::string::npos)
      << a.error().message;
  EXPECT_EQ(puts.load(), 1);
  EXPECT_FALSE((*c)->dead());
}

TEST(ConnectionTest, FirstBlockWithoutFdIsAProtocolError) {
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Allocate>(m.body))
      return FakeDaemon::Reply{block_info(1, 0, false)};
    if (std::holds_alternative<proto::Put>(m.body)) return FakeDaemon::Reply{proto::Ok{}};
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  auto a = (*c)->allocate({}, 8192, 0, 0);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::kProtocol);
  EXPECT_NE(a.error().message.find("without the pool's fd"), std::string::npos)
      << a.error().message;
}

// A BlockInfo of pool "other" (index 1): general's twin.
proto::BlockInfo other_info(uint64_t id, uint64_t offset, bool fd_attached) {
  proto::BlockInfo b = block_info(id, offset, fd_attached);
  b.pool_index = 1;
  b.pool_name = "other";
  return b;
}

size_t open_fds() {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

// Once every pool an Allocate names has its fd here, its reply cannot bring
// one (docs/protocol.md: once per pool per session), and libpmm reads it
// with recv(), without room for one. A daemon that sends one anyway, with a
// pool the request did not name, loses it: the kernel drops the fd (nothing
// leaks into this process), the call fails with kSystem saying so and gives
// the block back, the pool stays unusable on this connection as after a
// full fd table (the daemon will not send the fd again), and the
// connection carries on.
TEST(ConnectionTest, FdSentWhereNoneCouldComeIsLostNeverMisused) {
  FakePool general;
  FakePool other;
  std::atomic<int> allocs{0};
  std::atomic<int> other_puts{0};
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Allocate>(m.body)) {
      switch (++allocs) {
        case 1:
          return FakeDaemon::Reply{block_info(1, 0, true), general.fd.get()};
        case 2:
          return FakeDaemon::Reply{other_info(2, 4096, true), other.fd.get()};  // unasked
        case 3:
          return FakeDaemon::Reply{other_info(3, 8192, false)};  // "sent already"
        default:
          return FakeDaemon::Reply{block_info(4, 4096 * 6, false)};
      }
    }
    if (auto* p = std::get_if<proto::Put>(&m.body)) {
      if (p->block_id == 2 || p->block_id == 3) ++other_puts;
      return FakeDaemon::Reply{proto::Ok{}};
    }
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c) << c.error().describe();
  auto a = (*c)->allocate({"general"}, 8192, 0, 0);
  ASSERT_TRUE(a) << a.error().describe();

  const size_t fds = open_fds();
  auto b = (*c)->allocate({"general"}, 8192, 0, 0);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, Errc::kSystem);
  EXPECT_NE(b.error().message.find("pool 'other'"), std::string::npos) << b.error().message;
  EXPECT_NE(b.error().message.find("dropped"), std::string::npos) << b.error().message;
  EXPECT_EQ(open_fds(), fds);  // the fd never reached this process

  // "other" is unusable from now on, with the reason; nothing else is.
  auto again = (*c)->allocate({"other"}, 8192, 0, 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kSystem);
  EXPECT_NE(again.error().message.find("sent once and lost"), std::string::npos)
      << again.error().message;
  EXPECT_EQ(other_puts.load(), 2);  // both references given back
  EXPECT_FALSE((*c)->dead());
  auto e = (*c)->allocate({"general"}, 8192, 0, 0);
  ASSERT_TRUE(e) << e.error().describe();
  EXPECT_EQ(e->data[0], std::byte(6));
}

// The other side of the same rule: while replies that cannot bring an fd
// are outstanding (a posted put), a request that may (an Import, an
// Allocate of a pool not seen yet) still gets its fd.
TEST(ConnectionTest, FdArrivesWhileRepliesWithoutOneAreOutstanding) {
  FakePool general;
  FakePool other;
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Allocate>(m.body))
      return FakeDaemon::Reply{block_info(1, 0, true), general.fd.get()};
    if (std::holds_alternative<proto::Import>(m.body))
      return FakeDaemon::Reply{other_info(2, 4096 * 5, true), other.fd.get()};
    if (std::holds_alternative<proto::Put>(m.body)) return FakeDaemon::Reply{proto::Ok{}};
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c) << c.error().describe();
  auto a = (*c)->allocate({"general"}, 8192, 0, 0);
  ASSERT_TRUE(a) << a.error().describe();
  ASSERT_TRUE((*c)->post_put(a->id));
  proto::Token of_other{};
  of_other[proto::kTokenPoolByte] = 1;  // the token names pool "other"
  auto b = (*c)->import(of_other);
  ASSERT_TRUE(b) << b.error().describe();
  EXPECT_EQ(b->pool, "other");
  EXPECT_EQ(b->data[0], std::byte(5));
  EXPECT_NE(b->fd, a->fd);
}

// An Import whose token names a pool whose fd is here is read with recv(),
// without room for an fd: a daemon that answers it with another pool's fd
// anyway (pmmd cannot: the token's pool byte is its block's pool) loses
// that fd, and the pool says so, rather than anything mapping wrongly.
TEST(ConnectionTest, ImportOfATokenNamingASettledPoolTakesNoFd) {
  FakePool general;
  FakePool other;
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Allocate>(m.body))
      return FakeDaemon::Reply{block_info(1, 0, true), general.fd.get()};
    if (const auto* i = std::get_if<proto::Import>(&m.body)) {
      if (i->token[0] == 0) return FakeDaemon::Reply{block_info(2, 4096 * 3, false)};
      return FakeDaemon::Reply{other_info(3, 4096 * 5, true), other.fd.get()};
    }
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c) << c.error().describe();
  auto a = (*c)->allocate({"general"}, 8192, 0, 0);
  ASSERT_TRUE(a) << a.error().describe();
  auto same = (*c)->import(proto::Token{});  // pool byte 0: "general", settled
  ASSERT_TRUE(same) << same.error().describe();
  EXPECT_EQ(same->data[0], std::byte(3));
  // The lie: another token naming "general", answered with "other" and its fd.
  proto::Token lie{};
  lie[0] = 1;
  auto lost = (*c)->import(lie);
  ASSERT_FALSE(lost);
  EXPECT_NE(lost.error().message.find("fd was sent once and lost"), std::string::npos)
      << lost.error().message;
}

TEST(ConnectionTest, SysvPoolIsAttachedByShmid) {
  auto id = os::shm_create(IPC_PRIVATE, kPoolSize, 0600);
  ASSERT_TRUE(id) << id.error().describe();
  {
    auto at = os::shm_attach(*id);
    ASSERT_TRUE(at);
    at->data()[8192] = std::byte{0x77};
  }
  FakeDaemon d([&](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Allocate>(m.body)) {
      proto::BlockInfo info = block_info(1, 8192, false);
      info.memory = {.type = proto::PoolType::kSysv, .pool_size = kPoolSize, .shmid = *id};
      return FakeDaemon::Reply{info};
    }
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  auto a = (*c)->allocate({"sysv"}, 8192, 0, 0);
  (void)os::shm_remove(*id);  // gone once the client detaches
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->data[0], std::byte{0x77});
  EXPECT_EQ(a->fd, -1);
  EXPECT_EQ(a->shmid, *id);
}

TEST(ConnectionTest, RefusalKeepsTheConnectionAlive) {
  FakeDaemon d([](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Get>(m.body))
      return FakeDaemon::Reply{
          proto::ErrorReply{.code = Errc::kNotFound, .message = "no block 5 in this session"}};
    if (std::holds_alternative<proto::Put>(m.body)) return FakeDaemon::Reply{proto::Ok{}};
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  auto g = (*c)->get(5);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, Errc::kNotFound);
  EXPECT_EQ(g.error().message, "no block 5 in this session");
  EXPECT_TRUE((*c)->put(5));
}

// A put sent without waiting (libpmm's last put of a block) is answered like
// any request. Its answer is read by the next call that reads the socket (a
// round trip reads it, one read, before its own reply), or by a post once
// kDrainPosted answers are unread: a long run of posts never fills the
// socket nor loses an answer. A refusal is returned by the call after the
// one that read it, naming the block, and that call is not sent.
TEST(ConnectionTest, PostedPutsAreAnsweredAndARefusalNamesTheBlock) {
  FakeDaemon d([](const proto::Message& m) -> Answer {
    if (const auto* p = std::get_if<proto::Put>(&m.body)) {
      if (p->block_id == 99)
        return FakeDaemon::Reply{
            proto::ErrorReply{.code = Errc::kNotFound, .message = "no block 99 in this session"}};
      return FakeDaemon::Reply{proto::Ok{}};
    }
    if (std::holds_alternative<proto::Get>(m.body)) return FakeDaemon::Reply{proto::Ok{}};
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  for (uint64_t id = 1000; id < 2000; ++id) ASSERT_TRUE((*c)->post_put(id)) << "put " << id;
  EXPECT_TRUE((*c)->get(7));
  ASSERT_TRUE((*c)->post_put(99));
  EXPECT_TRUE((*c)->get(7));  // reads the refusal, then its own answer
  const int seen = d.requests();
  auto g = (*c)->get(8);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, Errc::kNotFound);
  EXPECT_NE(g.error().message.find("Put of block 99"), std::string::npos) << g.error().message;
  EXPECT_NE(g.error().message.find("this Get was not sent"), std::string::npos)
      << g.error().message;
  EXPECT_TRUE((*c)->get(8));  // told once; the connection carries on
  EXPECT_EQ(d.requests(), seen + 1);
  EXPECT_EQ(seen, 1 + 1000 + 1 + 1 + 1);  // Hello, the puts, get, put 99, get
}

TEST(ConnectionTest, DaemonGoneIsDisconnectedForEveryLaterCall) {
  FakeDaemon d([](const proto::Message&) -> Answer { return std::nullopt; });  // hangs up
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  auto g = (*c)->get(1);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, Errc::kDisconnected);
  EXPECT_NE(g.error().message.find(d.path()), std::string::npos) << g.error().message;
  const int seen = d.requests();
  // Fails fast, with the same message, without writing to the socket (so
  // no SIGPIPE either: the test process would die of it).
  for (int i = 0; i < 3; ++i) {
    auto p = (*c)->put(1);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().code, Errc::kDisconnected);
    EXPECT_EQ(p.error().message, g.error().message);
  }
  auto a = (*c)->allocate({}, 4096, 0, 0);
  EXPECT_EQ(a.error().code, Errc::kDisconnected);
  EXPECT_EQ(d.requests(), seen);
}

TEST(ConnectionTest, WrongRequestIdKillsTheConnection) {
  FakeDaemon d([](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Get>(m.body))
      return FakeDaemon::Reply{proto::Ok{}, -1, m.request_id + 1};
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  auto g = (*c)->get(1);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, Errc::kProtocol);
  EXPECT_NE(g.error().message.find("echo"), std::string::npos) << g.error().message;
  ASSERT_TRUE((*c)->dead());
  EXPECT_EQ((*c)->put(1).error().code, Errc::kProtocol);
}

TEST(ConnectionTest, WrongReplyTypeIsAProtocolError) {
  FakeDaemon d([](const proto::Message& m) -> Answer {
    if (std::holds_alternative<proto::Export>(m.body)) return FakeDaemon::Reply{proto::Ok{}};
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  auto t = (*c)->export_block(1, 1, 0);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::kProtocol);
  EXPECT_NE(t.error().message.find("answered Export with Ok"), std::string::npos)
      << t.error().message;
}

TEST(ConnectionTest, ConcurrentCallsEachGetTheirOwnReply) {
  FakeDaemon d([](const proto::Message& m) -> Answer {
    if (auto* g = std::get_if<proto::Get>(&m.body)) {
      // Odd ids are refused, with the id in the message: a reply routed to
      // the wrong caller would show.
      if (g->block_id % 2)
        return FakeDaemon::Reply{
            proto::ErrorReply{.code = Errc::kNotFound, .message = std::to_string(g->block_id)}};
      return FakeDaemon::Reply{proto::Ok{}};
    }
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 200; ++i) {
        uint64_t id = static_cast<uint64_t>(t) * 1000 + i;
        auto r = (*c)->get(id);
        bool good = id % 2 ? (!r && r.error().message == std::to_string(id)) : r.has_value();
        if (!good) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ConnectionTest, ListingsFollowEveryPage) {
  FakeDaemon d([](const proto::Message& m) -> Answer {
    if (auto* l = std::get_if<proto::ListSessions>(&m.body)) {
      proto::SessionList page;
      for (uint64_t id = l->after_id + 1; id <= l->after_id + 3 && id <= 7; ++id)
        page.sessions.push_back({.id = id, .device = "d" + std::to_string(id)});
      page.next_after_id = page.sessions.empty() ? l->after_id : page.sessions.back().id;
      page.more = page.next_after_id < 7;
      return FakeDaemon::Reply{page};
    }
    if (std::holds_alternative<proto::ListDevices>(m.body))  // a cursor that never moves
      return FakeDaemon::Reply{proto::DeviceList{.devices = {}, .next_after_id = 0, .more = true}};
    return std::nullopt;
  });
  auto c = Connection::connect(d.path(), "dev");
  ASSERT_TRUE(c);
  auto s = (*c)->list_sessions();
  ASSERT_TRUE(s) << s.error().describe();
  ASSERT_EQ(s->size(), 7u);
  EXPECT_EQ(s->back().device, "d7");
  auto devs = (*c)->list_devices();
  ASSERT_FALSE(devs);
  EXPECT_EQ(devs.error().code, Errc::kProtocol);
}

}  // namespace
}  // namespace pmm::client
