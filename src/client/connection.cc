// See connection.h. Two rules shape this file:
// - A connection is either alive, or dead with a remembered Error that every
//   later call returns without touching the socket, so an application whose
//   daemon died sees the same clear message from every call instead of a
//   mix of EPIPE, EBADF and hangs.
// - No lock is held while waiting on the socket. mu_ guards the tables of
//   requests in flight; the socket is read by one waiting thread at a time
//   (reading_), which hands each reply to its thread (waking that thread
//   only, through its own condition) and, when it leaves, wakes one other
//   waiter to read in its place (hand_off_locked).
//   The socket fd stays open until the destructor, so a thread polling or
//   reading it never sees its number reused; dying shuts it down to wake
//   them (a blocked recvmsg then returns end of stream).
// - A reply costs one recvmsg: the reading thread blocks in recvmsg, bounded
//   by SO_RCVTIMEO (blocking_wait_, a little under the timeout), as long as
//   its deadline is at least that far; only a shorter wait polls first.
#include "client/connection.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <variant>

#include "os/socket.h"
#include "os/sys_error.h"
#include "proto/channel.h"

namespace pmm::client {
namespace {

// Pages of an admin listing we follow before deciding the daemon loops.
constexpr size_t kMaxPages = 1 << 20;

// How long a closing connection waits for the daemon to confirm it has let go
// (at most; the connection's own timeout when that is shorter).
constexpr std::chrono::milliseconds kGoodbyeTimeout{2000};

bool is_disconnect(const Error& e) {
  return e.code == Errc::kDisconnected ||
         (e.code == Errc::kSystem && (e.sys_errno == EPIPE || e.sys_errno == ECONNRESET));
}

std::string reply_name(const proto::Body& body) {
  return std::string(proto::message_type_name(proto::type_of(body)));
}

// Counts fork()s in this process's line (in the child), so that a
// connection can tell it was inherited without a getpid() system call
// (pthread_atfork runs the handler in every child of fork(); a child made by
// a raw clone() system call is not told, and not detected).
std::atomic<uint32_t> g_forks{0};

uint32_t fork_generation() {
  static const bool registered = ::pthread_atfork(nullptr, nullptr, [] {
                                   g_forks.fetch_add(1, std::memory_order_relaxed);
                                 }) == 0;
  (void)registered;
  return g_forks.load(std::memory_order_relaxed);
}

// SO_RCVTIMEO for a connection whose waits are `timeout` long: short enough
// that a fresh request's wait (the timeout less the send) is at least that
// long, with room for the kernel rounding it up to whole ticks (up to 10 ms);
// 0 (never block in recvmsg) when the timeout leaves no such room.
std::chrono::milliseconds blocking_wait_for(std::chrono::milliseconds timeout) {
  constexpr std::chrono::milliseconds kMargin{20};
  if (timeout < 2 * kMargin) return std::chrono::milliseconds(0);
  return timeout - std::max(kMargin, timeout / 8);
}

}  // namespace

Connection::Connection(os::UniqueFd sock, std::string path, std::string device,
                       std::chrono::milliseconds timeout)
    : pid_(::getpid()),
      fork_generation_(fork_generation()),
      sock_(std::move(sock)),
      path_(std::move(path)),
      device_(std::move(device)),
      timeout_(std::max(timeout, std::chrono::milliseconds(1))),
      blocking_wait_(blocking_wait_for(timeout_)) {}

// Pool mappings go before the socket closes: nothing may point into them
// once the daemon could hand the memory to someone else. Then we wait (a
// bounded time) for the daemon to close its side, so that every reference
// this session held is dropped by the time the destructor returns: a
// program that disconnects and then allocates, or tells another process to,
// finds the memory back in the pool.
//
// In a fork() child the session is the parent's: the child's copies of the
// mappings and the fd are closed, and nothing is said to the daemon (no
// shutdown(), which would end the parent's session too). No lock is taken:
// another thread of the parent may have held one when it forked.
Connection::~Connection() {
  pools_.clear();
  if (inherited()) return;
  if (!dead_)
    os::shutdown_and_wait_for_peer(sock_.get(),
                                   static_cast<int>(std::min(timeout_, kGoodbyeTimeout).count()));
}

Result<std::unique_ptr<Connection>> Connection::connect(const ConnectOptions& options) {
  std::string path = options.socket_path.empty() ? os::default_socket_path() : options.socket_path;
  const auto timeout = std::max(options.timeout, std::chrono::milliseconds(1));
  auto sock = os::connect_unix_within(path, std::chrono::steady_clock::now() + timeout);
  if (!sock) {
    Error e = sock.error();
    if (e.code == Errc::kNoDaemon && e.message.find("pmmd") == std::string::npos)
      e.message += ": is pmmd running?";
    return std::unexpected(std::move(e));
  }
  auto c = handshake(std::move(*sock), path, options.device, timeout);
  if (c && options.populate) (*c)->pools_.set_populate(true);  // before any block: no lock needed
  return c;
}

Result<std::unique_ptr<Connection>> Connection::connect(const std::string& socket_path,
                                                        const std::string& device) {
  return connect(ConnectOptions{.socket_path = socket_path, .device = device});
}

Result<std::unique_ptr<Connection>> Connection::handshake(os::UniqueFd sock,
                                                          const std::string& label,
                                                          const std::string& device,
                                                          std::chrono::milliseconds timeout) {
  std::unique_ptr<Connection> c(new Connection(std::move(sock), label, device, timeout));
  if (auto s = c->prepare_socket(); !s) return std::unexpected(s.error());
  auto reply = c->roundtrip(proto::Hello{.protocol_version = proto::kProtocolVersion,
                                         .device = device,
                                         .pid = static_cast<int32_t>(c->pid_)});
  if (!reply) {
    Error e = reply.error();
    // A session that never started holds nothing: close without waiting
    // for the daemon's goodbye, so connect's wait stays within the timeout.
    (void)c->die(e);
    if (e.code == Errc::kDisconnected)
      e.message = fmt::format(
          "pmmd at {} closed the connection during the handshake (see its log; a daemon that "
          "refuses this uid or is shutting down does that)",
          label);
    return std::unexpected(std::move(e));
  }
  auto* w = std::get_if<proto::Welcome>(&reply->message.body);
  if (w == nullptr)
    return fail(Errc::kProtocol, "pmmd at {} answered Hello with {}, not Welcome", label,
                reply_name(reply->message.body));
  if (w->protocol_version != proto::kProtocolVersion)
    return fail(Errc::kProtocol,
                "pmmd at {} speaks protocol version {}, this libpmm speaks {}; use a libpmm and "
                "pmmd of the same release",
                label, w->protocol_version, proto::kProtocolVersion);
  c->welcome_ = std::move(*w);
  return c;
}

std::optional<Error> Connection::inherited() const {
  // The cheap test first: local get/put asks this on every call, and
  // getpid() is a system call.
  if (fork_generation() == fork_generation_) return std::nullopt;
  const pid_t self = ::getpid();
  if (self == pid_) return std::nullopt;
  return Error{Errc::kInvalidArgument,
               fmt::format("this pmm connection was opened by process {} and inherited by "
                           "process {} through fork(); its session and blocks belong to the "
                           "parent, so the child may not use it: connect anew in the child "
                           "(closing the inherited one there leaves the parent's session alone)",
                           pid_, self),
               0};
}

std::optional<Error> Connection::dead() const {
  if (auto e = inherited()) return e;
  std::lock_guard lock(mu_);
  return dead_;
}

std::unexpected<Error> Connection::die_locked(Error e) {
  if (dead_) return std::unexpected(*dead_);
  if (is_disconnect(e)) {
    e = Error{Errc::kDisconnected,
              fmt::format("pmmd at {} went away (the connection closed: it exited or was "
                          "killed); every block of this connection is gone: reconnect",
                          path_),
              e.sys_errno};
  }
  dead_ = e;
  died_.store(true, std::memory_order_release);
  // Nothing more will be read: the daemon sees us gone now, and every thread
  // waiting on the socket wakes. The fd itself closes in the destructor.
  os::shutdown_socket(sock_.get());
  for (auto& [id, f] : in_flight_)
    if (f.waiter != nullptr) f.waiter->notify_one();
  in_flight_.clear();
  abandoned_.clear();
  posted_ = 0;
  replied_.notify_all();
  return std::unexpected(std::move(e));
}

std::unexpected<Error> Connection::die(Error e) {
  std::lock_guard lock(mu_);
  return die_locked(std::move(e));
}

Status Connection::prepare_socket() {
  const int fd = sock_.get();
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return os::sys_fail(errno, "fcntl(fd {}, F_GETFL)", fd);
  if ((flags & O_NONBLOCK) != 0 && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
    return os::sys_fail(errno, "fcntl(fd {}, F_SETFL, blocking)", fd);
  if (blocking_wait_.count() > 0) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(blocking_wait_).count();
    const timeval tv{.tv_sec = static_cast<time_t>(us / 1000000),
                     .tv_usec = static_cast<suseconds_t>(us % 1000000)};
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
      return os::sys_fail(errno, "setsockopt(fd {}, SO_RCVTIMEO)", fd);
  }
  return {};
}

uint32_t Connection::new_id_locked() {
  for (;;) {
    uint32_t id = next_request_id_++;
    if (next_request_id_ == 0) next_request_id_ = 1;
    if (!in_flight_.contains(id) && !abandoned_.contains(id)) return id;
  }
}

Connection::InFlightMap::iterator Connection::add_locked(InFlightMap& map, uint32_t id,
                                                         InFlight f) {
  if (spare_count_ == 0) return map.emplace(id, std::move(f)).first;
  InFlightMap::node_type node = std::move(spare_nodes_[--spare_count_]);
  node.key() = id;
  InFlight& g = node.mapped();  // field by field: its reply is empty, as f's mostly is
  g.type = f.type;
  g.block_id = f.block_id;
  if (f.reply) g.reply = std::move(f.reply);
  g.posted = f.posted;
  g.waiter = f.waiter;
  return map.insert(std::move(node)).position;
}

void Connection::remove_locked(InFlightMap& map, InFlightMap::iterator it) {
  InFlightMap::node_type node = map.extract(it);
  if (spare_count_ == kSpareNodes) return;  // freed here
  node.mapped().reply.reset();              // a kept node holds no reply (add_locked sets the rest)
  spare_nodes_[spare_count_++] = std::move(node);
}

Status Connection::send_within(const proto::Message& m, os::Deadline deadline) {
  for (;;) {
    auto sent = proto::send(sock_.get(), m, -1, MSG_DONTWAIT);
    if (sent || sent.error().code != Errc::kSystem || sent.error().sys_errno != EAGAIN) return sent;
    auto ready = os::wait_writable(sock_.get(), deadline);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready)
      return fail(Errc::kTimeout,
                  "pmmd at {} took no request for {} ms (the socket stayed full: is it stopped "
                  "or hung?); {} was not sent",
                  path_, timeout_.count(), reply_name(m.body));
  }
}

