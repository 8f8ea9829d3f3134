// The daemon in-process on a temporary socket, driven by raw protocol
// clients (src/proto + src/os sockets): handshake, allocation with the pool
// fd mapped, sharing, expiry on the daemon's timer, and the robustness
// rules — a malformed message closes only its own session, a client that
// does not read is dropped, stop() leaves nothing behind.
#include "daemon/daemon.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <thread>

#include "os/memory.h"
#include "os/sysv.h"
#include "proto/channel.h"
#include "proto/codec.h"

namespace pmm::daemon {
namespace {

using namespace std::chrono_literals;

constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"

[pools.display]
type = "sysv"
size = "4MiB"
)";

class RunningDaemon {
 public:
  explicit RunningDaemon(const char* config = kConfig) {
    char dir[] = "/tmp/pmm-daemon-test-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/pmm.sock";
    auto c = parse_config(config, "test.toml");
    EXPECT_TRUE(c) << c.error().message;
    DaemonOptions o;
    o.log.quiet = true;
    auto d = Daemon::create(std::move(*c), path_, o);
    EXPECT_TRUE(d) << d.error().describe();
    if (!d) return;
    daemon_ = std::move(*d);
    thread_ = std::thread([this] { status_ = daemon_->run(); });
  }
  ~RunningDaemon() {
    stop();
    ::rmdir(dir_.c_str());
  }
  void stop() {
    if (thread_.joinable()) {
      daemon_->stop();
      thread_.join();
      EXPECT_TRUE(status_) << status_.error().describe();
    }
    daemon_.reset();
  }
  [[nodiscard]] bool ok() const { return daemon_ != nullptr; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
  std::unique_ptr<Daemon> daemon_;
  std::thread thread_;
  Status status_;
};

// A client speaking the protocol by hand, with a receive timeout so a
// daemon that fails to answer fails the test instead of hanging it.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    auto fd = os::connect_unix(path);
    EXPECT_TRUE(fd) << fd.error().describe();
    if (fd) fd_ = std::move(*fd);
    timeval tv{5, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  int fd() const { return fd_.get(); }

  Status send(proto::Body body) {
    return proto::send(fd_.get(), {.request_id = next_id_++, .body = std::move(body)});
  }
  // The next reply; an error for a timeout, a closed socket or bad bytes.
  Result<proto::Envelope> receive() {
    auto in = proto::receive_reply(fd_.get());
    if (!in) return std::unexpected(in.error());
    if (!*in) return fail(Errc::kSystem, "no reply within 5 s");
    return std::move(**in);
  }
  Result<proto::Envelope> call(proto::Body body) {
    if (auto s = send(std::move(body)); !s) return std::unexpected(s.error());
    return receive();
  }
  template <typename T>
  T expect(proto::Body body) {
    auto r = call(std::move(body));
    EXPECT_TRUE(r) << r.error().describe();
    if (!r) return T{};
    if (auto* e = std::get_if<proto::ErrorReply>(&r->message.body)) {
      ADD_FAILURE() << "error reply: " << e->message;
      return T{};
    }
    const T* t = std::get_if<T>(&r->message.body);
    EXPECT_NE(t, nullptr) << proto::message_type_name(proto::type_of(r->message.body));
    if (t && t->kType == proto::MessageType::kBlockInfo) last_fd_ = std::move(r->fd);
    return t ? *t : T{};
  }
  proto::ErrorReply expect_error(proto::Body body) {
    auto r = call(std::move(body));
    EXPECT_TRUE(r) << r.error().describe();
    if (!r) return {};
    auto* e = std::get_if<proto::ErrorReply>(&r->message.body);
    EXPECT_NE(e, nullptr) << proto::message_type_name(proto::type_of(r->message.body));
    return e ? *e : proto::ErrorReply{};
  }
  proto::Welcome hello(const std::string& device) {
    return expect<proto::Welcome>(proto::Hello{.device = device, .pid = 0});
  }
  // Whether the daemon has closed this session: EOF within 5 s.
  bool closed_by_daemon() {
    auto in = receive();
    return !in && in.error().code == Errc::kDisconnected;
  }
  os::UniqueFd take_fd() { return std::move(last_fd_); }

 private:
  os::UniqueFd fd_;
  os::UniqueFd last_fd_;
  uint32_t next_id_ = 1;
};

TEST(Daemon, HandshakeAllocateAndThePoolFdArrivesOncePerSession) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  RawClient c(d.path());
  proto::Welcome w = c.hello("decoder");
  EXPECT_GT(w.session_id, 0u);
  EXPECT_EQ(w.protocol_version, proto::kProtocolVersion);
  EXPECT_EQ(w.daemon_version.rfind("pmmd ", 0), 0u) << w.daemon_version;

