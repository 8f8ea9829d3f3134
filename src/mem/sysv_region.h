// pmm::mem sysv regions: who may attach a pool's System V segment.
//
// A sysv pool is one segment, created with IPC_PRIVATE (no key: nothing for
// another user to take first, nothing left under a key after a crash),
// attached by the daemon and at once marked IPC_RMID. From then on the
// kernel destroys the segment when the last process detaches — the daemon,
// at shutdown or when it dies, and every client. Linux still lets clients
// shmat() it by shmid (the X server does so for MIT-SHM); `ipcs -m` shows
// key 0 and status "dest".
//
// Anyone who knows a shmid may try shmat(): the segment's owner, group and
// mode are the only gate, and the X server checks the same bits against
// its *client's* credentials before attaching for it. So they follow the
// pool's access (its `uids`/`gids`, or open to everyone), computed by
// sysv_permissions(). SysV permissions name one owner uid, one group and
// "everyone else"; the creator uid (the daemon) keeps the owner's rights
// whoever the owner is, and root passes by CAP_IPC_OWNER. An access list
// that needs more than that cannot be expressed and is refused with a
// suggestion.
//
// Usage:
//   auto p = mem::sysv_permissions({.uids = {1000}, .gids = {44}});
//   // p->uid 1000, p->gid 44, p->mode 0660
//
// Thread safety: pure functions.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "base/error.h"

namespace pmm::mem {

// Who may use a pool, as the config says it.
struct SysvAccess {
  std::span<const uint32_t> uids{};
  std::span<const uint32_t> gids{};
  bool everyone = false;    // open to every local user
  uint32_t daemon_uid = 0;  // the creator: keeps owner rights in any case
  uint32_t daemon_gid = 0;
};

// A segment's shm_perm.
struct SysvPermissions {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t mode = 0600;
};

// everyone: owner the daemon, mode 0666. Otherwise uid 0 and the daemon's
// uid are dropped from `uids` (they have access without the bits); at most
// one uid may remain (the owner, else the daemon) and at most one gid (the
// group, mode 0660; else the daemon's gid, mode 0600). More is
// kInvalidArgument naming `pool` and saying what would work.
[[nodiscard]] Result<SysvPermissions> sysv_permissions(std::string_view pool,
                                                       const SysvAccess& access);

}  // namespace pmm::mem
