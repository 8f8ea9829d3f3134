// Implementation of os/pagemap.h: one pread per requested page, through a
// descriptor opened once per process.
#include "os/pagemap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>

#include "os/memory.h"
#include "os/sys_error.h"
#include "os/unique_fd.h"

namespace pmm::os {
namespace {

constexpr uint64_t kPresent = 1ull << 63;
constexpr uint64_t kPfnMask = (1ull << 55) - 1;

// /proc/self/pagemap, kept open: a pool with physical runs reads it on
// every allocation, and open+close cost more than the pread itself. The
// descriptor names the process that opened it, so a forked child must not
// inherit it as its own: it is reopened when the pid changes.
Result<int> pagemap_fd() {
  static std::mutex mu;
  static UniqueFd fd;
  static pid_t owner = 0;
  std::lock_guard lock(mu);
  const pid_t self = ::getpid();
  if (!fd || owner != self) {
    UniqueFd f(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    if (!f) return sys_fail(errno, "open(\"/proc/self/pagemap\", O_RDONLY)");
    fd = std::move(f);
    owner = self;
  }
  return fd.get();
}

}  // namespace

PagemapEntry decode_pagemap_entry(uint64_t raw) {
  PagemapEntry e;
  e.present = (raw & kPresent) != 0;
  e.pfn = e.present ? (raw & kPfnMask) : 0;
  return e;
}

Result<std::vector<uint64_t>> physical_addresses(const void* addr, size_t len, size_t step) {
  const uint64_t page = base_page_size();
  if (step == 0 || step % page != 0 || reinterpret_cast<uintptr_t>(addr) % page != 0)
    return fail(Errc::kInvalidArgument,
                "pagemap lookup of {} step {}: address and step must be multiples of the "
                "page size {}",
                addr, step, page);
  auto fd = pagemap_fd();
  if (!fd) return std::unexpected(fd.error());
  std::vector<uint64_t> out;
  out.reserve(len / step + 1);
  const auto base = reinterpret_cast<uintptr_t>(addr);
  for (size_t off = 0; off < len; off += step) {
    const uint64_t vpage = (base + off) / page;
    uint64_t raw = 0;
    const auto pos = static_cast<off_t>(vpage * sizeof raw);
    const ssize_t n = ::pread(*fd, &raw, sizeof raw, pos);
    if (n != static_cast<ssize_t>(sizeof raw))
      return sys_fail(n < 0 ? errno : EIO, "pread(\"/proc/self/pagemap\", 8 bytes at {})", pos);
    const PagemapEntry e = decode_pagemap_entry(raw);
    out.push_back(e.pfn * page);
  }
  return out;
}

bool pagemap_shows_physical() {
  const size_t page = base_page_size();
  void* p = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  Mapping m(p, page);
  *static_cast<volatile char*>(p) = 1;
  auto phys = physical_addresses(p, page, page);
  return phys && !phys->empty() && (*phys)[0] != 0;
}

}  // namespace pmm::os
