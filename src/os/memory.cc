// Implementation of os/memory.h. Every call here reports errno through
// sys_fail with enough of its arguments to tell calls apart in a log.
#include "os/memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "os/fault.h"
#include "os/sys_error.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older headers lack it
#endif

namespace pmm::os {

void unmap_range(void* addr, size_t size) noexcept { ::munmap(addr, size); }

Result<UniqueFd> memfd_create(std::string_view name, unsigned flags) {
  const std::string n(name);
  const auto fault = take_fault(Call::kMemfdCreate);
  const int fd = fault ? (errno = fault->err, -1) : ::memfd_create(n.c_str(), flags);
  if (fd < 0) return sys_fail(errno, "memfd_create(\"{}\", flags {:#x})", n, flags);
  return UniqueFd(fd);
}

Status resize(int fd, uint64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
    return sys_fail(errno, "ftruncate(fd {}, {})", fd, size);
  return {};
}

Result<uint64_t> file_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return sys_fail(errno, "fstat(fd {})", fd);
  return static_cast<uint64_t>(st.st_size);
}

Status add_seals(int fd, int seals) {
  if (::fcntl(fd, F_ADD_SEALS, seals) != 0)
    return sys_fail(errno, "fcntl(fd {}, F_ADD_SEALS, {})", fd, seal_names(seals));
  return {};
}

Result<int> get_seals(int fd) {
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return sys_fail(errno, "fcntl(fd {}, F_GET_SEALS)", fd);
  return seals;
}

std::string seal_names(int seals) {
  static constexpr struct {
    int bit;
    const char* name;
  } kSeals[] = {{F_SEAL_SEAL, "F_SEAL_SEAL"},
                {F_SEAL_SHRINK, "F_SEAL_SHRINK"},
                {F_SEAL_GROW, "F_SEAL_GROW"},
                {F_SEAL_WRITE, "F_SEAL_WRITE"},
                {F_SEAL_FUTURE_WRITE, "F_SEAL_FUTURE_WRITE"}};
  std::string out;
  for (const auto& s : kSeals) {
    if ((seals & s.bit) == 0) continue;
    if (!out.empty()) out += '|';
    out += s.name;
    seals &= ~s.bit;
  }
  if (seals != 0) out += fmt::format("{}{:#x}", out.empty() ? "" : "|", seals);
  return out.empty() ? "0" : out;
}

Result<Mapping> map_shared(int fd, uint64_t size, uint64_t offset, int prot, int extra_flags) {
  const auto fault = take_fault(Call::kMmap);
  void* p =
      fault ? (errno = fault->err, MAP_FAILED)
            : ::mmap(nullptr, size, prot, MAP_SHARED | extra_flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED)
    return sys_fail(errno, "mmap(NULL, {}, prot {:#x}, MAP_SHARED|{:#x}, fd {}, {})", size, prot,
                    extra_flags, fd, offset);
  return Mapping(p, size);
}

Status lock(void* addr, size_t len) {
  // The raw system call: AddressSanitizer replaces mlock() with a no-op, and
  // a sanitizer build must lock (and fail to lock) like the real daemon.
  if (::syscall(SYS_mlock, addr, len) == 0) return {};
  const int err = errno;
  if (err == ENOMEM || err == EPERM || err == EAGAIN) {
    struct rlimit rl {};
    ::getrlimit(RLIMIT_MEMLOCK, &rl);
    const std::string limit =
        rl.rlim_cur == RLIM_INFINITY ? "unlimited" : fmt::format("{} bytes", rl.rlim_cur);
    return std::unexpected(
        Error{Errc::kSystem,
              fmt::format("mlock({}, {}) failed: {}; locking needs {} bytes within "
                          "RLIMIT_MEMLOCK, which is {} (raise it with `ulimit -l`, "
                          "LimitMEMLOCK= in the systemd unit, or give pmmd CAP_IPC_LOCK)",
                          addr, len, errno_text(err), len, limit),
              err});
  }
  return sys_fail(err, "mlock({}, {})", addr, len);
}

Status populate(void* addr, size_t len, size_t page_size) {
  if (::madvise(addr, len, MADV_POPULATE_WRITE) == 0) return {};
  const int err = errno;
  if (err != EINVAL) return sys_fail(err, "madvise({}, {}, MADV_POPULATE_WRITE)", addr, len);
  // Kernel older than 5.14: touch each page. Reading then writing the same
  // value keeps whatever the memory holds.
  auto* bytes = static_cast<volatile unsigned char*>(addr);
  for (size_t off = 0; off < len; off += page_size) bytes[off] = bytes[off];
  return {};
}

Status prefault(void* addr, size_t len) {
  if (len == 0) return {};
  const uintptr_t page = base_page_size();
  const uintptr_t start = reinterpret_cast<uintptr_t>(addr) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(addr) + len + page - 1) & ~(page - 1);
  if (::madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE) == 0) return {};
  const int err = errno;
  if (err == EINVAL) return {};  // an older kernel: the hint is not available
  return sys_fail(err, "madvise({}, {}, MADV_POPULATE_WRITE)", reinterpret_cast<void*>(start),
                  end - start);
}

Status advise(void* addr, size_t len, int advice, std::string_view advice_name) {
  if (::madvise(addr, len, advice) != 0)
    return sys_fail(errno, "madvise({}, {}, {})", addr, len, advice_name);
  return {};
}

uint64_t base_page_size() { return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }

}  // namespace pmm::os