Result<std::optional<proto::Envelope>> Connection::read_one(os::Deadline deadline, bool try_first) {
  if (try_first) {
    auto in = proto::receive_reply(sock_.get(), MSG_DONTWAIT);
    if (!in || *in) return in;
  }
  for (;;) {
    // A lone request's wait, when at least SO_RCVTIMEO long, blocks in
    // recvmsg itself, which SO_RCVTIMEO ends in time: one system call per
    // reply. A shorter one (the deadline's last stretch, a pump with its
    // own) polls first; so does a reader serving other threads' requests
    // too (try_first), which measured faster that way with 8 threads on one
    // connection (pmm_bench_frames: the blocking read there cost ~40%).
    if (!try_first && blocking_wait_.count() > 0 &&
        deadline - std::chrono::steady_clock::now() >= blocking_wait_) {
      auto in = proto::receive_reply(sock_.get());
      if (!in || *in) return in;
      continue;  // SO_RCVTIMEO ran out: what is left is shorter
    }
    auto ready = os::wait_readable(sock_.get(), deadline);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return std::optional<proto::Envelope>();
    auto in = proto::receive_reply(sock_.get(), MSG_DONTWAIT);
    if (!in || *in) return in;
  }
}

Status Connection::deliver_locked(proto::Envelope&& env, std::vector<proto::Body>& undo) {
  const uint32_t id = env.message.request_id;
  // A pool fd is kept on arrival, whoever the reply is for: the daemon sends
  // it once per connection.
  if (auto* info = std::get_if<proto::BlockInfo>(&env.message.body)) {
    if (env.fd) {
      if (auto s = pools_.keep_fd(*info, std::move(env.fd)); !s) return s;
    } else if (env.fd_lost) {
      pools_.lose_fd(*info, *env.fd_lost);
    }
  }
  // request_id 0 is never a request's: the daemon refuses or ends the
  // connection (a session limit, no fds left, no Hello in time) and closes it.
  if (auto* err = std::get_if<proto::ErrorReply>(&env.message.body); err != nullptr && id == 0)
    return std::unexpected(proto::to_error(*err));
  // An event: only sent for what this connection asked to be told.
  if (auto* rel = std::get_if<proto::Released>(&env.message.body); rel != nullptr && id == 0) {
    if (on_released_) on_released_(rel->block_id, rel->watches);
    if (shared_waiters_ > 0) replied_.notify_all();
    return {};
  }
  if (auto it = in_flight_.find(id); it != in_flight_.end()) {
    if (auto* err = std::get_if<proto::ErrorReply>(&env.message.body))
      it->second.reply = std::unexpected(proto::to_error(*err));
    else
      it->second.reply = std::move(env);
    // Only its own thread wakes: no herd of waiters per reply.
    if (it->second.waiter != nullptr) it->second.waiter->notify_one();
    return {};
  }
  if (auto it = abandoned_.find(id); it != abandoned_.end()) {
    // A late reply: give back what it gave, so the timed-out call leaves
    // nothing behind.
    const InFlight gone = std::move(it->second);
    remove_locked(abandoned_, it);
    const proto::Body& body = env.message.body;
    if (gone.posted) {
      --posted_;
      if (auto* err = std::get_if<proto::ErrorReply>(&body); err != nullptr && !posted_error_) {
        Error e = proto::to_error(*err);
        e.message = fmt::format("an earlier {} of block {} (sent without waiting) was refused: {}",
                                proto::message_type_name(gone.type), gone.block_id, e.message);
        posted_error_ = std::move(e);
      }
      if (shared_waiters_ > 0) replied_.notify_all();
      return {};
    }
    if (auto* info = std::get_if<proto::BlockInfo>(&body)) {
      undo.emplace_back(proto::Put{.block_id = info->block_id});
    } else if (auto* t = std::get_if<proto::TokenReply>(&body)) {
      undo.emplace_back(proto::Unexport{.token = t->token});
    } else if (std::holds_alternative<proto::Ok>(body) && gone.type == proto::MessageType::kGet) {
      undo.emplace_back(proto::Put{.block_id = gone.block_id});
    } else if (std::holds_alternative<proto::SysvSegment>(body)) {
      undo.emplace_back(proto::SysvUnexport{.block_id = gone.block_id});
    }
    return {};
  }
  return fail(Errc::kProtocol,
              "pmmd at {} sent a {} with request id {}, which no request is waiting for; "
              "replies must echo their request's id",
              path_, reply_name(env.message.body), id);
}

