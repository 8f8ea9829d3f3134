// What pmmd does for streams of frames (issue 10): allocations that wait
// for memory, and release notifications.
//
// Waiting allocations. AllocateWait is tried at once; when the pools are
// full (kNoMemory) or a device rule or quota refuses it for now (kLimit),
// and the client allows a wait, the request joins core::AllocWaiters and
// its reply is deferred. Whatever may free memory (a put, an unexport, an
// expiry, a session closing) marks the queue due; take_outgoing() walks it
// first come, first served after each round of requests, and refuses what
// reached its deadline with the refusal of that moment. Once the queue is
// not empty, a new AllocateWait queues behind it even if it would fit, so
// the order holds; a plain Allocate never waits and takes what is free.
//
// Release notifications. A session that holds a block may ask to be told
// when nobody else does (WatchRelease): libpmm's buffer pools recycle a
// frame once every importer has put it. Watches are one-shot, bounded per
// session and in all, and checked after a put of the block, or after
// anything that drops references to blocks we cannot name cheaply (an
// unexport, an expiry, a session closing: all watches are walked, at most
// kMaxWatches). The Released event (request_id 0) goes out through
// take_outgoing(), after the Ok of the request that armed it.
#include <algorithm>
#include <chrono>

#include "base/units.h"
#include "daemon/service.h"

