// os/peer.h: groups and capabilities of the process at the other end.
#include "os/peer.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "os/socket.h"

namespace pmm::os {
namespace {

TEST(Peer, GroupsAreTheConnectingProcesss) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair) << pair.error().describe();
  auto groups = peer_groups(pair->first.get());
  ASSERT_TRUE(groups) << groups.error().describe();
  std::vector<gid_t> mine(static_cast<size_t>(getgroups(0, nullptr)));
  mine.resize(static_cast<size_t>(getgroups(static_cast<int>(mine.size()), mine.data())));
  std::sort(mine.begin(), mine.end());
  std::sort(groups->begin(), groups->end());
  EXPECT_EQ(*groups, mine);
}

TEST(Peer, ACapabilityIsReadFromTheLivePeerAndAnExitedPeerHasNone) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair) << pair.error().describe();
  // Both ends are this process: it has CAP_SYS_ADMIN when run as root.
  bool root = geteuid() == 0;
  EXPECT_EQ(peer_has_capability(pair->first.get(), getpid(), CAP_SYS_ADMIN), root);
  EXPECT_FALSE(peer_has_capability(pair->first.get(), getpid(), 99));  // no such capability

  // A child connects (makes the pair), then exits: its pid may be reused,
  // so it no longer counts as holding anything.
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
  pid_t child = fork();
  if (child == 0) {
    int inner[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, inner) != 0) _exit(1);
    // Hand our end of a fresh pair (whose peer credentials are ours) up.
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &inner[1], sizeof(int));
    _exit(::sendmsg(fds[1], &msg, 0) == 1 ? 0 : 1);
  }
  ::close(fds[1]);
  auto got = receive_message(fds[0], 16, 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ::close(fds[0]);
  ASSERT_TRUE(got && *got && (*got)->fds.size() == 1u);
  // The fd's peer is the child's other end, made by the exited child.
  EXPECT_FALSE(peer_has_capability((*got)->fds[0].get(), child, CAP_SYS_ADMIN));
}

}  // namespace
}  // namespace pmm::os
