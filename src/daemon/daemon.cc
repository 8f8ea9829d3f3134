// The event loop; see daemon.h.
#include "daemon/daemon.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <type_traits>
#include <utility>

#include <linux/capability.h>

#include "base/units.h"
#include "daemon/kernel_report.h"
#include "daemon/steady_now.h"
#include "os/peer.h"
#include "proto/channel.h"
#include "proto/codec.h"

#ifndef PMM_VERSION
#define PMM_VERSION "dev"
#endif

namespace pmm::daemon {

namespace {

// epoll tags: session ids count up from 1; the fixed fds use the top values.
constexpr uint64_t kListenTag = ~uint64_t{0};
constexpr uint64_t kTimerTag = ~uint64_t{0} - 1;
constexpr uint64_t kWakeupTag = ~uint64_t{0} - 2;
constexpr uint64_t kSignalTag = ~uint64_t{0} - 3;

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::create(Config config, std::string socket_path,
                                               DaemonOptions options) {
  os::UniqueFd inherited(std::exchange(options.listen_fd, -1));
  const Log& log = options.log;
  std::vector<std::string> summary = describe(config);
  std::vector<core::LedgerPool> pools;
  for (auto& pc : config.pools) {
    std::string name = pc.options.name;
    auto pool = core::Pool::create(std::move(pc.options));
    if (!pool) {
      // Keeps code and sys_errno: a caller may tell ENOMEM from EMFILE.
      Error e = std::move(pool.error());
      e.message = fmt::format("{}:{}: pool {} could not be created: {}", config.source, pc.line,
                              name, e.message);
      return std::unexpected(std::move(e));
    }
    pools.push_back(core::LedgerPool{.pool = std::move(*pool), .access = std::move(pc.access)});
  }
  auto ledger = core::Ledger::create(std::move(pools), config.devices, config.ledger);
  if (!ledger) {
    return fail(ledger.error().code, "{}: {}", config.source, ledger.error().message);
  }
  auto epoll = os::Epoll::create();
  if (!epoll) return std::unexpected(epoll.error());
  auto timer = os::Timer::create();
  if (!timer) return std::unexpected(timer.error());
  auto wakeup = os::Wakeup::create();
  if (!wakeup) return std::unexpected(wakeup.error());
  auto spare = os::SpareFd::create();
  if (!spare) return std::unexpected(spare.error());
  // Sessions are fds: the default limit leaves room under the fd limit, so
  // that the limit, with its clear message, is met before EMFILE.
  SessionLimits limits = config.session_limits;
  auto fd_limit = os::raise_fd_limit();
  if (!fd_limit) return std::unexpected(fd_limit.error());
  const uint64_t fd_room = *fd_limit > kFdReserve + config.pools.size()
                               ? *fd_limit - kFdReserve - config.pools.size()
                               : 1;
  if (!limits.sessions) {
    limits.sessions = std::min<uint64_t>(SessionLimits::kDefaultSessions, fd_room);
    if (*limits.sessions < SessionLimits::kDefaultSessions) {
      log.info(
          "at most {} sessions (not {}): the fd limit is {}; raise LimitNOFILE= (or ulimit -n) "
          "for more",
          *limits.sessions, SessionLimits::kDefaultSessions, *fd_limit);
    }
  } else if (*limits.sessions > fd_room) {
    log.info(
        "[limits] sessions = {} is more than the fd limit {} allows (about {}); past that, "
        "connections are refused for want of fds",
        *limits.sessions, *fd_limit, fd_room);
  }

  std::unique_ptr<Daemon> d(new Daemon(std::move(socket_path), std::move(options),
                                       std::move(*ledger), std::move(*epoll), std::move(*timer),
                                       std::move(*wakeup)));
  d->groups_matter_ =
      !config.admin.gids.empty() ||
      std::ranges::any_of(config.pools,
                          [](const PoolConfig& p) { return !p.access.gids.empty(); }) ||
      std::ranges::any_of(config.devices,
                          [](const core::DeviceConfig& c) { return !c.access.gids.empty(); });
  d->service_.set_admins(std::move(config.admin));
  d->spare_ = std::move(*spare);
  d->limits_ = limits;
  for (size_t i = 0; i < d->service_.ledger().pool_count(); ++i)
    d->physical_known_ = d->physical_known_ || d->service_.ledger().pool(i).has_physical();
  if (d->options_.handle_signals) {
    auto s = os::SignalFd::create();
    if (!s) return std::unexpected(s.error());
    d->signals_ = std::move(*s);
    if (auto a = d->epoll_.add(d->signals_->fd(), kSignalTag); !a) {
      return std::unexpected(a.error());
    }
  }
  if (auto a = d->epoll_.add(d->timer_.fd(), kTimerTag); !a) return std::unexpected(a.error());
  if (auto a = d->epoll_.add(d->wakeup_.fd(), kWakeupTag); !a) return std::unexpected(a.error());
  // The socket last: once it exists clients may connect, so everything else
  // must already stand. An inherited one is systemd's: we neither create
  // nor remove its file.
  if (inherited) {
    d->listener_ = std::move(inherited);
    d->owns_socket_file_ = false;
    std::string bound = os::bound_path(d->listener_.get());
    d->socket_path_ = bound.empty() ? std::string("(socket from systemd)") : bound;
  } else {
    auto listener = os::listen_unix(d->socket_path_);
    if (!listener) return std::unexpected(listener.error());
    d->listener_ = std::move(*listener);
  }
  if (auto a = d->epoll_.add(d->listener_.get(), kListenTag); !a) {
    return std::unexpected(a.error());
  }
  d->listening_ = true;
  log.info("pmmd {} using {}", PMM_VERSION, config.source);
  for (const auto& line : summary) log.info("  {}", line);
  for (const auto& line : describe_kernel()) log.info("  {}", line);
  return d;
}

Daemon::Daemon(std::string socket_path, DaemonOptions options, std::unique_ptr<core::Ledger> ledger,
               os::Epoll epoll, os::Timer timer, os::Wakeup wakeup)
    : socket_path_(std::move(socket_path)),
      options_(std::move(options)),
      service_(std::move(ledger), options_.log),
      epoll_(std::move(epoll)),
      timer_(std::move(timer)),
      wakeup_(std::move(wakeup)),
      inbox_(std::make_unique_for_overwrite<std::byte[]>(kReadBatch * proto::kMaxRequestSize)) {
  for (size_t i = 0; i < kReadBatch; ++i) {
    inbox_slots_[i] = {inbox_.get() + i * proto::kMaxRequestSize, proto::kMaxRequestSize};
  }
  inbox_batch_ = std::make_unique<os::MessageBatch>(inbox_slots_);
}

Daemon::~Daemon() {
  shutdown();
  options_.log.info("pools released; stopped");
}

Status Daemon::run() {
  options_.log.info("listening on {}", socket_path_);
  std::array<os::Epoll::Event, 64> events;
  while (!stopping_) {
    // Every deadline (exports, hellos, resuming accept, trimming, waiting
    // allocations) is the timerfd's: the wait itself has no timeout, so a
    // busy loop arms no kernel timer per wait (rearm_timer).
    auto n = epoll_.wait(events, service_.reaping() ? 0 : -1);
    if (!n) {
      shutdown();
      return std::unexpected(n.error());
    }
    for (size_t i = 0; i < *n && !stopping_; ++i) {
      const os::Epoll::Event& ev = events[i];
      // A session (the common event) with one compare: the fixed fds'
      // tags are the top values.
      if (ev.tag() < kSignalTag) [[likely]] {
        serve(ev.tag());
        continue;
      }
      switch (ev.tag()) {
        case kListenTag:
          accept_next();
          break;
        case kTimerTag:
          timer_.consume();
          armed_ = kNever;
          service_.expire(steady_now());
          break;
        case kWakeupTag:
          wakeup_.consume();
          options_.log.info("stop requested");
          stopping_ = true;
          break;
        case kSignalTag: {
          int sig = signals_->consume();
          options_.log.info("signal {} received; stopping", sig);
          stopping_ = true;
          break;
        }
        default:
          break;
      }
    }
    if (stopping_) break;
    // A closed session's blocks go back in slices, between other requests;
    // once the last is back, the heap they used is worth trimming.
    bool reaped = false;
    if (service_.reaping()) {
      service_.reap();
      reaped = true;
      if (!service_.reaping()) trim_due_ = true;
    }
    // The end of the last request answered in this turn, a send or two ago,
    // is `now` for the deadlines below unless reaping came after it: one
    // clock read fewer per turn. A deadline it makes look a few
    // microseconds early is not missed: rearm_timer arms the timerfd for
    // it, which then fires at once.
    const auto now = answered_ && !reaped ? service_.handled_at() : steady_now();
    answered_ = false;
    // Both are out of line for their rare work; most turns have none.
    if (service_.outgoing_possible()) send_outgoing(now);
    if (!hello_deadlines_.empty() && hello_deadlines_.front().first <= now) expire_hellos(now);
    if (resume_at_ && now >= *resume_at_) resume_listening();
    if (trim_due_ && now >= last_trim_ + std::chrono::seconds(1)) [[unlikely]]
      maybe_trim(now);
    rearm_timer();
  }
  shutdown();
  return {};
}

// Inline into rearm_timer(), its one caller, which runs every turn: plain
// minimums over time points, kNever for none, so that a turn with nothing
// new to wait for costs a few compares.
[[gnu::always_inline]] inline Daemon::Clock::time_point Daemon::next_deadline() const {
  Clock::time_point next = kNever;
  if (auto e = service_.ledger().next_deadline()) next = *e;
  if (!hello_deadlines_.empty()) next = std::min(next, hello_deadlines_.front().first);
  if (resume_at_) next = std::min(next, *resume_at_);
  if (trim_due_) next = std::min(next, last_trim_ + std::chrono::seconds(1));
  if (service_.waiting_allocations() != 0) [[unlikely]] {
    if (auto w = service_.next_wait_deadline()) next = std::min(next, *w);
  }
  return next;
}

void Daemon::accept_next() {
  // One connection per wakeup: level-triggered epoll reports the listener
  // again while more wait, between the other sessions' requests, and a
  // lone connect costs one accept4 (not a second one to learn that nothing
  // more is there).
  auto c = os::accept_unix(listener_.get());
  if (!c) {
    int err = c.error().sys_errno;
    if (err == EMFILE || err == ENFILE) return out_of_fds(c.error());
    // Anything else (ENOBUFS, ENOMEM, ...) is also the system running
    // short; retrying at once would only spin.
    options_.log.info("accept failed: {}; retrying in 100 ms", c.error().describe());
    service_.refusals().count("accept_failed");
    return pause_listening(std::chrono::milliseconds(100));
  }
  if (*c) admit(std::move(**c));
}

void Daemon::admit(os::UniqueFd fd) {
  auto cred = os::peer_credentials(fd.get());
  if (!cred) {
    options_.log.info("connection refused: {}", cred.error().describe());
    return;
  }
  const bool counted = cred->uid != 0;
  if (counted) {
    const size_t limit = limits_.sessions.value_or(SessionLimits::kDefaultSessions);
    if (counted_sessions_ >= limit) {
      return refuse_connection(
          std::move(fd), "sessions",
          Error{Errc::kLimit,
                fmt::format("pmmd has {} sessions open, its limit for users other than root "
                            "([limits] sessions = {}); try again later",
                            counted_sessions_, limit)},
          &*cred);
    }
    auto it = sessions_of_uid_.find(cred->uid);
    size_t mine = it == sessions_of_uid_.end() ? 0 : it->second;
    if (mine >= limits_.sessions_per_uid) {
      return refuse_connection(
          std::move(fd), "sessions_per_uid",
          Error{Errc::kLimit,
                fmt::format("uid {} has {} sessions open with pmmd, its limit per uid "
                            "([limits] sessions_per_uid = {}); close one first",
                            cred->uid, mine, limits_.sessions_per_uid)},
          &*cred);
    }
  }
  uint64_t id = next_session_++;
  if (auto a = epoll_.add(fd.get(), id); !a) {
    return refuse_connection(
        std::move(fd), "system",
        Error{Errc::kSystem, "pmmd could not watch the connection: " + a.error().describe()},
        &*cred);
  }
  if (counted) {
    ++counted_sessions_;
    ++sessions_of_uid_[cred->uid];
  }
  Session s;
  s.state.id = id;
  s.state.peer = *cred;
  // For what its views show (Service::viewer); read now, as it connected.
  // Only root may see physical addresses, so only root's /proc is read, and
  // only when a pool has any to show (two /proc reads were a third of
  // pmmd's time per connect+disconnect of a root client).
  if (groups_matter_) {
    // gid_t is uint32_t on Linux: the kernel's list is taken over, not copied.
    static_assert(std::is_same_v<gid_t, uint32_t>);
    if (auto g = os::peer_groups(fd.get())) s.state.groups = std::move(*g);
  }
  s.state.cap_sys_admin = cred->uid == 0 && physical_known_ &&
                          os::peer_has_capability(fd.get(), cred->pid, CAP_SYS_ADMIN);
  s.fd = std::move(fd);
  sessions_.emplace(id, std::move(s));
  hello_deadlines_.emplace_back(steady_now() + limits_.hello_timeout, id);
}

void Daemon::refuse_connection(os::UniqueFd fd, std::string_view cause, const Error& e,
                               const os::PeerCredentials* who) {
  service_.refusals().count(cause);
  // request_id 0: the connection is refused before any request is read
  // (docs/protocol.md). Best effort; closing fd ends it either way.
  (void)proto::send(fd.get(), {.request_id = 0, .body = proto::from_error(e)});
  discard_pending(fd.get());
  if (who != nullptr) {
    options_.log.info("connection from pid {} (uid {}) refused: {}", who->pid, who->uid, e.message);
  } else {
    options_.log.info("connection refused: {}", e.message);
  }
}

void Daemon::discard_pending(int fd) {
  // Closing a Unix socket with messages unread makes the peer's next read
  // fail with ECONNRESET before it sees the reason we queued for it; a
  // client that sent its Hello before we accepted would hear only "reset".
  for (int i = 0; i < 4; ++i) {
    auto m = os::receive_message_into(fd, inbox_slots_[0], 0);
    if (!m || !*m) return;
  }
}

void Daemon::out_of_fds(const Error& e) {
  const std::string why = e.sys_errno == ENFILE ? "the system has no file descriptors left"
                                                : "pmmd has no file descriptors left";
  // The spare fd lets each waiting client in just long enough to hear why.
  // Each one handled is a connection taken off the backlog, so this is work
  // the clients pay for with their connects, not a busy loop; the listener
  // stays in epoll. Only when even the spare does not help (ENFILE: another
  // process took the fd) does pmmd stop accepting, for a second at most.
  size_t told = 0;
  bool stuck = !spare_.held();
  for (int i = 0; i < 64 && !stuck; ++i) {
    spare_.release();
    bool more = false;
    {
      auto c = os::accept_unix(listener_.get());
      if (!c) {
        stuck = true;
      } else if (*c) {
        more = true;
        service_.refusals().count("no_fds");
        (void)proto::send((*c)->get(),
                          {.request_id = 0,
                           .body = proto::from_error(Error{
                               Errc::kLimit, fmt::format("{} ({} sessions open); try again later",
                                                         why, sessions_.size())})});
        discard_pending((*c)->get());
        ++told;
      }
    }  // the connection is closed here, before the spare is taken back
    if (auto r = spare_.restore(); !r) {
      options_.log.info("{}", r.error().describe());
      stuck = true;
    }
    if (!more) break;
  }
  options_.log.info("{} ({} sessions open; {}); refused {} connection(s) with that reason", why,
                    sessions_.size(), e.describe(), told);
  if (stuck) pause_listening(std::chrono::seconds(1));
}

void Daemon::pause_listening(Clock::duration at_most) {
  if (listening_) {
    epoll_.remove(listener_.get());
    listening_ = false;
  }
  resume_at_ = steady_now() + at_most;
}

void Daemon::resume_listening() {
  resume_at_.reset();
  if (listening_ || !listener_) return;
  if (auto a = epoll_.add(listener_.get(), kListenTag); !a) {
    options_.log.info("cannot watch the listening socket: {}; retrying in 1 s",
                      a.error().describe());
    resume_at_ = steady_now() + std::chrono::seconds(1);
    return;
  }
  listening_ = true;
}

void Daemon::expire_hellos(Clock::time_point now) {
  while (!hello_deadlines_.empty() && hello_deadlines_.front().first <= now) {
    uint64_t id = hello_deadlines_.front().second;
    hello_deadlines_.pop_front();
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.state.greeted) continue;
    service_.refusals().count("hello_timeout");
    Error e{Errc::kProtocol,
            fmt::format("no Hello within {} of connecting ([limits] hello_timeout); pmmd closes "
                        "connections that do not introduce themselves",
                        format_duration(limits_.hello_timeout))};
    (void)proto::send(it->second.fd.get(), {.request_id = 0, .body = proto::from_error(e)});
    drop(id, "no Hello in time");
  }
}

void Daemon::maybe_trim(Clock::time_point now) {
  if (!trim_due_ || now < last_trim_ + std::chrono::seconds(1)) return;
  trim_due_ = false;
  last_trim_ = now;
  if (size_t freed = os::trim_heap(kTrimThreshold); freed > 0) {
    options_.log.detail("gave {} of free heap back to the kernel", format_size(freed));
  }
}

void Daemon::serve(uint64_t id) {
  // Each recvmmsg takes what the session has queued (up to kReadBatch), so
  // a client waiting for each reply costs one receive per request, with no
  // second one to learn that nothing more is there; a pipelining client
  // costs one per kReadBatch. At most kBatch per wakeup: level-triggered
  // epoll brings a busy session back after the others had their turn.
  for (int served = 0; served < kBatch;) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    Session& s = it->second;
    // Requests never carry fds: one that comes is a protocol error (and the
    // kernel closes it).
    auto got = os::receive_messages(s.fd.get(), *inbox_batch_, datagrams_);
    if (!got) {
      if (got.error().code == Errc::kDisconnected) return drop(id, "disconnected");
      // The system failed the read (ENOMEM, ENOBUFS): the request may be
      // lost, so the session cannot go on. Say why rather than just hang up.
      Error e{Errc::kSystem,
              fmt::format("pmmd could not read this connection's request ({}); the session is "
                          "closed and its references dropped",
                          got.error().message),
              got.error().sys_errno};
      (void)proto::send(s.fd.get(), {.request_id = 0, .body = proto::from_error(e)});
      // What it sent and we did not read would turn its read of our reason
      // into ECONNRESET once we close.
      discard_pending(s.fd.get());
      return drop(id, got.error().describe());
    }
    for (size_t i = 0; i < *got; ++i) {
      const os::Datagram& d = datagrams_[i];
      if (d.error) {
        if (d.error->code == Errc::kDisconnected) return drop(id, "disconnected");
        return refuse(id, 0, *d.error);
      }
      if (!answer(s, id, inbox_slots_[i].first(d.size))) return;
    }
    served += static_cast<int>(*got);
    if (*got < inbox_slots_.size()) return;  // the queue is empty
  }
}

