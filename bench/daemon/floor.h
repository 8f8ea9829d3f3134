// The floor of pmm_bench_daemon: what a request costs with nothing but the
// socket. A tiny echo server (its own process, one thread, epoll like pmmd)
// and a client that does blocking send + recv on SOCK_SEQPACKET, exchanging
// messages of exactly the sizes pmm's requests and replies have, and waiting
// exactly where libpmm waits.
//
// A request's first four bytes say how long its reply must be, so one server
// answers every kind of exchange. The server does what pmmd does per ready
// session: one epoll_wait (shared by every client that is ready), one
// recvmmsg taking up to 8 queued requests, one sendmsg per reply.
//
// A request need not be waited for (Exchange::wait false: libpmm's last put
// of a block, which is sent and not awaited); its reply is then read, one
// recv, before the next awaited reply, as libpmm reads it.
//
// Usage:
//   EchoServer server = EchoServer::start(dir + "/echo.sock");
//   RawClient c(server.path());
//   c.exchange({.request = 49, .reply = 83});                 // one round trip
//   c.exchange({.request = 24, .reply = 16, .wait = false});  // sent only
//
// Thread safety: each object belongs to one thread; fork before use.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

namespace pmm::bench {

// A request of `request` bytes and its reply of `reply` bytes; `wait`:
// the client waits for the reply before going on (else it reads it before
// its next awaited one).
struct Exchange {
  size_t request = 0;
  size_t reply = 0;
  bool wait = true;
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
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  EchoServer(std::string path, pid_t pid) : path_(std::move(path)), pid_(pid) {}
  std::string path_;
  pid_t pid_ = -1;
};

class RawClient {
 public:
  explicit RawClient(const std::string& path);  // exits on failure
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void exchange(const Exchange& e);
  void exchange(const std::vector<Exchange>& es) {
    for (const auto& e : es) exchange(e);
  }

 private:
  void receive(size_t bytes);

  int fd_ = -1;
  std::vector<size_t> unread_;  // replies of requests not waited for, in order
  std::vector<std::byte> out_;
  std::vector<std::byte> in_;
};

// Connects a SOCK_SEQPACKET socket to `path`; -1 on failure. Its reads
// are bounded as set_bounded_reads says.
int connect_seqpacket(const std::string& path);

// From now on, the floor's client sockets get SO_RCVTIMEO as libpmm's do
// (2 s, libpmm's with its default timeout): every blocking read then arms
// the kernel's timer, as libpmm's bounded waits make it. Off by default:
// the floor is the bare round trip. Call before forking clients.
void set_bounded_reads(bool on);

}  // namespace pmm::bench
