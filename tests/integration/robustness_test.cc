// Integration: bad input and untrusted clients. A malformed, truncated or
// oversized message gets an error reply and closes that session only; a uid
// the config does not allow is refused by name; everyone else keeps their
// blocks throughout.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "daemon_process.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"
everyone = true

[pools.private]
type = "shmem"
size = "4MiB"
uids = [0]
)";

int raw_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << strerror(errno);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Sends `bytes` as one message; returns how the daemon answered: the number
// of reply messages before it closed the session (EOF), or -1 if it did not.
int replies_until_closed(const std::string& path, const std::vector<uint8_t>& bytes) {
  int fd = raw_connect(path);
  ssize_t sent = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  EXPECT_EQ(sent, static_cast<ssize_t>(bytes.size())) << strerror(errno);
  int replies = 0;
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n == 0) break;  // the daemon closed this session
    if (n < 0) {
      replies = -1;  // timed out: the session was left open
      break;
    }
    ++replies;
  }
  close(fd);
  return replies;
}

TEST(Robustness, MalformedTruncatedAndOversizedMessagesCloseOnlyThatSession) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  // A well-behaved client holds a block throughout.
  pmm_conn* good = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "good", &good), PMM_OK) << pmm_last_error();
  pmm_block* b = nullptr;
  ASSERT_EQ(pmm_alloc(good, "general", 65536, 0, 0, &b), PMM_OK) << pmm_last_error();
  memset(pmm_block_ptr(b), 0x42, 65536);

  std::vector<std::vector<uint8_t>> bad = {
      {0x01},                                  // truncated header
      std::vector<uint8_t>(16, 0xff),          // garbage header
      std::vector<uint8_t>(64, 0x00),          // zeros
      std::vector<uint8_t>(200 * 1024, 0x41),  // oversized
  };
  // A plausible header whose length field lies.
  std::vector<uint8_t> lying(32, 0);
  memcpy(lying.data(), "PMM", 3);
  lying[12] = 0xff;
  bad.push_back(lying);
  for (const auto& msg : bad) {
    int r = replies_until_closed(d.socket(), msg);
    EXPECT_EQ(r, 1) << "message of " << msg.size() << " bytes: expected one error reply, then "
                    << "the session closed";
  }
  // The daemon is alive, the good client's block is intact and still its.
  const auto* p = static_cast<const uint8_t*>(pmm_block_ptr(b));
  for (size_t i = 0; i < 65536; ++i) ASSERT_EQ(p[i], 0x42);
  pmm_block* b2 = nullptr;
  EXPECT_EQ(pmm_alloc(good, "general", 65536, 0, 0, &b2), PMM_OK) << pmm_last_error();
  EXPECT_EQ(pmm_block_put(b), PMM_OK) << pmm_last_error();
  pmm_disconnect(good);
}

TEST(Robustness, BadRequestsGetClearErrorsAndTheSessionGoesOn) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "dev", &c), PMM_OK) << pmm_last_error();
  pmm_block* b = nullptr;
  EXPECT_EQ(pmm_alloc(c, "general", 0, 0, 0, &b), PMM_E_INVALID);
  EXPECT_EQ(pmm_alloc(c, "general", 4096, 3, 0, &b), PMM_E_INVALID);
  EXPECT_NE(std::string(pmm_last_error()).find("power of two"), std::string::npos)
      << pmm_last_error();
  EXPECT_EQ(pmm_alloc(c, "nosuchpool", 4096, 0, 0, &b), PMM_E_NOT_FOUND);
  EXPECT_NE(std::string(pmm_last_error()).find("general"), std::string::npos)
      << "the error should list the pools that exist: " << pmm_last_error();
  EXPECT_EQ(pmm_alloc(c, "general", 1ull << 40, 0, 0, &b), PMM_E_NO_MEMORY);
  EXPECT_EQ(pmm_alloc(c, "general", 4096, 0, PMM_ALLOC_CONTIGUOUS, &b), PMM_E_UNSUPPORTED);
  pmm_token t;
  EXPECT_EQ(pmm_token_parse("not-a-token", &t), PMM_E_INVALID);
  memset(&t, 0x11, sizeof t);
  EXPECT_EQ(pmm_import(c, &t, &b), PMM_E_NOT_FOUND);
  // After all that, the session still works.
  ASSERT_EQ(pmm_alloc(c, "general", 4096, 0, 0, &b), PMM_OK) << pmm_last_error();
  pmm_sysv_segment seg;
  EXPECT_EQ(pmm_sysv_export(b, &seg), PMM_E_UNSUPPORTED);  // a shmem pool
  EXPECT_NE(std::string(pmm_last_error()).find("sysv"), std::string::npos) << pmm_last_error();
  pmm_disconnect(c);
}

TEST(Robustness, AUidThatIsNotAllowedIsRefused) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  // The agent runs as nobody: a real unprivileged client.
  Child nobody({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PMM_AGENT_PATH,
                d.socket(), "untrusted"});
  ASSERT_EQ(nobody.read_line(), "ready") << d.log();
  nobody.write_line("alloc private 4096");
  std::string line = nobody.read_line();
  EXPECT_EQ(line.rfind("err 5 ", 0), 0u) << line;  // PMM_E_PERMISSION
  EXPECT_NE(line.find("65534"), std::string::npos) << "the refusal names the uid: " << line;
  nobody.write_line("alloc general 4096");  // an open pool still works
  line = nobody.read_line();
  EXPECT_EQ(line.rfind("ok", 0), 0u) << line;
  // Root may use the private pool.
  pmm_conn* root = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "trusted", &root), PMM_OK);
  pmm_block* b = nullptr;
  EXPECT_EQ(pmm_alloc(root, "private", 4096, 0, 0, &b), PMM_OK) << pmm_last_error();
  pmm_disconnect(root);
}

// A pool or device open to a group lets in its members whether the group is
// their primary or a supplementary one (SO_PEERGROUPS), as the kernel's own
// checks do (and as an X server does for a SysV segment's group).
TEST(Robustness, SupplementaryGroupsCountForPoolsAndDevices) {
  DaemonProcess d(R"(
[pools.video]
type = "shmem"
size = "4MiB"
gids = [4242]

[devices.cam]
gids = [4242]
)");
  ASSERT_TRUE(d.ok()) << d.log();
  Child member({"setpriv", "--reuid=65534", "--regid=65534", "--groups=4242", PMM_AGENT_PATH,
                d.socket(), "cam"});
  ASSERT_EQ(member.read_line(), "ready") << d.log();
  member.write_line("alloc video 4096");
  std::string line = member.read_line();
  EXPECT_EQ(line.rfind("ok", 0), 0u) << line;
  // Without the group: refused at Hello for the device, and in the pool.
  Child other({"setpriv", "--reuid=65534", "--regid=65534", "--groups=4243", PMM_AGENT_PATH,
               d.socket(), "cam"});
  line = other.read_line();
  EXPECT_NE(line.find("may not claim"), std::string::npos) << line;
  Child stranger({"setpriv", "--reuid=65534", "--regid=65534", "--groups=4243", PMM_AGENT_PATH,
                  d.socket(), "anything"});
  ASSERT_EQ(stranger.read_line(), "ready") << d.log();
  stranger.write_line("alloc video 4096");
  line = stranger.read_line();
  EXPECT_EQ(line.rfind("err 5 ", 0), 0u) << line;  // PMM_E_PERMISSION
}

}  // namespace
}  // namespace pmm::testing