[[gnu::always_inline]] inline bool Daemon::answer(Session& s, uint64_t id,
                                                  std::span<const std::byte> bytes) {
  // Into the Message kept for its type: nothing is allocated or moved per
  // request (an Allocate's pool list keeps its storage).
  auto decoded = requests_.decode(bytes);
  if (!decoded) [[unlikely]]
    return undecodable(id, bytes, decoded.error());
  const proto::Message& msg = **decoded;
  answered_ = true;
  const auto now = steady_now();
  // An allocate, get, put, export or import is answered over the reply kept
  // for its kind.
  Reply* hot = service_.handle_hot(s.state, msg, now, replies_);
  if (hot == nullptr) [[unlikely]]
    return answer_other(s, id, msg, now);
  return deliver(s, id, msg.request_id, *hot);
}

bool Daemon::answer_other(Session& s, uint64_t id, const proto::Message& msg,
                          Clock::time_point now) {
  Reply r = service_.handle(s.state, msg, now);
  return deliver(s, id, msg.request_id, r);
}

[[gnu::always_inline]] inline bool Daemon::deliver(Session& s, uint64_t id, uint32_t request_id,
                                                   Reply& r) {
  if (r.deferred) return true;  // answered later, by send_outgoing
  // Many puts in a live session free heap too; look now and then.
  if (++requests_since_trim_ >= kTrimEveryRequests) [[unlikely]] {
    requests_since_trim_ = 0;
    trim_due_ = true;
  }
  if (auto sent = send_reply(s.fd.get(), r.message, r.fd); !sent) [[unlikely]] {
    if (!not_sent(s, id, request_id, sent.error())) return false;
    r.fd_pool.reset();  // an ErrorReply went instead, with no fd
  }
  if (r.fd_pool) s.state.fd_sent[*r.fd_pool] = true;
  if (r.close_after) [[unlikely]] {
    drop(id, "handshake refused");
    return false;
  }
  return true;
}

