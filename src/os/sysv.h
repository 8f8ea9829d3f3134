// pmm::os System V shared memory: shmget, shmat, shmdt, shmctl.
//
// Wrappers that report errno as Errc::kSystem naming the call and its
// arguments, a move-only ShmAttachment that detaches itself, and a reader of
// /proc/sysvipc/shm (the segments of this IPC namespace). The policy — which
// owner and mode, when to mark a segment for removal — is in
// src/mem/sysv_region.cc.
//
// Linux lets a process shmat() a segment by shmid after it was marked with
// IPC_RMID, until the last attachment goes; pmm relies on that (and tests it
// in sysv_test.cc).
//
// Usage:
//   auto id = os::shm_create(IPC_PRIVATE, 1 << 20, 0600);
//   auto at = os::shm_attach(*id);
//   std::memset(at->data(), 0, at->size());
//   (void)os::shm_remove(*id);   // gone once `at` and every other attach go
//
// Thread safety: reentrant; an attachment has one owner.
#pragma once

#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "base/error.h"
#include "os/owned_range.h"

namespace pmm::os {

// Sole owner of one shmat() attachment; shmdt()s on destruction. Move-only.
void detach_range(void* addr, size_t size) noexcept;
using ShmAttachment = OwnedRange<detach_range>;

// shmget(key, size, IPC_CREAT | IPC_EXCL | mode | extra_flags): a new
// segment. extra_flags: SHM_HUGETLB | (log2(page size) << SHM_HUGE_SHIFT).
// pmm's pools always pass IPC_PRIVATE (src/mem/sysv_region.h).
// EEXIST is Errc::kExists; EINVAL for a size beyond shmmax names shmmax.
[[nodiscard]] Result<int> shm_create(key_t key, uint64_t size, unsigned mode, int extra_flags = 0);

// shmat(shmid, NULL, 0) for the whole segment (its size from IPC_STAT).
[[nodiscard]] Result<ShmAttachment> shm_attach(int shmid);

[[nodiscard]] Result<shmid_ds> shm_stat(int shmid);

// IPC_SET: owner, group and the low 9 mode bits.
[[nodiscard]] Status shm_set_owner(int shmid, uid_t uid, gid_t gid, unsigned mode);

// IPC_RMID: destroyed once nothing is attached.
[[nodiscard]] Status shm_remove(int shmid);

// One line of /proc/sysvipc/shm.
struct ShmSegment {
  key_t key = 0;
  int shmid = -1;
  unsigned mode = 0;  // includes SHM_DEST (01000) once marked for removal
  uint64_t size = 0;
  pid_t creator_pid = 0;
  pid_t last_pid = 0;
  uint64_t attached = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Every segment in this IPC namespace.
[[nodiscard]] Result<std::vector<ShmSegment>> shm_list();

}  // namespace pmm::os
