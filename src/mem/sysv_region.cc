// The sysv memory type: one System V segment, optionally on huge pages. See
// sysv_region.h for the key and the crash-leftover rule.
#include "mem/sysv_region.h"

#include <signal.h>
#include <sys/shm.h>
#include <unistd.h>

#include <cerrno>

#include "mem/owned_region.h"
#include "mem/physical_runs.h"
#include "os/kernel_info.h"
#include "os/memory.h"
#include "os/sysv.h"

#ifndef SHM_HUGE_SHIFT
#define SHM_HUGE_SHIFT 26
#endif

namespace pmm::mem {
namespace {

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

// Removes a segment a crashed daemon left under `key`; refuses one whose
// creator still runs.
Status clear_leftover(key_t key, std::string_view what) {
  auto id = os::shm_find(key);
  if (!id) return id.error().code == Errc::kNotFound ? Status{} : std::unexpected(id.error());
  auto ds = os::shm_stat(*id);
  if (!ds) return std::unexpected(ds.error());
  if (process_alive(ds->shm_cpid))
    return fail(Errc::kExists,
                "{}: SysV key {:#010x} already names segment shmid {} created by pid {}, which "
                "is still running (another pmmd making a pool of this name?)",
                what, static_cast<unsigned>(key), *id, ds->shm_cpid);
  return os::shm_remove(*id);
}

}  // namespace

key_t sysv_key_for(std::string_view pool_name) {
  // FNV-1a over the euid and the name.
  uint32_t h = 2166136261u;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 16777619u; };
  const uid_t uid = ::geteuid();
  for (size_t i = 0; i < sizeof uid; ++i) mix(static_cast<unsigned char>(uid >> (8 * i)));
  for (char c : pool_name) mix(static_cast<unsigned char>(c));
  return static_cast<key_t>(static_cast<uint32_t>(kSysvKeyBase) | ((h ^ (h >> 16)) & 0xffffu));
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

  const key_t key = sysv_key_for(name);
  if (auto s = clear_leftover(key, what); !s) return std::unexpected(s.error());
  const int flags = huge ? (SHM_HUGETLB | (log2_of(page) << SHM_HUGE_SHIFT)) : 0;
  auto id = os::shm_create(key, *size, opts.sysv_mode, flags);
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
  if (opts.sysv_uid || opts.sysv_gid) {
    if (auto s = os::shm_set_owner(*id, opts.sysv_uid.value_or(::geteuid()),
                                   opts.sysv_gid.value_or(::getegid()), opts.sysv_mode);
        !s)
      return std::unexpected(s.error());
  }
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
