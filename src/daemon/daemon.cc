// The event loop; see daemon.h.
#include "daemon/daemon.h"

#include <array>

#include <linux/capability.h>

#include "daemon/kernel_report.h"
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
  const Log& log = options.log;
  std::vector<std::string> summary = describe(config);
  std::vector<core::LedgerPool> pools;
  for (auto& pc : config.pools) {
    std::string name = pc.options.name;
    auto pool = core::Pool::create(std::move(pc.options));
    if (!pool) {
      return fail(pool.error().code, "{}:{}: pool {} could not be created: {}", config.source,
                  pc.line, name, pool.error().message);
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

  std::unique_ptr<Daemon> d(new Daemon(std::move(socket_path), std::move(options),
                                       std::move(*ledger), std::move(*epoll), std::move(*timer),
                                       std::move(*wakeup)));
  d->service_.set_admins(std::move(config.admin));
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
  // must already stand.
  auto listener = os::listen_unix(d->socket_path_);
  if (!listener) return std::unexpected(listener.error());
  d->listener_ = std::move(*listener);
  if (auto a = d->epoll_.add(d->listener_.get(), kListenTag); !a) {
    return std::unexpected(a.error());
  }
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
      wakeup_(std::move(wakeup)) {}

Daemon::~Daemon() {
  shutdown();
  options_.log.info("pools released; stopped");
}

Status Daemon::run() {
  options_.log.info("listening on {}", socket_path_);
  std::array<os::Epoll::Event, 64> events;
  while (!stopping_) {
    auto n = epoll_.wait(events, -1);
    if (!n) {
      shutdown();
      return std::unexpected(n.error());
    }
    for (size_t i = 0; i < *n && !stopping_; ++i) {
      const os::Epoll::Event& ev = events[i];
      switch (ev.tag) {
        case kListenTag:
          accept_all();
          break;
        case kTimerTag:
          timer_.consume();
          armed_.reset();
          service_.expire(std::chrono::steady_clock::now());
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
          serve(ev.tag);
          break;
      }
    }
    rearm_timer();
  }
  shutdown();
  return {};
}

void Daemon::accept_all() {
  // Bounded per wakeup; level-triggered epoll brings the rest next round.
  for (int i = 0; i < 64; ++i) {
    auto c = os::accept_unix(listener_.get());
    if (!c) {
      options_.log.info("accept failed: {}", c.error().describe());
      return;
    }
    if (!*c) return;
    os::UniqueFd fd = std::move(**c);
    auto cred = os::peer_credentials(fd.get());
    if (!cred) {
      options_.log.info("connection refused: {}", cred.error().describe());
      continue;
    }
    uint64_t id = next_session_++;
    if (sessions_.size() >= options_.max_sessions) {
      Error e{Errc::kLimit, fmt::format("pmmd serves at most {} sessions at once; try again later",
                                        options_.max_sessions)};
      (void)proto::send(fd.get(), {.request_id = 0, .body = proto::from_error(e)});
      options_.log.info("connection from pid {} refused: {}", cred->pid, e.message);
      continue;
    }
    if (auto a = epoll_.add(fd.get(), id); !a) {
      options_.log.info("connection from pid {} refused: {}", cred->pid, a.error().describe());
      continue;
    }
    Session s;
    s.state.id = id;
    s.state.peer = *cred;
    // For what its views show (Service::viewer); read now, as it connected.
    // Only root may see physical addresses, so only root's /proc is read.
    if (auto g = os::peer_groups(fd.get())) s.state.groups.assign(g->begin(), g->end());
    s.state.cap_sys_admin =
        cred->uid == 0 && os::peer_has_capability(fd.get(), cred->pid, CAP_SYS_ADMIN);
    s.fd = std::move(fd);
    sessions_.emplace(id, std::move(s));
  }
}

void Daemon::serve(uint64_t id) {
  for (int i = 0; i < kBatch; ++i) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;  // dropped earlier in this round
    Session& s = it->second;
    // Requests never carry fds: max_fds 0 makes any that come a protocol
    // error (and the kernel's copies are closed by the os layer).
    auto in = os::receive_message(s.fd.get(), proto::kMaxRequestSize, 0);
    if (!in) {
      if (in.error().code == Errc::kDisconnected) return drop(id, "disconnected");
      if (in.error().code == Errc::kProtocol) return refuse(s, 0, in.error());
      return drop(id, in.error().describe());
    }
    if (!*in) return;  // nothing more to read now
    auto msg = proto::decode_request((*in)->bytes);
    if (!msg) {
      auto h = proto::decode_header((*in)->bytes);
      return refuse(s, h ? h->request_id : 0, msg.error());
    }
    Reply r = service_.handle(s.state, *msg, std::chrono::steady_clock::now());
    auto sent = proto::send(s.fd.get(), r.message, r.fd);
    if (!sent && sent.error().code == Errc::kInvalidArgument) {
      // Our reply did not encode: a daemon bug, not the client's fault.
      Error e{Errc::kSystem, "pmmd could not encode its reply: " + sent.error().message};
      options_.log.info("{}: {}", Service::who(s.state), e.message);
      sent = proto::send(s.fd.get(), {.request_id = msg->request_id, .body = proto::from_error(e)});
      r.fd_pool.reset();
    }
    if (!sent) {
      bool full = sent.error().sys_errno == EAGAIN || sent.error().sys_errno == EWOULDBLOCK;
      return drop(id, full ? "its socket buffer is full: it does not read its replies"
                           : sent.error().describe());
    }
    if (r.fd_pool) s.state.fd_sent[*r.fd_pool] = true;
    if (r.close_after) return drop(id, "handshake refused");
  }
}

void Daemon::refuse(Session& s, uint32_t request_id, const Error& e) {
  Error err{Errc::kProtocol, e.message};
  // Best effort: the client may be gone or not reading.
  (void)proto::send(s.fd.get(), {.request_id = request_id, .body = proto::from_error(err)});
  drop(s.state.id, "protocol error: " + e.message);
}

void Daemon::drop(uint64_t id, std::string_view why) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  service_.close(it->second.state, why);
  epoll_.remove(it->second.fd.get());
  sessions_.erase(it);  // closes the socket
}

void Daemon::rearm_timer() {
  auto next = service_.ledger().next_deadline();
  if (next == armed_) return;
  Status s = next ? timer_.arm_at(*next) : timer_.disarm();
  if (!s) {
    options_.log.info("export timer: {}", s.error().describe());
    return;
  }
  armed_ = next;
}

void Daemon::shutdown() {
  if (listener_) {
    epoll_.remove(listener_.get());
    listener_.reset();
    if (auto s = os::remove_file(socket_path_); !s) options_.log.info("{}", s.error().describe());
  }
  while (!sessions_.empty()) drop(sessions_.begin()->first, "daemon stopping");
}

}  // namespace pmm::daemon