namespace pmm::daemon {

namespace {

proto::Message message(uint32_t request_id, proto::Body body) {
  return proto::Message{.request_id = request_id, .body = std::move(body)};
}

core::AllocFlags alloc_flags(uint32_t flags) {
  return core::AllocFlags{.contiguous = (flags & proto::kAllocContiguous) != 0,
                          .zero = (flags & proto::kAllocZero) != 0};
}

// Refusals a wait can outlast: memory or a rule that a free may satisfy.
bool worth_waiting(Errc code) { return code == Errc::kNoMemory || code == Errc::kLimit; }

int64_t millis(core::SteadyTime::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// A deferred BlockInfo: the pool fd counts as sent now, so that a second
// answer to the same session in this round does not attach it again (the
// loop drops the session if the send fails).
Reply sent_fd(SessionState& s, Reply r) {
  if (r.fd_pool) s.fd_sent[*r.fd_pool] = true;
  return r;
}

}  // namespace

Reply Service::allocate_wait(SessionState& s, uint32_t request_id, const proto::AllocateWait& r,
                             core::SteadyTime now) {
  const std::string what =
      fmt::format("allocate of {} (waiting up to {} ms)", format_size(r.size), r.wait_ms);
  if (waiters_.empty() || r.wait_ms == 0) {
    auto b = ledger_->allocate(s.id, r.pools, r.size, r.alignment, alloc_flags(r.flags));
    if (b) {
      log_.detail("{} allocated block {}: {} in {} at {:#x}", who(s), b->id, format_size(b->size),
                  b->pool_name, b->offset);
      return block_reply(s, request_id, *b);
    }
    if (r.wait_ms == 0 || !worth_waiting(b.error().code))
      return error(s, request_id, b.error(), what);
  }
  // A request larger than every pool it may come from could never be
  // served: refused now, not queued, where it would hold up (first come,
  // first served) every waiter behind it until its deadline.
  uint64_t largest_pool = 0;
  for (const core::PoolView& p : ledger_->pools()) {
    if (r.pools.empty() || std::ranges::find(r.pools, p.name) != r.pools.end())
      largest_pool = std::max(largest_pool, p.size);
  }
  if (largest_pool != 0 && r.size > largest_pool) {
    return error(s, request_id,
                 Error{Errc::kNoMemory,
                       fmt::format("{} is larger than any pool it may come from (the largest is "
                                   "{}): it could never be served, so it does not wait",
                                   format_size(r.size), format_size(largest_pool))},
                 what);
  }
  core::AllocWaiter w{.session = s.id,
                      .request_id = request_id,
                      .pools = r.pools,
                      .size = r.size,
                      .alignment = r.alignment,
                      .flags = alloc_flags(r.flags),
                      .since = now,
                      .deadline = now + std::chrono::milliseconds(r.wait_ms)};
  if (auto added = waiters_.add(std::move(w)); !added) {
    refusals_.count("waiters");
    return error(s, request_id, added.error(), what);
  }
  // Behind others: the walk serves it in its turn, maybe in this round.
  waiters_due_ = true;
  log_.detail("{} {}: queued ({} waiting)", who(s), what, waiters_.size());
  return Reply{.deferred = true};
}

Reply Service::watch_release(SessionState& s, uint32_t request_id, const proto::WatchRelease& r) {
  const std::string what = fmt::format("release watch of block {}", r.block_id);
  auto refs = ledger_->references_of(r.block_id, s.id);
  if (!refs || refs->mine == 0) {
    return error(s, request_id,
                 Error{Errc::kNotFound,
                       fmt::format("this session holds no reference to block {}; only a holder "
                                   "may watch a block's release",
                                   r.block_id)},
                 what);
  }
  if (auto w = watches_.find({r.block_id, s.id}); w != watches_.end()) {
    // Armed already: one more request for the same event (bounded by the
    // references a session may hold, far below the counter's range).
    if (w->second < UINT32_MAX) ++w->second;
  } else {
    size_t& mine = watches_of_[s.id];
    if (mine >= kMaxWatchesPerSession || watches_.size() >= kMaxWatches) {
      refusals_.count("watches");
      return error(
          s, request_id,
          Error{Errc::kLimit, mine >= kMaxWatchesPerSession
                                  ? fmt::format("this session watches {} blocks already, the most "
                                                "pmmd allows per session",
                                                mine)
                                  : fmt::format("pmmd watches {} blocks for release, the most it "
                                                "keeps; try again later",
                                                watches_.size())},
          what);
    }
    ++mine;
    watches_.emplace(std::pair{r.block_id, s.id}, 1u);
  }
  // Already nobody else's: tell it now (after this Ok).
  if (refs->others == 0) check_watches(r.block_id);
  return ok_reply(request_id);
}

void Service::after_put(core::BlockId block) {
  if (!waiters_.empty()) waiters_due_ = true;
  if (!watches_.empty()) check_watches(block);
}

void Service::after_drop() {
  if (!waiters_.empty()) waiters_due_ = true;
  if (!watches_.empty()) watches_due_ = true;
}

void Service::forget_session(core::SessionId s) {
  waiters_.remove_session(s);
  if (watches_of_.erase(s) > 0)
    std::erase_if(watches_, [s](const auto& w) { return w.first.second == s; });
  // What it held may be what others wait for.
  after_drop();
}

void Service::check_watches(core::BlockId block) {
  auto it = watches_.lower_bound({block, 0});
  while (it != watches_.end() && it->first.first == block) {
    const core::SessionId owner = it->first.second;
    auto refs = ledger_->references_of(block, owner);
    const bool stale = !refs || refs->mine == 0;  // gone, or the owner let go
    if (stale || refs->others == 0) {
      if (!stale) {
        outgoing_.push_back(Outgoing{
            .session = owner,
            .reply = Reply{
                .message = message(0, proto::Released{.block_id = block, .watches = it->second})}});
      }
      auto n = watches_of_.find(owner);
      if (n != watches_of_.end() && --n->second == 0) watches_of_.erase(n);
      it = watches_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<Outgoing> Service::take_outgoing(
    core::SteadyTime now, const std::function<SessionState*(core::SessionId)>& find) {
  if (watches_due_) {
    watches_due_ = false;
    std::vector<core::BlockId> blocks;
    for (const auto& [key, n] : watches_)
      if (blocks.empty() || blocks.back() != key.first) blocks.push_back(key.first);
    for (core::BlockId b : blocks) check_watches(b);
  }
  if (waiters_due_) {
    waiters_due_ = false;
    waiters_.serve([&](const core::AllocWaiter& w) {
      SessionState* s = find(w.session);
      if (s == nullptr) return core::AllocWaiters::Outcome::kServed;  // gone: drop it
      auto b = ledger_->allocate(w.session, w.pools, w.size, w.alignment, w.flags);
      if (b) {
        log_.detail("{} allocated block {} after waiting {} ms: {} in {}", who(*s), b->id,
                    millis(now - w.since), format_size(b->size), b->pool_name);
        outgoing_.push_back(Outgoing{.session = w.session,
                                     .reply = sent_fd(*s, block_reply(*s, w.request_id, *b))});
        return core::AllocWaiters::Outcome::kServed;
      }
      if (!worth_waiting(b.error().code)) {
        outgoing_.push_back(
            Outgoing{.session = w.session,
                     .reply = error(*s, w.request_id, b.error(),
                                    fmt::format("allocate of {}", format_size(w.size)))});
        return core::AllocWaiters::Outcome::kServed;
      }
      return b.error().code == Errc::kNoMemory ? core::AllocWaiters::Outcome::kBlocked
                                               : core::AllocWaiters::Outcome::kPassed;
    });
  }
  for (core::AllocWaiter& w : waiters_.take_expired(now)) {
    SessionState* s = find(w.session);
    if (s == nullptr) continue;
    // One last try: memory may have come back in this very round.
    auto b = ledger_->allocate(w.session, w.pools, w.size, w.alignment, w.flags);
    if (b) {
      outgoing_.push_back(
          Outgoing{.session = w.session, .reply = sent_fd(*s, block_reply(*s, w.request_id, *b))});
      continue;
    }
    Error e = b.error();
    e.message = fmt::format("waited {} ms for memory, until its deadline: {}",
                            millis(now - w.since), e.message);
    outgoing_.push_back(Outgoing{
        .session = w.session,
        .reply = error(*s, w.request_id, e, fmt::format("allocate of {}", format_size(w.size)))});
  }
  return std::exchange(outgoing_, {});
}

}  // namespace pmm::daemon
