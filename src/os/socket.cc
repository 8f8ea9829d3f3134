// AF_UNIX SOCK_SEQPACKET sockets for the pmm protocol. See socket.h.
//
// Two subtleties drive the shape of this file:
// - A socket file on disk says nothing about whether a daemon still uses it.
//   listen_unix decides by connecting: accepted -> a live daemon, refuse;
//   ECONNREFUSED -> stale file left by a dead daemon, unlink and bind.
// - recvmsg can deliver fds together with a message we then refuse. They
//   are owned by this process from that moment, so they are wrapped in
//   UniqueFd before any check, and dropping the vector closes them.
#include "os/socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "os/fault.h"
#include "os/sys_error.h"

namespace pmm::os {
namespace {

Result<sockaddr_un> make_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return fail(Errc::kInvalidArgument, "empty socket path");
  if (path.size() >= sizeof addr.sun_path) {
    return fail(Errc::kInvalidArgument, "socket path {} is {} bytes long; at most {} fit", path,
                path.size(), sizeof addr.sun_path - 1);
  }
  if (path.find('\0') != std::string::npos) {
    return fail(Errc::kInvalidArgument, "socket path contains a NUL byte");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

Result<UniqueFd> new_socket(int flags) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0));
  if (!fd) return sys_fail(errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
  return fd;
}

int connect_retry(int fd, const sockaddr_un& addr) {
  while (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// mkdir -p of the directory holding `path`, new directories 0755.
Status make_parent_dirs(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return {};
  std::string dir = path.substr(0, slash);
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return sys_fail(errno, "mkdir({}, 0755) for socket {}", prefix, path);
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return sys_fail(errno, "stat({})", dir);
  if (!S_ISDIR(st.st_mode)) {
    return fail(Errc::kInvalidArgument, "{} (parent of socket {}) is not a directory", dir, path);
  }
  return {};
}

// What is at `path` before we bind: nothing, a stale socket (removed here),
// or a live daemon (kExists).
Status clear_stale_socket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return sys_fail(errno, "lstat({})", path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return fail(Errc::kExists, "{} exists and is not a socket; remove it or choose another path",
                path);
  }
  auto probe = new_socket(0);
  if (!probe) return std::unexpected(probe.error());
  int err = connect_retry(probe->get(), addr);
  if (err == 0) {
    return fail(Errc::kExists, "a daemon already listens on {}; stop it or use another socket path",
                path);
  }
  if (err != ECONNREFUSED) {
    return sys_fail(err, "connect({}) to check for a running daemon", path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return sys_fail(errno, "unlink({}) of a stale socket", path);
  }
  return {};
}

}  // namespace

std::string default_socket_path() {
  const char* env = std::getenv("PMM_SOCKET");
  if (env != nullptr && *env != '\0') return env;
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/pmm/pmm.sock";
  return "/run/pmm/pmm.sock";
}

Result<UniqueFd> listen_unix(const std::string& path, int backlog) {
  auto addr = make_address(path);
  if (!addr) return std::unexpected(addr.error());
  if (auto s = make_parent_dirs(path); !s) return std::unexpected(s.error());
  if (auto s = clear_stale_socket(path, *addr); !s) return std::unexpected(s.error());
  auto fd = new_socket(SOCK_NONBLOCK);
  if (!fd) return fd;
  // The file at `path` must appear only once the socket listens: a client
  // that waits for the file (a script, a test, systemd's PathExists=) and
  // connects at once would otherwise meet ECONNREFUSED between bind() and
  // listen(). So bind a temporary name beside it, listen, then link it to
  // `path` (link, unlike rename, fails if another daemon got there first)
  // and drop the temporary name. Where the temporary name would not fit in
  // sun_path, bind `path` itself as before.
  const std::string temp = path + ".binding." + std::to_string(::getpid());
  auto temp_addr = make_address(temp);
  const std::string& bound = temp_addr ? temp : path;
  const sockaddr_un& bind_addr = temp_addr ? *temp_addr : *addr;
  if (temp_addr) (void)::unlink(temp.c_str());  // left by a crash of a daemon with our pid
  if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&bind_addr), sizeof bind_addr) != 0) {
    int err = errno;
    if (err == EADDRINUSE) {
      // Another daemon bound it between our check and our bind.
      return fail(Errc::kExists, "a daemon already listens on {} (bind: {})", path,
                  errno_text(err));
    }
    return sys_fail(err, "bind({})", bound);
  }
  auto fail_unbinding = [&](std::unexpected<Error> e) -> Result<UniqueFd> {
    if (temp_addr) (void)::unlink(temp.c_str());
    return e;
  };
  // Any local user may connect: access is decided per pool from the peer's
  // SO_PEERCRED credentials (DESIGN.md: the trust domain is the pool), not by
  // the socket file's mode, which would otherwise follow the daemon's umask.
  if (::chmod(bound.c_str(), 0666) != 0)
    return fail_unbinding(sys_fail(errno, "chmod({}, 0666)", bound));
  if (::listen(fd->get(), backlog) != 0)
    return fail_unbinding(sys_fail(errno, "listen({}, {})", bound, backlog));
  if (temp_addr) {
    if (::link(temp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      if (err == EEXIST)
        return fail_unbinding(fail(
            Errc::kExists, "a daemon already listens on {} (it appeared while we bound)", path));
      return fail_unbinding(sys_fail(err, "link({}, {})", temp, path));
    }
    (void)::unlink(temp.c_str());
  }
  return fd;
}

