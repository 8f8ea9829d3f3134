// pmm::daemon::Daemon — pmmd: pools, the ledger, and a single-threaded
// event loop on the listening socket.
//
// One thread runs everything (DESIGN.md: allocation is sub-microsecond, the
// socket is the bottleneck): epoll over the listening SEQPACKET socket, every
// session's socket, a timerfd for export deadlines, an eventfd for stop(),
// and — when asked, as main does — a signalfd for SIGTERM/SIGINT.
//
// Per session: Hello first; every datagram is decoded by the strict proto
// codec; a malformed, truncated or oversized one gets an ErrorReply
// (kProtocol, the decoder's message) and that session is closed, which drops
// its references like any disconnect. Other sessions are not affected.
// Sockets are non-blocking: a client whose socket buffer is full because it
// does not read its replies is dropped rather than allowed to stall the
// loop. A session answers at most kBatch requests per wakeup, so one busy
// client cannot starve the others.
//
// Stopping (stop(), SIGTERM, SIGINT): run() closes the listening socket and
// removes its file, closes every session; destroying the Daemon then
// releases the pools (memfds closed, SysV segments removed).
//
// Usage (tests run it in-process on a temporary socket):
//   auto d = Daemon::create(default_config(), "/tmp/x/pmm.sock", {.log = {.quiet = true}});
//   std::thread t([&] { (void)(*d)->run(); });
//   ... connect, talk ...
//   (*d)->stop(); t.join();
//
// Thread safety: run() on one thread. stop() from any thread or a signal
// handler (it only writes an eventfd), while the Daemon is alive.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/error.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/service.h"
#include "os/event_fds.h"

namespace pmm::daemon {

struct DaemonOptions {
  Log log{};
  // Take SIGTERM and SIGINT through a signalfd (blocks them in the calling
  // thread). main sets it; in-process tests leave it off.
  bool handle_signals = false;
  // Connections beyond this are answered with an error and closed.
  size_t max_sessions = 1024;
};

class Daemon {
 public:
  // Creates the pools, the ledger and the listening socket at `socket_path`
  // (refused when another daemon answers there; a stale file is replaced).
  [[nodiscard]] static Result<std::unique_ptr<Daemon>> create(Config config,
                                                              std::string socket_path,
                                                              DaemonOptions options = {});
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Serves until stop() or a signal. Returns an error only if the loop
  // itself fails (epoll); bad clients never end it.
  [[nodiscard]] Status run();
  void stop() const { wakeup_.notify(); }

  [[nodiscard]] const std::string& socket_path() const { return socket_path_; }
  // The books, for tests that fill them in-process before run() starts
  // (a million blocks in a second rather than a million round trips).
  [[nodiscard]] core::Ledger& ledger() { return service_.ledger(); }

  // Requests answered per session per wakeup.
  static constexpr int kBatch = 32;

 private:
  struct Session {
    SessionState state;
    os::UniqueFd fd;
  };

  Daemon(std::string socket_path, DaemonOptions options, std::unique_ptr<core::Ledger> ledger,
         os::Epoll epoll, os::Timer timer, os::Wakeup wakeup);

  void accept_all();
  void serve(uint64_t id);
  // Sends a protocol error for a datagram that could not be read, then drops.
  void refuse(Session& s, uint32_t request_id, const Error& e);
  void drop(uint64_t id, std::string_view why);
  void rearm_timer();
  void shutdown();

  std::string socket_path_;
  DaemonOptions options_;
  Service service_;
  os::Epoll epoll_;
  os::Timer timer_;
  os::Wakeup wakeup_;
  std::optional<os::SignalFd> signals_;
  os::UniqueFd listener_;
  std::unordered_map<uint64_t, Session> sessions_;
  uint64_t next_session_ = 1;
  std::optional<core::SteadyTime> armed_;
  bool stopping_ = false;
};

}  // namespace pmm::daemon
