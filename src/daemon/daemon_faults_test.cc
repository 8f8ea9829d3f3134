// pmmd under injected system-call faults (issue 9, the fault seam of
// src/os/fault.h): pool creation whose Nth memfd_create, mmap, shmget or
// shmat fails; accept, recvmsg and sendmsg failing in the running loop. Each
// case checks what a user would notice — a clear error naming the pool and
// the call, nothing left behind, no busy loop, the affected session told
// why or closed, every other session and its block untouched — and then the
// books: the daemon's own invariant walk (CheckRequest, on its thread) and,
// after the loop stopped, Ledger::check_invariants with no block left over.
//
// Faults are process-wide and the daemon runs in this process, so who makes
// the faulted call must be arranged:
// - Pool creation runs on the test thread before any loop exists: every
//   memfd_create/mmap/shmget/shmat counted is Daemon::create's.
// - accept: only the daemon accepts; the test only connects.
// - recvmsg/sendmsg: the test's Client speaks the protocol with the raw
//   ::send and ::recvmsg, never through src/os, so the seam counts only the
//   daemon's calls. A fault is armed only once the loop thread sits blocked
//   in epoll_wait (/proc/self/task/TID/syscall), so that nothing left of
//   the request before can take it: the first call counted is the daemon
//   reading the request the test sends next (one recvmmsg, which the seam
//   counts as Call::kRecvmsg).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/daemon.h"
#include "os/fault.h"
#include "os/memory.h"
#include "os/sys_error.h"
#include "os/sysv.h"
#include "proto/channel.h"
#include "proto/codec.h"

