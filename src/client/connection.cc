// See connection.h. These rules shape this file:
// - A connection is either alive, or dead with a remembered Error that every
//   later call returns without touching the socket, so an application whose
//   daemon died sees the same clear message from every call instead of a
//   mix of EPIPE, EBADF and hangs.
// - No lock is held while waiting on the socket. mu_ guards the table of
//   requests in flight (slots_); the socket is read by one waiting thread at a time
//   (reading_), which hands each reply to its thread (waking that thread
//   only, through its own condition) and, when it leaves, wakes one other
//   waiter to read in its place (hand_off_locked).
//   The socket fd stays open until the destructor, so a thread polling or
//   reading it never sees its number reused; dying shuts it down to wake
//   them (a blocked read then returns end of stream).
// - A reply costs one read: the reading thread blocks in it, bounded by
//   SO_RCVTIMEO (blocking_wait_: a little under the timeout, at most 2 s),
//   as long as its deadline is at least that far; only a shorter wait polls
//   first. The
//   read is recv() unless the reply may bring a pool's fd, then recvmsg()
//   (fd_possible_locked says when).
// - Nothing is allocated or formatted per request in steady state: slots
//   are reused, the last Allocate and every Put are sent from encodings
//   made once, a reply is taken in place, and names are formatted only
//   into errors.
#include "client/connection.h"
#include "client/connection_request.h"

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
#include "proto/codec.h"

namespace pmm::client {

// Counts fork()s in this process's line (in the child), so that a
// connection can tell it was inherited without a getpid() system call
// (pthread_atfork runs the handler in every child of fork(); a child made by
// a raw clone() system call is not told, and not detected).
std::atomic<uint32_t> detail::g_forks{0};

namespace {

// How long a closing connection waits for the daemon to confirm it has let go
// (at most; the connection's own timeout when that is shorter).
constexpr std::chrono::milliseconds kGoodbyeTimeout{2000};

// The request table's first size (a power of two; it doubles when half
// full), made by the first request after the handshake (which needs none:
// say_hello). Small, since a slot has room for any reply (~380 bytes): two slots stay
// under the size malloc serves from its per-thread cache (a connection is
// made and freed with no trip into its bins); one thread's request beside
// its posted put grows it once, to 4.
constexpr size_t kFirstSlots = 2;

using detail::g_forks;

// The count now; the first call (a Connection's constructor) registers the
// handler, so any fork after a connection exists is counted.
uint32_t fork_generation_registering() {
  static const bool registered = ::pthread_atfork(nullptr, nullptr, [] {
                                   g_forks.fetch_add(1, std::memory_order_relaxed);
                                 }) == 0;
  (void)registered;
  return g_forks.load(std::memory_order_relaxed);
}

// SO_RCVTIMEO for a connection whose waits are `timeout` long: short enough
// that a fresh request's wait (the timeout less the send) is at least that
// long, with room for the kernel rounding it up to whole ticks (up to 10 ms);
// 0 (never block in a read) when the timeout leaves no such room. At most
// kGoodbyeTimeout, so that the goodbye can block in its read too (a longer
// wait for a reply blocks in a read again, then polls the rest).
std::chrono::milliseconds blocking_wait_for(std::chrono::milliseconds timeout) {
  constexpr std::chrono::milliseconds kMargin{20};
  if (timeout < 2 * kMargin) return std::chrono::milliseconds(0);
  return std::min(timeout - std::max(kMargin, timeout / 8), kGoodbyeTimeout);
}

}  // namespace

using detail::is_disconnect;
using detail::reply_buffer;
using detail::reply_name;

Connection::Connection(os::UniqueFd sock, std::string path, std::string device,
                       std::chrono::milliseconds timeout)
    : pid_(::getpid()),
      fork_generation_(fork_generation_registering()),
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
                                   static_cast<int>(std::min(timeout_, kGoodbyeTimeout).count()),
                                   /*read_bounded=*/blocking_wait_.count() > 0);
}

Result<std::unique_ptr<Connection>> Connection::connect(const ConnectOptions& options) {
  ConnectOptions copy = options;
  return connect(std::move(copy));
}