Result<std::optional<UniqueFd>> inherited_listener() {
  // The protocol is three environment variables and a fixed fd number;
  // reading them here spares pmmd a libsystemd dependency (it also runs
  // with no systemd at all) for what sd_listen_fds(0) would do.
  constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr) return std::optional<UniqueFd>();
  std::string pid_text = pid, fds_text = fds;
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (pid_text != std::to_string(::getpid())) return std::optional<UniqueFd>();
  if (fds_text == "0") return std::optional<UniqueFd>();
  if (fds_text != "1") {
    return fail(Errc::kInvalidArgument,
                "socket activation passed LISTEN_FDS={}; pmmd takes exactly one socket "
                "(ListenSequentialPacket= once in pmmd.socket)",
                fds_text);
  }
  UniqueFd fd(kFirstFd);
  int domain = 0, type = 0, listening = 0;
  socklen_t len = sizeof(int);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
    return sys_fail(errno, "getsockopt(fd 3, SO_DOMAIN) of the socket-activation fd");
  }
  len = sizeof(int);
  (void)::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len);
  len = sizeof(int);
  (void)::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
  if (domain != AF_UNIX || type != SOCK_SEQPACKET || listening == 0) {
    return fail(Errc::kInvalidArgument,
                "socket activation passed fd 3 of family {}, type {}, {}listening; pmmd needs an "
                "AF_UNIX ({}) SOCK_SEQPACKET ({}) listening socket: ListenSequentialPacket= in "
                "the .socket unit",
                domain, type, listening != 0 ? "" : "not ", AF_UNIX, SOCK_SEQPACKET);
  }
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl | O_NONBLOCK) != 0 ||
      ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC) != 0) {
    return sys_fail(errno, "fcntl(fd 3) of the socket-activation fd");
  }
  return std::optional<UniqueFd>(std::move(fd));
}

std::string bound_path(int fd) {
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      len <= offsetof(sockaddr_un, sun_path) || addr.sun_path[0] == '\0') {
    return "";
  }
  return std::string(addr.sun_path, strnlen(addr.sun_path, sizeof addr.sun_path));
}

