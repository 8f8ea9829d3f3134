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
// loop. So is any session whose reply cannot be sent (ENOBUFS, a short
// send) or whose request cannot be read (ENOMEM, ENOBUFS: it gets an
// ErrorReply kSystem, request_id 0, saying so first); its references go
// back like any disconnect's (tests: daemon_faults_test.cc). A session answers at most kBatch
// requests per wakeup, so one busy client cannot starve the others.
//
// The request path costs what the socket costs: per request one recvmmsg
// (which takes everything the session has queued, up to kReadBatch, into
// buffers allocated once and never cleared, through kernel headers built
// once), one send, and an epoll_wait shared by every ready session; the
// export timerfd is set only when the earliest deadline moves earlier; log
// lines that are not written format nothing (log.h). In user space an
// allocate or a put allocates no heap in steady state: it is decoded into the
// Message kept for its type (proto::RequestSlots; the hot requests' payloads
// read directly), its reply written over the one kept for its kind of reply
// (Service::handle_hot, replies_) and encoded, BlockInfo, Ok and
// TokenReply field by field (proto::encode_reply_into), into a buffer kept
// for it (send_reply), and its session's ledger records found through
// cached pointers. bench/daemon measures it
// against a raw SOCK_SEQPACKET ping-pong (bench/daemon/instructions counts
// the instructions each side spends).
//
// Under attack (docs/config.md [limits]; the tests in
// tests/integration/exhaustion_test.cc):
// - Admission when accepting, from SO_PEERCRED: at most `sessions` sessions
//   of users other than root and `sessions_per_uid` per such uid, counted
//   from accept (a connection that never says Hello holds its slot only
//   until `hello_timeout`, then is closed). Root is exempt: no number of
//   other users' connections locks the administrator out. A refused
//   connection gets an Error with request_id 0 (docs/protocol.md:
//   "refused connections") naming the limit and its use, then is closed.
// - Out of fds (EMFILE/ENFILE on accept): one spare fd is closed so that
//   each waiting connection can be accepted and told why ("pmmd has no file
//   descriptors left"), then closed, and the spare taken back: work that
//   only a client's connect causes, so no busy loop (and log lines are rate
//   limited). When even the spare does not help (ENFILE: another process
//   took the fd), the listener leaves epoll until a session closes, or for a
//   second at most.
// - The heap is given back to the kernel (malloc_trim) at most once a
//   second after sessions close (or every kTrimEveryRequests requests), when
//   malloc holds more than kTrimThreshold free, so RSS follows what is live.
// - Refusals are counted per cause (Stats.refused, `pmmctl status`).
//
// Stopping (stop(), SIGTERM, SIGINT): run() closes the listening socket and
// removes its file (unless it came from socket activation: its unit owns
// it), closes every session; destroying the Daemon then releases the pools
// (memfds closed, SysV segments removed).
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

#include <array>
#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "base/error.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/service.h"
#include "os/event_fds.h"
#include "os/socket.h"
#include "proto/codec.h"

namespace pmm::daemon {

struct DaemonOptions {
  Log log{};
  // Take SIGTERM and SIGINT through a signalfd (blocks them in the calling
  // thread). main sets it; in-process tests leave it off.
  bool handle_signals = false;
  // A listening socket to serve instead of creating one at the socket path
  // (socket activation: os::inherited_listener()). create() takes it over
  // and closes it, even when it fails. -1: none.
  int listen_fd = -1;
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

  // The session limit in force (the config's, or the default sized to the
  // fd limit).
  [[nodiscard]] size_t session_limit() const { return limits_.sessions.value_or(0); }

  // Requests answered per session per wakeup.
  static constexpr int kBatch = 32;
  // Requests taken per receive (recvmmsg); each has a buffer of the
  // largest request, uninitialised and touched only as far as requests
  // reach, so this is address space more than memory.
  static constexpr size_t kReadBatch = 8;
  // fds the daemon keeps for itself beyond its sessions (epoll, timers,
  // stdio, the spare, pools): the default session limit leaves this many.
  static constexpr size_t kFdReserve = 32;
  // Free heap above this is given back after sessions close.
  static constexpr size_t kTrimThreshold = size_t{8} << 20;
  // ... and after this many requests, for frees inside a live session.
  static constexpr uint64_t kTrimEveryRequests = 65536;

 private:
  struct Session {
    SessionState state;
    os::UniqueFd fd;
  };
  using Clock = std::chrono::steady_clock;

  Daemon(std::string socket_path, DaemonOptions options, std::unique_ptr<core::Ledger> ledger,
         os::Epoll epoll, os::Timer timer, os::Wakeup wakeup);

