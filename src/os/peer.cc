// See os/peer.h.
#include "os/peer.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <string>

#include "os/sys_error.h"
#include "os/unique_fd.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; older libc headers lack it
#endif

namespace pmm::os {
namespace {

// The value after "Key:" on a line of a /proc text file, or "".
std::string proc_field(const std::string& path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ':') {
      size_t v = line.find_first_not_of(" \t", key.size() + 1);
      return v == std::string::npos ? std::string() : line.substr(v);
    }
  }
  return {};
}

bool cap_in_status(pid_t pid, int cap) {
  std::string hex = proc_field("/proc/" + std::to_string(pid) + "/status", "CapEff");
  uint64_t caps = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), caps, 16);
  if (ec != std::errc() || hex.empty()) return false;
  return (caps >> cap & 1) != 0;
}

}  // namespace

Result<std::vector<gid_t>> peer_groups(int fd) {
  std::vector<gid_t> groups(32);
  for (;;) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    // ERANGE: len now says how much is needed (NGROUPS_MAX bounds it).
    if (errno != ERANGE || len / sizeof(gid_t) <= groups.size() || len > 65536 * sizeof(gid_t)) {
      return sys_fail(errno, "getsockopt(fd {}, SO_PEERGROUPS)", fd);
    }
    groups.resize(len / sizeof(gid_t));
  }
}

bool peer_has_capability(int fd, pid_t pid, int cap) {
  if (cap < 0 || cap >= 64) return false;
  int raw = -1;
  socklen_t len = sizeof raw;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &raw, &len) != 0) {
    // An older kernel: the pid may have been reused since the connect.
    return pid > 0 && cap_in_status(pid, cap);
  }
  UniqueFd pidfd(raw);
  // The pid this pidfd names in our pid namespace: -1 once it has exited.
  std::string text = proc_field("/proc/self/fdinfo/" + std::to_string(raw), "Pid");
  pid_t real = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), real);
  if (ec != std::errc() || real <= 0) return false;
  bool has = cap_in_status(real, cap);
  // Still alive after the read: the status read was that process's.
  pollfd p{pidfd.get(), POLLIN, 0};
  int n = ::poll(&p, 1, 0);
  return has && n == 0;
}

}  // namespace pmm::os
