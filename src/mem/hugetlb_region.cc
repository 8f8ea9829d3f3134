// The hugetlb memory type: a sealed memfd on huge pages (2 MiB or 1 GiB),
// every page reserved and faulted in at creation, physical runs read from
// the pagemap.
//
// Why fault everything now: hugetlb memory that cannot be had shows up as
// SIGBUS on first touch — in the daemon or, worse, in a client. Checking the
// free count first gives a message that says what to raise; the MAP_SHARED
// mapping then reserves the pages (mmap fails with ENOMEM instead of a later
// SIGBUS), and MADV_POPULATE_WRITE faults them in, returning an error where
// touching would kill. A NUMA binding is applied before that first fault.
//
// Physical addresses: read once, after faulting, from /proc/self/pagemap;
// without CAP_SYS_ADMIN they are unknown and the region has no runs (never
// wrong ones).
#include <fcntl.h>
#include <sys/mman.h>

#include "mem/owned_region.h"
#include "mem/physical_runs.h"
#include "os/kernel_info.h"
#include "os/memory.h"

#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif

namespace pmm::mem {

Result<std::unique_ptr<Region>> make_hugetlb_region(std::string_view name,
                                                    const RegionOptions& opts) {
  const std::string what = fmt::format("hugetlb pool {}", name);
  const uint64_t page = opts.huge_page_size;
  if (page == 0 || (page & (page - 1)) != 0)
    return fail(Errc::kInvalidArgument,
                "{}: huge page size {} is not a power of two; use 2 MiB or 1 GiB", what, page);
  auto size = round_region_size(opts.size, page, what);
  if (!size) return std::unexpected(size.error());
  const uint64_t pages = *size / page;
  if (auto s = check_huge_pages(page, pages, what); !s) return std::unexpected(s.error());

  OwnedRegion::Parts p;
  p.type = MemoryType::kHugetlb;
  p.size = *size;
  p.page_size = page;
  p.resident = true;
  const unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB |
                         (static_cast<unsigned>(log2_of(page)) << MFD_HUGE_SHIFT);
  auto fd = os::memfd_create(fmt::format("pmm:{}", name), flags);
  if (!fd) return std::unexpected(fd.error());
  p.fd = std::move(*fd);
  if (auto s = os::resize(p.fd.get(), p.size); !s) return std::unexpected(s.error());
  if (auto s = os::add_seals(p.fd.get(), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL); !s)
    return std::unexpected(s.error());
  auto map = os::map_shared(p.fd.get(), p.size);
  if (!map) return std::unexpected(huge_pages_refused(map.error(), page, pages, what));
  p.mapping = std::move(*map);
  if (auto s = prepare_memory(p.mapping.data(), p.size, page, opts, /*populate=*/true, what); !s)
    return std::unexpected(s.error());
  auto runs = read_physical_runs(p.mapping.data(), p.size, page);
  if (!runs) return std::unexpected(runs.error());
  p.runs = std::move(*runs);
  return std::make_unique<OwnedRegion>(std::move(p));
}

}  // namespace pmm::mem