Result<std::optional<UniqueFd>> accept_unix(int listen_fd) {
  for (;;) {
    const auto fault = take_fault(Call::kAccept);
    int c = fault ? (errno = fault->err, -1)
                  : ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c >= 0) return std::optional<UniqueFd>(UniqueFd(c));
    int err = errno;
    if (err == EINTR) continue;
    // A client that connected and died before we accepted: nothing to do.
    if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED) {
      return std::optional<UniqueFd>();
    }
    return sys_fail(err, "accept4(fd {})", listen_fd);
  }
}

Result<UniqueFd> connect_unix(const std::string& path) {
  auto addr = make_address(path);
  if (!addr) return std::unexpected(addr.error());
  auto fd = new_socket(0);
  if (!fd) return fd;
  int err = connect_retry(fd->get(), *addr);
  if (err == ENOENT || err == ECONNREFUSED) {
    return fail(Errc::kNoDaemon, "no daemon listens on {} ({}): is pmmd running?", path,
                errno_text(err));
  }
  if (err != 0) return sys_fail(err, "connect({})", path);
  return fd;
}

Result<std::pair<UniqueFd, UniqueFd>> socket_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return sys_fail(errno, "socketpair(AF_UNIX, SOCK_SEQPACKET)");
  }
  return std::pair<UniqueFd, UniqueFd>(UniqueFd(sv[0]), UniqueFd(sv[1]));
}

namespace {

// A send() of `size` bytes without fds that failed with `err` (not EINTR).
Error send_failed(int fd, size_t size, int err) {
  if (err == EPIPE || err == ECONNRESET || err == ENOTCONN) {
    return Error{
        Errc::kDisconnected,
        fmt::format("sendmsg(fd {}): the peer closed the connection ({})", fd, errno_text(err)), 0};
  }
  return sys_fail(err, "sendmsg(fd {}, {} bytes, 0 fds)", fd, size).error();
}

}  // namespace

Status send_outcome(int fd, std::span<const std::byte> bytes, int flags, ssize_t n, int err) {
  // Nothing sent yet: send_message tries (again) and takes any fault.
  if (n == kNotTried || (n < 0 && err == EINTR)) return send_message(fd, bytes, {}, flags);
  if (n < 0) return std::unexpected(send_failed(fd, bytes.size(), err));
  // SEQPACKET sends all or nothing; a short count would be a kernel bug.
  if (static_cast<size_t>(n) != bytes.size())
    return fail(Errc::kSystem, "sendmsg(fd {}) sent {} of {} bytes", fd, n, bytes.size());
  return {};
}

Status send_message(int fd, std::span<const std::byte> bytes, std::span<const int> fds, int flags) {
  if (fds.size() > kMaxFdsPerSend) {
    return fail(Errc::kInvalidArgument, "{} fds in one message; at most {}", fds.size(),
                kMaxFdsPerSend);
  }
  // Without fds, send(): the kernel then copies no msghdr and builds no
  // iovec array (about 0.1 us of every request's and reply's send), and
  // neither does this side.
  if (fds.empty()) {
    for (;;) {
      const auto fault = take_fault(Call::kSendmsg);
      ssize_t n = -1;
      if (fault && !fault->short_count) {
        errno = fault->err;
      } else {
        // A fault's short count: the peer gets a truncated message.
        n = ::send(fd, bytes.data(), fault ? bytes.size() / 2 : bytes.size(), MSG_NOSIGNAL | flags);
      }
      if (n >= 0) {
        // SEQPACKET sends all or nothing; a short count would be a kernel bug.
        if (static_cast<size_t>(n) != bytes.size()) {
          return fail(Errc::kSystem, "sendmsg(fd {}) sent {} of {} bytes", fd, n, bytes.size());
        }
        return {};
      }
      const int err = errno;
      if (err == EINTR) continue;
      return std::unexpected(send_failed(fd, bytes.size(), err));
    }
  }
  iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerSend)];
  if (!fds.empty()) {
    size_t data_len = sizeof(int) * fds.size();
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(data_len);
    std::memset(control, 0, sizeof control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(data_len);
    std::memcpy(CMSG_DATA(c), fds.data(), data_len);
  }
  for (;;) {
    const auto fault = take_fault(Call::kSendmsg);
    if (fault && !fault->short_count) {
      errno = fault->err;
    } else if (fault) {
      iov.iov_len = bytes.size() / 2;  // a short send: the peer gets a truncated message
    }
    ssize_t n = -1;
    if (!fault || fault->short_count) n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | flags);
    if (n >= 0) {
      // SEQPACKET sends all or nothing; a short count would be a kernel bug.
      if (static_cast<size_t>(n) != bytes.size()) {
        return fail(Errc::kSystem, "sendmsg(fd {}) sent {} of {} bytes", fd, n, bytes.size());
      }
      return {};
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EPIPE || err == ECONNRESET || err == ENOTCONN) {
      return fail(Errc::kDisconnected, "sendmsg(fd {}): the peer closed the connection ({})", fd,
                  errno_text(err));
    }
    return sys_fail(err, "sendmsg(fd {}, {} bytes, {} fds)", fd, bytes.size(), fds.size());
  }
}

