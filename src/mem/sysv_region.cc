// The sysv memory type: one System V segment, optionally on huge pages. See
// sysv_region.h for IPC_PRIVATE and who may attach.
#include "mem/sysv_region.h"

#include <sys/shm.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "mem/owned_region.h"
#include "mem/physical_runs.h"
#include "os/kernel_info.h"
#include "os/memory.h"
#include "os/sysv.h"

#ifndef SHM_HUGE_SHIFT
#define SHM_HUGE_SHIFT 26
#endif

namespace pmm::mem {

Result<SysvPermissions> sysv_permissions(std::string_view pool, const SysvAccess& a) {
  if (a.everyone) return SysvPermissions{.uid = a.daemon_uid, .gid = a.daemon_gid, .mode = 0666};
  std::vector<uint32_t> uids;
  for (uint32_t u : a.uids)
    if (u != 0 && u != a.daemon_uid && std::find(uids.begin(), uids.end(), u) == uids.end())
      uids.push_back(u);
  std::vector<uint32_t> gids;
  for (uint32_t g : a.gids)
    if (std::find(gids.begin(), gids.end(), g) == gids.end()) gids.push_back(g);
  auto join = [](const std::vector<uint32_t>& ids) {
    std::string s;
    for (uint32_t id : ids) s += fmt::format("{}{}", s.empty() ? "" : ", ", id);
    return s;
  };
  if (uids.size() > 1)
    return fail(Errc::kInvalidArgument,
                "sysv pool {}: uids {} cannot all be given a SysV segment: its permissions name "
                "one owner uid and one group; give these users a common group and list it in "
                "gids (e.g. gids = [44]) instead, or use a shmem pool (access checked on the "
                "socket only)",
                pool, join(uids));
  if (gids.size() > 1)
    return fail(Errc::kInvalidArgument,
                "sysv pool {}: gids {} cannot all be given a SysV segment: its permissions name "
                "one group; make one group for the pool's users and list only it in gids, or "
                "use a shmem pool (access checked on the socket only)",
                pool, join(gids));
  SysvPermissions p{.uid = uids.empty() ? a.daemon_uid : uids.front(),
                    .gid = gids.empty() ? a.daemon_gid : gids.front(),
                    .mode = gids.empty() ? 0600u : 0660u};
  return p;
}

Result<std::unique_ptr<Region>> make_sysv_region(std::string_view name, const RegionOptions& opts) {
  const std::string what = fmt::format("sysv pool {}", name);
  if (opts.sysv_mode > 0777)
    return fail(Errc::kInvalidArgument,
                "{}: mode {:o} has bits beyond permissions; use an octal mode up to 0777 such "
                "as 0600 or 0660",
                what, opts.sysv_mode);
  const bool huge = opts.sysv_huge_pages;
  const uint64_t page = huge ? opts.huge_page_size : os::base_page_size();
  if (huge && (page == 0 || (page & (page - 1)) != 0))
    return fail(Errc::kInvalidArgument,
                "{}: huge page size {} is not a power of two; use 2 MiB or 1 GiB", what, page);
  auto size = round_region_size(opts.size, page, what);
  if (!size) return std::unexpected(size.error());

  auto limits = os::sysv_limits();
  if (!limits) return std::unexpected(limits.error());
  if (*size > limits->shmmax)
    return fail(Errc::kUnsupported,
                "{}: {} bytes is more than kernel.shmmax ({} bytes, /proc/sys/kernel/shmmax); "
                "raise it (sysctl kernel.shmmax) or make the pool smaller",
                what, *size, limits->shmmax);
  const uint64_t base = os::base_page_size();
  if (*size / base > limits->shmall_pages)
    return fail(Errc::kUnsupported,
                "{}: {} pages is more than kernel.shmall ({} pages, /proc/sys/kernel/shmall); "
                "raise it (sysctl kernel.shmall) or make the pool smaller",
                what, *size / base, limits->shmall_pages);
  const uint64_t pages = *size / page;
  if (huge) {
    if (auto s = check_huge_pages(page, pages, what); !s) return std::unexpected(s.error());
  }

  const int flags = huge ? (SHM_HUGETLB | (log2_of(page) << SHM_HUGE_SHIFT)) : 0;
  // Mode 0600 until the daemon has set the final owner and mode below: a
  // shmid is easy to guess, and no one else may attach in between.
  auto id = os::shm_create(IPC_PRIVATE, *size, 0600, flags);
  if (!id) {
    if (huge && id.error().sys_errno == ENOMEM)
      return std::unexpected(huge_pages_refused(id.error(), page, pages, what));
    if (huge && id.error().sys_errno == EPERM)
      id.error().message +=
          "; SHM_HUGETLB needs CAP_IPC_LOCK or membership of vm.hugetlb_shm_group";
    return std::unexpected(id.error());
  }
  OwnedRegion::Parts p;
  p.type = MemoryType::kSysv;
  p.size = *size;
  p.page_size = page;
  p.shmid = *id;
  p.resident = huge || opts.populate || opts.lock;
  auto at = os::shm_attach(*id);
  // Mark for destruction now: whatever happens next, the segment goes with
  // its last attachment and never outlives the daemon and its clients.
  auto removed = os::shm_remove(*id);
  if (!at) return std::unexpected(at.error());
  if (!removed) return std::unexpected(removed.error());
  p.attach = std::move(*at);
  if (auto s = os::shm_set_owner(*id, opts.sysv_uid.value_or(::geteuid()),
                                 opts.sysv_gid.value_or(::getegid()), opts.sysv_mode);
      !s)
    return std::unexpected(s.error());
  if (auto s = prepare_memory(p.attach.data(), p.size, page, opts, huge || opts.populate, what); !s)
    return std::unexpected(s.error());
  if (huge) {
    auto runs = read_physical_runs(p.attach.data(), p.size, page);
    if (!runs) return std::unexpected(runs.error());
    p.runs = std::move(*runs);
  }
  return std::make_unique<OwnedRegion>(std::move(p));
}

}  // namespace pmm::mem
