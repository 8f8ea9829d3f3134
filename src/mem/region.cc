// make_region and what every memory type shares: option checks, the order
// in which NUMA binding, faulting and locking are applied, and the huge page
// accounting that makes a missing huge page fail the start with a message.
#include <algorithm>
#include <bit>

#include "base/units.h"
#include "mem/owned_region.h"
#include "mem/region.h"
#include "os/guarded_memory.h"
#include "os/kernel_info.h"
#include "os/memory.h"
#include "os/numa.h"
#include "os/pagemap.h"

namespace pmm::mem {
namespace {

std::unexpected<Error> in_context(Error e, std::string_view what) {
  e.message = fmt::format("{}: {}", what, e.message);
  return std::unexpected(std::move(e));
}

}  // namespace

std::string_view memory_type_name(MemoryType t) {
  switch (t) {
    case MemoryType::kShmem:
      return "shmem";
    case MemoryType::kHugetlb:
      return "hugetlb";
    case MemoryType::kSysv:
      return "sysv";
  }
  return "unknown";
}

Result<MemoryType> parse_memory_type(std::string_view name) {
  for (MemoryType t : {MemoryType::kShmem, MemoryType::kHugetlb, MemoryType::kSysv})
    if (name == memory_type_name(t)) return t;
  return fail(Errc::kInvalidArgument,
              "memory type \"{}\" is unknown; use \"shmem\", \"hugetlb\" or \"sysv\"", name);
}

Result<std::optional<MovedPage>> OwnedRegion::recheck_physical(uint64_t offset,
                                                               uint64_t len) const {
  if (p_.runs.empty() || len == 0 || offset >= p_.size) return std::nullopt;
  const uint64_t page = p_.page_size;
  const uint64_t first = offset / page * page;
  const uint64_t end = std::min(p_.size, (offset + len + page - 1) / page * page);
  auto now = os::physical_addresses(data() + first, end - first, page);
  if (!now) return std::unexpected(now.error());
  // Runs are in offset order and cover the region.
  auto run = std::upper_bound(p_.runs.begin(), p_.runs.end(), first,
                              [](uint64_t off, const PhysicalRun& r) { return off < r.offset; });
  --run;
  for (size_t i = 0; i < now->size(); ++i) {
    const uint64_t off = first + i * page;
    while (off >= run->offset + run->length) ++run;
    const uint64_t recorded = run->phys + (off - run->offset);
    if ((*now)[i] != recorded)
      return MovedPage{.offset = off, .recorded = recorded, .now = (*now)[i]};
  }
  return std::nullopt;
}

Result<uint64_t> punched_bytes(const Region& r) {
  if (!r.resident() || r.fd() < 0) return 0;
  auto in_memory = os::file_resident_bytes(r.fd());
  if (!in_memory) return std::unexpected(in_memory.error());
  return *in_memory >= r.size() ? 0 : r.size() - *in_memory;
}

bool uses_huge_pages(const Region& r) { return r.page_size() > os::base_page_size(); }

int log2_of(uint64_t power_of_two) { return std::countr_zero(power_of_two); }

Result<uint64_t> round_region_size(uint64_t size, uint64_t page, std::string_view what) {
  if (size == 0)
    return fail(Errc::kInvalidArgument, "{}: size 0; a region needs at least one page ({})", what,
                format_size(page));
  if (size > UINT64_MAX - (page - 1))
    return fail(Errc::kInvalidArgument, "{}: size {} overflows when rounded up to {} pages", what,
                size, format_size(page));
  return (size + page - 1) / page * page;
}

Status check_huge_pages(uint64_t huge_page_size, uint64_t pages, std::string_view what) {
  if (!std::has_single_bit(huge_page_size))
    return fail(Errc::kInvalidArgument,
                "{}: huge page size {} is not a power of two; use 2 MiB or 1 GiB", what,
                huge_page_size);
  auto h = os::huge_page_counts(huge_page_size);
  if (!h) return in_context(h.error(), what);
  if (h->available() >= pages) return {};
  return fail(Errc::kNoMemory,
              "{} needs {} pages of {}; {} free (free_hugepages {}, resv_hugepages {}, "
              "nr_overcommit_hugepages {} in {}); raise {}/nr_hugepages (now {})",
              what, pages, format_size(huge_page_size), h->available(), h->free, h->reserved,
              h->overcommit, h->dir, h->dir, h->total);
}

Error huge_pages_refused(const Error& cause, uint64_t huge_page_size, uint64_t pages,
                         std::string_view what) {
  // Prefer the counting message (it says what to raise); fall back to the
  // kernel's word when the counts look sufficient.
  if (auto s = check_huge_pages(huge_page_size, pages, what); !s) {
    Error e = s.error();
    e.message += fmt::format(" ({})", cause.message);
    return e;
  }
  return Error{cause.code,
               fmt::format("{}: the kernel refused {} pages of {}: {}", what, pages,
                           format_size(huge_page_size), cause.message),
               cause.sys_errno};
}

Status prepare_memory(std::byte* data, uint64_t size, uint64_t page_size, const RegionOptions& opts,
                      bool populate, std::string_view what) {
  if (opts.numa_node) {
    if (auto s = os::bind_to_node(data, size, *opts.numa_node); !s)
      return in_context(s.error(), what);
  }
  if (populate || opts.lock) {
    if (auto s = os::populate(data, size, page_size); !s) {
      Error e = s.error();
      if (opts.numa_node)
        e.message += fmt::format(" (the memory is bound to NUMA node {}: it may lack free pages)",
                                 *opts.numa_node);
      return in_context(e, fmt::format("{}: faulting in {}", what, format_size(size)));
    }
  }
  if (opts.lock) {
    if (auto s = os::lock(data, size); !s) return in_context(s.error(), what);
  }
  return {};
}

Result<std::unique_ptr<Region>> make_region(std::string_view name, const RegionOptions& opts) {
  if (name.empty() || name.find('\0') != std::string_view::npos)
    return fail(Errc::kInvalidArgument, "a region needs a name without NUL characters");
  // The request is checked before the machine is asked for memory, so a bad
  // option is reported as such whatever the free pages.
  if (opts.numa_node) {
    const std::string what = fmt::format("{} pool {}", memory_type_name(opts.type), name);
    if (*opts.numa_node < 0)
      return fail(Errc::kInvalidArgument, "{}: NUMA node {} is negative; the nodes online are {}",
                  what, *opts.numa_node,
                  os::format_node_list(os::online_numa_nodes().value_or(std::vector<int>{})));
    if (auto s = os::check_node_online(*opts.numa_node); !s) return in_context(s.error(), what);
  }
  switch (opts.type) {
    case MemoryType::kShmem:
      return make_shmem_region(name, opts);
    case MemoryType::kHugetlb:
      return make_hugetlb_region(name, opts);
    case MemoryType::kSysv:
      return make_sysv_region(name, opts);
  }
  return fail(Errc::kInvalidArgument, "memory type {} is unknown; use shmem, hugetlb or sysv",
              static_cast<int>(opts.type));
}

}  // namespace pmm::mem