bool Daemon::undecodable(uint64_t id, std::span<const std::byte> bytes, const Error& e) {
  auto h = proto::decode_header(bytes);
  refuse(id, h ? h->request_id : 0, e);
  return false;
}

bool Daemon::not_sent(Session& s, uint64_t id, uint32_t request_id, const Error& failed) {
  Status sent = std::unexpected(failed);
  if (failed.code == Errc::kInvalidArgument) {
    // Our reply did not encode: a daemon bug, not the client's fault.
    Error e{Errc::kSystem, "pmmd could not encode its reply: " + failed.message};
    options_.log.info("{}: {}", Service::who(s.state), e.message);
    sent = send_reply(s.fd.get(), {.request_id = request_id, .body = proto::from_error(e)}, -1);
    if (sent) return true;
  }
  bool full = sent.error().sys_errno == EAGAIN || sent.error().sys_errno == EWOULDBLOCK;
  drop(id,
       full ? "its socket buffer is full: it does not read its replies" : sent.error().describe());
  return false;
}

// Inline into answer()'s path (one frame, not two, per reply).
[[gnu::always_inline]] inline Status Daemon::send_reply(int sock, const proto::Message& m,
                                                        int pool_fd) {
  // proto::send's contract (an fd exactly when a BlockInfo says one is
  // attached), encoding into outbox_ rather than a thread's vector.
  const size_t have = pool_fd >= 0 ? 1 : 0;
  if (proto::fds_expected(m.body) != have) [[unlikely]]
    return fd_mismatch(m, have);
  auto size =
      proto::encode_reply_into(m, std::span<std::byte>(outbox_.get(), proto::kMaxReplySize));
  if (!size) [[unlikely]]
    return std::unexpected(std::move(size.error()));
  // kMaxReplySize holds whatever encodes (encode_reply_into checks the limit).
  const std::array<int, 1> fds{pool_fd};
  return os::send_message(sock, std::span<const std::byte>(outbox_.get(), *size),
                          std::span<const int>(fds.data(), have), 0);
}