namespace {

// Why fds sent to us on `fd` were dropped by the kernel, found by asking for
// one more descriptor now, while the table is as full as it was then.
Error fds_not_installed(int fd) {
  rlimit rl{};
  const bool have_limit = ::getrlimit(RLIMIT_NOFILE, &rl) == 0;
  const int probe = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  const int err = probe < 0 ? errno : 0;
  if (probe >= 0) ::close(probe);
  if (err == EMFILE) {
    return Error{Errc::kSystem,
                 have_limit ? fmt::format("a file descriptor sent with the message could not be "
                                          "received: this process's fd table is full "
                                          "(RLIMIT_NOFILE {}); close fds or raise the limit",
                                          rl.rlim_cur)
                            : std::string("a file descriptor sent with the message could not be "
                                          "received: this process's fd table is full"),
                 EMFILE};
  }
  if (err == ENFILE) {
    return Error{Errc::kSystem,
                 "a file descriptor sent with the message could not be received: the system's "
                 "file table is full (ENFILE, fs.file-max)",
                 ENFILE};
  }
  return Error{Errc::kSystem,
               "a file descriptor sent with the message could not be received (the kernel "
               "dropped it: MSG_CTRUNC; the fd table was full at that moment, or a security "
               "module refused it)",
               err};
}

// A read that failed with `err`, other than an EINTR to retry: "nothing
// yet" or the error naming `call`.
Result<std::optional<ssize_t>> read_failed(int fd, int err, std::string_view call) {
  if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK) return std::optional<ssize_t>();
  if (err == ECONNRESET) {
    return fail(Errc::kDisconnected, "{}(fd {}): the peer reset the connection", call, fd);
  }
  return sys_fail(err, "{}(fd {})", call, fd);
}

// One blocking-or-not read of a message through the fault seam (both reads
// here are Call::kRecvmsg to a test), with the errno rules they share: the
// byte count, nullopt for "nothing yet", or the error naming `call`.
// `read()` makes the system call; `shorten(n)` is what an armed short-count
// fault makes of its result.
template <typename Read, typename Shorten>
[[gnu::always_inline]] inline Result<std::optional<ssize_t>> read_one_message(int fd, int flags,
                                                                              std::string_view call,
                                                                              Read&& read,
                                                                              Shorten&& shorten) {
  for (;;) {
    const auto fault = take_fault(Call::kRecvmsg);
    ssize_t n;
    if (fault && !fault->short_count) {
      errno = fault->err;
      n = -1;
    } else {
      n = read();
    }
    if (n >= 0 && fault) n = shorten(n);
    if (n >= 0) return std::optional<ssize_t>(n);
    const int err = errno;
    // A blocking read waits up to the socket's SO_RCVTIMEO, which restarts
    // with each call: after a signal, hand back "nothing yet" so the caller
    // recomputes what is left of its deadline instead of waiting it afresh.
    if (err == EINTR && (flags & MSG_DONTWAIT) != 0) continue;
    return read_failed(fd, err, call);
  }
}

