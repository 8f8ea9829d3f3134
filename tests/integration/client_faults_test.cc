// Integration: libpmm against the real pmmd when this process's own system
// calls fail. A pool whose mmap fails (address space exhausted: the fault
// seam's ENOMEM) is reported for that call and mapped on the next; a pool
// fd that cannot be received because the fd table is full is reported as
// that, not as a protocol error, and the connection carries on. In each
// case the daemon's ledger shows that no reference was left behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "client/connection.h"
#include "daemon_process.h"
#include "ledger_probe.h"
#include "os/fault.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"

[pools.display]
type = "sysv"
size = "4MiB"
)";

TEST(ClientFaults, FailedPoolMappingIsReportedAndRetriedOnTheNextCall) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "dev", &c), PMM_OK) << pmm_last_error();
  pmm_block* b = nullptr;
  {
    os::ScopedFault f(os::Call::kMmap, ENOMEM);
    ASSERT_EQ(pmm_alloc(c, "general", 65536, 0, 0, &b), PMM_E_SYSTEM);
    EXPECT_EQ(f.hits(), 1u);
    const std::string what = pmm_last_error();
    EXPECT_NE(what.find("cannot map pool 'general'"), std::string::npos) << what;
    EXPECT_NE(what.find("errno 12"), std::string::npos) << what;
  }
  // The failed call gave its reference back.
  EXPECT_EQ(blocks_in_ledger(d), 0u);
  // The next call maps the pool: the fd was kept.
  ASSERT_EQ(pmm_alloc(c, "general", 65536, 0, 0, &b), PMM_OK) << pmm_last_error();
  std::memset(pmm_block_ptr(b), 0x11, 65536);
  pmm_block* again = nullptr;
  ASSERT_EQ(pmm_alloc(c, "general", 4096, 0, 0, &again), PMM_OK) << pmm_last_error();
  EXPECT_EQ(blocks_in_ledger(d), 2u);
  // And another process sees what was written through it.
  pmm_token t;
  ASSERT_EQ(pmm_export(b, 1, 0, &t), PMM_OK) << pmm_last_error();
  pmm_conn* other = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "other", &other), PMM_OK) << pmm_last_error();
  pmm_block* in = nullptr;
  ASSERT_EQ(pmm_import(other, &t, &in), PMM_OK) << pmm_last_error();
  EXPECT_EQ(static_cast<uint8_t*>(pmm_block_ptr(in))[4000], 0x11);
  pmm_disconnect(other);
  pmm_disconnect(c);
  EXPECT_EQ(blocks_in_ledger(d), 0u);
}