  auto a = c.expect<proto::BlockInfo>(proto::Allocate{.pools = {"general"}, .size = 1 << 20});
  EXPECT_EQ(a.pool_name, "general");
  EXPECT_EQ(a.size, 1u << 20);
  ASSERT_TRUE(a.memory.fd_attached);
  os::UniqueFd fd = c.take_fd();
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(a.memory.pool_size, 16u << 20);
  auto map = os::map_shared(fd.get(), a.memory.pool_size);
  ASSERT_TRUE(map) << map.error().describe();
  std::memset(map->data() + a.offset, 0x5a, a.size);

  auto b = c.expect<proto::BlockInfo>(proto::Allocate{.pools = {"general"}, .size = 4096});
  EXPECT_FALSE(b.memory.fd_attached);  // the pool's fd came once
  EXPECT_FALSE(c.take_fd().valid());
  EXPECT_TRUE(b.offset >= a.offset + a.size || b.offset + b.size <= a.offset);

  auto s = c.expect<proto::BlockInfo>(proto::Allocate{.pools = {"display"}, .size = 8192});
  EXPECT_EQ(s.memory.type, proto::PoolType::kSysv);
  EXPECT_FALSE(s.memory.fd_attached);
  EXPECT_GE(s.memory.shmid, 0);
  auto seg = c.expect<proto::SysvSegment>(proto::SysvExport{.block_id = s.block_id});
  EXPECT_EQ(seg.shmid, s.memory.shmid);

  auto pools = c.expect<proto::PoolList>(proto::ListPools{});
  ASSERT_EQ(pools.pools.size(), 2u);
  EXPECT_EQ(pools.pools[0].bytes_used, (1u << 20) + 4096);
  EXPECT_TRUE(pools.pools[0].accessible);

  c.expect<proto::Ok>(proto::Put{.block_id = a.block_id});
  auto again = c.expect_error(proto::Put{.block_id = a.block_id});
  EXPECT_EQ(again.code, Errc::kNotFound);
  EXPECT_NE(again.message.find("holds no reference"), std::string::npos) << again.message;
  auto shm = c.expect_error(proto::SysvExport{.block_id = b.block_id});
  EXPECT_EQ(shm.code, Errc::kUnsupported);
}

TEST(Daemon, BlocksAreSharedByTokenAndSeenThroughEachSessionsOwnMapping) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  RawClient producer(d.path()), consumer(d.path());
  producer.hello("decoder");
  consumer.hello("display");
  auto a = producer.expect<proto::BlockInfo>(proto::Allocate{.size = 65536});
  EXPECT_EQ(a.pool_name, "general");  // no list: the device's pools, in config order
  os::UniqueFd pfd = producer.take_fd();
  auto pmap = os::map_shared(pfd.get(), a.memory.pool_size);
  ASSERT_TRUE(pmap);
  std::memset(pmap->data() + a.offset, 0x77, a.size);
  auto t = producer.expect<proto::TokenReply>(proto::Export{.block_id = a.block_id});
  producer.expect<proto::Ok>(proto::Put{.block_id = a.block_id});