namespace pmm::daemon {
namespace {

using namespace std::chrono_literals;
using os::Call;

// Three pools so that a fault in the last one must undo the first two (a
// memfd and a SysV segment).
constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "4MiB"

[pools.display]
type = "sysv"
size = "1MiB"

[pools.third]
type = "shmem"
size = "1MiB"
)";

std::string temp_dir() {
  char dir[] = "/tmp/pmm-faults-test-XXXXXX";
  EXPECT_NE(::mkdtemp(dir), nullptr);
  return dir;
}

size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// The SysV segments this process created: other tests may create and
// remove their own meanwhile (ctest -j).
std::set<int> shm_ids() {
  std::set<int> ids;
  auto l = os::shm_list();
  EXPECT_TRUE(l) << l.error().describe();
  if (l)
    for (const auto& s : *l)
      if (s.creator_pid == ::getpid()) ids.insert(s.shmid);
  return ids;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Result<std::unique_ptr<Daemon>> create_daemon(const std::string& socket_path) {
  auto c = parse_config(kConfig, "test.toml");
  if (!c) return std::unexpected(c.error());
  DaemonOptions o;
  o.log.quiet = true;
  return Daemon::create(std::move(*c), socket_path, o);
}

// The daemon in-process, with its loop thread's id for /proc.
class RunningDaemon {
 public:
  RunningDaemon() : dir_(temp_dir()), path_(dir_ + "/pmm.sock") {
    auto d = create_daemon(path_);
    EXPECT_TRUE(d) << d.error().describe();
    if (!d) return;
    daemon_ = std::move(*d);
    thread_ = std::thread([this] {
      tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
      status_ = daemon_->run();
    });
    while (tid_ == 0) std::this_thread::yield();
  }
  ~RunningDaemon() {
    stop_and_check();
    ::rmdir(dir_.c_str());
  }
  // Stops the loop, then walks the books it left: every invariant holds and
  // no block outlived its sessions (no test here makes an export).
  void stop_and_check() {
    if (!thread_.joinable()) return;
    os::clear_faults();
    daemon_->stop();
    thread_.join();
    EXPECT_TRUE(status_) << status_.error().describe();
    core::Ledger& l = daemon_->ledger();
    for (size_t i = 0; i < l.pool_count(); ++i) {
      auto s = l.pool(i).check_invariants();
      EXPECT_TRUE(s) << s.error().describe();
    }
    auto s = l.check_invariants();
    EXPECT_TRUE(s) << s.error().describe();
    EXPECT_TRUE(l.blocks().empty()) << l.blocks().size() << " blocks left after every session";
    daemon_.reset();
  }
  [[nodiscard]] bool ok() const { return daemon_ != nullptr; }
  [[nodiscard]] const std::string& path() const { return path_; }

  // Waits until the loop thread is blocked in epoll_wait: it has finished
  // every call for what it was woken for.
  void wait_idle() const {
    const std::string file = fmt::format("/proc/self/task/{}/syscall", tid_.load());
    for (int i = 0; i < 2000; ++i) {
      std::ifstream in(file);
      long nr = -1;
      if (in >> nr && (nr == SYS_epoll_wait || nr == SYS_epoll_pwait)) return;
      std::this_thread::sleep_for(1ms);
    }
    ADD_FAILURE() << "the daemon's loop did not go idle within 2 s";
  }
  // CPU time (user + system) the loop thread has used.
  [[nodiscard]] std::chrono::milliseconds loop_cpu() const {
    std::ifstream in(fmt::format("/proc/self/task/{}/stat", tid_.load()));
    std::string all((std::istreambuf_iterator<char>(in)), {});
    std::istringstream rest(all.substr(all.rfind(')') + 2));
    std::string field;
    uint64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    return std::chrono::milliseconds((utime + stime) * 1000 / ::sysconf(_SC_CLK_TCK));
  }

 private:
  std::string dir_, path_;
  std::unique_ptr<Daemon> daemon_;
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  Status status_;
};

// A protocol client on the raw socket calls, outside the seam (see the top).
class Client {
 public:
  explicit Client(const std::string& path) {
    auto fd = os::connect_unix(path);  // connect is not a seam call
    EXPECT_TRUE(fd) << fd.error().describe();
    if (fd) fd_ = std::move(*fd);
  }
  void send(proto::Body body) {
    auto bytes = proto::encode({.request_id = next_id_++, .body = std::move(body)});
    ASSERT_TRUE(bytes) << bytes.error().describe();
    ASSERT_EQ(::send(fd_.get(), bytes->data(), bytes->size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes->size()))
        << std::strerror(errno);
  }
  // The next reply (kProtocol if it does not decode), kDisconnected at EOF.
  Result<proto::Envelope> receive(int timeout_ms = 5000) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) == 0) return fail(Errc::kSystem, "no reply in {} ms", timeout_ms);
    std::vector<std::byte> buf(proto::kMaxReplySize);
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      return fail(Errc::kDisconnected, "the daemon closed the connection");
    }
    if (n < 0) return fail(Errc::kSystem, "recvmsg: {}", std::strerror(errno));
    proto::Envelope e;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      e.fd = os::UniqueFd(fd);
    }
    buf.resize(static_cast<size_t>(n));
    auto m = proto::decode_reply(buf);
    if (!m) return std::unexpected(m.error());
    e.message = std::move(*m);
    return e;
  }
  template <typename T>
  T expect(proto::Body body) {
    send(std::move(body));
    auto r = receive();
    EXPECT_TRUE(r) << r.error().describe();
    if (!r) return T{};
    if (auto* e = std::get_if<proto::ErrorReply>(&r->message.body)) {
      ADD_FAILURE() << "error reply: " << e->message;
      return T{};
    }
    T* t = std::get_if<T>(&r->message.body);
    EXPECT_NE(t, nullptr) << proto::message_type_name(proto::type_of(r->message.body));
    if (t && r->fd) last_fd_ = std::move(r->fd);
    return t ? std::move(*t) : T{};
  }
  void hello(const std::string& device) {
    expect<proto::Welcome>(proto::Hello{.device = device, .pid = 0});
  }
  // Whether the daemon closes this connection within 5 s (replies first
  // are skipped).
  bool closed_by_daemon() {
    for (int i = 0; i < 64; ++i) {
      auto r = receive();
      if (!r && r.error().code == Errc::kDisconnected) return true;
      if (!r && r.error().code != Errc::kProtocol) return false;
    }
    return false;
  }
  os::UniqueFd take_fd() { return std::move(last_fd_); }

 private:
  os::UniqueFd fd_;
  os::UniqueFd last_fd_;
  uint32_t next_id_ = 1;
};