std::unexpected<Error> Daemon::fd_mismatch(const proto::Message& m, size_t have) {
  return fail(Errc::kInvalidArgument, "{} must carry {} file descriptors, not {}",
              proto::message_type_name(proto::type_of(m.body)), proto::fds_expected(m.body), have);
}

void Daemon::refuse(uint64_t id, uint32_t request_id, const Error& e) {
  service_.refusals().count("protocol");
  Error err{Errc::kProtocol, e.message};
  // Best effort: the client may be gone or not reading.
  (void)proto::send(sessions_.find(id)->second.fd.get(),
                    {.request_id = request_id, .body = proto::from_error(err)});
  drop(id, "protocol error: " + e.message);
}

void Daemon::drop(uint64_t id, std::string_view why) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  service_.close(it->second.state, why);
  // No EPOLL_CTL_DEL: closing the socket below takes it out of the epoll
  // set (pmmd holds its only descriptor), one system call fewer per
  // session. Events already read for it carry its id, which is gone.
  if (uid_t uid = it->second.state.peer.uid; uid != 0) {
    --counted_sessions_;
    auto u = sessions_of_uid_.find(uid);
    if (u != sessions_of_uid_.end() && --u->second == 0) sessions_of_uid_.erase(u);
  }
  sessions_.erase(it);  // closes the socket
  // An fd is free again, and what the session held may be a lot of heap.
  if (!stopping_) resume_listening();
  trim_due_ = true;
}