  auto b = consumer.expect<proto::BlockInfo>(proto::Import{.token = t.token});
  EXPECT_EQ(b.block_id, a.block_id);
  ASSERT_TRUE(b.memory.fd_attached);  // first time this session sees the pool
  os::UniqueFd cfd = consumer.take_fd();
  auto cmap = os::map_shared(cfd.get(), b.memory.pool_size);
  ASSERT_TRUE(cmap);
  EXPECT_EQ(static_cast<uint8_t>(cmap->data()[b.offset]), 0x77);
  EXPECT_EQ(static_cast<uint8_t>(cmap->data()[b.offset + b.size - 1]), 0x77);
  auto spent = consumer.expect_error(proto::Import{.token = t.token});
  EXPECT_EQ(spent.code, Errc::kExpired);

  auto blocks = consumer.expect<proto::BlockList>(proto::ListBlocks{});
  ASSERT_EQ(blocks.blocks.size(), 1u);
  ASSERT_EQ(blocks.blocks[0].holders.size(), 1u);
  EXPECT_EQ(blocks.blocks[0].holders[0].device, "default");  // "display" is not declared
  auto sessions = consumer.expect<proto::SessionList>(proto::ListSessions{});
  EXPECT_EQ(sessions.sessions.size(), 2u);
  auto devices = consumer.expect<proto::DeviceList>(proto::ListDevices{});
  // The default device's row (its rules), then its instance for uid 0: the
  // default device is charged per uid.
  ASSERT_EQ(devices.devices.size(), 2u);
  EXPECT_EQ(devices.devices[0].used, 0u);
  EXPECT_EQ(devices.devices[1].name, "default (uid 0)");
  EXPECT_EQ(devices.devices[1].used, 65536u);  // charged to the allocator's device
}

TEST(Daemon, AMalformedMessageGetsAnErrorAndClosesOnlyItsSession) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  RawClient good(d.path());
  good.hello("good");
  auto a = good.expect<proto::BlockInfo>(proto::Allocate{.size = 65536});
  os::UniqueFd fd = good.take_fd();
  auto map = os::map_shared(fd.get(), a.memory.pool_size);
  ASSERT_TRUE(map);
  std::memset(map->data() + a.offset, 0x42, a.size);

  auto valid = proto::encode({.request_id = 9, .body = proto::Get{.block_id = a.block_id}});
  ASSERT_TRUE(valid);
  std::vector<std::byte> truncated(valid->begin(), valid->end() - 3);
  std::vector<std::byte> lying = *valid;
  lying[12] = std::byte{0x7f};  // payload length no longer matches
  std::vector<std::vector<std::byte>> bad = {
      std::vector<std::byte>(3, std::byte{1}),          // shorter than a header
      std::vector<std::byte>(64, std::byte{0xff}),      // garbage
      truncated,                                        // cut short
      lying,                                            // a header that lies
      std::vector<std::byte>(70 * 1024, std::byte{0}),  // over the request limit
  };
  for (const auto& bytes : bad) {
    RawClient evil(d.path());
    if (&bytes != &bad[0]) evil.hello("evil");  // before and after the handshake
    ASSERT_TRUE(os::send_message(evil.fd(), bytes, {}));
    auto reply = evil.receive();
    ASSERT_TRUE(reply) << "message of " << bytes.size() << " bytes: " << reply.error().describe();
    auto* e = std::get_if<proto::ErrorReply>(&reply->message.body);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->code, Errc::kProtocol);
    EXPECT_FALSE(e->message.empty());
    EXPECT_TRUE(evil.closed_by_daemon()) << bytes.size() << " bytes";
  }
  // A request before Hello is refused the same way.
  RawClient rude(d.path());
  auto early = rude.expect_error(proto::ListPools{});
  EXPECT_EQ(early.code, Errc::kProtocol);
  EXPECT_NE(early.message.find("Hello"), std::string::npos) << early.message;
  EXPECT_TRUE(rude.closed_by_daemon());

  // The good session is untouched: its block, its bytes, its requests.
  good.expect<proto::Ok>(proto::Get{.block_id = a.block_id});
  for (size_t i = 0; i < a.size; ++i)
    ASSERT_EQ(static_cast<uint8_t>(map->data()[a.offset + i]), 0x42);
  auto st = good.expect<proto::StatsReply>(proto::StatsRequest{});
  EXPECT_EQ(st.sessions, 1u);  // every bad session is gone
  EXPECT_EQ(st.blocks, 1u);
}

