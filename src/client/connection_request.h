// The template parts of pmm::client::Connection's request path, shared by
// connection.cc (the machinery, the handshake) and connection_calls.cc (the
// calls): a private header of src/client, not installed. See connection.h
// for the contract and connection.cc for the rules behind it.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "client/connection.h"
#include "proto/channel.h"

namespace pmm::client {
namespace detail {

// What a thread keeps for its requests, on any connection, in one
// thread_local (one TLS look-up per request, not one per use):
// - `reply`: where its reads land, kept between reads (a message's storage
//   is reused). Per thread, not per connection: a reply that is the
//   reading thread's own stays here until that thread takes it, which it
//   does before it reads again, whatever other threads read meanwhile;
// - `woken`: the condition it waits on for its reply (a thread waits for
//   one request at a time), woken by its reply, a hand-off or death.
// - `small`: a reply read beside `reply` (proto::SmallReply: an Ok or a
//   TokenReply), so that `reply` keeps its BlockInfo between requests.
struct ThreadState {
  proto::Envelope reply;
  proto::SmallReply small;
  std::condition_variable_any woken;
};

inline ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

inline proto::Envelope& reply_buffer() { return thread_state().reply; }

inline bool is_disconnect(const Error& e) {
  return e.code == Errc::kDisconnected ||
         (e.code == Errc::kSystem && (e.sys_errno == EPIPE || e.sys_errno == ECONNRESET));
}

inline std::string reply_name(const proto::Body& body) {
  return std::string(proto::message_type_name(proto::type_of(body)));
}

}  // namespace detail

// Per request, so inline (the table's bookkeeping is a few stores).
[[gnu::always_inline]] inline Connection::InFlight& Connection::register_locked(const Outgoing& out,
                                                                                bool fd_possible) {
  if (slots_.empty() || 2 * (used_ + 1) > slot_mask_ + 1) grow_locked();
  // Ids are ours to choose: the next one whose slot is free. At most half
  // the slots are taken, and replies come back roughly in order, so this
  // is nearly always the next number.
  const size_t mask = slot_mask_;
  uint32_t id = 0;
  while (id == 0 || slots_[id & mask].id != 0) {
    id = next_request_id_++;
    if (next_request_id_ == 0) next_request_id_ = 1;
  }
  InFlight& f = slots_[id & mask];
  f.id = id;
  f.type = out.type;
  f.abandoned = false;
  f.posted = false;
  f.fd_possible = fd_possible;
  f.block_id = out.block_id;
  f.waiter = nullptr;
  ++used_;
  ++waiting_;
  ++unanswered_;
  if (f.fd_possible) ++fd_unanswered_;
  return f;
}

[[gnu::always_inline]] inline void Connection::mark_answered_locked(InFlight& f) {
  --unanswered_;
  if (f.fd_possible) --fd_unanswered_;
}

[[gnu::always_inline]] inline void Connection::remove_locked(InFlight& f) {
  if (!f.answered()) mark_answered_locked(f);
  if (!f.abandoned) --waiting_;
  --used_;
  f.id = 0;
  f.in_reader = false;
  f.reply.reset();
  f.waiter = nullptr;
}

[[gnu::always_inline]] inline void Connection::posted_answered_locked(InFlight& f) {
  remove_locked(f);
  --posted_;
  if (shared_waiters_ > 0) [[unlikely]]
    notify_replied_locked();
}

[[gnu::always_inline]] inline Status Connection::send_now(const Outgoing& out, uint32_t id,
                                                          std::span<std::byte> alloc_bytes) {
  if (out.alloc != nullptr) {
    proto::set_request_id(alloc_bytes, id);
    return proto::send_encoded(sock_.get(), alloc_bytes, MSG_DONTWAIT);
  }
  if (out.field != nullptr) return out.field->send(sock_.get(), id, out.field_value, MSG_DONTWAIT);
  if (out.encoded != nullptr) {
    proto::set_request_id(*out.encoded, id);
    return proto::send_encoded(sock_.get(), *out.encoded, MSG_DONTWAIT);
  }
  out.message->request_id = id;
  return proto::send(sock_.get(), *out.message, -1, MSG_DONTWAIT);
}

namespace detail {
inline bool is_full(const Status& sent) {
  return !sent && sent.error().code == Errc::kSystem && sent.error().sys_errno == EAGAIN;
}
}  // namespace detail

[[gnu::always_inline]] inline Status Connection::send_locked(Lock& lock, const Outgoing& out,
                                                             uint32_t id, os::Deadline deadline,
                                                             bool* waited) {
  Status sent = send_now(out, id, alloc_cache_.bytes);
  if (!detail::is_full(sent)) [[likely]]
    return sent;
  return send_when_room_locked(lock, out, id, deadline, waited);
}

[[gnu::always_inline]] inline Status Connection::prepare_allocate_locked(const AllocArgs& a) {
  AllocCache& c = alloc_cache_;
  if (c.bytes.empty() || c.size != a.size || c.alignment != a.alignment || c.flags != a.flags ||
      c.pools != *a.pools) [[unlikely]]
    return encode_allocate_locked(a);
  // Settled stays settled: a pool's fd, once here (or lost), is not sent again.
  if (!c.settled) c.settled = pools_.fds_settled(c.pools);
  return {};
}

inline void Connection::hand_off_locked() {
  if (sleepers_ > 0 || shared_waiters_ > 0) [[unlikely]]
    hand_off_waiters_locked();
}

// What a read gave, under mu_: a reply handed on, or the connection's end.
[[gnu::always_inline]] inline void Connection::take_locked(const Result<bool>& in,
                                                           proto::Envelope& buffer,
                                                           std::vector<proto::Body>& undo,
                                                           const Condition* own) {
  if (!in) [[unlikely]]
    read_failed_locked(in.error());
  else if (*in)
    deliver_locked(buffer, undo, own);
}

// Per reply, so inline: the two common cases (the reply a thread awaits,
// a posted request's Ok) are a lookup and a few stores.
[[gnu::always_inline]] inline void Connection::deliver_locked(proto::Envelope& env,
                                                              std::vector<proto::Body>& undo,
                                                              const Condition* own) {
  if (env.fd || env.fd_lost) [[unlikely]] {
    keep_pool_fd_locked(env);
    if (dead_) return;
  }
  const uint32_t id = env.message.request_id;
  InFlight* f = find_locked(id);
  if (f != nullptr && !f->abandoned && !f->answered()) {
    if (auto* err = std::get_if<proto::ErrorReply>(&env.message.body)) [[unlikely]]
      f->reply.emplace(std::unexpected(proto::to_error(*err)));
    else if (own != nullptr && f->waiter == own)
      f->in_reader = true;  // this thread's own: taken where it lies
    else
      f->reply.emplace(std::move(env));
    mark_answered_locked(*f);
    // Only its own thread wakes: no herd of waiters per reply.
    if (f->waiter != nullptr) {
      --sleepers_;
      if (f->waiter != own) f->waiter->notify_one();
    }
    return;
  }
  // A posted request's answer that is no refusal (a last put's Ok): only
  // counted.
  if (f != nullptr && f->abandoned && f->posted &&
      !std::holds_alternative<proto::ErrorReply>(env.message.body)) [[likely]] {
    posted_answered_locked(*f);
    return;
  }
  if (auto s = deliver_other_locked(env, f, undo); !s) (void)die_locked(s.error());
}

template <typename Done>
bool Connection::drive_locked(Lock& lock, const Done& done, os::Deadline deadline, Condition* own,
                              bool fresh, proto::Envelope* buffer) {
  bool read = false;
  bool result = true;
  // `buffer`: this thread's reply_buffer(), given or looked up once it reads.
  std::vector<proto::Body> undo;  // what late replies gave, to give back
  for (;;) {
    if (dead_ || done()) break;
    // `fresh`: the deadline was set a moment ago; no clock read to know it
    // is far (a request's first read).
    bool far = fresh;
    if (!fresh) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        result = false;
        break;
      }
      far = deadline - now >= blocking_wait_;
    }
    fresh = false;
    if (reading_) {
      if (own != nullptr) {
        own->wait_until(lock, deadline);
      } else {
        ++shared_waiters_;
        if (!replied_) replied_ = std::make_unique<Condition>();
        replied_->wait_until(lock, deadline);
        --shared_waiters_;
      }
      continue;
    }
    reading_ = true;
    read = true;
    // More than this thread's request in flight: a reply is likely queued
    // already, so try to read before waiting.
    const bool try_first = waiting_ > 1;
    const bool fd_possible = fd_possible_locked();
    if (buffer == nullptr) buffer = &detail::reply_buffer();
    lock.unlock();
    // A lone request with its deadline far blocks in the read itself
    // (read_one's first case, without its call); SO_RCVTIMEO running out
    // reads as nothing, and the loop looks at the clock again.
    auto in = !try_first && far && blocking_wait_.count() > 0
                  ? proto::receive_reply_into(sock_.get(), *buffer, 0, fd_possible)
                  : read_one(*buffer, deadline, try_first, far, fd_possible);
    lock.lock();
    reading_ = false;
    take_locked(in, *buffer, undo, own);
    if (!undo.empty()) [[unlikely]] {
      lock.unlock();
      send_undo(std::exchange(undo, {}));
      lock.lock();
    }
  }
  // This thread read and now leaves: another waiter takes over the socket.
  if (read && !reading_) hand_off_locked();
  return result;
}