// A session that holds a block with a pattern in it: whatever happens to
// another session, this one must keep its block, its bytes and its service.
class Bystander {
 public:
  explicit Bystander(const std::string& path) : c_(path) {
    c_.hello("bystander");
    block_ = c_.expect<proto::BlockInfo>(proto::Allocate{.pools = {"general"}, .size = 65536});
    os::UniqueFd fd = c_.take_fd();
    EXPECT_TRUE(fd.valid());
    auto m = os::map_shared(fd.get(), block_.memory.pool_size);
    EXPECT_TRUE(m) << m.error().describe();
    if (m) map_ = std::move(*m);
    if (map_.data() != nullptr) std::memset(map_.data() + block_.offset, 0xa5, block_.size);
  }
  // The block is still ours, intact; the daemon answers; its books are
  // clean; `sessions` and `blocks` are what is live daemon-wide.
  void check(uint64_t sessions, uint64_t blocks) {
    c_.expect<proto::Ok>(proto::Get{.block_id = block_.block_id});
    c_.expect<proto::Ok>(proto::Put{.block_id = block_.block_id});
    ASSERT_NE(map_.data(), nullptr);
    const auto* p = reinterpret_cast<const uint8_t*>(map_.data() + block_.offset);
    EXPECT_TRUE(std::all_of(p, p + block_.size, [](uint8_t b) { return b == 0xa5; }));
    auto st = c_.expect<proto::StatsReply>(proto::StatsRequest{});
    EXPECT_EQ(st.sessions, sessions);
    EXPECT_EQ(st.blocks, blocks);
    auto chk = c_.expect<proto::CheckReply>(proto::CheckRequest{});
    EXPECT_EQ(chk.violation, "");
  }
  uint64_t refused(std::string_view cause) {
    auto st = c_.expect<proto::StatsReply>(proto::StatsRequest{});
    for (const auto& r : st.refused)
      if (r.cause == cause) return r.count;
    return 0;
  }

 private:
  Client c_;
  proto::BlockInfo block_;
  os::Mapping map_;
};

// ---- pool creation ----------------------------------------------------------

struct CreateFault {
  Call call;
  int err;
  uint64_t nth;
  const char* pool;  // the pool the fault lands in
  const char* what;  // how the message names the call
};

class DaemonCreateFault : public ::testing::TestWithParam<CreateFault> {};

TEST_P(DaemonCreateFault, FailsNamingThePoolAndTheCallAndLeavesNothingBehind) {
  const CreateFault& p = GetParam();
  const std::string dir = temp_dir();
  const std::string path = dir + "/pmm.sock";
  const size_t fds_before = open_fds();
  const std::set<int> shm_before = shm_ids();
  {
    os::ScopedFault f(p.call, p.err, p.nth);
    auto d = create_daemon(path);
    ASSERT_FALSE(d);
    EXPECT_EQ(f.hits(), 1u);
    const std::string& m = d.error().message;
    EXPECT_EQ(d.error().sys_errno, p.err) << m;
    EXPECT_NE(m.find(fmt::format("pool {} could not be created", p.pool)), std::string::npos) << m;
    EXPECT_NE(m.find(p.what), std::string::npos) << m;
    EXPECT_NE(m.find(os::errno_text(p.err)), std::string::npos) << m;
  }
  EXPECT_FALSE(exists(path)) << "a daemon that did not start left its socket";
  EXPECT_EQ(open_fds(), fds_before);
  EXPECT_EQ(shm_ids(), shm_before);  // the display pool's segment went with it
  ::rmdir(dir.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Calls, DaemonCreateFault,
    ::testing::Values(CreateFault{Call::kMemfdCreate, ENOMEM, 1, "general", "memfd_create("},
                      CreateFault{Call::kMemfdCreate, EMFILE, 2, "third", "memfd_create("},
                      CreateFault{Call::kMmap, ENOMEM, 1, "general", "mmap("},
                      CreateFault{Call::kMmap, EMFILE, 2, "third", "mmap("},
                      CreateFault{Call::kShmget, ENOMEM, 1, "display", "shmget("},
                      CreateFault{Call::kShmget, EMFILE, 1, "display", "shmget("},
                      CreateFault{Call::kShmat, ENOMEM, 1, "display", "shmat("},
                      CreateFault{Call::kShmat, EMFILE, 1, "display", "shmat("}));

TEST(DaemonFaults, AFailedMmapLeavesNothingThatBlocksARetryOnTheSameSocket) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/pmm.sock";
  {
    os::ScopedFault f(Call::kMmap, ENOMEM, 2);
    ASSERT_FALSE(create_daemon(path));
    EXPECT_EQ(f.hits(), 1u);
  }
  auto d = create_daemon(path);
  ASSERT_TRUE(d) << d.error().describe();
  std::thread t([&] { (void)(*d)->run(); });
  {
    Client c(path);
    c.hello("retry");
    auto b = c.expect<proto::BlockInfo>(proto::Allocate{.pools = {"third"}, .size = 4096});
    EXPECT_EQ(b.pool_name, "third");
  }
  (*d)->stop();
  t.join();
  d->reset();
  ::rmdir(dir.c_str());
}

// ---- accept -----------------------------------------------------------------

class DaemonAcceptFault : public ::testing::TestWithParam<int> {};