TEST(Daemon, ExportsExpireOnTheDaemonsTimerAndDisconnectsDropReferences) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  RawClient observer(d.path());
  observer.hello("observer");
  {
    RawClient c(d.path());
    c.hello("cam");
    auto a = c.expect<proto::BlockInfo>(proto::Allocate{.size = 1 << 20});
    c.expect<proto::TokenReply>(proto::Export{.block_id = a.block_id, .lifetime_ms = 100});
    c.expect<proto::BlockInfo>(proto::Allocate{.size = 2 << 20});
    c.expect<proto::Ok>(proto::Get{.block_id = a.block_id});
  }  // the socket closes: its three references go; the export keeps one block
  auto blocks = [&] { return observer.expect<proto::StatsReply>(proto::StatsRequest{}).blocks; };
  for (int i = 0; i < 200 && blocks() != 1; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(blocks(), 1u);
  // Nobody imports: the timer (not a request) drops the export's reference.
  for (int i = 0; i < 200 && blocks() != 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(blocks(), 0u);
}

// The daemon takes what a session has queued in one receive, into buffers
// it keeps and never clears: requests sent back to back without waiting
// are all answered, in order, each from its own bytes; a bad one among
// them is answered with an error after those before it, and the session
// closes; a request of exactly kMaxRequestSize reaches the decoder while
// one byte more is refused as too large.
TEST(Daemon, PipelinedRequestsAreAnsweredInOrderUpToABadOne) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  RawClient c(d.path());
  c.hello("pipeliner");
  auto a = c.expect<proto::BlockInfo>(proto::Allocate{.size = 4096});
  // More than one receive's worth (Daemon::kReadBatch) and than one
  // wakeup's (kBatch), of two sizes so leftovers would show.
  constexpr uint32_t kCount = 3 * Daemon::kBatch + 5;
  for (uint32_t i = 0; i < kCount; ++i) {
    proto::Body b =
        i % 2 == 0
            ? proto::Body{proto::Get{.block_id = a.block_id}}
            : proto::Body{proto::Allocate{.pools = {"general", "display"}, .size = 4096 * (i + 1)}};
    ASSERT_TRUE(proto::send(c.fd(), {.request_id = 1000 + i, .body = std::move(b)}));
  }
  for (uint32_t i = 0; i < kCount; ++i) {
    auto r = c.receive();
    ASSERT_TRUE(r) << i << ": " << r.error().describe();
    EXPECT_EQ(r->message.request_id, 1000 + i);
    if (i % 2 == 0) {
      EXPECT_TRUE(std::holds_alternative<proto::Ok>(r->message.body)) << i;
    } else {
      auto* info = std::get_if<proto::BlockInfo>(&r->message.body);
      ASSERT_NE(info, nullptr) << i;
      EXPECT_EQ(info->size, 4096u * (i + 1));
    }
  }
  // Two good requests and a bad one, all at once. (Nothing after the bad
  // one: it may arrive after the daemon read the batch, and a socket closed
  // with a request unread resets the peer's next read.)
  auto bad = proto::encode({.request_id = 2002, .body = proto::Get{.block_id = a.block_id}});
  ASSERT_TRUE(bad);
  (*bad)[0] = std::byte{'X'};  // bad magic
  ASSERT_TRUE(
      proto::send(c.fd(), {.request_id = 2000, .body = proto::Get{.block_id = a.block_id}}));
  ASSERT_TRUE(
      proto::send(c.fd(), {.request_id = 2001, .body = proto::Get{.block_id = a.block_id}}));
  ASSERT_TRUE(os::send_message(c.fd(), *bad, {}));
  for (uint32_t id : {2000u, 2001u}) {
    auto r = c.receive();
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->message.request_id, id);
    EXPECT_TRUE(std::holds_alternative<proto::Ok>(r->message.body));
  }
  auto e = c.receive();
  ASSERT_TRUE(e) << e.error().describe();
  auto* err = std::get_if<proto::ErrorReply>(&e->message.body);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->code, Errc::kProtocol);
  EXPECT_TRUE(c.closed_by_daemon());
}