// The socket calls of libpmm fail as the seam arms them. Transient errors
// (EINTR, EAGAIN) are retried and the call succeeds; a sendmsg that fails
// with an errno fails that call only; a message cut short in either
// direction ends the connection, and the daemon then drops what the
// session held. The ledger is checked after each.
TEST(ClientFaults, SocketFaultsAreRetriedOrReportedAndNothingIsLost) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "dev", &c), PMM_OK) << pmm_last_error();
  std::vector<pmm_block*> held;
  auto alloc = [&]() -> pmm_status {
    pmm_block* b = nullptr;
    pmm_status s = pmm_alloc(c, "general", 65536, 0, 0, &b);
    if (s == PMM_OK) held.push_back(b);
    return s;
  };
  for (auto [call, err] : {std::pair{os::Call::kRecvmsg, EINTR},
                           {os::Call::kRecvmsg, EAGAIN},
                           {os::Call::kSendmsg, EINTR},
                           {os::Call::kSendmsg, EAGAIN}}) {
    os::ScopedFault f(call, err);
    EXPECT_EQ(alloc(), PMM_OK) << "errno " << err << ": " << pmm_last_error();
    EXPECT_EQ(f.hits(), 1u);
  }
  {
    os::ScopedFault f(os::Call::kSendmsg, ENOBUFS);
    EXPECT_EQ(alloc(), PMM_E_SYSTEM);
    EXPECT_NE(std::string(pmm_last_error()).find("sendmsg"), std::string::npos) << pmm_last_error();
  }
  EXPECT_EQ(alloc(), PMM_OK) << pmm_last_error();  // the connection carried on
  EXPECT_EQ(blocks_in_ledger(d), held.size());
  EXPECT_EQ(held.size(), 5u);

  // A reply cut short: the connection is over, with a clear error for this
  // call and every later one; the daemon drops the session's blocks.
  {
    os::ScopedFault f(os::Call::kRecvmsg, os::Fault{.short_count = true});
    EXPECT_EQ(alloc(), PMM_E_PROTOCOL) << pmm_last_error();
  }
  EXPECT_EQ(alloc(), PMM_E_PROTOCOL) << pmm_last_error();
  pmm_disconnect(c);
  EXPECT_EQ(blocks_in_ledger(d), 0u);

  // A request cut short: the daemon refuses it and closes the session.
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "dev", &c), PMM_OK) << pmm_last_error();
  held.clear();
  ASSERT_EQ(alloc(), PMM_OK) << pmm_last_error();
  {
    os::ScopedFault f(os::Call::kSendmsg, os::Fault{.short_count = true});
    EXPECT_EQ(alloc(), PMM_E_SYSTEM) << pmm_last_error();
  }
  EXPECT_NE(alloc(), PMM_OK);
  EXPECT_EQ(blocks_in_ledger(d), 0u);
  pmm_disconnect(c);
}

// Fills this process's fd table (RLIMIT_NOFILE lowered to `limit`) and
// returns the fds it opened.
std::vector<int> fill_fd_table(rlim_t limit) {
  rlimit rl{limit, limit};
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) std::_Exit(90);
  std::vector<int> fds;
  for (;;) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    fds.push_back(fd);
  }
  return fds;
}

// In a child process (the rlimit must not reach the test process): a pool
// fd arriving into a full fd table.
TEST(ClientFaults, FullFdTableIsReportedAsSuchAndTheConnectionCarriesOn) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  std::fflush(nullptr);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    auto say = [&](const std::string& s) {
      (void)!::write(pipe_fds[1], s.data(), s.size());
      (void)!::write(pipe_fds[1], "\n", 1);
    };
    auto c = client::Connection::connect(d.socket(), "dev");
    if (!c) std::_Exit(2);
    std::vector<int> filler = fill_fd_table(64);
    auto a = (*c)->allocate({"general"}, 65536, 0, 0);
    if (a) std::_Exit(3);
    say(a.error().describe());
    // The connection is alive, the reference was given back, and a pool
    // that needs no fd still works.
    auto blocks = (*c)->list_blocks();
    if (!blocks) {
      say("list_blocks: " + blocks.error().describe());
      std::_Exit(4);
    }
    say("blocks " + std::to_string(blocks->size()));
    auto s = (*c)->allocate({"display"}, 65536, 0, 0);
    say(s ? "sysv ok" : "sysv: " + s.error().describe());
    // With room in the table again, the pool is usable on a new connection.
    for (int fd : filler) ::close(fd);
    auto fresh = client::Connection::connect(d.socket(), "dev2");
    if (!fresh) std::_Exit(5);
    auto g = (*fresh)->allocate({"general"}, 65536, 0, 0);
    say(g ? "fresh ok" : "fresh: " + g.error().describe());
    std::_Exit(0);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  ASSERT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("fd table is full"), std::string::npos) << out;
  EXPECT_NE(out.find("RLIMIT_NOFILE 64"), std::string::npos) << out;
  EXPECT_EQ(out.find("protocol error"), std::string::npos) << out;
  EXPECT_NE(out.find("blocks 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("sysv ok"), std::string::npos) << out;
  EXPECT_NE(out.find("fresh ok"), std::string::npos) << out;
  // The child is gone: so is everything it held.
  EXPECT_EQ(blocks_in_ledger(d), 0u);
}

}  // namespace
}  // namespace pmm::testing