void Connection::send_undo(std::vector<proto::Body> undo) {
  for (proto::Body& body : undo) {
    proto::Message m;
    {
      std::lock_guard lock(mu_);
      if (dead_) return;
      m = proto::Message{.request_id = new_id_locked(), .body = std::move(body)};
      abandoned_.emplace(m.request_id, InFlight{.type = proto::type_of(m.body)});
    }
    auto sent = send_within(m, std::chrono::steady_clock::now() + timeout_);
    std::lock_guard lock(mu_);
    if (!sent) {
      abandoned_.erase(m.request_id);
      if (is_disconnect(sent.error())) (void)die_locked(sent.error());
    }
  }
}

void Connection::take_locked(Result<std::optional<proto::Envelope>>&& in,
                             std::vector<proto::Body>& undo) {
  if (!in) {
    // A daemon that closes a connection with our request unread makes the
    // kernel report ECONNRESET before the reason it queued: read that too.
    std::optional<Error> refusal;
    if (is_disconnect(in.error())) refusal = connection_refusal_locked();
    (void)die_locked(refusal ? std::move(*refusal) : in.error());
  } else if (*in) {
    if (auto s = deliver_locked(std::move(**in), undo); !s) (void)die_locked(s.error());
  }
}

bool Connection::drive_locked(std::unique_lock<std::mutex>& lock, const std::function<bool()>& done,
                              os::Deadline deadline, std::condition_variable* own) {
  bool read = false;
  bool result = true;
  for (;;) {
    if (dead_ || done()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      result = false;
      break;
    }
    if (reading_) {
      if (own != nullptr) {
        own->wait_until(lock, deadline);
      } else {
        ++shared_waiters_;
        replied_.wait_until(lock, deadline);
        --shared_waiters_;
      }
      continue;
    }
    reading_ = true;
    read = true;
    // More than this thread's request in flight: a reply is likely queued
    // already, so try to read before waiting.
    const bool try_first = in_flight_.size() > 1;
    lock.unlock();
    auto in = read_one(deadline, try_first);
    lock.lock();
    reading_ = false;
    std::vector<proto::Body> undo;
    take_locked(std::move(in), undo);
    if (!undo.empty()) {
      lock.unlock();
      send_undo(std::move(undo));
      lock.lock();
    }
  }
  // This thread read and now leaves: another waiter takes over the socket.
  if (read && !reading_) hand_off_locked();
  return result;
}

