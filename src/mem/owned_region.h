// pmm::mem::OwnedRegion — the one concrete Region, and what the memory types
// share (internal to src/mem/).
//
// Every memory type ends with the same object: some memory, the daemon's
// mapping of it, the handle a client maps it by (memfd or shmid) and the
// physical runs. Each type's file (shmem_region.cc, hugetlb_region.cc,
// sysv_region.cc) makes the OS resources and hands them here; the options
// that apply to every type (NUMA node, populate, lock) are applied by
// prepare_memory in one order: bind before the first fault, fault, lock.
//
// Thread safety: as Region (one owner thread).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "mem/region.h"
#include "os/memory.h"
#include "os/sysv.h"
#include "os/unique_fd.h"

namespace pmm::mem {

class OwnedRegion final : public Region {
 public:
  struct Parts {
    MemoryType type = MemoryType::kShmem;
    uint64_t size = 0;
    uint64_t page_size = 0;
    os::UniqueFd fd;           // shmem, hugetlb
    os::Mapping mapping;       // shmem, hugetlb
    int shmid = -1;            // sysv
    os::ShmAttachment attach;  // sysv
    std::vector<PhysicalRun> runs;
    bool resident = false;  // every page faulted in at creation
  };
  explicit OwnedRegion(Parts p) : p_(std::move(p)) {}

  [[nodiscard]] MemoryType type() const override { return p_.type; }
  [[nodiscard]] uint64_t size() const override { return p_.size; }
  [[nodiscard]] uint64_t page_size() const override { return p_.page_size; }
  [[nodiscard]] std::byte* data() const override {
    return p_.mapping ? p_.mapping.data() : p_.attach.data();
  }
  [[nodiscard]] int fd() const override { return p_.fd.get(); }
  [[nodiscard]] int shmid() const override { return p_.shmid; }
  [[nodiscard]] std::span<const PhysicalRun> runs() const override { return p_.runs; }
  [[nodiscard]] bool resident() const override { return p_.resident; }
  [[nodiscard]] Result<std::optional<MovedPage>> recheck_physical(uint64_t offset,
                                                                  uint64_t len) const override;

 private:
  Parts p_;
};

// Binds to opts.numa_node (if set), faults every page in when `populate`,
// then mlocks when opts.lock. `what` names the region in messages
// ("hugetlb pool dma").
[[nodiscard]] Status prepare_memory(std::byte* data, uint64_t size, uint64_t page_size,
                                    const RegionOptions& opts, bool populate,
                                    std::string_view what);

// Checks a huge page size (a power of two the kernel offers) and that
// `pages` of them can still be reserved; the error names the free count, the
// sysfs file it came from and how to raise it.
[[nodiscard]] Status check_huge_pages(uint64_t huge_page_size, uint64_t pages,
                                      std::string_view what);

// The error for a reservation the kernel refused after check_huge_pages
// passed (another process took the pages in between).
[[nodiscard]] Error huge_pages_refused(const Error& cause, uint64_t huge_page_size, uint64_t pages,
                                       std::string_view what);

// size rounded up to a multiple of `page`; kInvalidArgument for 0 or overflow.
[[nodiscard]] Result<uint64_t> round_region_size(uint64_t size, uint64_t page,
                                                 std::string_view what);

// log2 of a power of two.
[[nodiscard]] int log2_of(uint64_t power_of_two);

[[nodiscard]] Result<std::unique_ptr<Region>> make_shmem_region(std::string_view name,
                                                                const RegionOptions& opts);
[[nodiscard]] Result<std::unique_ptr<Region>> make_hugetlb_region(std::string_view name,
                                                                  const RegionOptions& opts);
[[nodiscard]] Result<std::unique_ptr<Region>> make_sysv_region(std::string_view name,
                                                               const RegionOptions& opts);

}  // namespace pmm::mem
