// The allocation queue; see alloc_waiters.h.
#include "core/alloc_waiters.h"

#include <algorithm>
#include <utility>

namespace pmm::core {

Status AllocWaiters::add(AllocWaiter w) {
  const size_t mine = of_session(w.session);
  if (mine >= bounds_.per_session)
    return fail(Errc::kLimit,
                "this session has {} allocations waiting already, the most pmmd keeps waiting "
                "per session; wait for one of them to be answered",
                mine);
  if (queue_.size() >= bounds_.total)
    return fail(Errc::kLimit,
                "pmmd has {} allocations waiting, the most it keeps waiting; try again later or "
                "allocate without waiting",
                queue_.size());
  ++per_session_[w.session];
  queue_.push_back(std::move(w));
  return {};
}

void AllocWaiters::erase_one(std::list<AllocWaiter>::iterator it) {
  if (auto n = per_session_.find(it->session); n != per_session_.end() && --n->second == 0)
    per_session_.erase(n);
  queue_.erase(it);
}

void AllocWaiters::serve(const std::function<Outcome(const AllocWaiter&)>& try_serve) {
  for (auto it = queue_.begin(); it != queue_.end();) {
    switch (try_serve(*it)) {
      case Outcome::kServed:
        erase_one(it++);
        break;
      case Outcome::kPassed:
        ++it;
        break;
      case Outcome::kBlocked:
        return;
    }
  }
}

std::vector<AllocWaiter> AllocWaiters::take_expired(SteadyTime now) {
  std::vector<AllocWaiter> out;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->deadline <= now) {
      out.push_back(std::move(*it));
      erase_one(it++);
    } else {
      ++it;
    }
  }
  return out;
}

void AllocWaiters::remove_session(SessionId s) {
  if (!per_session_.contains(s)) return;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->session == s)
      erase_one(it++);
    else
      ++it;
  }
}

std::optional<SteadyTime> AllocWaiters::next_deadline() const {
  std::optional<SteadyTime> next;
  for (const AllocWaiter& w : queue_)
    if (!next || w.deadline < *next) next = w.deadline;
  return next;
}

size_t AllocWaiters::of_session(SessionId s) const {
  auto it = per_session_.find(s);
  return it == per_session_.end() ? 0 : it->second;
}

}  // namespace pmm::core