Result<std::unique_ptr<Connection>> Connection::connect(ConnectOptions&& options) {
  std::string path =
      options.socket_path.empty() ? os::default_socket_path() : std::move(options.socket_path);
  const auto timeout = std::max(options.timeout, std::chrono::milliseconds(1));
  auto sock = os::connect_unix_within(path, std::chrono::steady_clock::now() + timeout);
  if (!sock) {
    Error e = sock.error();
    if (e.code == Errc::kNoDaemon && e.message.find("pmmd") == std::string::npos)
      e.message += ": is pmmd running?";
    return std::unexpected(std::move(e));
  }
  auto c = handshake_owned(std::move(*sock), std::move(path), std::move(options.device), timeout,
                           /*fresh=*/true);
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
  return handshake_owned(std::move(sock), label, device, timeout);
}

Result<std::unique_ptr<Connection>> Connection::handshake_owned(os::UniqueFd sock,
                                                                std::string label,
                                                                std::string device,
                                                                std::chrono::milliseconds timeout,
                                                                bool fresh) {
  // The handshake's wait, as a request's: from before anything is sent.
  const auto deadline =
      std::chrono::steady_clock::now() + std::max(timeout, std::chrono::milliseconds(1));
  std::unique_ptr<Connection> c(
      new Connection(std::move(sock), std::move(label), std::move(device), timeout));
  const std::string& label_kept = c->path_;
  if (auto s = c->prepare_socket(fresh); !s) return std::unexpected(s.error());
  // The Hello, encoded once per thread for the device and pid it names: a
  // process that connects again and again as one device (a stage that
  // reconnects, a test) sends the same bytes with only the id patched.
  struct LastHello {
    std::string device;
    pid_t pid = 0;
    std::vector<std::byte> bytes;  // empty: none (or the last did not encode)
  };
  thread_local LastHello last;
  if (last.bytes.empty() || last.pid != c->pid_ || last.device != c->device_) {
    const proto::Message hello{.body = proto::Hello{.protocol_version = proto::kProtocolVersion,
                                                    .device = c->device_,
                                                    .pid = static_cast<int32_t>(c->pid_)}};
    if (auto s = proto::encode_into(hello, last.bytes); !s) {
      // A device name the protocol cannot carry: nothing was sent.
      last.bytes.clear();
      (void)c->die(s.error());
      return std::unexpected(s.error());
    }
    last.device = c->device_;
    last.pid = c->pid_;
  }
  auto reply = c->say_hello(last.bytes, deadline);
  if (!reply) {
    Error e = reply.error();
    // A session that never started holds nothing: close without waiting
    // for the daemon's goodbye, so connect's wait stays within the timeout.
    (void)c->die(e);
    if (e.code == Errc::kDisconnected)
      e.message = fmt::format(
          "pmmd at {} closed the connection during the handshake (see its log; a daemon that "
          "refuses this uid or is shutting down does that)",
          label_kept);
    return std::unexpected(std::move(e));
  }
  const proto::Welcome* w = *reply;
  if (w->protocol_version != proto::kProtocolVersion)
    return fail(Errc::kProtocol,
                "pmmd at {} speaks protocol version {}, this libpmm speaks {}; use a libpmm and "
                "pmmd of the same release",
                label_kept, w->protocol_version, proto::kProtocolVersion);
  // Copied, not moved: the reply buffer keeps its daemon_version, so the
  // next connection's Welcome finds it in place.
  c->welcome_ = *w;
  return c;
}

