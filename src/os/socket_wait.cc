// Bounded waits on sockets. See socket_wait.h.
//
// A non-blocking connect() on an AF_UNIX socket does not go "in progress":
// it connects at once, or fails with EAGAIN while the listener's backlog is
// full. So connect_unix_within retries with a short sleep until the
// deadline, which is what a client wants from a daemon that is stopped.
#include "os/socket_wait.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <thread>

#include "os/sys_error.h"

namespace pmm::os {
namespace {

Result<bool> wait_for(int fd, short events, Deadline deadline, const char* what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const long long left = millis_left(deadline);
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
    if (n > 0) return true;
    if (n == 0) {
      if (millis_left(deadline) == 0) return false;
      continue;  // poll rounds down; wait out the last fraction
    }
    if (errno == EINTR) continue;
    return sys_fail(errno, "poll(fd {}, {})", fd, what);
  }
}

}  // namespace

long long millis_left(Deadline deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max<long long>(left.count(), 0);
}

Result<UniqueFd> connect_unix_within(const std::string& path, Deadline deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return fail(Errc::kInvalidArgument, "empty socket path");
  if (path.size() >= sizeof addr.sun_path || path.find('\0') != std::string::npos)
    return fail(Errc::kInvalidArgument,
                "socket path {} is not usable: at most {} bytes and no NUL byte", path,
                sizeof addr.sun_path - 1);
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return sys_fail(errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
  const auto started = std::chrono::steady_clock::now();
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return fd;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == ENOENT || err == ECONNREFUSED)
      return fail(Errc::kNoDaemon, "no daemon listens on {} ({}): is pmmd running?", path,
                  errno_text(err));
    if (err != EAGAIN) return sys_fail(err, "connect({})", path);
    // The backlog is full: the daemon is not accepting. Try again shortly.
    if (millis_left(deadline) == 0) {
      auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started);
      return fail(Errc::kTimeout,
                  "connect({}): the daemon accepted no connection in {} ms (its backlog is "
                  "full: is pmmd stopped or hung?)",
                  path, waited.count());
    }
    std::this_thread::sleep_for(std::min(
        pause, std::chrono::duration_cast<std::chrono::milliseconds>(
                   deadline - std::chrono::steady_clock::now() + std::chrono::milliseconds(1))));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

Result<bool> wait_readable(int fd, Deadline deadline) {
  return wait_for(fd, POLLIN, deadline, "POLLIN");
}

Result<bool> wait_writable(int fd, Deadline deadline) {
  return wait_for(fd, POLLOUT, deadline, "POLLOUT");
}

Status set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return sys_fail(errno, "fcntl(fd {}, F_GETFL)", fd);
  if ((flags & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return sys_fail(errno, "fcntl(fd {}, F_SETFL, O_NONBLOCK)", fd);
  return {};
}

void shutdown_socket(int fd) {
  if (fd >= 0) (void)::shutdown(fd, SHUT_RDWR);
}

}  // namespace pmm::os