void Connection::hand_off_locked() {
  for (auto& [id, f] : in_flight_) {
    if (f.waiter != nullptr && !f.reply) {
      f.waiter->notify_one();
      break;
    }
  }
  if (shared_waiters_ > 0) replied_.notify_all();
}

void Connection::drain_locked(std::unique_lock<std::mutex>& lock, bool answers_only) {
  if (reading_ || dead_) return;
  reading_ = true;
  std::vector<proto::Body> undo;
  // Bounded: what a daemon sends faster than we read waits for next time.
  for (int i = 0; i < 64 && !dead_ && !(answers_only && abandoned_.empty()); ++i) {
    lock.unlock();
    auto in = proto::receive_reply(sock_.get(), MSG_DONTWAIT);
    lock.lock();
    const bool more = in && *in;
    take_locked(std::move(in), undo);
    if (!more) break;
  }
  reading_ = false;
  hand_off_locked();
  if (!undo.empty()) {
    lock.unlock();
    send_undo(std::move(undo));
    lock.lock();
  }
}

Result<proto::Envelope> Connection::await(uint32_t id, std::string_view name, os::Deadline deadline,
                                          std::chrono::milliseconds waited) {
  std::unique_lock lock(mu_);
  auto it = in_flight_.find(id);
  std::condition_variable mine;  // woken by its reply, a hand-off or death
  it->second.waiter = &mine;
  drive_locked(
      lock, [&] { return it->second.reply.has_value(); }, deadline, &mine);
  if (!dead_) it->second.waiter = nullptr;
  if (dead_) return std::unexpected(*dead_);
  if (it->second.reply) {
    Result<proto::Envelope> r = std::move(*it->second.reply);
    remove_locked(in_flight_, it);
    return r;
  }
  it->second.reply.reset();
  abandoned_.emplace(id, std::move(it->second));
  in_flight_.erase(it);
  return fail(Errc::kTimeout,
              "pmmd at {} did not answer {} within {} ms (is it stopped or hung?); the "
              "request is abandoned: if the daemon carries it out later, what it gives is "
              "given back, and the connection stays usable",
              path_, name, waited.count());
}