Result<const proto::Welcome*> Connection::say_hello(std::span<std::byte> hello,
                                                    os::Deadline deadline) {
  const uint32_t id = next_request_id_++;
  proto::set_request_id(hello, id);
  bool far = true;  // the deadline was set a moment ago: a timeout away
  for (;;) {
    Status sent = proto::send_encoded(sock_.get(), hello, MSG_DONTWAIT);
    if (sent) break;
    if (!detail::is_full(sent)) {
      // The daemon may have refused the connection and closed it before
      // the Hello went out: its reason is still queued for us to read.
      if (!is_disconnect(sent.error())) return std::unexpected(sent.error());
      Lock lock(mu_);
      if (auto refusal = connection_refusal_locked()) return die_locked(std::move(*refusal));
      return die_locked(sent.error());
    }
    // A caller's socket (handshake()) may be full: wait for room, bounded.
    far = false;
    auto ready = os::wait_writable(sock_.get(), deadline);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready)
      return fail(Errc::kTimeout,
                  "pmmd at {} took no request for {} ms (the socket stayed full: is it stopped "
                  "or hung?); Hello was not sent",
                  path_, timeout_.count());
  }
  proto::Envelope& buffer = reply_buffer();
  auto in = read_one(buffer, deadline, /*try_first=*/false, far, /*fd_possible=*/false);
  if (!in) {
    Lock lock(mu_);
    read_failed_locked(in.error());
    return std::unexpected(*dead_);
  }
  // read_one waits until a message comes or the deadline passes.
  if (!*in)
    return fail(Errc::kTimeout,
                "pmmd at {} did not answer Hello within {} ms (is it stopped or hung?)", path_,
                timeout_.count());
  const proto::Message& m = buffer.message;
  if (m.request_id == id) {
    if (const auto* w = std::get_if<proto::Welcome>(&m.body)) return w;
    if (const auto* err = std::get_if<proto::ErrorReply>(&m.body))
      return std::unexpected(proto::to_error(*err));
    return fail(Errc::kProtocol, "pmmd at {} answered Hello with {}, not Welcome", path_,
                reply_name(m.body));
  }
  // request_id 0 is never a request's: the daemon refuses the connection
  // (a session limit, no fds left) and closes it.
  if (const auto* err = std::get_if<proto::ErrorReply>(&m.body);
      err != nullptr && m.request_id == 0)
    return std::unexpected(proto::to_error(*err));
  return fail(Errc::kProtocol,
              "pmmd at {} sent a {} with request id {} during the handshake, which awaits only "
              "the Hello's answer (id {})",
              path_, reply_name(m.body), m.request_id, id);
}

std::optional<Error> Connection::inherited_after_fork() const {
  // getpid() is a system call: asked only once a fork() has happened.
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
  for (InFlight& f : slots_) {
    if (f.id != 0 && f.waiter != nullptr) f.waiter->notify_one();
    f = InFlight{};
  }
  used_ = waiting_ = unanswered_ = fd_unanswered_ = sleepers_ =
      0;  // unsent_: its threads count down
  posted_ = 0;
  notify_replied_locked();
  return std::unexpected(std::move(e));
}

std::unexpected<Error> Connection::die(Error e) {
  std::lock_guard lock(mu_);
  return die_locked(std::move(e));
}

