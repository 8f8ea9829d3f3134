// pmm::client::FutexLock — libpmm's mutex: the C API's block table
// (pmm_conn::mu, c_handles.h) and a Connection's request table (mu_,
// connection.h). Each is held for a few stores or a lookup, never across a
// call that waits, and taken several times per request.
//
// Uncontended, lock and unlock are one atomic instruction each, where
// std::mutex's pthread calls cost about 50 instructions a pair (measured in
// an alloc+put). Contended, a waiter sleeps in the kernel (a futex, through
// std::atomic::wait, after the few pauses and yields libstdc++ tries
// first). The algorithm is the second mutex of Drepper's "Futexes Are
// Tricky": 0 free, 1 held, 2 held and maybe waited for (unlock wakes one
// waiter only then). Not recursive; usable with std::lock_guard and
// std::unique_lock, and std::condition_variable_any waits on it (its wait
// and notify take a std::mutex of their own: only a thread that sleeps or
// wakes one pays for that).
#pragma once

#include <atomic>
#include <cstdint>

namespace pmm::client {

class FutexLock {
 public:
  void lock() {
    uint32_t seen = 0;
    if (state_.compare_exchange_strong(seen, 1, std::memory_order_acquire)) [[likely]]
      return;
    lock_contended(seen);
  }
  void unlock() {
    if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]]
      state_.notify_one();
  }

 private:
  [[gnu::noinline]] void lock_contended(uint32_t seen) {
    // Mark it waited for (2) and sleep until the holder's unlock wakes us;
    // whoever takes it that way leaves it at 2, so its unlock wakes the next.
    if (seen != 2) seen = state_.exchange(2, std::memory_order_acquire);
    while (seen != 0) {
      state_.wait(2, std::memory_order_relaxed);
      seen = state_.exchange(2, std::memory_order_acquire);
    }
  }

  std::atomic<uint32_t> state_{0};
};

// std::unique_lock for a FutexLock, without its checks: lock() and
// unlock() are the lock's own, inline (std::unique_lock's unlock, which
// may throw, stayed a call). The caller keeps the pairs right; the
// destructor unlocks if it holds. Also what std::condition_variable_any
// waits with.
class FutexHold {
 public:
  explicit FutexHold(FutexLock& lock) : lock_(lock) { lock_.lock(); }
  FutexHold(const FutexHold&) = delete;
  FutexHold& operator=(const FutexHold&) = delete;
  ~FutexHold() {
    if (held_) lock_.unlock();
  }
  void lock() {
    lock_.lock();
    held_ = true;
  }
  void unlock() {
    held_ = false;
    lock_.unlock();
  }

 private:
  FutexLock& lock_;
  bool held_ = true;
};

}  // namespace pmm::client