Result<bool> Connection::pump(const std::function<bool()>& done, os::Deadline deadline) {
  if (auto e = inherited()) return std::unexpected(std::move(*e));
  std::unique_lock lock(mu_);
  if (dead_) return std::unexpected(*dead_);
  if (done()) return true;
  drain_locked(lock);
  const bool ok = drive_locked(lock, done, deadline);
  if (dead_) return std::unexpected(*dead_);
  return ok;
}

void Connection::set_release_handler(std::function<void(uint64_t, uint32_t)> handler) {
  std::lock_guard lock(mu_);
  on_released_ = std::move(handler);
}

void Connection::notify_waiters() {
  std::lock_guard lock(mu_);
  replied_.notify_all();
}

Status Connection::post(proto::Body request, uint64_t block_id) {
  if (auto e = inherited()) return std::unexpected(std::move(*e));
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  proto::Message m;
  {
    std::unique_lock lock(mu_);
    if (dead_) return std::unexpected(*dead_);
    // Answers to earlier posts are read by whichever call reads next (a
    // round trip reads them before its own reply, one recvmsg each). Once
    // kDrainPosted are unread, a post reads what has come itself, so that
    // a run of posts never fills the socket (the daemon drops a client
    // that does not read); past kMaxPosted unanswered, it waits for some.
    if (posted_ >= kDrainPosted) drain_locked(lock, /*answers_only=*/true);
    if (!drive_locked(
            lock, [&] { return posted_ < kMaxPosted; }, deadline))
      return fail(Errc::kTimeout,
                  "pmmd at {} did not answer {} requests sent without waiting within {} ms (is "
                  "it stopped or hung?); {} of block {} was not sent",
                  path_, kMaxPosted, timeout_.count(), reply_name(request), block_id);
    if (dead_) return std::unexpected(*dead_);
    m = proto::Message{.request_id = new_id_locked(), .body = std::move(request)};
    add_locked(abandoned_, m.request_id,
               InFlight{.type = proto::type_of(m.body), .block_id = block_id, .posted = true});
    ++posted_;
  }
  if (auto sent = send_within(m, deadline); !sent) {
    std::lock_guard lock(mu_);
    if (abandoned_.erase(m.request_id) > 0) --posted_;
    if (is_disconnect(sent.error())) return die_locked(sent.error());
    return std::unexpected(sent.error());
  }
  return {};
}

