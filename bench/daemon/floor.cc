// The raw SOCK_SEQPACKET floor; see floor.h.
#include "floor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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

constexpr size_t kMaxMessage = 128 * 1024;

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

// The server's loop: level-triggered epoll, one recvmsg + one sendmsg per
// readiness, so every ready client is served once per round.
[[noreturn]] void serve(int listener) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event ev{.events = EPOLLIN, .data = {.fd = listener}};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0) die("epoll_ctl");
  auto in = std::make_unique_for_overwrite<std::byte[]>(kMaxMessage);
  auto out = std::make_unique<std::byte[]>(kMaxMessage);
  std::array<epoll_event, 64> events;
  for (;;) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == listener) {
        int c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) continue;
        epoll_event cev{.events = EPOLLIN, .data = {.fd = c}};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0) close(c);
        continue;
      }
      ssize_t got = recv(fd, in.get(), kMaxMessage, MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 4) {  // closed, reset, or not one of ours
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        continue;
      }
      uint32_t reply = 0;
      std::memcpy(&reply, in.get(), sizeof reply);
      if (reply > kMaxMessage) reply = kMaxMessage;
      (void)send(fd, out.get(), reply, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  }
}

}  // namespace

int connect_seqpacket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un a = address(path);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
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

RawClient::RawClient(const std::string& path, bool poll_first)
    : poll_first_(poll_first), out_(kMaxMessage, std::byte{0x5a}), in_(kMaxMessage) {
  fd_ = connect_seqpacket(path);
  if (fd_ < 0) die("connect to the echo server");
}

RawClient::~RawClient() {
  if (fd_ >= 0) close(fd_);
}

void RawClient::exchange(const Exchange& e) {
  auto reply = static_cast<uint32_t>(e.reply);
  std::memcpy(out_.data(), &reply, sizeof reply);
  if (send(fd_, out_.data(), e.request, MSG_NOSIGNAL) != static_cast<ssize_t>(e.request)) {
    die("send to the echo server");
  }
  if (poll_first_) {
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 5000) != 1) die("poll on the echo server's socket");
  }
  if (recv(fd_, in_.data(), in_.size(), 0) != static_cast<ssize_t>(e.reply)) {
    die("recv from the echo server");
  }
}

}  // namespace pmm::bench
