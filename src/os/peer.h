// pmm::os peer privileges — what the process at the other end of a
// connected AF_UNIX socket may do, beyond SO_PEERCRED's pid/uid/gid:
// its supplementary groups and whether it holds a capability.
//
// pmmd uses them to decide what a client's views show (config [admin]
// gids match supplementary groups too; physical addresses only to a peer
// that could read them from pagemap itself, i.e. holds CAP_SYS_ADMIN).
//
// Groups come from SO_PEERGROUPS and, like SO_PEERCRED, are those of the
// process when it connected: nothing the client does later changes them.
// A capability is read from /proc/PID/status (CapEff) at the time of the
// call. To be sure that PID is still the process that connected and not a
// later one that reused its number, the pid is taken from a pidfd of the
// peer (SO_PEERPIDFD, Linux 6.5+) and that pidfd is checked to be alive
// after the read; a peer that has exited counts as not holding it. On an
// older kernel the SO_PEERCRED pid is read, with that reuse race.
//
// Usage:
//   auto groups = os::peer_groups(fd);                         // {} when none
//   bool admin = os::peer_has_capability(fd, pid, CAP_SYS_ADMIN);
//
// Thread safety: free functions on fds.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/error.h"

namespace pmm::os {

// The peer's supplementary groups as it connected (SO_PEERGROUPS).
[[nodiscard]] Result<std::vector<gid_t>> peer_groups(int fd);

// True when the connected peer of `fd` (whose SO_PEERCRED pid is `pid`)
// has `cap` (CAP_* from <linux/capability.h>) in its effective set now.
// False when it does not, has exited, or cannot be read.
[[nodiscard]] bool peer_has_capability(int fd, pid_t pid, int cap);

}  // namespace pmm::os