void Daemon::send_outgoing(Clock::time_point now) {
  // Dropping a session whose answer cannot be sent may free memory that
  // others wait for: go round until nothing more is due (each round either
  // sends or drops, and sessions are finite).
  while (service_.outgoing_possible()) {
    std::vector<Outgoing> out = service_.take_outgoing(now, [this](core::SessionId id) {
      auto it = sessions_.find(id);
      return it == sessions_.end() || !it->second.state.greeted ? nullptr : &it->second.state;
    });
    if (out.empty()) return;
    for (Outgoing& o : out) {
      auto it = sessions_.find(o.session);
      if (it == sessions_.end()) continue;
      auto sent = send_reply(it->second.fd.get(), o.reply.message, o.reply.fd);
      if (!sent) {
        bool full = sent.error().sys_errno == EAGAIN || sent.error().sys_errno == EWOULDBLOCK;
        drop(o.session, full ? "its socket buffer is full: it does not read what pmmd sends"
                             : sent.error().describe());
      }
    }
  }
}

void Daemon::rearm_timer() {
  // Only an earlier deadline sets the timer again. When the earliest one
  // goes (an export imported or withdrawn, a waiter served, a hello said)
  // the timer is left set for it and fires early, harmlessly: nothing is
  // due and the next round arms the real next deadline. So a producer
  // exporting and a consumer importing frame after frame touch the timerfd
  // about once per lifetime, not twice per frame, and a busy daemon with a
  // trim due in a second does not arm a kernel timer in every epoll_wait.
  // kNever when none, and armed_ is kNever when the timer is not set: one
  // compare covers "nothing to wait for" and "armed for this or earlier".
  const Clock::time_point next = next_deadline();
  if (next >= armed_) return;
  Status s = timer_.arm_at(next);
  if (!s) {
    options_.log.info("timer: {}", s.error().describe());
    return;
  }
  armed_ = next;
}

void Daemon::shutdown() {
  if (listener_) {
    if (listening_) epoll_.remove(listener_.get());
    listening_ = false;
    resume_at_.reset();
    listener_.reset();
    if (owns_socket_file_) {
      if (auto s = os::remove_file(socket_path_); !s) options_.log.info("{}", s.error().describe());
    }
  }
  while (!sessions_.empty()) drop(sessions_.begin()->first, "daemon stopping");
}

}  // namespace pmm::daemon
