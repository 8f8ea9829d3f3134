// epoll, timerfd, signalfd, eventfd; see event_fds.h.
#include "os/event_fds.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "os/sys_error.h"

namespace pmm::os {

Result<Epoll> Epoll::create() {
  Epoll e;
  e.fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!e.fd_) return sys_fail(errno, "epoll_create1(EPOLL_CLOEXEC)");
  return e;
}

Status Epoll::add(int fd, uint64_t tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  if (::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return sys_fail(errno, "epoll_ctl(EPOLL_CTL_ADD, fd {})", fd);
  }
  return {};
}

void Epoll::remove(int fd) { ::epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, nullptr); }

Result<size_t> Epoll::wait_failed(int err) {
  if (err == EINTR) return 0;
  return sys_fail(err, "epoll_wait");
}

Result<Timer> Timer::create() {
  Timer t;
  t.fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!t.fd_) return sys_fail(errno, "timerfd_create(CLOCK_MONOTONIC)");
  return t;
}

Status Timer::arm_at(std::chrono::steady_clock::time_point when) {
  // steady_clock is CLOCK_MONOTONIC on Linux (libstdc++), so its time since
  // epoch is what TFD_TIMER_ABSTIME expects. A zero it_value would disarm:
  // a deadline at or before the epoch becomes 1 ns.
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
  if (ns <= 0) ns = 1;
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  if (::timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    return sys_fail(errno, "timerfd_settime(fd {}, ABSTIME)", fd_.get());
  }
  return {};
}

Status Timer::disarm() {
  itimerspec spec{};
  if (::timerfd_settime(fd_.get(), 0, &spec, nullptr) != 0) {
    return sys_fail(errno, "timerfd_settime(fd {}, disarm)", fd_.get());
  }
  return {};
}

void Timer::consume() {
  uint64_t n;
  // Nothing to do on EAGAIN (already consumed) or on an error: the loop
  // re-arms the timer from the ledger's next deadline anyway.
  (void)!::read(fd_.get(), &n, sizeof n);
}

Result<SignalFd> SignalFd::create() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (int e = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); e != 0) {
    return sys_fail(e, "pthread_sigmask(SIG_BLOCK, SIGTERM|SIGINT)");
  }
  SignalFd s;
  s.fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!s.fd_) return sys_fail(errno, "signalfd(SIGTERM|SIGINT)");
  return s;
}

int SignalFd::consume() {
  signalfd_siginfo info{};
  if (::read(fd_.get(), &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return 0;
  return static_cast<int>(info.ssi_signo);
}

Result<Wakeup> Wakeup::create() {
  Wakeup w;
  w.fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!w.fd_) return sys_fail(errno, "eventfd");
  return w;
}

void Wakeup::notify() const {
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake.
  (void)!::write(fd_.get(), &one, sizeof one);
}

void Wakeup::consume() {
  uint64_t n;
  (void)!::read(fd_.get(), &n, sizeof n);
}

Status remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return sys_fail(errno, "unlink({})", path);
  }
  return {};
}

Result<SpareFd> SpareFd::create() {
  SpareFd s;
  if (auto r = s.restore(); !r) return std::unexpected(r.error());
  return s;
}

Status SpareFd::restore() {
  if (fd_) return {};
  fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!fd_) return sys_fail(errno, "open(/dev/null) for the spare fd");
  return {};
}

Result<uint64_t> raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return sys_fail(errno, "getrlimit(RLIMIT_NOFILE)");
  if (r.rlim_cur < r.rlim_max) {
    rlimit want = r;
    want.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) r = want;
  }
  return r.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(r.rlim_cur);
}

void ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }

size_t trim_heap(size_t min_free) {
  // mallinfo2 walks malloc's bins: cheap next to what malloc_trim does, and
  // the caller rate-limits both.
  struct mallinfo2 mi = ::mallinfo2();
  if (mi.fordblks < min_free) return 0;
  ::malloc_trim(0);
  return mi.fordblks;
}

void map_large_allocations(size_t bytes) {
  ::mallopt(M_MMAP_THRESHOLD, static_cast<int>(std::min<size_t>(bytes, INT_MAX)));
}

}  // namespace pmm::os
