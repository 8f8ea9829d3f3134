// pmm::os guarded memory: writing memory that another process can take away.
//
// A pool's memory is shared with its clients through the pool's fd (shmem,
// hugetlb) or its shmid (sysv). Any client may punch a hole in it
// (fallocate(FALLOC_FL_PUNCH_HOLE) on the fd, madvise(MADV_REMOVE) on its
// mapping): the pages go back to the kernel, and the next touch of that
// range faults a fresh zero page in — or, for huge pages when none is free,
// raises SIGBUS in whoever touches it. The daemon must never be that
// process. So every daemon write to pool memory goes through here:
//
//   fault_in     MADV_POPULATE_WRITE over the range: missing pages are put
//                back now, and a page that cannot be had is an error value
//                (EFAULT: "would SIGBUS", ENOMEM), never a signal.
//   fill_guarded memset under a SIGBUS guard, for the window between
//                fault_in and the write in which a client may punch again:
//                a SIGBUS inside the guarded write returns an error instead
//                of killing the process. SIGBUS anywhere else behaves as
//                before (the previous handler, or the default action).
//
// The guard installs one process-wide SIGBUS handler on first use, chained
// to the one it replaced. The guard is per thread (thread_local), so a
// SIGBUS in another thread is not taken for ours.
//
// Usage:
//   if (auto s = os::fault_in(p, n); !s) return refuse(s.error());
//   if (auto s = os::fill_guarded(p, 0, n); !s) return refuse(s.error());
//
// Thread safety: reentrant; each thread has its own guard.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/error.h"

namespace pmm::os {

// MADV_POPULATE_WRITE over [addr, addr+len), widened to base pages. A page
// the kernel cannot supply is Errc::kNoMemory (the message says whether a
// touch would have raised SIGBUS). On a kernel without MADV_POPULATE_WRITE
// (before 5.14) it succeeds without doing anything: fill_guarded still
// catches a missing page.
[[nodiscard]] Status fault_in(void* addr, size_t len);

// memset(addr, byte, len), returning Errc::kNoMemory naming the faulting
// address when the memory raises SIGBUS meanwhile.
[[nodiscard]] Status fill_guarded(void* addr, int byte, size_t len);

// Bytes of the file behind `fd` that are in memory (fstat st_blocks * 512;
// hugetlbfs and shmem keep it as pages are added and punched).
[[nodiscard]] Result<uint64_t> file_resident_bytes(int fd);

}  // namespace pmm::os