// What recv() of `buffer` made of a datagram of `n` bytes (MSG_TRUNC: its
// real length).
Result<std::optional<std::span<std::byte>>> bytes_received(int fd, std::span<std::byte> buffer,
                                                           ssize_t n) {
  // Our protocol never sends an empty message: 0 bytes is the end of the
  // stream (a message of fds only cannot be told apart here, and the
  // protocol has none).
  if (n == 0) return fail(Errc::kDisconnected, "the peer closed the connection (fd {})", fd);
  if (static_cast<size_t>(n) > buffer.size()) {
    return fail(Errc::kProtocol, "message larger than {} bytes (the largest allowed); dropped",
                buffer.size());
  }
  return std::optional<std::span<std::byte>>(buffer.first(static_cast<size_t>(n)));
}

}  // namespace

Result<std::optional<ReceivedInto>> receive_message_into(int fd, std::span<std::byte> buffer,
                                                         size_t max_fds, int flags) {
  if (max_fds > kMaxFdsPerSend) max_fds = kMaxFdsPerSend;
  ReceivedInto out;
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerSend)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  // Room for max_fds (rounded up): beyond it the kernel sets MSG_CTRUNC and
  // closes the extras itself. With max_fds 0, any fd is refused that way.
  msg.msg_controllen = max_fds == 0 ? 0 : CMSG_SPACE(sizeof(int) * max_fds);
  if (max_fds == 0) msg.msg_control = nullptr;
  auto read = read_one_message(
      fd, flags, "recvmsg", [&] { return ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | flags); },
      [&](ssize_t n) {  // a short read: as if the message had not fitted
        msg.msg_flags |= MSG_TRUNC;
        return n / 2;
      });
  if (!read) return std::unexpected(std::move(read.error()));
  if (!*read) return std::optional<ReceivedInto>();
  const ssize_t n = **read;
  // Take ownership of every fd first, so each return below closes them.
  bool foreign_cmsg = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        out.fds.emplace_back(received);
      }
    } else {
      foreign_cmsg = true;
    }
  }
  // Our protocol never sends an empty message, so 0 bytes with nothing else
  // is the end of the stream.
  if (n == 0 && out.fds.empty() && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0) {
    return fail(Errc::kDisconnected, "the peer closed the connection (fd {})", fd);
  }
  if ((msg.msg_flags & MSG_TRUNC) != 0) {
    return fail(Errc::kProtocol, "message larger than {} bytes (the largest allowed); dropped",
                buffer.size());
  }
  if (foreign_cmsg) {
    return fail(Errc::kProtocol, "message carried ancillary data other than SCM_RIGHTS");
  }
  // MSG_CTRUNC means one of two things. The kernel stops installing fds when
  // the room we gave is full (the peer sent too many: its fault), or when
  // installing one fails (a full fd table: ours). Room left over tells them
  // apart; CMSG_SPACE rounds up to 8 bytes, so room for one fd holds two.
  const size_t room =
      max_fds == 0 ? 0 : (CMSG_SPACE(sizeof(int) * max_fds) - CMSG_LEN(0)) / sizeof(int);
  if ((msg.msg_flags & MSG_CTRUNC) != 0 && out.fds.size() < room && out.fds.size() < max_fds) {
    out.fds_lost = fds_not_installed(fd);
  } else if ((msg.msg_flags & MSG_CTRUNC) != 0 || out.fds.size() > max_fds) {
    return fail(Errc::kProtocol, "message carried more than {} file descriptors; dropped", max_fds);
  }
  out.bytes = buffer.first(static_cast<size_t>(n));
  return std::optional<ReceivedInto>(std::move(out));
}