Status Connection::post_put(uint64_t block_id) {
  return post(proto::Put{.block_id = block_id}, block_id);
}

Status Connection::post_watch_release(uint64_t block_id) {
  return post(proto::WatchRelease{.block_id = block_id}, block_id);
}

Result<proto::Envelope> Connection::roundtrip(proto::Body request,
                                              std::chrono::milliseconds extra_wait) {
  if (auto e = inherited()) return std::unexpected(std::move(*e));
  const auto deadline = std::chrono::steady_clock::now() + timeout_ + extra_wait;
  // A view of a static name: no string is built per call.
  const std::string_view name = proto::message_type_name(proto::type_of(request));
  proto::Message m;
  {
    std::lock_guard lock(mu_);
    if (dead_) return std::unexpected(*dead_);
    // A request sent without waiting was refused: this call says so.
    if (posted_error_) {
      Error e = std::move(*posted_error_);
      posted_error_.reset();
      e.message += fmt::format("; this {} was not sent", name);
      return std::unexpected(std::move(e));
    }
    InFlight f{.type = proto::type_of(request)};
    if (auto* g = std::get_if<proto::Get>(&request)) f.block_id = g->block_id;
    if (auto* x = std::get_if<proto::SysvExport>(&request)) f.block_id = x->block_id;
    m = proto::Message{.request_id = new_id_locked(), .body = std::move(request)};
    add_locked(in_flight_, m.request_id, std::move(f));
  }
  if (auto sent = send_within(m, deadline); !sent) {
    std::lock_guard lock(mu_);
    in_flight_.erase(m.request_id);
    // SEQPACKET sends all or nothing, so an encoding refusal (the caller's
    // bad argument), a timeout or a sendmsg that failed with an errno
    // (ENOBUFS, ENOMEM) sent nothing: the socket is as it was. A closed
    // peer, or a short send (a message cut in half reached the daemon),
    // ends the connection.
    const Error& e = sent.error();
    const bool nothing_sent = e.code == Errc::kInvalidArgument || e.code == Errc::kTimeout ||
                              (e.code == Errc::kSystem && e.sys_errno != 0);
    if (is_disconnect(e)) {
      // The daemon may have refused the connection and closed it before our
      // request went out: its reason is still queued for us to read.
      if (auto refusal = connection_refusal_locked()) return die_locked(std::move(*refusal));
    }
    if (!nothing_sent || is_disconnect(e)) return die_locked(e);
    return std::unexpected(e);
  }
  return await(m.request_id, name, deadline, timeout_ + extra_wait);
}

