// pmm::os capabilities: asking whether this process has one, and dropping one.
//
// What pmmd may do depends on capabilities more than on uid: CAP_SYS_ADMIN
// makes /proc/self/pagemap show physical addresses, CAP_IPC_LOCK lifts
// RLIMIT_MEMLOCK for mlock and allows SHM_HUGETLB, CAP_IPC_OWNER and
// CAP_CHOWN matter for SysV ownership. Messages use this to say why a thing
// is unknown or refused; tests use drop_capability to run as a less
// privileged daemon would.
//
// Usage:
//   if (!os::has_capability(CAP_SYS_ADMIN)) ... physical addresses unknown
//   (void)os::drop_capability(CAP_IPC_LOCK);  // this thread, effective+permitted
//
// Thread safety: capabilities are per thread; both calls act on the calling
// thread only (raw capget/capset, no libcap).
#pragma once

#include "base/error.h"

namespace pmm::os {

// True when `cap` (CAP_* from <linux/capability.h>) is in the effective set.
[[nodiscard]] bool has_capability(int cap);

// Removes `cap` from the effective, permitted and inheritable sets of the
// calling thread, for good.
[[nodiscard]] Status drop_capability(int cap);

}  // namespace pmm::os
