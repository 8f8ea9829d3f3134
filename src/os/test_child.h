// pmm::os::testing::run_in_child — run a check in a forked child process.
//
// For tests only (header-only, not in the library). Memory sharing is only
// proved when a different process sees the bytes, and some checks need a
// process that gave up a capability or entered a new IPC namespace without
// touching the test runner. The child runs `fn`, which returns "" for
// success or a message saying what it saw; the message travels back over a
// pipe so the parent's gtest assertion prints it. A child that crashes or is
// killed is reported with its signal. The child never returns into gtest: it
// leaves with _exit.
//
// Usage:
//   auto r = os::testing::run_in_child([&] {
//     return std::memcmp(p, "abc", 3) == 0 ? "" : "child saw other bytes";
//   });
//   EXPECT_EQ(r, "");
//
// Thread safety: call from the test's main thread (fork of a threaded
// process copies only the caller).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace pmm::os::testing {

template <typename Fn>
std::string run_in_child(Fn&& fn) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe() failed in the test";
  const pid_t pid = ::fork();
  if (pid < 0) return "fork() failed in the test";
  if (pid == 0) {
    ::close(fds[0]);
    const std::string msg = std::forward<Fn>(fn)();
    size_t done = 0;
    while (done < msg.size()) {
      const ssize_t n = ::write(fds[1], msg.data() + done, msg.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::_exit(msg.empty() ? 0 : 1);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status))
    return fmt::format("child killed by signal {} {}", WTERMSIG(status), msg);
  if (WEXITSTATUS(status) != 0 && msg.empty())
    return fmt::format("child exited with {}", WEXITSTATUS(status));
  return msg;
}

}  // namespace pmm::os::testing