  void accept_next();
  void admit(os::UniqueFd fd);
  // Tells a connection why it is refused (request_id 0), counts it, closes it.
  void refuse_connection(os::UniqueFd fd, std::string_view cause, const Error& e,
                         const os::PeerCredentials* who);
  // Reads and drops what a connection about to be refused already sent.
  void discard_pending(int fd);
  void out_of_fds(const Error& e);
  void pause_listening(Clock::duration at_most);
  void resume_listening();
  void expire_hellos(Clock::time_point now);
  void maybe_trim(Clock::time_point now);
  // The earliest of every deadline the loop keeps: exports, hellos,
  // resuming accept, trimming, waiting allocations; kNever when none.
  static constexpr Clock::time_point kNever = Clock::time_point::max();
  [[nodiscard]] Clock::time_point next_deadline() const;
  void serve(uint64_t id);
  // Decodes, handles and answers one request of session `id`; false when
  // the session was dropped meanwhile (then nothing more of it is read).
  // `s` is session `id`'s (found once per receive by serve()).
  // Inline into serve(): it runs once per request.
  bool answer(Session& s, uint64_t id, std::span<const std::byte> bytes);
  // answer() for requests other than Service::handle_hot's, into a Reply
  // of their own (out of line: its frame is large).
  [[gnu::noinline]] bool answer_other(Session& s, uint64_t id, const proto::Message& msg,
                                      Clock::time_point now);
  // Sends `r`, the answer to request `request_id` of session `id`, and
  // notes the pool fd it carried; false when the session was dropped.
  bool deliver(Session& s, uint64_t id, uint32_t request_id, Reply& r);
  // answer()'s rare ends, out of line so that its common path keeps a
  // small frame: a request that did not decode (refused, then dropped:
  // false); a reply that could not be sent (a reply that did not encode is
  // replaced by an ErrorReply: true when that went; otherwise the session is
  // dropped: false).
  [[gnu::noinline, gnu::cold]] bool undecodable(uint64_t id, std::span<const std::byte> bytes,
                                                const Error& e);
  [[gnu::noinline, gnu::cold]] bool not_sent(Session& s, uint64_t id, uint32_t request_id,
                                             const Error& failed);
  // Sends a protocol error for a datagram that could not be read, then drops.
  void refuse(uint64_t id, uint32_t request_id, const Error& e);
  void drop(uint64_t id, std::string_view why);
  // Encodes and sends a reply (with the pool fd it carries, or -1), as
  // proto::send does.
  [[nodiscard]] Status send_reply(int sock, const proto::Message& m, int pool_fd);
  [[gnu::noinline, gnu::cold]] static std::unexpected<Error> fd_mismatch(const proto::Message& m,
                                                                         size_t have);
  void rearm_timer();
  // Sends what the service has for sessions other than the one served:
  // waiting allocations' answers, release notifications (issue 10).
  void send_outgoing(Clock::time_point now);
  void shutdown();

  std::string socket_path_;
  DaemonOptions options_;
  Service service_;
  os::Epoll epoll_;
  os::Timer timer_;
  os::Wakeup wakeup_;
  std::optional<os::SignalFd> signals_;
  os::UniqueFd listener_;
  bool owns_socket_file_ = true;  // false for a socket from activation
  bool listening_ = false;        // the listener is in epoll
  std::optional<Clock::time_point> resume_at_;
  os::SpareFd spare_;
  SessionLimits limits_;
  std::unordered_map<uint64_t, Session> sessions_;
  size_t counted_sessions_ = 0;  // sessions of uids other than root
  // Some pool knows its physical addresses (fixed when the pools are
  // made): only then is a root peer's CAP_SYS_ADMIN worth reading from
  // /proc at connect, since without it there is nothing to hide.
  bool physical_known_ = false;
  // Some access rule (a pool's, a device's, [admin]) names a gid: only then
  // can a client's supplementary groups change an answer, so only then are
  // they read at connect (SO_PEERGROUPS; fixed with the config).
  bool groups_matter_ = false;
  std::unordered_map<uid_t, size_t> sessions_of_uid_;
  // (deadline, session) in accept order; the timeout is the same for all,
  // so the front is always the earliest.
  std::deque<std::pair<Clock::time_point, uint64_t>> hello_deadlines_;
  bool trim_due_ = false;
  bool answered_ = false;  // a request was handled in this turn of run()
  uint64_t requests_since_trim_ = 0;
  Clock::time_point last_trim_{};
  uint64_t next_session_ = 1;
  // What the timerfd is set for; kNever when it is not.
  Clock::time_point armed_ = kNever;
  // Where requests land: kReadBatch slots of kMaxRequestSize, allocated
  // once, never zero-filled; a request is decoded from its slot.
  std::unique_ptr<std::byte[]> inbox_;
  std::array<std::span<std::byte>, kReadBatch> inbox_slots_{};
  // The kernel's headers for inbox_slots_, built once (serve()).
  std::unique_ptr<os::MessageBatch> inbox_batch_;
  std::array<os::Datagram, kReadBatch> datagrams_{};
  // Requests are decoded into these, one Message per type (answer()).
  proto::RequestSlots requests_;
  // The hot requests are answered into these (Service::handle_hot), one
  // kept per kind of reply, so that each reply is written over the last one
  // of its own type.
  HotReplies replies_;
  // Replies are encoded here: kMaxReplySize, allocated once, never
  // zero-filled (send_reply()).
  std::unique_ptr<std::byte[]> outbox_ =
      std::make_unique_for_overwrite<std::byte[]>(proto::kMaxReplySize);
  bool stopping_ = false;
};

}  // namespace pmm::daemon