// One failed accept (only the daemon accepts in this process). Out of fds
// (EMFILE, ENFILE), the daemon promises the waiting client a reason
// (daemon.h, docs/protocol.md "refused connections"); EINTR is retried;
// EAGAIN and ECONNABORTED leave the connection in the backlog, which the
// level-triggered listener brings back; ENOMEM pauses accepting for 100 ms.
// Either way the next client is served and nobody else loses anything.
TEST_P(DaemonAcceptFault, TheDaemonKeepsServingAndTheRefusedClientIsToldWhy) {
  const int err = GetParam();
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  Bystander by(d.path());
  d.wait_idle();
  std::optional<Client> first;
  {
    os::ScopedFault f(Call::kAccept, err);
    first.emplace(d.path());
    // A refused client may find its connection closed before it says
    // Hello (EPIPE): it only reads, as libpmm does after a failed send.
    const bool refused = err == EMFILE || err == ENFILE;
    if (!refused) first->send(proto::Hello{.device = "first", .pid = 0});
    auto r = first->receive();
    ASSERT_TRUE(r) << r.error().describe();
    if (refused) {
      EXPECT_EQ(r->message.request_id, 0u);
      auto* e = std::get_if<proto::ErrorReply>(&r->message.body);
      ASSERT_NE(e, nullptr) << proto::message_type_name(proto::type_of(r->message.body));
      EXPECT_EQ(e->code, Errc::kLimit);
      EXPECT_NE(e->message.find("no file descriptors left"), std::string::npos) << e->message;
      EXPECT_TRUE(first->closed_by_daemon());
      EXPECT_EQ(by.refused("no_fds"), 1u);
    } else {
      EXPECT_TRUE(std::holds_alternative<proto::Welcome>(r->message.body))
          << proto::message_type_name(proto::type_of(r->message.body));
      if (err == ENOMEM) {
        EXPECT_EQ(by.refused("accept_failed"), 1u);
      }
    }
    EXPECT_EQ(f.hits(), 1u);
  }
  Client next(d.path());
  next.hello("next");
  next.expect<proto::BlockInfo>(proto::Allocate{.pools = {"display"}, .size = 4096});
  const bool first_served = err != EMFILE && err != ENFILE;
  by.check(/*sessions=*/first_served ? 3 : 2, /*blocks=*/2);
}

INSTANTIATE_TEST_SUITE_P(Errnos, DaemonAcceptFault,
                         ::testing::Values(EMFILE, ENFILE, EINTR, EAGAIN, ECONNABORTED, ENOMEM),
                         [](const auto& pi) { return std::string(strerrorname_np(pi.param)); });

class DaemonAcceptOutage : public ::testing::TestWithParam<int> {};

// accept failing every time (the fd table stays full, memory stays short)
// must not become a busy loop: the daemon backs off (a 1 s pause out of
// fds, 100 ms on ENOMEM), so in 600 ms it tries a handful of times and its
// thread is mostly asleep. When the outage ends, the client that waited
// through it is served. (EAGAIN and ECONNABORTED are not repeated here:
// from the kernel they mean the backlog holds nothing, which an injected
// fault with a client waiting cannot mimic.)
TEST_P(DaemonAcceptOutage, IsWaitedOutWithoutSpinningAndTheWaitingClientIsServed) {
  const int err = GetParam();
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  Bystander by(d.path());
  d.wait_idle();
  os::ScopedFault f(Call::kAccept, err, 1, 1'000'000);
  const auto cpu_before = d.loop_cpu();
  Client waiting(d.path());
  waiting.send(proto::Hello{.device = "waiting", .pid = 0});
  std::this_thread::sleep_for(600ms);
  const uint64_t tries = f.hits();
  const auto cpu = d.loop_cpu() - cpu_before;
  os::clear_faults();
  EXPECT_GE(tries, 1u);
  EXPECT_LE(tries, 20u) << "accept tried " << tries << " times in 600 ms";
  EXPECT_LT(cpu, 200ms) << "the loop used " << cpu.count() << " ms of CPU in 600 ms";
  std::printf("accept failing with %s: %llu tries, %lld ms CPU in 600 ms\n", strerrorname_np(err),
              static_cast<unsigned long long>(tries), static_cast<long long>(cpu.count()));
  auto r = waiting.receive(3000);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(std::holds_alternative<proto::Welcome>(r->message.body))
      << proto::message_type_name(proto::type_of(r->message.body));
  by.check(/*sessions=*/2, /*blocks=*/1);
}

INSTANTIATE_TEST_SUITE_P(Errnos, DaemonAcceptOutage, ::testing::Values(EMFILE, ENFILE, ENOMEM),
                         [](const auto& pi) { return std::string(strerrorname_np(pi.param)); });

