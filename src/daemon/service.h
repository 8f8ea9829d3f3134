// pmm::daemon::Service — turns one decoded protocol request of one session
// into Ledger calls and one reply. No sockets: the loop (daemon.h) receives,
// calls handle(), and sends what it returns.
//
// Per session it keeps what the protocol needs beyond the ledger: whether
// the Hello came, the peer's credentials (SO_PEERCRED, the only identity
// trusted), and which pools' fds the session has been sent — each pool's fd
// goes once per session, with the first BlockInfo that shows that pool.
//
// Usage:
//   Service svc(std::move(ledger), log);
//   SessionState s{.id = 7, .peer = creds};
//   Reply r = svc.handle(s, message, std::chrono::steady_clock::now());
//   send(r.message, r.fd); if (sent && r.fd_pool) s.fd_sent[*r.fd_pool] = true;
// or, for a loop that keeps one Reply across requests (pmmd):
//   Reply* r = svc.handle_hot(s, message, now, kept);  // kept: a HotReplies
//   if (r == nullptr) { other = svc.handle(s, message, now); r = &other; }
//   if (r.close_after) { svc.close(s, "protocol error"); }
//
// Thread safety: none; the loop's thread owns it.
#pragma once

#include <bitset>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/alloc_waiters.h"
#include "core/ledger.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/refusals.h"
#include "daemon/request_metrics.h"
#include "os/socket.h"
#include "proto/messages.h"

namespace pmm::daemon {

struct SessionState {
  core::SessionId id = 0;
  os::PeerCredentials peer{};
  // Set by the loop when it accepts (os/peer.h), for what views show: the
  // peer's supplementary groups, and whether it held CAP_SYS_ADMIN.
  std::vector<uint32_t> groups{};
  bool cap_sys_admin = false;
  bool greeted = false;
  std::string device{};  // resolved by the ledger, after Hello
  // Which pools' fds went to this session (indexed by pool; a fixed set, so
  // that a connection allocates nothing for it).
  std::bitset<core::Ledger::kMaxPools> fd_sent{};
};

// A session as log lines name it, "session 3 (pid 1234, uid 1000, device
// decoder)", formatted only when a line is written (log.h). Refers to the
// session: use it within the statement that logs it.
struct SessionLabel {
  const SessionState* s;
};

struct Reply {
  proto::Message message{};
  int fd = -1;                      // a pool fd to attach (the pool owns it)
  std::optional<size_t> fd_pool{};  // the pool whose fd is attached
  bool close_after = false;         // handshake failure: reply, then close
  bool deferred = false;            // no reply now: it comes later (a waiting allocation)
};

// The replies Service::handle_hot() writes over, one per kind of reply,
// kept by the caller across requests: each hot reply is written over the
// last one of its own type, so no Body is rebuilt when an export, an import
// and a put alternate.
struct HotReplies {
  Reply block{};  // BlockInfo: allocate, import
  Reply ok{};     // Ok: put, get
  Reply token{};  // TokenReply: export
};

// A message for a session other than (or later than) the request's: a
// waiting allocation's answer, a release notification (service_frames.cc).
struct Outgoing {
  core::SessionId session = 0;
  Reply reply{};
};

class Service {
 public:
  Service(std::unique_ptr<core::Ledger> ledger, const Log& log);
  void set_admins(AdminAccess admins) { admins_ = std::move(admins); }

