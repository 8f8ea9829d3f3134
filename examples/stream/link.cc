// SOCK_SEQPACKET links between streaming stages; see link.h.
#include "stream/link.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

namespace examples {
namespace {

using Clock = std::chrono::steady_clock;

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return std::unexpected(
        fmt::format("link path '{}' must have 1 to {} bytes", path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

std::string errno_text(const char* what, const std::string& path) {
  return fmt::format("{} {}: {}", what, path, std::strerror(errno));
}

}  // namespace

Result<Link> Link::accept_one(const std::string& path, std::chrono::milliseconds timeout) {
  auto addr = address(path);
  if (!addr) return std::unexpected(addr.error());
  const int listener = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (listener < 0) return std::unexpected(errno_text("socket for", path));
  // A socket left by a stage that died is in the way; anything else at the
  // path is the user's and stays (bind then says EADDRINUSE).
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0 ||
      ::listen(listener, 1) != 0) {
    auto text = errno_text("cannot listen on", path);
    ::close(listener);
    return std::unexpected(text);
  }
  pollfd pfd{listener, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  const int fd = ready > 0 ? ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC) : -1;
  const int err = errno;
  ::close(listener);
  ::unlink(path.c_str());
  if (fd < 0) {
    return std::unexpected(
        ready == 0 ? fmt::format("no consumer connected to {} within {} ms", path, timeout.count())
                   : fmt::format("accept on {}: {}", path, std::strerror(err)));
  }
  return Link(fd, path);
}

Result<Link> Link::connect(const std::string& path, std::chrono::milliseconds timeout) {
  auto addr = address(path);
  if (!addr) return std::unexpected(addr.error());
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::unexpected(errno_text("socket for", path));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0) {
      return Link(fd, path);
    }
    const int err = errno;
    ::close(fd);
    // Not there yet (or a stale file): the producer is still starting.
    if ((err != ENOENT && err != ECONNREFUSED) || Clock::now() >= deadline) {
      return std::unexpected(
          fmt::format("cannot connect to the producer at {}: {}", path, std::strerror(err)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Link::~Link() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> Link::send(std::string_view message) {
  if (message.size() > kMaxMessage) {
    return std::unexpected(
        fmt::format("message of {} bytes is over {}", message.size(), kMaxMessage));
  }
  for (;;) {
    const ssize_t n = ::send(fd_, message.data(), message.size(), MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(message.size())) return {};
    if (n < 0 && errno == EINTR) continue;
    return std::unexpected(fmt::format("the link {} closed (send: {})", name_,
                                       n < 0 ? std::strerror(errno) : "short"));
  }
}

Result<std::string> Link::receive() {
  char buf[kMaxMessage + 1];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return std::unexpected(fmt::format("the link {} closed: the other stage stopped", name_));
    }
    if (static_cast<size_t>(n) > kMaxMessage) {
      return std::unexpected(fmt::format("a message on {} is over {} bytes", name_, kMaxMessage));
    }
    return std::string(buf, static_cast<size_t>(n));
  }
}

std::string_view message_field(std::string_view message, std::string_view key) {
  size_t pos = 0;
  while (pos < message.size()) {
    size_t end = message.find(' ', pos);
    if (end == std::string_view::npos) end = message.size();
    const std::string_view field = message.substr(pos, end - pos);
    if (field.size() > key.size() && field.starts_with(key) && field[key.size()] == '=') {
      return field.substr(key.size() + 1);
    }
    pos = end + 1;
  }
  return {};
}

Result<uint64_t> message_number(std::string_view message, std::string_view key) {
  const std::string_view text = message_field(message, key);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) {
    return std::unexpected(
        fmt::format("message '{}' lacks a number {}=", message.substr(0, 120), key));
  }
  return value;
}

}  // namespace examples
