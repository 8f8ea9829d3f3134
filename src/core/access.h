// pmm::core::Access — who may use a pool or claim a device, by the uid and
// gid the kernel reports for a client's socket (SO_PEERCRED).
//
// Closed unless opened: with no uids, no gids and `everyone` false, only
// root and the daemon's own effective uid (`owner`) are let in. Those two
// are always let in, whatever the lists say: root can do anything to the
// daemon anyway, and a process of the daemon's own uid may ptrace it or read
// its memory, so refusing either would protect nothing. `everyone` opens to
// every local user and is exclusive with the lists (the config refuses
// both; see docs/config.md).
//
// Usage:
//   Access a{.uids = {1000}, .gids = {44}, .owner = ::geteuid()};
//   if (!a.allows(cred.uid, cred.gid)) ... a.describe() ...
//
// Thread safety: a plain value.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pmm::core {

struct Access {
  std::vector<uint32_t> uids{};
  std::vector<uint32_t> gids{};
  bool everyone = false;  // every local user
  uint32_t owner = 0;     // the daemon's effective uid, always allowed

  // `groups`: the client's supplementary groups (SO_PEERGROUPS), which
  // count like its primary gid, as they do for the kernel's own checks.
  // (Inline for the common answers — everyone, root, the owner — asked on
  // every allocate; the lists are searched out of line.)
  [[nodiscard]] bool allows(uint32_t uid, uint32_t gid,
                            std::span<const uint32_t> groups = {}) const {
    return everyone || uid == 0 || uid == owner || listed(uid, gid, groups);
  }
  // Whether `uid` gets in by its uid alone (everyone, root, owner, listed).
  [[nodiscard]] bool allows_uid(uint32_t uid) const;
  // Whether `uid`, `gid` or one of `groups` is in uids or gids.
  [[nodiscard]] bool listed(uint32_t uid, uint32_t gid, std::span<const uint32_t> groups) const;
  // "every user", "root", or "root; uid 1000 (pmmd's own); uids 1001; gids 44".
  [[nodiscard]] std::string describe() const;
};

}  // namespace pmm::core