Result<std::optional<std::span<std::byte>>> receive_bytes_into(int fd, std::span<std::byte> buffer,
                                                               int flags) {
  // MSG_TRUNC: the datagram's real length, so an oversized one is told from
  // one that fits exactly (unix_dgram_recvmsg honours it for SEQPACKET too).
  // An armed short-count fault reads as a message too long.
  auto read = read_one_message(
      fd, flags, "recv",
      [&] { return ::recv(fd, buffer.data(), buffer.size(), MSG_TRUNC | flags); },
      [&](ssize_t) { return static_cast<ssize_t>(buffer.size()) + 1; });
  if (!read) return std::unexpected(std::move(read.error()));
  if (!*read) return std::optional<std::span<std::byte>>();
  return bytes_received(fd, buffer, **read);
}

Result<std::optional<std::span<std::byte>>> receive_bytes_outcome(int fd,
                                                                  std::span<std::byte> buffer,
                                                                  int flags, ssize_t n, int err) {
  // Nothing read yet: receive_bytes_into reads (again) and takes any fault.
  if (n == kNotTried || (n < 0 && err == EINTR && (flags & MSG_DONTWAIT) != 0))
    return receive_bytes_into(fd, buffer, flags);
  if (n < 0) {
    auto failed = read_failed(fd, err, "recv");
    if (!failed) return std::unexpected(std::move(failed.error()));
    return std::optional<std::span<std::byte>>();
  }
  return bytes_received(fd, buffer, n);
}

Result<std::optional<ReceivedMessage>> receive_message(int fd, size_t max_bytes, size_t max_fds) {
  // Uninitialised storage: the kernel writes what arrives, and only that is
  // copied out.
  auto storage = std::make_unique_for_overwrite<std::byte[]>(max_bytes);
  auto in = receive_message_into(fd, std::span<std::byte>(storage.get(), max_bytes), max_fds);
  if (!in) return std::unexpected(std::move(in.error()));
  if (!*in) return std::optional<ReceivedMessage>();
  ReceivedMessage out{.bytes = std::vector<std::byte>((*in)->bytes.begin(), (*in)->bytes.end()),
                      .fds = std::move((*in)->fds),
                      .fds_lost = std::move((*in)->fds_lost)};
  return std::optional<ReceivedMessage>(std::move(out));
}

namespace {

constexpr size_t kMaxBatch = 64;

// The headers of `count` messages into buffers (iov must have room for them).
void set_headers(std::span<const std::span<std::byte>> buffers, size_t count, iovec* iov,
                 mmsghdr* msgs) {
  for (size_t i = 0; i < count; ++i) {
    iov[i] = iovec{buffers[i].data(), buffers[i].size()};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    // No room for ancillary data: an fd (or credentials) sent with a
    // request sets MSG_CTRUNC, and the kernel closes what it could not pass.
  }
}

// recvmmsg into prepared headers. The kernel only writes what it reports
// (msg_len, msg_flags, and the name and control lengths, which stay 0), so
// the headers serve again as they are. Inlined into receive_messages: a
// call between them copied the Result through once more per read.
[[gnu::always_inline]] inline Result<size_t> receive_into(int fd, mmsghdr* msgs, size_t count,
                                                          std::span<Datagram> out);

}  // namespace

struct MessageBatch::Headers {
  std::array<iovec, kMaxBatch> iov;
  std::array<mmsghdr, kMaxBatch> msgs;
  size_t count = 0;
};

MessageBatch::MessageBatch(std::span<const std::span<std::byte>> buffers)
    : headers_(std::make_unique<Headers>()) {
  headers_->count = std::min(buffers.size(), kMaxBatch);
  set_headers(buffers, headers_->count, headers_->iov.data(), headers_->msgs.data());
}
MessageBatch::~MessageBatch() = default;
size_t MessageBatch::size() const { return headers_->count; }