// Per posted put (each block's last), so inline into post_put.
[[gnu::always_inline]] inline Status Connection::post(const Outgoing& out) {
  if (auto e = inherited()) return std::unexpected(std::move(*e));
  const proto::MessageType type = out.type;
  const uint64_t block_id = out.block_id;
  Lock lock(mu_);
  if (dead_) return std::unexpected(*dead_);
  // Answers to earlier posts are read by whichever call reads next (a
  // round trip reads them before its own reply, one read each). Once
  // kDrainPosted are unread, a post reads what has come itself, so that
  // a run of posts never fills the socket (the daemon drops a client
  // that does not read); past kMaxPosted unanswered, it waits for some.
  if (posted_ >= kDrainPosted) drain_locked(lock, /*answers_only=*/true);
  if (posted_ >= kMaxPosted &&
      !drive_locked(
          lock, [&] { return posted_ < kMaxPosted; }, std::chrono::steady_clock::now() + timeout_))
    return fail(Errc::kTimeout,
                "pmmd at {} did not answer {} requests sent without waiting within {} ms (is "
                "it stopped or hung?); {} of block {} was not sent",
                path_, kMaxPosted, timeout_.count(), proto::message_type_name(type), block_id);
  if (dead_) return std::unexpected(*dead_);
  InFlight& f = register_locked(out, out.fd_possible);
  f.abandoned = true;
  f.posted = true;
  --waiting_;
  ++posted_;
  const uint32_t id = f.id;
  if (auto sent = send_locked(lock, out, id, os::Deadline{}); !sent) {
    if (InFlight* g = find_locked(id)) {
      remove_locked(*g);
      --posted_;
    }
    if (detail::is_disconnect(sent.error())) return die_locked(sent.error());
    return std::unexpected(sent.error());
  }
  return {};
}

