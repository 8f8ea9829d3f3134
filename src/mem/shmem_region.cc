// The shmem memory type: a sealed memfd of normal pages, mapped MAP_SHARED.
//
// Seals: F_SEAL_SHRINK so no client holding the fd can truncate the pool
// under the others (their mappings would SIGBUS); F_SEAL_GROW so no client
// can make the file larger and use memory outside the pool's accounting;
// then F_SEAL_SEAL so neither can be undone. Writes stay allowed: clients
// write their blocks through their own mappings.
//
// Pages are allocated on first touch unless `populate` or `lock` is set;
// a NUMA binding is stored on the file (shared policy), so pages a client
// faults in come from the bound node too.
#include <fcntl.h>
#include <sys/mman.h>

#include "mem/owned_region.h"
#include "os/kernel_info.h"
#include "os/memory.h"

namespace pmm::mem {

Result<std::unique_ptr<Region>> make_shmem_region(std::string_view name,
                                                  const RegionOptions& opts) {
  const std::string what = fmt::format("shmem pool {}", name);
  const uint64_t page = os::base_page_size();
  auto size = round_region_size(opts.size, page, what);
  if (!size) return std::unexpected(size.error());

  OwnedRegion::Parts p;
  p.type = MemoryType::kShmem;
  p.size = *size;
  p.page_size = page;
  p.resident = opts.populate || opts.lock;
  auto fd = os::memfd_create(fmt::format("pmm:{}", name), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (!fd) return std::unexpected(fd.error());
  p.fd = std::move(*fd);
  if (auto s = os::resize(p.fd.get(), p.size); !s) return std::unexpected(s.error());
  if (auto s = os::add_seals(p.fd.get(), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL); !s)
    return std::unexpected(s.error());
  auto map = os::map_shared(p.fd.get(), p.size);
  if (!map) return std::unexpected(map.error());
  p.mapping = std::move(*map);
  if (auto s = prepare_memory(p.mapping.data(), p.size, page, opts, opts.populate, what); !s)
    return std::unexpected(s.error());
  // Normal pages may be swapped or migrated at any time: no physical runs.
  return std::make_unique<OwnedRegion>(std::move(p));
}

}  // namespace pmm::mem