Status Connection::prepare_socket(bool fresh) {
  const int fd = sock_.get();
  // A caller's socket may carry other status flags (O_ASYNC): keep them.
  const int flags = fresh ? O_NONBLOCK : ::fcntl(fd, F_GETFL);
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

void Connection::grow_locked() {
  // Ids that sat in different slots differ in their low bits, so they
  // differ in the larger table's too: no two meet.
  std::vector<InFlight> bigger(std::max(kFirstSlots, 2 * slots_.size()));
  for (InFlight& f : slots_)
    if (f.id != 0) bigger[f.id & (bigger.size() - 1)] = std::move(f);
  slots_ = std::move(bigger);
  slot_mask_ = slots_.size() - 1;
}

// A reply read with recv() instead of recvmsg() saves the kernel a msghdr
// copy, an iovec import and the SCM_RIGHTS scan (~0.28 us a reply here),
// but an fd sent with it is lost. The protocol bounds where an fd can come:
// only with a BlockInfo (Allocate, AllocateWait, Import) of a pool whose fd
// this session has not been sent, and replies come in request order
// (docs/protocol.md), AllocateWait's excepted. So the next datagram can
// bring none when
//   - some request is unanswered (the datagram is its reply, or an event,
//     or one to an earlier request: all sent before any later request,
//     since requests are sent under mu_ in the order they are registered),
//   - none of them may bring an fd (an Allocate naming only pools whose fd
//     is here, or no BlockInfo at all; an Import or AllocateWait always
//     may: any pool, or out of order), and
//   - none is registered but still unsent (its place in the order is open).
// A request registered while a reader waits in recv() is sent after every
// request that reader's choice counted, so its reply comes after the one
// that ends the read. A daemon that sends an fd anyway loses it: the
// BlockInfo comes back with fd_lost (channel.h), as for a full fd table.
// (fd_possible_locked itself is inline, in connection.h.)

Status Connection::send_when_room_locked(Lock& lock, const Outgoing& out, uint32_t id,
                                         os::Deadline deadline, bool* waited) {
  // alloc_cache_ may change while mu_ is let go: an Allocate is sent from
  // its own copy of the bytes.
  std::vector<std::byte> copy;
  if (out.alloc != nullptr) copy = alloc_cache_.bytes;
  for (;;) {
    // The socket is full: wait for room without mu_. Until this request
    // is sent, no reader may use recv() (fd_possible_locked).
    if (deadline == os::Deadline{}) deadline = std::chrono::steady_clock::now() + timeout_;
    ++unsent_;
    if (waited != nullptr) *waited = true;
    lock.unlock();
    auto ready = os::wait_writable(sock_.get(), deadline);
    lock.lock();
    --unsent_;
    if (!ready) return std::unexpected(ready.error());
    if (!*ready)
      return fail(Errc::kTimeout,
                  "pmmd at {} took no request for {} ms (the socket stayed full: is it stopped "
                  "or hung?); {} was not sent",
                  path_, timeout_.count(), proto::message_type_name(out.type));
    Status sent = send_now(out, id, copy);
    if (!detail::is_full(sent)) return sent;
  }
}

Status Connection::encode_allocate_locked(const AllocArgs& a) {
  AllocCache& c = alloc_cache_;
  proto::Message m{
      .request_id = 1,
      .body = proto::Allocate{
          .pools = *a.pools, .size = a.size, .alignment = a.alignment, .flags = a.flags}};
  if (auto s = proto::encode_into(m, c.bytes); !s) {
    c.bytes.clear();
    return s;
  }
  c.pools = std::move(std::get<proto::Allocate>(m.body).pools);
  c.size = a.size;
  c.alignment = a.alignment;
  c.flags = a.flags;
  c.settled = pools_.fds_settled(c.pools);
  return {};
}

Result<bool> Connection::read_one(proto::Envelope& buffer, os::Deadline deadline, bool try_first,
                                  bool far, bool fd_possible) {
  if (try_first) {
    auto in = proto::receive_reply_into(sock_.get(), buffer, MSG_DONTWAIT, fd_possible);
    if (!in || *in) return in;
  }
  for (;;) {
    // A lone request's wait, when at least SO_RCVTIMEO long, blocks in
    // recv(msg) itself, which SO_RCVTIMEO ends in time: one system call
    // per reply. A shorter one (the deadline's last stretch, a pump with
    // its own) polls first; so does a reader serving other threads'
    // requests too (try_first), which measured faster that way with 8
    // threads on one connection (pmm_bench_frames: the blocking read there
    // cost ~40%). `far`: the caller knows the deadline is that far.
    if (!try_first && blocking_wait_.count() > 0 &&
        (far || deadline - std::chrono::steady_clock::now() >= blocking_wait_)) {
      auto in = proto::receive_reply_into(sock_.get(), buffer, 0, fd_possible);
      if (!in || *in) return in;
      far = false;
      continue;  // SO_RCVTIMEO ran out: what is left is shorter
    }
    auto ready = os::wait_readable(sock_.get(), deadline);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return false;
    auto in = proto::receive_reply_into(sock_.get(), buffer, MSG_DONTWAIT, fd_possible);
    if (!in || *in) return in;
  }
}

void Connection::keep_pool_fd_locked(proto::Envelope& env) {
  // A pool fd is kept on arrival, whoever the reply is for: the daemon
  // sends it once per connection.
  const auto& info = std::get<proto::BlockInfo>(env.message.body);
  if (env.fd) {
    if (auto s = pools_.keep_fd(info, std::move(env.fd)); !s) (void)die_locked(s.error());
  } else if (env.fd_lost) {
    pools_.lose_fd(info, *env.fd_lost);
  }
}

Status Connection::deliver_other_locked(proto::Envelope& env, InFlight* f,
                                        std::vector<proto::Body>& undo) {
  const uint32_t id = env.message.request_id;
  // request_id 0 is never a request's: the daemon refuses or ends the
  // connection (a session limit, no fds left, no Hello in time) and closes it.
  if (auto* err = std::get_if<proto::ErrorReply>(&env.message.body); err != nullptr && id == 0)
    return std::unexpected(proto::to_error(*err));
  // An event: only sent for what this connection asked to be told.
  if (auto* rel = std::get_if<proto::Released>(&env.message.body); rel != nullptr && id == 0) {
    if (on_released_) on_released_(rel->block_id, rel->watches);
    if (shared_waiters_ > 0) notify_replied_locked();
    return {};
  }
  if (f != nullptr && f->abandoned) {
    // A late reply: give back what it gave, so the timed-out call leaves
    // nothing behind.
    const proto::MessageType gone_type = f->type;
    const bool gone_posted = f->posted;
    const uint64_t gone_block = f->block_id;
    remove_locked(*f);
    const proto::Body& body = env.message.body;
    if (gone_posted) {
      --posted_;
      if (auto* err = std::get_if<proto::ErrorReply>(&body); err != nullptr && !posted_error_) {
        Error e = proto::to_error(*err);
        e.message = fmt::format("an earlier {} of block {} (sent without waiting) was refused: {}",
                                proto::message_type_name(gone_type), gone_block, e.message);
        posted_error_ = std::move(e);
      }
      if (shared_waiters_ > 0) notify_replied_locked();
      return {};
    }
    if (auto* info = std::get_if<proto::BlockInfo>(&body)) {
      undo.emplace_back(proto::Put{.block_id = info->block_id});
    } else if (auto* t = std::get_if<proto::TokenReply>(&body)) {
      undo.emplace_back(proto::Unexport{.token = t->token});
    } else if (std::holds_alternative<proto::Ok>(body) && gone_type == proto::MessageType::kGet) {
      undo.emplace_back(proto::Put{.block_id = gone_block});
    } else if (std::holds_alternative<proto::SysvSegment>(body)) {
      undo.emplace_back(proto::SysvUnexport{.block_id = gone_block});
    }
    return {};
  }
  if (f != nullptr)
    return fail(Errc::kProtocol,
                "pmmd at {} answered request {} twice (a {} after its reply); each request "
                "gets exactly one reply",
                path_, id, reply_name(env.message.body));
  return fail(Errc::kProtocol,
              "pmmd at {} sent a {} with request id {}, which no request is waiting for; "
              "replies must echo their request's id",
              path_, reply_name(env.message.body), id);
}

void Connection::send_undo(std::vector<proto::Body> undo) {
  for (proto::Body& body : undo) {
    Lock lock(mu_);
    if (dead_) return;
    proto::Message m{.body = std::move(body)};
    const Outgoing out{.message = &m, .type = proto::type_of(m.body)};
    InFlight& f = register_locked(out, out.fd_possible);
    f.abandoned = true;
    --waiting_;
    const uint32_t id = f.id;
    if (auto sent = send_locked(lock, out, id, os::Deadline{}); !sent) {
      if (InFlight* g = find_locked(id)) remove_locked(*g);
      if (is_disconnect(sent.error())) (void)die_locked(sent.error());
    }
  }
}

void Connection::read_failed_locked(const Error& e) {
  // A daemon that closes a connection with our request unread makes the
  // kernel report ECONNRESET before the reason it queued: read that too.
  std::optional<Error> refusal;
  if (is_disconnect(e)) refusal = connection_refusal_locked();
  (void)die_locked(refusal ? std::move(*refusal) : e);
}

void Connection::hand_off_waiters_locked() {
  if (sleepers_ > 0) {
    for (InFlight& f : slots_) {
      if (f.id != 0 && f.waiter != nullptr && !f.answered()) {
        f.waiter->notify_one();
        break;
      }
    }
  }
  if (shared_waiters_ > 0) notify_replied_locked();
}

void Connection::drain_locked(Lock& lock, bool answers_only) {
  if (reading_ || dead_) return;
  reading_ = true;
  std::vector<proto::Body> undo;
  proto::Envelope& buffer = reply_buffer();
  // Bounded: what a daemon sends faster than we read waits for next time.
  // answers_only stops once no abandoned or posted request is unanswered.
  for (int i = 0; i < 64 && !dead_ && !(answers_only && used_ == waiting_); ++i) {
    const bool fd_possible = fd_possible_locked();
    lock.unlock();
    auto in = proto::receive_reply_into(sock_.get(), buffer, MSG_DONTWAIT, fd_possible);
    lock.lock();
    const bool more = in && *in;
    take_locked(in, buffer, undo, nullptr);
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

Result<bool> Connection::pump(const std::function<bool()>& done, os::Deadline deadline) {
  if (auto e = inherited()) return std::unexpected(std::move(*e));
  Lock lock(mu_);
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
  notify_replied_locked();
}

std::optional<Error> Connection::connection_refusal_locked() {
  auto in = proto::receive_reply(sock_.get(), MSG_DONTWAIT);
  if (!in || !*in) return std::nullopt;
  auto* err = std::get_if<proto::ErrorReply>(&(*in)->message.body);
  if (err == nullptr || (*in)->message.request_id != 0) return std::nullopt;
  return proto::to_error(*err);
}

}  // namespace pmm::client
