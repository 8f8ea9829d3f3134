// The raw SOCK_SEQPACKET floor; see floor.h.
#include "floor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

namespace pmm::bench {
namespace {

constexpr size_t kMaxMessage = 128 * 1024;  // a reply, at most (proto::kMaxReplySize)
constexpr size_t kMaxRequest = 64 * 1024;   // proto::kMaxRequestSize

sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  return a;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "pmm_bench_daemon: %s: %s\n", what, std::strerror(errno));
  std::_Exit(1);
}

// The server's loop, pmmd's shape (daemon.cc): level-triggered epoll; per
// ready client one recvmmsg of up to kReadBatch queued requests, one
// sendmsg per reply; a client with a full batch comes back next round.
[[noreturn]] void serve(int listener) {
  constexpr size_t kReadBatch = 8;  // pmmd's Daemon::kReadBatch
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event ev{.events = EPOLLIN, .data = {.fd = listener}};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0) die("epoll_ctl");
  auto in = std::make_unique_for_overwrite<std::byte[]>(kReadBatch * kMaxRequest);
  auto out = std::make_unique<std::byte[]>(kMaxMessage);
  std::array<iovec, kReadBatch> iov;
  std::array<mmsghdr, kReadBatch> msgs;
  std::array<epoll_event, 64> events;
  for (;;) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == listener) {  // one per wakeup, as pmmd
        int c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) continue;
        epoll_event cev{.events = EPOLLIN, .data = {.fd = c}};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0) close(c);
        continue;
      }
      for (size_t k = 0; k < kReadBatch; ++k) {
        iov[k] = iovec{in.get() + k * kMaxRequest, kMaxRequest};
        msgs[k] = mmsghdr{};
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
      }
      int got = recvmmsg(fd, msgs.data(), kReadBatch, MSG_DONTWAIT, nullptr);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      bool closed = got <= 0;
      for (int k = 0; k < got && !closed; ++k) {
        const auto& m = msgs[static_cast<size_t>(k)];
        if (m.msg_len <= 4) {  // end of stream, or not one of ours
          closed = true;
          break;
        }
        uint32_t reply = 0;
        std::memcpy(&reply, m.msg_hdr.msg_iov->iov_base, sizeof reply);
        if (reply > kMaxMessage) reply = kMaxMessage;
        (void)send(fd, out.get(), reply, MSG_DONTWAIT | MSG_NOSIGNAL);
      }
      if (closed) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
      }
    }
  }
}

}  // namespace

namespace {
bool g_bounded_reads = false;
}  // namespace

void set_bounded_reads(bool on) { g_bounded_reads = on; }

int connect_seqpacket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un a = address(path);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  const timeval two_seconds{.tv_sec = 2, .tv_usec = 0};
  if (g_bounded_reads &&
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two_seconds, sizeof two_seconds) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

EchoServer EchoServer::start(const std::string& path) {
  int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (l < 0) die("socket");
  unlink(path.c_str());
  sockaddr_un a = address(path);
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
  if (listen(l, 256) != 0) die("listen");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) serve(l);
  close(l);
  return EchoServer(path, pid);
}

EchoServer::~EchoServer() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  unlink(path_.c_str());
}

RawClient::RawClient(const std::string& path)
    : out_(kMaxMessage, std::byte{0x5a}), in_(kMaxMessage) {
  fd_ = connect_seqpacket(path);
  if (fd_ < 0) die("connect to the echo server");
}

RawClient::~RawClient() {
  if (fd_ >= 0) close(fd_);
}

void RawClient::receive(size_t bytes) {
  if (recv(fd_, in_.data(), in_.size(), 0) != static_cast<ssize_t>(bytes)) {
    die("recv from the echo server");
  }
}

void RawClient::exchange(const Exchange& e) {
  auto reply = static_cast<uint32_t>(e.reply);
  std::memcpy(out_.data(), &reply, sizeof reply);
  if (send(fd_, out_.data(), e.request, MSG_NOSIGNAL) != static_cast<ssize_t>(e.request)) {
    die("send to the echo server");
  }
  if (!e.wait) {
    unread_.push_back(e.reply);
    return;
  }
  // As libpmm: the replies of requests sent without waiting come first,
  // each read by one blocking recv.
  for (size_t bytes : unread_) receive(bytes);
  unread_.clear();
  receive(e.reply);
}

}  // namespace pmm::bench