// ---- recvmsg ----------------------------------------------------------------

// EINTR is retried by the wrapper; a recvmsg that says EAGAIN leaves the
// request queued, and the level-triggered epoll brings the session back.
TEST(DaemonFaults, InterruptedOrWouldBlockReadsAndSendsLoseNothing) {
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  Bystander by(d.path());
  Client c(d.path());
  c.hello("reader");
  const std::pair<Call, int> cases[] = {
      {Call::kRecvmsg, EINTR}, {Call::kRecvmsg, EAGAIN}, {Call::kSendmsg, EINTR}};
  for (auto [call, err] : cases) {
    d.wait_idle();
    // The daemon's next recvmsg reads c's Allocate, its next sendmsg
    // answers it (top).
    os::ScopedFault f(call, err);
    auto b = c.expect<proto::BlockInfo>(proto::Allocate{.pools = {"display"}, .size = 4096});
    EXPECT_EQ(b.size, 4096u) << strerrorname_np(err);
    EXPECT_EQ(f.hits(), 1u) << strerrorname_np(err);
  }
  by.check(/*sessions=*/2, /*blocks=*/4);
}

struct SessionFault {
  Call call;
  os::Fault fault;
  const char* name;
};

class DaemonSessionFault : public ::testing::TestWithParam<SessionFault> {};

// A recvmsg or sendmsg of one session failing for good (ENOMEM, ENOBUFS,
// EPIPE, EAGAIN on a full buffer, a short count) closes that session: what
// it held goes back to the pools, and the bystander keeps everything. A
// failed read is answered with the reason first (a short count is a
// truncated message: kProtocol); a failed reply cannot be, and the
// connection just closes (a short reply arrives cut and does not decode).
TEST_P(DaemonSessionFault, ClosesOnlyThatSessionAndItsBlocksGoBack) {
  const SessionFault& p = GetParam();
  RunningDaemon d;
  ASSERT_TRUE(d.ok());
  Bystander by(d.path());
  Client victim(d.path());
  victim.hello("victim");
  victim.expect<proto::BlockInfo>(proto::Allocate{.pools = {"display"}, .size = 8192});
  by.check(/*sessions=*/2, /*blocks=*/2);
  d.wait_idle();
  {
    // The daemon's next recvmsg reads, and its next sendmsg answers, the
    // victim's Allocate (top); the bystander is silent meanwhile.
    os::ScopedFault f(p.call, p.fault);
    // The reply would bring the pool's fd: the first block of "general".
    victim.send(proto::Allocate{.pools = {"general"}, .size = 4096});
    auto r = victim.receive();
    if (p.call == Call::kRecvmsg) {
      ASSERT_TRUE(r) << r.error().describe();
      auto* e = std::get_if<proto::ErrorReply>(&r->message.body);
      ASSERT_NE(e, nullptr) << proto::message_type_name(proto::type_of(r->message.body));
      EXPECT_EQ(e->code, p.fault.short_count ? Errc::kProtocol : Errc::kSystem);
      EXPECT_NE(e->message.find(p.fault.short_count ? "larger than" : "recvmmsg"),
                std::string::npos)
          << e->message;
      std::printf("%s: the session was told \"%s\"\n", p.name, e->message.c_str());
    } else if (p.fault.short_count) {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, Errc::kProtocol) << r.error().describe();
    } else {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, Errc::kDisconnected) << r.error().describe();
    }
    EXPECT_TRUE(victim.closed_by_daemon());
    EXPECT_EQ(f.hits(), 1u);
  }
  by.check(/*sessions=*/1, /*blocks=*/1);
}

INSTANTIATE_TEST_SUITE_P(
    Faults, DaemonSessionFault,
    ::testing::Values(SessionFault{Call::kRecvmsg, {.err = ENOMEM}, "RecvmsgENOMEM"},
                      SessionFault{Call::kRecvmsg, {.err = ENOBUFS}, "RecvmsgENOBUFS"},
                      SessionFault{Call::kRecvmsg, {.short_count = true}, "RecvmsgShort"},
                      SessionFault{Call::kSendmsg, {.err = EAGAIN}, "SendmsgEAGAIN"},
                      SessionFault{Call::kSendmsg, {.err = ENOBUFS}, "SendmsgENOBUFS"},
                      SessionFault{Call::kSendmsg, {.err = EPIPE}, "SendmsgEPIPE"},
                      SessionFault{Call::kSendmsg, {.short_count = true}, "SendmsgShort"}),
    [](const auto& pi) { return std::string(pi.param.name); });

}  // namespace
}  // namespace pmm::daemon