std::optional<Error> Connection::connection_refusal_locked() {
  auto in = proto::receive_reply(sock_.get(), MSG_DONTWAIT);
  if (!in || !*in) return std::nullopt;
  auto* err = std::get_if<proto::ErrorReply>(&(*in)->message.body);
  if (err == nullptr || (*in)->message.request_id != 0) return std::nullopt;
  return proto::to_error(*err);
}

template <typename Reply>
Result<Reply> Connection::call(proto::Body request) {
  // A view of a static name: no string is built per call.
  const std::string_view name = proto::message_type_name(proto::type_of(request));
  auto env = roundtrip(std::move(request));
  if (!env) return std::unexpected(env.error());
  auto* r = std::get_if<Reply>(&env->message.body);
  if (r == nullptr)
    return die(Error{Errc::kProtocol, fmt::format("pmmd at {} answered {} with {}; expected {}",
                                                  path_, name, reply_name(env->message.body),
                                                  proto::message_type_name(Reply::kType))});
  return std::move(*r);
}

Result<BlockView> Connection::block_reply(proto::Body request,
                                          std::chrono::milliseconds extra_wait) {
  // A view of a static name: no string is built per call.
  const std::string_view name = proto::message_type_name(proto::type_of(request));
  auto env = roundtrip(std::move(request), extra_wait);
  if (!env) return std::unexpected(env.error());
  auto* info = std::get_if<proto::BlockInfo>(&env->message.body);
  if (info == nullptr)
    return die(
        Error{Errc::kProtocol, fmt::format("pmmd at {} answered {} with {}; expected BlockInfo",
                                           path_, name, reply_name(env->message.body))});
  std::unique_lock lock(mu_);
  auto mapped = pools_.map(*info);
  if (!mapped) {
    lock.unlock();
    // The session holds a reference we cannot use: give it back, so a
    // failed call leaves the block as it found it.
    (void)roundtrip(proto::Put{.block_id = info->block_id});
    return std::unexpected(mapped.error());
  }
  const PoolMapping& pm = **mapped;
  return BlockView{.id = info->block_id,
                   .pool_index = info->pool_index,
                   .pool = info->pool_name,
                   .type = pm.type,
                   .offset = info->offset,
                   .size = info->size,
                   .phys = info->phys,
                   .data = pm.data + info->offset,
                   .fd = pm.fd,
                   .shmid = pm.shmid};
}

Result<BlockView> Connection::allocate(std::vector<std::string> pools, uint64_t size,
                                       uint64_t alignment, uint32_t flags) {
  return block_reply(proto::Allocate{
      .pools = std::move(pools), .size = size, .alignment = alignment, .flags = flags});
}

Result<BlockView> Connection::allocate_wait(std::vector<std::string> pools, uint64_t size,
                                            uint64_t alignment, uint32_t flags,
                                            std::chrono::milliseconds wait) {
  const auto ms = std::clamp<int64_t>(wait.count(), 0, proto::kMaxAllocateWaitMs);
  return block_reply(proto::AllocateWait{.pools = std::move(pools),
                                         .size = size,
                                         .alignment = alignment,
                                         .flags = flags,
                                         .wait_ms = static_cast<uint32_t>(ms)},
                     std::chrono::milliseconds(ms));
}

