// The floor of pmm_bench_daemon: what a request costs with nothing but the
// socket. A tiny echo server (its own process, one thread, epoll like pmmd)
// and a client that does blocking send + recv on SOCK_SEQPACKET, exchanging
// messages of exactly the sizes pmm's requests and replies have.
//
// A request's first four bytes say how long its reply must be, so one server
// answers every kind of exchange. The server does the least an event loop
// serving many clients can do per request: one epoll_wait (shared by every
// client that is ready), one recvmsg, one sendmsg.
//
// Usage:
//   EchoServer server = EchoServer::start(dir + "/echo.sock");
//   RawClient c(server.path());
//   c.exchange({.request = 62, .reply = 88});   // one round trip
//
// Thread safety: each object belongs to one thread; fork before use.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

namespace pmm::bench {

// One round trip: a request of `request` bytes, a reply of `reply` bytes.
struct Exchange {
  size_t request = 0;
  size_t reply = 0;
};

class EchoServer {
 public:
  // Forks the server, listening at `path`; returns once it accepts.
  static EchoServer start(const std::string& path);
  ~EchoServer();
  EchoServer(EchoServer&& o) noexcept : path_(std::move(o.path_)), pid_(o.pid_) { o.pid_ = -1; }
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;
  EchoServer& operator=(EchoServer&&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  EchoServer(std::string path, pid_t pid) : path_(std::move(path)), pid_(pid) {}
  std::string path_;
  pid_t pid_ = -1;
};

class RawClient {
 public:
  // `poll_first`: wait with poll() before each recv, as libpmm does to
  // bound its waits (the "raw+poll" column: how much of pmm's excess is
  // that wait rather than pmmd).
  explicit RawClient(const std::string& path, bool poll_first = false);  // exits on failure
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void exchange(const Exchange& e);
  void exchange(const std::vector<Exchange>& es) {
    for (const auto& e : es) exchange(e);
  }

 private:
  int fd_ = -1;
  bool poll_first_ = false;
  std::vector<std::byte> out_;
  std::vector<std::byte> in_;
};

// Connects a SOCK_SEQPACKET socket to `path`; -1 on failure.
int connect_seqpacket(const std::string& path);

}  // namespace pmm::bench
