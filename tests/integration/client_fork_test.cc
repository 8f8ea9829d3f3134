// Integration: libpmm across fork(). A child inherits its parent's pmm_conn
// (the socket fd, the pool mappings, the handle tables) but not its session:
// a call on the inherited connection fails in the child with a message that
// says what happened and what to do, and closing it there (pmm_disconnect,
// or C++ destructors at exit) closes only the child's copy of the fd. The
// parent's blocks stay held, as the daemon's ledger shows.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "client/connection.h"
#include "daemon_process.h"
#include "pmm/pmm.hpp"

namespace pmm::testing {
namespace {

constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"
)";

// The daemon's view: how many blocks exist and the holders of `block`.
struct Ledger {
  uint64_t blocks = 0;
  uint32_t refcount = 0;
};
Ledger ledger(const DaemonProcess& d, uint64_t block) {
  Ledger out;
  auto admin = client::Connection::connect(d.socket(), "admin");
  EXPECT_TRUE(admin) << admin.error().describe();
  if (!admin) return out;
  auto list = (*admin)->list_blocks();
  EXPECT_TRUE(list) << list.error().describe();
  if (!list) return out;
  out.blocks = list->size();
  for (const auto& b : *list)
    if (b.id == block) out.refcount = b.refcount;
  return out;
}

// Runs `child` in a forked child; returns its exit code (128 + signal).
template <typename F>
int in_child(F child) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(child());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(ClientFork, ChildCallsFailClearlyAndLeaveTheParentsSessionAlone) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::Connection parent("parent", d.socket());
  pmm::Block held = parent.alloc("general", 1 << 20);
  std::memset(held.data(), 0x5c, held.size());

  int code = in_child([&]() -> int {
    // The child exits through C++ destructors: the copies of `held` and
    // `parent` go at the end of this scope (pmm_block_put, pmm_disconnect).
    pmm::Connection conn = std::move(parent);
    pmm::Block mine = held;
    try {
      (void)conn.alloc("general", 4096);
      return 10;  // the child used its parent's session
    } catch (const pmm::error& e) {
      const std::string what = e.what();
      if (what.find("fork") == std::string::npos) return 11;
      if (what.find("connect") == std::string::npos) return 12;
    }
    if (pmm_block_get(mine.handle()) == PMM_OK) return 13;
    if (std::string(pmm_last_error()).find("fork") == std::string::npos) return 14;
    // The inherited mapping still shows the parent's data.
    if (mine.as<uint8_t>()[12345] != 0x5c) return 15;
    // A connection of its own works.
    pmm::Connection own("child", d.socket());
    pmm::Block b = own.alloc("general", 4096);
    return b ? 0 : 16;
  });
  EXPECT_EQ(code, 0) << "10: the child's call went to the parent's session; 11-12: the error "
                        "does not say fork/connect; 13-14: pmm_block_get; 15: mapping; 16: own";

  // The parent's session and block are untouched: the ledger still holds
  // the block with one reference, the parent's next calls succeed, and
  // another process imports what the parent wrote.
  Ledger l = ledger(d, held.id());
  EXPECT_EQ(l.blocks, 1u);
  EXPECT_EQ(l.refcount, 1u);
  pmm::Block more = parent.alloc("general", 4096);
  pmm::Connection other("other", d.socket());
  pmm::Block same = other.import(held.export_token());
  EXPECT_EQ(same.as<uint8_t>()[777], 0x5c);
}

TEST(ClientFork, ChildThatDisconnectsThroughTheCApiOnlyClosesItsCopy) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "parent", &c), PMM_OK) << pmm_last_error();
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_alloc(c, "general", 65536, 0, 0, &b), PMM_OK) << pmm_last_error();
  const uint64_t id = pmm_block_id(b);

  int code = in_child([&]() -> int {
    pmm_block* x = nullptr;
    if (pmm_alloc(c, "general", 4096, 0, 0, &x) == PMM_OK) return 10;
    if (pmm_block_put(b) == PMM_OK) return 11;
    pmm_disconnect(c);
    return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(ledger(d, id).refcount, 1u);
  pmm_token t;
  EXPECT_EQ(pmm_export(b, 1, 0, &t), PMM_OK) << pmm_last_error();
  EXPECT_EQ(pmm_unexport(c, &t), PMM_OK) << pmm_last_error();
  EXPECT_EQ(pmm_block_put(b), PMM_OK) << pmm_last_error();
  pmm_disconnect(c);
  EXPECT_EQ(ledger(d, id).blocks, 0u);
}

}  // namespace
}  // namespace pmm::testing
