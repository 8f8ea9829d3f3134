// The event-loop primitives pmmd needs: epoll, a timerfd, a signalfd, an
// eventfd, and unlinking the socket file.
//
// These are the daemon's only system calls outside src/os/ (whose sockets,
// memory and SysV wrappers it uses through the lower layers). They live here
// because only the daemon's loop uses them; each wrapper is a few lines and
// reports failures like src/os does (sys_fail: the call and errno), so
// moving this file to src/os/ later changes no caller.
//
// Usage:
//   auto ep = Epoll::create();
//   ep->add(fd, tag);                       // level-triggered EPOLLIN
//   auto ready = ep->wait(events, -1);      // tags of the ready fds
//   auto t = Timer::create(); t->arm_at(deadline); t->consume();
//   auto w = Wakeup::create(); w->notify(); // async-signal-safe, any thread
//
// Thread safety: an Epoll, Timer or SignalFd belongs to the loop's thread.
// Wakeup::notify() may be called from any thread or a signal handler.
#pragma once

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "base/error.h"
#include "os/unique_fd.h"

namespace pmm::os {

class Epoll {
 public:
  // One ready fd: the kernel's epoll_event itself, read in place, so that a
  // wait copies and translates nothing (the loop waits once per request).
  struct Event {
    epoll_event raw;
    [[nodiscard]] uint64_t tag() const { return raw.data.u64; }
    [[nodiscard]] bool readable() const { return (raw.events & EPOLLIN) != 0; }
    [[nodiscard]] bool hangup() const { return (raw.events & (EPOLLHUP | EPOLLERR)) != 0; }
  };
  [[nodiscard]] static Result<Epoll> create();
  [[nodiscard]] Status add(int fd, uint64_t tag);
  // Removing is optional before close(): the kernel forgets closed fds.
  void remove(int fd);
  // Up to out.size() ready events; timeout_ms -1 waits for ever. EINTR
  // returns 0 events. Inline: the common path is the system call.
  [[nodiscard]] Result<size_t> wait(std::span<Event> out, int timeout_ms) {
    static_assert(sizeof(Event) == sizeof(epoll_event) && std::is_standard_layout_v<Event>);
    const int max = static_cast<int>(std::min<size_t>(out.size(), INT_MAX));
    // Event is standard-layout with raw its only member: an array of Events
    // is an array of epoll_events.
    const int n =
        ::epoll_wait(fd_.get(), reinterpret_cast<epoll_event*>(out.data()), max, timeout_ms);
    if (n < 0) [[unlikely]]
      return wait_failed(errno);
    return static_cast<size_t>(n);
  }

 private:
  [[gnu::cold, gnu::noinline]] static Result<size_t> wait_failed(int err);
  UniqueFd fd_;
};

// CLOCK_MONOTONIC (std::chrono::steady_clock) timerfd, one shot.
class Timer {
 public:
  [[nodiscard]] static Result<Timer> create();
  [[nodiscard]] int fd() const { return fd_.get(); }
  // Fires at `when` (at once if it is past); disarm() stops it.
  [[nodiscard]] Status arm_at(std::chrono::steady_clock::time_point when);
  [[nodiscard]] Status disarm();
  // Reads the expiry count so the fd stops being readable.
  void consume();

 private:
  UniqueFd fd_;
};

// SIGTERM and SIGINT as readable events. Blocks those signals in the
// calling thread (call it before starting other threads, as main does).
class SignalFd {
 public:
  [[nodiscard]] static Result<SignalFd> create();
  [[nodiscard]] int fd() const { return fd_.get(); }
  // The signal number read, or 0.
  int consume();

 private:
  UniqueFd fd_;
};

// An eventfd to wake the loop from another thread or a signal handler.
class Wakeup {
 public:
  [[nodiscard]] static Result<Wakeup> create();
  [[nodiscard]] int fd() const { return fd_.get(); }
  void notify() const;  // write(2) only: async-signal-safe
  void consume();

 private:
  UniqueFd fd_;
};

// unlink(2), ignoring a missing file. For the socket at exit.
[[nodiscard]] Status remove_file(const std::string& path);

// One file descriptor kept in reserve (/dev/null) for the moment the process
// has none left: release() frees it so that one accept(2) can succeed and the
// refused client can be told why; restore() takes it back.
class SpareFd {
 public:
  [[nodiscard]] static Result<SpareFd> create();
  [[nodiscard]] bool held() const { return static_cast<bool>(fd_); }
  void release() { fd_.reset(); }
  [[nodiscard]] Status restore();

 private:
  UniqueFd fd_;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (what systemd's
// LimitNOFILE= or `ulimit -Hn` allows) and returns the soft limit now in force.
[[nodiscard]] Result<uint64_t> raise_fd_limit();

// SIG_IGN for SIGPIPE: a write to a pipe or socket whose reader is gone
// (stderr under a logger that died) fails with EPIPE instead of killing us.
void ignore_sigpipe();

// Gives free heap memory back to the kernel (malloc_trim(0)) when malloc
// holds at least `min_free` bytes unused. Returns the bytes that were free
// before trimming, or 0 when below the threshold (nothing done).
size_t trim_heap(size_t min_free);

// Makes malloc serve every allocation of at least `bytes` with its own
// mapping (mallopt M_MMAP_THRESHOLD, which also stops glibc raising that
// threshold as large blocks are freed). A table that grows by doubling
// then gives each outgrown buffer back to the kernel at once instead of
// leaving it in the heap, and the unused tail of its capacity is never
// touched: the daemon's RSS follows its live records (without it, a
// million-block table kept about as much freed heap again).
void map_large_allocations(size_t bytes);

}  // namespace pmm::os
