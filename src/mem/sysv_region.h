// pmm::mem sysv regions: the System V key a pool uses, and how a segment
// left by a crashed daemon is found again.
//
// A sysv pool is one segment, created with a key derived from the daemon's
// euid and the pool name (sysv_key_for), attached by the daemon and at once
// marked IPC_RMID. From then on the kernel destroys the segment when the
// last process detaches — the daemon, at shutdown or when it dies, and every
// client. Linux still lets clients shmat() it by shmid (the X server does
// so for MIT-SHM), and the key is released, so `ipcs -m` shows key 0 and
// status "dest".
//
// A crash between shmget and IPC_RMID would leave a segment with the pool's
// key and nothing to remove it. At the next start, make_region finds the
// key taken: if the creator pid is gone, the segment is a leftover and is
// removed; if the creator still runs, the region fails with kExists naming
// that pid (another daemon is creating the same pool).
//
// Usage:
//   key_t k = mem::sysv_key_for("x11");   // 0x706dXXXX
//
// Thread safety: pure function.
#pragma once

#include <sys/types.h>

#include <string_view>

namespace pmm::mem {

// Keys 0x706d0000-0x706dffff ("pm"): the high half marks pmm's keys, the low
// half is a hash of euid and name. Two pools whose keys collide are harmless
// (each key is released right after its segment is made), and a leftover
// under a colliding key is still recognised by its dead creator.
inline constexpr key_t kSysvKeyBase = 0x706d0000;

[[nodiscard]] key_t sysv_key_for(std::string_view pool_name);

}  // namespace pmm::mem