  [[nodiscard]] Reply handle(SessionState& s, const proto::Message& m, core::SteadyTime now);
  // handle() for the requests a client sends most — Allocate, Get, Put,
  // Export, Import of a greeted session — written over the one of `kept`
  // for its kind of reply, which the caller keeps across requests: the
  // BlockInfo, Ok or TokenReply the last one left is reused (no Body built,
  // moved and destroyed per request) and every field of the Reply is set.
  // Returns that Reply: the same answer, refusals, logs and metrics as
  // handle(). nullptr, with nothing done, for any other request: call
  // handle().
  [[nodiscard]] Reply* handle_hot(SessionState& s, const proto::Message& m, core::SteadyTime now,
                                  HotReplies& kept);
  // When the last handle() returned (the clock read that timed it).
  [[nodiscard]] core::SteadyTime handled_at() const { return handled_at_; }
  // The session's socket closed (or the loop drops it): every reference
  // goes, in slices that reap() drops (Ledger::begin_close). Safe for a
  // session that never said Hello.
  void close(SessionState& s, std::string_view why);
  // Drops at most kReapPerTurn block holds of closed sessions; logs each
  // session it finishes. The loop calls it once per turn while reaping().
  static constexpr size_t kReapPerTurn = 1024;
  void reap();
  [[nodiscard]] bool reaping() const { return ledger_->reaping(); }
  // Drops exports past their deadline; logs them.
  size_t expire(core::SteadyTime now);

  [[nodiscard]] core::Ledger& ledger() { return *ledger_; }
  [[nodiscard]] const core::Ledger& ledger() const { return *ledger_; }
  // Refused requests (counted by error()) and connections (by the loop).
  [[nodiscard]] Refusals& refusals() { return refusals_; }
  // "session 3 (pid 1234, uid 1000, device decoder)", for a log argument.
  [[nodiscard]] static SessionLabel who(const SessionState& s) { return SessionLabel{&s}; }
  // What the session's listings show (see core/ledger.h "admin views"):
  // all for admins; physical addresses to a peer that could read them from
  // pagemap itself, i.e. uid 0 when it connected and CAP_SYS_ADMIN.
  [[nodiscard]] core::Viewer viewer(const SessionState& s) const;

  // ---- frame-rate sharing (service_frames.cc) ----------------------------
  // Answers that are due to other sessions, or later than their request:
  // waiting allocations served or refused at their deadline, release
  // notifications. `find` gives the open session of an id (nullptr if gone).
  // The loop sends them after each round of requests.
  [[nodiscard]] std::vector<Outgoing> take_outgoing(
      core::SteadyTime now, const std::function<SessionState*(core::SessionId)>& find);
  // Whether take_outgoing() could return anything: false when nothing is
  // queued and no allocation waits or watch is due (the common turn of the
  // loop, which then skips it).
  [[nodiscard]] bool outgoing_possible() const {
    return !outgoing_.empty() || watches_due_ || waiters_due_ || !waiters_.empty();
  }
  // The earliest deadline of a waiting allocation, for the loop's timeout.
  [[nodiscard]] std::optional<core::SteadyTime> next_wait_deadline() const {
    return waiters_.next_deadline();
  }
  [[nodiscard]] size_t waiting_allocations() const { return waiters_.size(); }
  // Bounds on release watches.
  static constexpr size_t kMaxWatchesPerSession = 256;
  static constexpr size_t kMaxWatches = 4096;