TEST(Daemon, ARequestOfTheLargestSizeReachesTheDecoderAndOneByteMoreIsTooLarge) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  auto header = proto::encode({.request_id = 5, .body = proto::ListPools{}});
  ASSERT_TRUE(header);
  for (size_t size : {proto::kMaxRequestSize, proto::kMaxRequestSize + 1}) {
    RawClient c(d.path());
    c.hello("big");
    std::vector<std::byte> bytes(size, std::byte{0});
    std::memcpy(bytes.data(), header->data(), header->size());
    const auto payload = static_cast<uint32_t>(size - proto::kHeaderSize);
    std::memcpy(bytes.data() + 12, &payload, sizeof payload);
    ASSERT_TRUE(os::send_message(c.fd(), bytes, {}));
    auto r = c.receive();
    ASSERT_TRUE(r) << r.error().describe();
    auto* e = std::get_if<proto::ErrorReply>(&r->message.body);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->code, Errc::kProtocol);
    if (size == proto::kMaxRequestSize) {
      // Read whole: the decoder answers, with the request's own id.
      EXPECT_EQ(e->message.find("larger than"), std::string::npos) << e->message;
      EXPECT_NE(e->message.find("ListPools"), std::string::npos) << e->message;
      EXPECT_EQ(r->message.request_id, 5u);
    } else {
      EXPECT_NE(e->message.find("larger than 65536"), std::string::npos) << e->message;
    }
    EXPECT_TRUE(c.closed_by_daemon());
  }
}

// Requests never carry fds: one that does is refused and its session
// closed, and pmmd keeps no copy of the fd (the pipe's read end sees EOF
// once the sender closes its own).
TEST(Daemon, ARequestCarryingAnFdIsRefusedAndTheFdIsNotKept) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  RawClient c(d.path());
  c.hello("smuggler");
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  auto bytes = proto::encode({.request_id = 4, .body = proto::ListPools{}});
  ASSERT_TRUE(bytes);
  std::array<int, 1> fds{pipe_fds[1]};
  ASSERT_TRUE(os::send_message(c.fd(), *bytes, fds));
  ::close(pipe_fds[1]);
  auto r = c.receive();
  ASSERT_TRUE(r) << r.error().describe();
  auto* e = std::get_if<proto::ErrorReply>(&r->message.body);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, Errc::kProtocol);
  EXPECT_NE(e->message.find("file descriptors"), std::string::npos) << e->message;
  EXPECT_TRUE(c.closed_by_daemon());
  char ch;
  EXPECT_EQ(::read(pipe_fds[0], &ch, 1), 0);  // EOF: no copy of the write end is left
  ::close(pipe_fds[0]);
}

