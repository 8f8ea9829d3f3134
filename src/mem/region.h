// pmm::mem::Region — a range of memory of one memory type, owned by pmmd.
//
// A Region is created from RegionOptions, owns its memory (memfd, hugetlb
// memfd, or System V segment) and the daemon's mapping of it, and exposes what
// clients need to map it themselves: the memory fd (shmem, hugetlb) or the
// shmid (sysv). When physical addresses are known (hugetlb, and sysv on huge
// pages, when /proc/self/pagemap shows them) it lists the physically
// contiguous runs: [offset, offset+length) ranges whose pages are adjacent in
// physical memory, in offset order, covering the region.
//
// What each type guarantees once make_region returns (see the .cc files):
//   shmem   memfd sealed F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL; pages on
//           first touch unless populate/lock.
//   hugetlb sealed the same; every huge page reserved and faulted in, so no
//           SIGBUS later; runs known when pagemap shows PFNs.
//   sysv    segment already marked IPC_RMID (clients still shmat by shmid;
//           it dies with its last attachment); see sysv_region.h.
//
// A client that may use a pool can take pages away from it (punch a hole
// through the fd, MADV_REMOVE through its mapping). The region does not
// prevent that (the pool is the trust domain); core::Pool puts the pages
// back, or refuses, before it hands a block out (os/guarded_memory.h).
//
// Usage:
//   pmm::mem::RegionOptions o{.type = MemoryType::kHugetlb, .size = 64 << 20};
//   auto r = pmm::mem::make_region("dma", o);
//   if (!r) fmt::print(stderr, "{}\n", r.error().describe());
//   (*r)->fd(); (*r)->runs();
//
// Regions are move-free (held by unique_ptr) and never copied: they own OS
// resources. Not thread-safe; the daemon's thread owns them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"

namespace pmm::mem {

enum class MemoryType { kShmem, kHugetlb, kSysv };

// "shmem", "hugetlb", "sysv".
[[nodiscard]] std::string_view memory_type_name(MemoryType t);
// Accepts the names above; the error lists them.
[[nodiscard]] Result<MemoryType> parse_memory_type(std::string_view name);

struct RegionOptions {
  MemoryType type = MemoryType::kShmem;
  // Bytes. Rounded up to the page size; must not be 0.
  uint64_t size = 0;
  // hugetlb, and sysv with huge_pages: 2 MiB (default) or 1 GiB.
  uint64_t huge_page_size = 2ull << 20;
  // sysv only: put the segment on huge pages (SHM_HUGETLB). Default off.
  bool sysv_huge_pages = false;
  // Bind the memory to this NUMA node (mbind, MPOL_BIND). Default: none.
  std::optional<int> numa_node{};
  // mlock the daemon's mapping so the pages stay in RAM. Default off.
  bool lock = false;
  // shmem, and sysv without huge pages: fault every page in at creation, so
  // the memory is taken now and not on first touch. Huge pages are always
  // faulted in at creation (a missing huge page must fail the start, never
  // SIGBUS later); lock implies it too. Default off.
  bool populate = false;
  // sysv only: the segment's owner, group and mode. Default: the daemon's
  // uid and gid, mode 0600. pmmd sets them from the pool's access
  // (mem::sysv_permissions in sysv_region.h).
  std::optional<uid_t> sysv_uid{};
  std::optional<gid_t> sysv_gid{};
  uint32_t sysv_mode = 0600;
};

// A page found elsewhere than runs() recorded (see Region::recheck_physical).
struct MovedPage {
  uint64_t offset = 0;    // of the page in the region
  uint64_t recorded = 0;  // physical address runs() gives
  uint64_t now = 0;       // what the pagemap shows now; 0: missing or hidden
};

// A physically contiguous part of a region.
struct PhysicalRun {
  uint64_t offset = 0;  // in the region
  uint64_t length = 0;
  uint64_t phys = 0;  // physical address of the first byte
};

class Region {
 public:
  virtual ~Region() = default;
  Region() = default;
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  [[nodiscard]] virtual MemoryType type() const = 0;
  [[nodiscard]] virtual uint64_t size() const = 0;
  [[nodiscard]] virtual uint64_t page_size() const = 0;
  // The daemon's mapping of the whole region.
  [[nodiscard]] virtual std::byte* data() const = 0;
  // memfd for shmem and hugetlb; -1 for sysv.
  [[nodiscard]] virtual int fd() const = 0;
  // The SysV shmid for sysv; -1 otherwise.
  [[nodiscard]] virtual int shmid() const = 0;
  // Physically contiguous runs, or empty when physical addresses are unknown.
  [[nodiscard]] virtual std::span<const PhysicalRun> runs() const = 0;
  // True when every page was faulted in at creation (hugetlb; sysv on huge
  // pages; populate or lock): the region's memory is all there unless a
  // client took some away (punched a hole), which punched_bytes() measures.
  [[nodiscard]] virtual bool resident() const = 0;
  // Re-reads the physical address of every page of [offset, offset+len)
  // from the pagemap and compares it with runs(): nullopt when all agree (or
  // the region has no runs), else the first page that moved or is missing.
  // A page moves when a client punched it out and it was faulted back in:
  // the kernel picks any free page. Cost: one pread per page.
  [[nodiscard]] virtual Result<std::optional<MovedPage>> recheck_physical(uint64_t offset,
                                                                          uint64_t len) const = 0;
};

// Bytes of a resident region that are not in memory now, because a client
// punched them out (fallocate(FALLOC_FL_PUNCH_HOLE) on the pool fd). Read
// from the memfd's allocated size (fstat); 0 for a region that is not
// resident, and for sysv (no fd to ask; a punched page is still found when a
// block over it is handed out).
[[nodiscard]] Result<uint64_t> punched_bytes(const Region& r);

// True when the region is made of pages larger than the base page (hugetlb,
// sysv with huge_pages).
[[nodiscard]] bool uses_huge_pages(const Region& r);

// Creates a region of `opts.type`. `name` labels it (memfd name, logs).
// Errors name the call and errno, or the limit that was hit (free huge
// pages, shmmax, NUMA nodes present).
[[nodiscard]] Result<std::unique_ptr<Region>> make_region(std::string_view name,
                                                          const RegionOptions& opts);

}  // namespace pmm::mem
