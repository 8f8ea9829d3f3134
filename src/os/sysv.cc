// Implementation of os/sysv.h.
#include "os/sysv.h"

#include <sys/ipc.h>
#include <sys/shm.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "os/fault.h"
#include "os/kernel_info.h"
#include "os/sys_error.h"

namespace pmm::os {

void detach_range(void* addr, size_t /*size*/) noexcept { ::shmdt(addr); }

Result<int> shm_create(key_t key, uint64_t size, unsigned mode, int extra_flags) {
  const int flags = IPC_CREAT | IPC_EXCL | static_cast<int>(mode & 0777) | extra_flags;
  const auto fault = take_fault(Call::kShmget);
  const int id = fault ? (errno = fault->err, -1) : ::shmget(key, size, flags);
  if (id >= 0) return id;
  const int err = errno;
  auto r = sys_fail(err, "shmget(key {:#010x}, {}, IPC_CREAT|IPC_EXCL|{:04o}{})",
                    static_cast<unsigned>(key), size, mode & 0777,
                    (extra_flags & SHM_HUGETLB) != 0 ? "|SHM_HUGETLB" : "");
  if (err == EEXIST) r.error().code = Errc::kExists;
  if (err == EINVAL) {
    if (auto l = sysv_limits(); l && size > l->shmmax)
      r.error().message +=
          fmt::format("; {} bytes is more than kernel.shmmax ({} bytes, /proc/sys/kernel/shmmax)",
                      size, l->shmmax);
  }
  if (err == ENOSPC) {
    if (auto l = sysv_limits(); l)
      r.error().message += fmt::format(
          "; the segments would exceed kernel.shmall ({} pages) or kernel.shmmni ({} "
          "segments)",
          l->shmall_pages, l->shmmni);
  }
  if (err == ENOMEM && (extra_flags & SHM_HUGETLB) != 0)
    r.error().message += "; not enough free huge pages (see /proc/sys/vm/nr_hugepages)";
  return r;
}

Result<shmid_ds> shm_stat(int shmid) {
  shmid_ds ds{};
  if (::shmctl(shmid, IPC_STAT, &ds) != 0) return sys_fail(errno, "shmctl({}, IPC_STAT)", shmid);
  return ds;
}

Result<ShmAttachment> shm_attach(int shmid) {
  auto ds = shm_stat(shmid);
  if (!ds) return std::unexpected(ds.error());
  const auto fault = take_fault(Call::kShmat);
  void* p = fault ? (errno = fault->err, reinterpret_cast<void*>(-1)) : ::shmat(shmid, nullptr, 0);
  if (p == reinterpret_cast<void*>(-1)) return sys_fail(errno, "shmat({}, NULL, 0)", shmid);
  return ShmAttachment(p, ds->shm_segsz);
}

Status shm_set_owner(int shmid, uid_t uid, gid_t gid, unsigned mode) {
  auto ds = shm_stat(shmid);
  if (!ds) return std::unexpected(ds.error());
  ds->shm_perm.uid = uid;
  ds->shm_perm.gid = gid;
  ds->shm_perm.mode = static_cast<unsigned short>(mode & 0777);
  if (::shmctl(shmid, IPC_SET, &*ds) != 0)
    return sys_fail(errno, "shmctl({}, IPC_SET, uid {} gid {} mode {:04o})", shmid, uid, gid,
                    mode & 0777);
  return {};
}

Status shm_remove(int shmid) {
  if (::shmctl(shmid, IPC_RMID, nullptr) != 0)
    return sys_fail(errno, "shmctl({}, IPC_RMID)", shmid);
  return {};
}

Result<std::vector<ShmSegment>> shm_list() {
  std::ifstream in("/proc/sysvipc/shm");
  if (!in) return sys_fail(errno, "open(\"/proc/sysvipc/shm\")");
  std::vector<ShmSegment> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    // key shmid perms size cpid lpid nattch uid gid cuid cgid ...
    std::istringstream ls(line);
    ShmSegment s;
    long long key = 0;
    ls >> key >> s.shmid >> std::oct >> s.mode >> std::dec >> s.size >> s.creator_pid >>
        s.last_pid >> s.attached >> s.uid >> s.gid;
    if (!ls) continue;
    s.key = static_cast<key_t>(key);
    out.push_back(s);
  }
  return out;
}

}  // namespace pmm::os