// The export timer is set again only for an earlier deadline; when the
// earliest export goes first (imported), the timer fires early for nothing
// and is set for the next. Either way every export still expires on time:
// a short one made after a long one, and a later one whose earlier
// neighbour was imported.
TEST(Daemon, ExportsExpireOnTimeWhateverOrderTheyComeAndGoIn) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  RawClient c(d.path());
  c.hello("cam");
  RawClient observer(d.path());
  observer.hello("observer");
  auto exports = [&] { return observer.expect<proto::StatsReply>(proto::StatsRequest{}).exports; };
  auto a = c.expect<proto::BlockInfo>(proto::Allocate{.size = 4096});
  using Clock = std::chrono::steady_clock;

  // Long first (the timer is set for it), then short: the short one must
  // set it earlier.
  auto long_token = c.expect<proto::TokenReply>(
      proto::Export{.block_id = a.block_id, .max_imports = 1, .lifetime_ms = 60'000});
  auto t0 = Clock::now();
  c.expect<proto::TokenReply>(proto::Export{.block_id = a.block_id, .lifetime_ms = 150});
  ASSERT_EQ(exports(), 2u);
  while (exports() != 1 && Clock::now() - t0 < 5s) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(exports(), 1u) << "the 150 ms export outlived 5 s";
  EXPECT_GE(Clock::now() - t0, 150ms);

  // Early one imported before its deadline, later one left: the timer
  // still set for the early one fires, then must be set for the later.
  auto early = c.expect<proto::TokenReply>(
      proto::Export{.block_id = a.block_id, .max_imports = 1, .lifetime_ms = 200});
  auto t1 = Clock::now();
  c.expect<proto::TokenReply>(proto::Export{.block_id = a.block_id, .lifetime_ms = 1500});
  c.expect<proto::BlockInfo>(proto::Import{.token = early.token});
  ASSERT_EQ(exports(), 2u);            // the long one and the 1.5 s one
  std::this_thread::sleep_for(400ms);  // past the imported one's deadline
  if (Clock::now() - t1 < 1400ms) {
    EXPECT_EQ(exports(), 2u);  // (unless this thread slept far longer than asked)
  }
  while (exports() != 1 && Clock::now() - t1 < 10s) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(exports(), 1u) << "the 1.5 s export outlived 10 s";
  EXPECT_GE(Clock::now() - t1, 1500ms);

  // The long one is withdrawn; nothing is left to expire.
  c.expect<proto::Ok>(proto::Unexport{.token = long_token.token});
  EXPECT_EQ(exports(), 0u);
}

TEST(Daemon, AClientThatDoesNotReadItsRepliesIsDroppedAndOthersAreServed) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  RawClient deaf(d.path());
  deaf.hello("deaf");
  RawClient other(d.path());
  other.hello("other");
  auto bytes = proto::encode({.request_id = 1, .body = proto::ListPools{}});
  ASSERT_TRUE(bytes);
  // Send requests without reading a reply until the daemon gives up on us.
  bool dropped = false;
  for (int i = 0; i < 20000 && !dropped; ++i) {
    ssize_t n = ::send(deaf.fd(), bytes->data(), bytes->size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      std::this_thread::sleep_for(1ms);
    } else if (n < 0) {
      dropped = true;  // EPIPE / ECONNRESET: the daemon closed us
    }
  }
  if (!dropped) {
    // The replies queued before the drop are still readable; then EOF.
    for (int i = 0; i < 100000; ++i) {
      auto r = deaf.receive();
      if (!r) {
        dropped = r.error().code == Errc::kDisconnected;
        break;
      }
    }
  }
  EXPECT_TRUE(dropped);
  auto st = other.expect<proto::StatsReply>(proto::StatsRequest{});
  EXPECT_EQ(st.sessions, 1u);
}

TEST(Daemon, StopRemovesTheSocketFileAndTheSysvSegment) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  int shmid = -1;
  {
    RawClient c(d.path());
    c.hello("x");
    shmid = c.expect<proto::BlockInfo>(proto::Allocate{.pools = {"display"}, .size = 4096})
                .memory.shmid;
  }
  ASSERT_GE(shmid, 0);
  EXPECT_TRUE(os::shm_stat(shmid));
  struct stat st;
  EXPECT_EQ(::stat(d.path().c_str(), &st), 0);
  d.stop();
  EXPECT_NE(::stat(d.path().c_str(), &st), 0);
  EXPECT_FALSE(os::shm_stat(shmid));
  auto again = os::connect_unix(d.path());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kNoDaemon);
}

TEST(Daemon, APoolThatCannotBeCreatedNamesTheFileLineAndLimit) {
  auto c = parse_config(
      "[pools.general]\ntype = \"shmem\"\nsize = \"16MiB\"\n\n"
      "[pools.big]\ntype = \"hugetlb\"\nsize = \"1TiB\"\n",
      "test.toml");
  ASSERT_TRUE(c) << c.error().message;
  char dir[] = "/tmp/pmm-daemon-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/pmm.sock";
  DaemonOptions o;
  o.log.quiet = true;
  auto d = Daemon::create(std::move(*c), path, o);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message.rfind("test.toml:5: pool big could not be created: ", 0), 0u)
      << d.error().message;
  EXPECT_NE(d.error().message.find("huge"), std::string::npos) << d.error().message;
  struct stat st;
  EXPECT_NE(::stat(path.c_str(), &st), 0);  // no socket for a daemon that did not start
  ::rmdir(dir);
}

}  // namespace
}  // namespace pmm::daemon
