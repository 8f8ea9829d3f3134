// pmm::core::AllocWaiters — allocations that wait for memory (issue 10).
//
// A client may ask pmmd to keep an allocation waiting, up to a deadline,
// when the pools are full or a device rule or quota refuses it for now
// (proto::AllocateWait, pmm_alloc_opts). This is the queue: first come,
// first served across every session. The daemon walks it in order after
// anything that may have freed memory (a put, an unexport, an expiry, a
// session closing) and asks, for each waiter, whether it can be served now
// (serve()). A waiter that still does not fit the pools stops the walk, so
// requests behind it do not take the memory it waits for (a large request
// is not starved by a stream of small ones); a waiter refused by its own
// device's rules (kLimit) is passed over, since what it waits for is its
// own to give back.
//
// Bounds: a hostile client must not grow pmmd's memory without end, so
// add() refuses (kLimit, saying which bound) past `per_session` waiters of
// one session or `total` in all. Each waiter keeps its request (at most
// proto::kMaxAllocatePools names), so the queue is at most a few MiB.
//
// Usage:
//   AllocWaiters q;
//   if (auto s = q.add({.session = 3, .request_id = 9, ...}); !s) reply(s.error());
//   q.serve([&](const AllocWaiter& w) { return try_allocate(w); });
//   for (AllocWaiter& w : q.take_expired(now)) refuse(w);
//   q.remove_session(3);                          // it closed
//
// Thread safety: none; the daemon's loop thread owns it. Pure logic, no
// system calls (tests: alloc_waiters_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "core/ledger.h"

namespace pmm::core {

struct AllocWaiter {
  SessionId session = 0;
  uint32_t request_id = 0;
  std::vector<std::string> pools{};
  uint64_t size = 0;
  uint64_t alignment = 0;
  AllocFlags flags{};
  SteadyTime since{};
  SteadyTime deadline{};
};

class AllocWaiters {
 public:
  struct Bounds {
    size_t per_session = 16;
    size_t total = 1024;
  };
  // What serve()'s callback did with one waiter.
  enum class Outcome {
    kServed,   // answered (a block or a final refusal): leaves the queue
    kBlocked,  // does not fit the pools yet: stays, and so do all behind it
    kPassed,   // refused for now by its own device's rules: stays, walk on
  };

  AllocWaiters() = default;
  explicit AllocWaiters(Bounds bounds) : bounds_(bounds) {}

  // Queues `w` at the back. kLimit when its session or the daemon has as
  // many waiters as the bounds allow.
  [[nodiscard]] Status add(AllocWaiter w);
  // Walks the queue in order (see above). `try_serve` may not touch the
  // queue.
  void serve(const std::function<Outcome(const AllocWaiter&)>& try_serve);
  // Removes and returns the waiters whose deadline is <= now, in order.
  [[nodiscard]] std::vector<AllocWaiter> take_expired(SteadyTime now);
  // Every waiter of a session that closed goes.
  void remove_session(SessionId s);

  // The earliest deadline (O(n), n <= bounds.total), for the loop's timer.
  [[nodiscard]] std::optional<SteadyTime> next_deadline() const;
  [[nodiscard]] size_t size() const { return queue_.size(); }
  [[nodiscard]] bool empty() const { return queue_.empty(); }
  [[nodiscard]] size_t of_session(SessionId s) const;
  [[nodiscard]] const Bounds& bounds() const { return bounds_; }

 private:
  void erase_one(std::list<AllocWaiter>::iterator it);

  Bounds bounds_{};
  std::list<AllocWaiter> queue_;  // FIFO
  std::unordered_map<SessionId, size_t> per_session_;
};

}  // namespace pmm::core