// request()'s own reply read as a SmallReply: an Ok or a TokenReply that is
// the T awaited is returned as it is (every Take of those types only checks
// the type: expect()); anything else goes to `take` as a Message.
template <typename T, typename Take>
[[gnu::always_inline]] inline Result<T> take_small(const proto::SmallReply& small, Take& take,
                                                   proto::Envelope& buffer) {
  if constexpr (std::is_same_v<T, proto::Ok>) {
    if (small.type == proto::MessageType::kOk) return proto::Ok{};
  } else if constexpr (std::is_same_v<T, proto::TokenReply>) {
    if (small.type == proto::MessageType::kToken) return proto::TokenReply{.token = small.token};
  }
  small.into(buffer);
  return take(buffer);
}

template <typename T, typename Take>
Result<T> Connection::request(const Outgoing& out, Take&& take) {
  if (auto e = inherited()) return std::unexpected(std::move(*e));
  const auto deadline = std::chrono::steady_clock::now() + timeout_ + out.extra_wait;
  Lock lock(mu_);
  if (dead_) return std::unexpected(*dead_);
  // A request sent without waiting was refused: this call says so.
  if (posted_error_) {
    Error e = std::move(*posted_error_);
    posted_error_.reset();
    e.message += fmt::format("; this {} was not sent", proto::message_type_name(out.type));
    return std::unexpected(std::move(e));
  }
  bool fd_possible = out.fd_possible;
  if (out.alloc != nullptr) {
    if (auto s = prepare_allocate_locked(*out.alloc); !s) return std::unexpected(s.error());
    fd_possible = !alloc_cache_.settled;
  } else if (out.token_pool) {
    fd_possible = !pools_.fd_settled(*out.token_pool);
  }
  const uint32_t id = register_locked(out, fd_possible).id;
  bool waited = false;  // for room in the socket: then the deadline is no longer fresh
  if (auto sent = send_locked(lock, out, id, deadline, &waited); !sent) {
    if (InFlight* f = find_locked(id)) remove_locked(*f);
    // SEQPACKET sends all or nothing, so an encoding refusal (the caller's
    // bad argument), a timeout or a send that failed with an errno
    // (ENOBUFS, ENOMEM) sent nothing: the socket is as it was. A closed
    // peer, or a short send (a message cut in half reached the daemon),
    // ends the connection.
    const Error& e = sent.error();
    const bool nothing_sent = e.code == Errc::kInvalidArgument || e.code == Errc::kTimeout ||
                              (e.code == Errc::kSystem && e.sys_errno != 0);
    if (detail::is_disconnect(e)) {
      // The daemon may have refused the connection and closed it before our
      // request went out: its reason is still queued for us to read.
      if (auto refusal = connection_refusal_locked()) return die_locked(std::move(*refusal));
    }
    if (!nothing_sent || detail::is_disconnect(e)) return die_locked(e);
    return std::unexpected(e);
  }
  detail::ThreadState& me = detail::thread_state();
  Condition* const mine = &me.woken;
  // Dead while the send waited for room without mu_: the table is gone.
  if (dead_) return std::unexpected(*dead_);
  // The common case, this thread's request alone awaited and nobody
  // reading: it reads at once, blocking in the read (as drive_locked's
  // first turn). A posted request's Ok that comes first is counted and
  // the read repeated while the deadline is still far; a reply that is its
  // own and plain (no fd, no refusal) is taken here, without a waiter, a
  // wake-up or the loop. Anything else is handed to drive_locked as its
  // first turn's read.
  const bool alone = !waited && waiting_ == 1 && !reading_ && blocking_wait_.count() > 0;
  Result<bool> first = false;  // a read not handed on yet, when `alone` (false: none)
  if (alone) [[likely]] {
    for (;;) {
      reading_ = true;
      const bool fd_may_come = fd_possible_locked();
      lock.unlock();
      Result<bool> in = proto::receive_reply_into(sock_.get(), me.reply, 0, fd_may_come, me.small);
      lock.lock();
      reading_ = false;
      if (!in || !*in) [[unlikely]] {
        first = std::move(in);
        break;
      }
      const proto::SmallReply& small = me.small;
      const proto::Envelope& env = me.reply;
      // An Ok or a TokenReply is in `small` (me.reply kept its BlockInfo);
      // anything else was decoded into me.reply.
      const bool plain =
          small.set ||
          (!env.fd && !env.fd_lost && !std::holds_alternative<proto::ErrorReply>(env.message.body));
      InFlight* g = dead_ || !plain
                        ? nullptr
                        : find_locked(small.set ? small.request_id : env.message.request_id);
      if (g == nullptr) [[unlikely]] {
        if (small.set) small.into(me.reply);  // drive_locked's, as a Message
        first = true;
        break;
      }
      if (g->id == id) [[likely]] {
        g->in_reader = true;  // answered, taken where it lies
        mark_answered_locked(*g);
        Result<T> r = small.set ? take_small<T>(small, take, me.reply) : take(me.reply);
        if (!dead_) remove_locked(*g);  // `take` may have ended the connection (and the table)
        hand_off_locked();              // threads that came meanwhile wait for the socket
        return r;
      }
      if (!g->abandoned || !g->posted) {
        if (small.set) small.into(me.reply);
        first = true;
        break;
      }
      // A posted request's answer, no refusal (deliver_locked's second case).
      posted_answered_locked(*g);
      if (deadline - std::chrono::steady_clock::now() < blocking_wait_) break;
    }
  }
  if (dead_) return std::unexpected(*dead_);
  find_locked(id)->waiter = mine;
  ++sleepers_;
  if (alone && (!first || *first)) {
    // The first turn's read, handed on as drive_locked would have.
    std::vector<proto::Body> undo;
    take_locked(first, me.reply, undo, mine);
    if (!undo.empty()) [[unlikely]] {
      lock.unlock();
      send_undo(std::move(undo));
      lock.lock();
    }
  }
  if (alone) {
    // The reader leaves: if it is not to read again (its reply came, or
    // the connection died), another waiter takes over the socket.
    if (const InFlight* g = find_locked(id); g == nullptr || g->answered()) hand_off_locked();
  }
  drive_locked(
      lock,
      [&] {
        const InFlight* f = find_locked(id);
        return f == nullptr || f->answered();
      },
      deadline, mine, /*fresh=*/!waited && !alone, &me.reply);
  if (dead_) return std::unexpected(*dead_);
  InFlight& f = *find_locked(id);
  f.waiter = nullptr;
  if (f.answered()) {
    Result<T> r = f.in_reader ? take(me.reply)
                  : *f.reply  ? take(**f.reply)
                              : Result<T>(std::unexpected(std::move(f.reply->error())));
    if (!dead_) remove_locked(f);  // `take` may have ended the connection (and the table)
    return r;
  }
  // Given up: the id stays taken until the late reply comes and is undone.
  --sleepers_;
  f.abandoned = true;
  --waiting_;
  return fail(Errc::kTimeout,
              "pmmd at {} did not answer {} within {} ms (is it stopped or hung?); the "
              "request is abandoned: if the daemon carries it out later, what it gives is "
              "given back, and the connection stays usable",
              path_, proto::message_type_name(out.type), (timeout_ + out.extra_wait).count());
}

}  // namespace pmm::client