Result<size_t> receive_messages(int fd, MessageBatch& batch, std::span<Datagram> out) {
  return receive_into(fd, batch.headers_->msgs.data(), std::min(batch.size(), out.size()), out);
}

namespace {

// "the peer closed the connection (fd N)", as fmt would write it, without
// fmt: pmmd builds it at the end of every session, where a vformat call was
// about a twentieth of a connect and disconnect's work.
std::string peer_closed_text(int fd) {
  constexpr std::string_view kHead = "the peer closed the connection (fd ";
  std::array<char, 16> digits;
  const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), fd);
  std::string text;
  text.reserve(kHead.size() + static_cast<size_t>(end - digits.data()) + 1);
  text.append(kHead).append(digits.data(), end).push_back(')');
  return text;
}

[[gnu::always_inline]] inline Result<size_t> receive_into(int fd, mmsghdr* msgs, size_t count,
                                                          std::span<Datagram> out) {
  if (count == 0) return size_t{0};
  int got;
  for (;;) {
    const auto fault = take_fault(Call::kRecvmsg);
    if (fault && !fault->short_count) {
      errno = fault->err;
      got = -1;
    } else {
      got = ::recvmmsg(fd, msgs, static_cast<unsigned>(count), MSG_DONTWAIT, nullptr);
    }
    if (got > 0 && fault) {  // a short read: as if the first message had not fitted
      msgs[0].msg_len /= 2;
      msgs[0].msg_hdr.msg_flags |= MSG_TRUNC;
    }
    if (got >= 0) break;
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return size_t{0};
    if (err == ECONNRESET) {
      return fail(Errc::kDisconnected, "recvmmsg(fd {}): the peer reset the connection", fd);
    }
    return sys_fail(err, "recvmmsg(fd {})", fd);
  }
  // Up to the first entry that is not a message: after a close the kernel
  // fills the rest with empty ones, and what follows a refused one is never
  // looked at (its session is closed).
  size_t n = 0;
  while (n < static_cast<size_t>(got)) {
    const msghdr& h = msgs[n].msg_hdr;
    Datagram& d = out[n++];
    d.size = msgs[n - 1].msg_len;
    d.error.reset();
    if ((h.msg_flags & MSG_TRUNC) != 0) {
      d.error = Error{Errc::kProtocol,
                      fmt::format("message larger than {} bytes (the largest allowed); dropped",
                                  h.msg_iov[0].iov_len)};
    } else if ((h.msg_flags & MSG_CTRUNC) != 0) {
      d.error = Error{Errc::kProtocol,
                      "message carried file descriptors or other ancillary data; requests carry "
                      "none; dropped"};
    } else if (d.size == 0) {
      d.error = Error{Errc::kDisconnected, peer_closed_text(fd)};
    }
    if (d.error) break;
  }
  return n;
}

}  // namespace

Result<PeerCredentials> peer_credentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return sys_fail(errno, "getsockopt(fd {}, SO_PEERCRED)", fd);
  }
  return PeerCredentials{.pid = cred.pid, .uid = cred.uid, .gid = cred.gid};
}

void shutdown_and_wait_for_peer(int fd, int timeout_ms, bool read_bounded) {
  if (fd < 0 || ::shutdown(fd, SHUT_WR) != 0) return;
  char sink[512];
  while (read_bounded) {
    // Blocks until the peer closes (0), a message comes, or SO_RCVTIMEO,
    // which is within the bound, runs out (EAGAIN: give up).
    ssize_t r = ::recv(fd, sink, sizeof sink, MSG_CMSG_CLOEXEC);
    if (r == 0) return;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return;
    break;  // a late reply: wait out the rest below, against the clock
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    ssize_t r = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r == 0) return;  // the peer closed: it has seen us go
    if (r < 0 && errno != EINTR && errno != EAGAIN) return;
  }
}

}  // namespace pmm::os