Result<BlockView> Connection::import(const proto::Token& token) {
  return block_reply(proto::Import{.token = token});
}

Status Connection::get(uint64_t block_id) {
  auto r = call<proto::Ok>(proto::Get{.block_id = block_id});
  if (!r) return std::unexpected(r.error());
  return {};
}

Status Connection::put(uint64_t block_id) {
  auto r = call<proto::Ok>(proto::Put{.block_id = block_id});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<proto::Token> Connection::export_block(uint64_t block_id, uint32_t max_imports,
                                              uint32_t lifetime_ms) {
  auto r = call<proto::TokenReply>(
      proto::Export{.block_id = block_id, .max_imports = max_imports, .lifetime_ms = lifetime_ms});
  if (!r) return std::unexpected(r.error());
  return r->token;
}

Status Connection::unexport(const proto::Token& token) {
  auto r = call<proto::Ok>(proto::Unexport{.token = token});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<proto::SysvSegment> Connection::sysv_export(uint64_t block_id) {
  return call<proto::SysvSegment>(proto::SysvExport{.block_id = block_id});
}

Status Connection::sysv_unexport(uint64_t block_id) {
  auto r = call<proto::Ok>(proto::SysvUnexport{.block_id = block_id});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<std::vector<proto::PoolInfo>> Connection::list_pools() {
  auto r = call<proto::PoolList>(proto::ListPools{});
  if (!r) return std::unexpected(r.error());
  return std::move(r->pools);
}

Result<proto::StatsReply> Connection::stats() {
  return call<proto::StatsReply>(proto::StatsRequest{});
}

namespace {

// Follows a paginated listing: `page(after_id)` returns one reply; `items`
// picks its entries. A cursor that does not advance is a protocol error, not
// an endless loop.
template <typename Reply, typename Entry, typename Page>
Result<std::vector<Entry>> collect(Page page, std::vector<Entry> Reply::*items) {
  std::vector<Entry> all;
  uint64_t after = 0;
  for (size_t n = 0; n < kMaxPages; ++n) {
    Result<Reply> r = page(after);
    if (!r) return std::unexpected(r.error());
    for (Entry& e : (*r).*items) all.push_back(std::move(e));
    if (!r->more) return all;
    if (r->next_after_id <= after)
      return fail(Errc::kProtocol, "{} page cursor went from {} to {}; it must grow",
                  proto::message_type_name(Reply::kType), after, r->next_after_id);
    after = r->next_after_id;
  }
  return fail(Errc::kProtocol, "{} has more than {} pages", proto::message_type_name(Reply::kType),
              kMaxPages);
}

}  // namespace

Result<std::vector<proto::BlockEntry>> Connection::list_blocks() {
  return collect<proto::BlockList>(
      [this](uint64_t after) {
        return call<proto::BlockList>(proto::ListBlocks{.after_id = after});
      },
      &proto::BlockList::blocks);
}

Result<std::vector<proto::SessionEntry>> Connection::list_sessions() {
  return collect<proto::SessionList>(
      [this](uint64_t after) {
        return call<proto::SessionList>(proto::ListSessions{.after_id = after});
      },
      &proto::SessionList::sessions);
}

Result<std::vector<proto::DeviceEntry>> Connection::list_devices() {
  return collect<proto::DeviceList>(
      [this](uint64_t after) {
        return call<proto::DeviceList>(proto::ListDevices{.after_id = after});
      },
      &proto::DeviceList::devices);
}

Result<proto::CheckReply> Connection::check() {
  return call<proto::CheckReply>(proto::CheckRequest{});
}

Result<proto::MetricsReply> Connection::metrics() {
  return call<proto::MetricsReply>(proto::MetricsRequest{});
}

Result<proto::PoolMapReply> Connection::pool_map(const proto::PoolMapRequest& request) {
  return call<proto::PoolMapReply>(request);
}

}  // namespace pmm::client