 private:
  // A refused request: counted, logged (detail) and answered with `e`.
  // `what` names the request for the log: a string ("handshake"), or
  // lazy(...) so that nothing is formatted unless --verbose writes the line
  // (a client can make every one of its requests fail; the count, which
  // pmmctl status shows, is what an operator watches).
  template <typename What>
  Reply error(const SessionState& s, uint32_t request_id, const Error& e, const What& what) {
    refusals_.count(e.code);
    log_.detail("{} {} refused: {}", who(s), what, lazy([&] { return e.describe(); }));
    return refusal(request_id, e);
  }
  static Reply refusal(uint32_t request_id, const Error& e);
  Reply block_reply(SessionState& s, uint32_t request_id, const core::BlockInfo& b);
  static Reply ok_reply(uint32_t request_id);
  // The same, written over `out` (handle_hot()'s kept reply).
  void block_reply(SessionState& s, uint32_t request_id, const core::BlockInfo& b, Reply& out);
  static void ok_reply(uint32_t request_id, Reply& out);
  // The hot requests, answered into `out` (a fresh Reply from dispatch()).
  void on_allocate(SessionState& s, uint32_t id, const proto::Allocate& req, Reply& out);
  void on_get(SessionState& s, uint32_t id, const proto::Get& req, Reply& out);
  void on_put(SessionState& s, uint32_t id, const proto::Put& req, Reply& out);
  void on_import(SessionState& s, uint32_t id, const proto::Import& req, core::SteadyTime now,
                 Reply& out);
  void on_export(SessionState& s, uint32_t id, const proto::Export& req, core::SteadyTime now,
                 Reply& out);
  // After a request is answered: when (handled_at()), and its metrics.
  void handled(const proto::Message& m, const Reply& r, core::SteadyTime now);
  // viewer(s).phys, without asking whether the session is an admin.
  static bool sees_physical(const SessionState& s) { return s.peer.uid == 0 && s.cap_sys_admin; }
  Reply hello(SessionState& s, uint32_t request_id, const proto::Hello& h);
  proto::PoolInfo pool_info(size_t i, const SessionState& s) const;
  Reply list_blocks(const SessionState& s, uint32_t request_id, const proto::ListBlocks& r,
                    core::SteadyTime now) const;
  Reply list_sessions(const SessionState& s, uint32_t request_id,
                      const proto::ListSessions& r) const;
  Reply list_devices(const SessionState& s, uint32_t request_id, const proto::ListDevices& r) const;
  // pmmctl check: root (or pmmd's own uid) only; see service_check.cc.
  Reply check(const SessionState& s, uint32_t request_id);
  // handle() without the request metrics around it.
  Reply dispatch(SessionState& s, const proto::Message& m, core::SteadyTime now);
  // pmmctl metrics / top / map; see service_metrics.cc.
  Reply metrics(const SessionState& s, uint32_t request_id, core::SteadyTime now);
  Reply pool_map(const SessionState& s, uint32_t request_id, const proto::PoolMapRequest& r);

  // service_frames.cc
  Reply allocate_wait(SessionState& s, uint32_t request_id, const proto::AllocateWait& r,
                      core::SteadyTime now);
  Reply watch_release(SessionState& s, uint32_t request_id, const proto::WatchRelease& r);
  // After a put of `block`: its watches may fire, waiters may fit.
  void after_put(core::BlockId block);
  // After anything that may drop references to unknown blocks.
  void after_drop();
  // A session closed: its waiters and watches go.
  void forget_session(core::SessionId s);
  // Sends Released for the watches of `block` that are due; drops stale ones.
  void check_watches(core::BlockId block);

  std::unique_ptr<core::Ledger> ledger_;
  // Per pool, what a BlockInfo says of its memory, and the fd it carries
  // (none for sysv).
  struct PoolMemory {
    proto::PoolMemory memory;
    bool sysv = false;
    int fd = -1;
  };
  std::vector<PoolMemory> pool_memory_;
  core::AllocWaiters waiters_;
  // (block, watching session), ordered so a block's watches are adjacent.
  // -> how many WatchRelease requests the coming Released answers.
  std::map<std::pair<core::BlockId, core::SessionId>, uint32_t> watches_;
  std::unordered_map<core::SessionId, size_t> watches_of_;
  std::vector<Outgoing> outgoing_;
  // What the last reap() finished, kept so that reaping allocates nothing.
  std::vector<std::pair<core::SessionId, core::CloseSummary>> reaped_;
  bool waiters_due_ = false;  // memory may have freed: walk the queue
  bool watches_due_ = false;  // references dropped somewhere: walk the watches
  const Log& log_;
  AdminAccess admins_{};
  Refusals refusals_;
  RequestMetrics metrics_{std::chrono::steady_clock::now()};
  core::SteadyTime handled_at_{};
};

}  // namespace pmm::daemon

template <>
struct fmt::formatter<pmm::daemon::SessionLabel> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const pmm::daemon::SessionLabel& l, Context& ctx) const {
    const pmm::daemon::SessionState& s = *l.s;
    return fmt::format_to(ctx.out(), "session {} (pid {}, uid {}, device {})", s.id, s.peer.pid,
                          s.peer.uid, s.device.empty() ? std::string_view("?") : s.device);
  }
};
