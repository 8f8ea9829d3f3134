// pmm::os memory primitives: memfd, seals, shared mappings, mlock, madvise.
//
// The thin, checked layer between pmm's memory types (src/mem/) and the
// kernel. Each function makes one kind of system call and turns a failure
// into Errc::kSystem naming the call, its arguments and errno. Nothing here
// decides policy (which seals, whether to lock); src/mem/ does.
//
// Preconditions, as in mimalloc's prim.h:
//   - memfd_create: `name` has no NUL; flags are MFD_* values.
//   - map_shared: `size` > 0 and a multiple of the page size of `fd`'s
//     memory (4 KiB for shmem, the huge page size for hugetlb).
//   - lock/populate/advise: [addr, addr+len) lies inside one Mapping.
//
// Usage:
//   auto fd = os::memfd_create("pmm:general", MFD_CLOEXEC | MFD_ALLOW_SEALING);
//   if (!fd) return std::unexpected(fd.error());
//   if (auto s = os::resize(fd->get(), 64 << 20); !s) return std::unexpected(s.error());
//   auto map = os::map_shared(fd->get(), 64 << 20);
//   std::memset(map->data(), 0, map->size());
//
// Thread safety: the functions are reentrant; a Mapping has one owner.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/error.h"
#include "os/owned_range.h"
#include "os/unique_fd.h"

namespace pmm::os {

// Sole owner of one mmap()ed range; munmap()s it on destruction. Move-only.
void unmap_range(void* addr, size_t size) noexcept;
using Mapping = OwnedRange<unmap_range>;

// memfd_create(2). The name shows in /proc/<pid>/fd as "/memfd:<name>".
[[nodiscard]] Result<UniqueFd> memfd_create(std::string_view name, unsigned flags);

// ftruncate(2): sets the file's size.
[[nodiscard]] Status resize(int fd, uint64_t size);

// Size of the file behind `fd` (fstat st_size).
[[nodiscard]] Result<uint64_t> file_size(int fd);

// fcntl(F_ADD_SEALS) and fcntl(F_GET_SEALS).
[[nodiscard]] Status add_seals(int fd, int seals);
[[nodiscard]] Result<int> get_seals(int fd);
// "F_SEAL_SHRINK|F_SEAL_SEAL" — for messages and tests.
[[nodiscard]] std::string seal_names(int seals);

// mmap(NULL, size, prot, MAP_SHARED | extra_flags, fd, offset).
[[nodiscard]] Result<Mapping> map_shared(int fd, uint64_t size, uint64_t offset = 0,
                                         int prot = PROT_READ | PROT_WRITE, int extra_flags = 0);

// mlock(2). When the kernel refuses for lack of locked-memory allowance the
// message names RLIMIT_MEMLOCK, its current value and how to raise it.
[[nodiscard]] Status lock(void* addr, size_t len);

// Faults every page of [addr, addr+len) in for writing now, so a missing
// page is an error here and not a SIGBUS later. Uses
// madvise(MADV_POPULATE_WRITE) (Linux 5.14+); on older kernels it writes one
// byte per page (reading it first, so contents are kept).
[[nodiscard]] Status populate(void* addr, size_t len, size_t page_size);

// A hint, for memory other processes share: fills this process's page
// tables for [addr, addr+len) (widened to base pages) with
// MADV_POPULATE_WRITE, so later writes do not fault page by page. Never
// touches the contents. On a kernel without MADV_POPULATE_WRITE (before
// 5.14) it does nothing and succeeds.
[[nodiscard]] Status prefault(void* addr, size_t len);

// madvise(2) with `advice`, named in messages by `advice_name`.
[[nodiscard]] Status advise(void* addr, size_t len, int advice, std::string_view advice_name);

// The base page size (sysconf(_SC_PAGESIZE)).
[[nodiscard]] uint64_t base_page_size();

}  // namespace pmm::os
