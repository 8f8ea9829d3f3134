// pmm::os socket waits — the bounded waits a client needs on a socket to a
// daemon that may be stopped, wedged or gone: connecting within a time,
// waiting for a socket to become readable or writable until a deadline, and
// shutting a socket down to wake whoever waits on it.
//
// socket.h's calls block without bound (connect_unix) or not at all (the
// daemon's non-blocking sockets); libpmm promises every call a bounded wait
// (issue 9), so it connects with connect_unix_within and then uses its
// socket non-blocking, waiting with wait_readable / wait_writable.
//
// Usage:
//   auto deadline = std::chrono::steady_clock::now() + 5s;
//   auto s = os::connect_unix_within(path, deadline);  // non-blocking socket
//   if (!s) ...  // kNoDaemon, or kTimeout when the listen backlog stayed full
//   auto r = os::wait_readable(s->get(), deadline);    // false: timed out
//
// Thread safety: free functions on fds; several threads may wait on one fd.
#pragma once

#include <chrono>
#include <string>

#include "base/error.h"
#include "os/unique_fd.h"

namespace pmm::os {

using Deadline = std::chrono::steady_clock::time_point;

// Connects to `path` (SOCK_SEQPACKET, CLOEXEC) and returns the socket in
// non-blocking mode. ENOENT or ECONNREFUSED -> kNoDaemon as connect_unix
// says it; a listener whose backlog stays full until `deadline` (a daemon
// that is stopped or no longer accepts) -> kTimeout.
[[nodiscard]] Result<UniqueFd> connect_unix_within(const std::string& path, Deadline deadline);

// Waits until `fd` is readable (or hung up, or in error: the next receive
// says which) -> true, or `deadline` passes -> false. EINTR is retried.
[[nodiscard]] Result<bool> wait_readable(int fd, Deadline deadline);
// The same for writable.
[[nodiscard]] Result<bool> wait_writable(int fd, Deadline deadline);

// Sets O_NONBLOCK on `fd` (on its open file description, which a fork()
// child shares).
[[nodiscard]] Status set_nonblocking(int fd);

// shutdown(fd, SHUT_RDWR): the peer sees the connection close, and every
// thread waiting on `fd` wakes (readable: end of stream). The fd stays open
// for its owner to close. Errors are ignored: there is nothing to undo.
void shutdown_socket(int fd);

// Milliseconds from now to `deadline`, at least 0.
[[nodiscard]] long long millis_left(Deadline deadline);

}  // namespace pmm::os
