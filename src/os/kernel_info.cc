// Implementation of os/kernel_info.h: reads /sys/kernel/mm/hugepages,
// /proc/sys/kernel/shm*, /sys/devices/system/node and probes pagemap.
#include "os/kernel_info.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "base/units.h"
#include "os/memory.h"
#include "os/numa.h"
#include "os/pagemap.h"
#include "os/sys_error.h"
#include "os/unique_fd.h"

namespace pmm::os {
namespace {

constexpr const char* kHugeDir = "/sys/kernel/mm/hugepages";

std::string huge_dir_for(uint64_t size) {
  return fmt::format("{}/hugepages-{}kB", kHugeDir, size >> 10);
}

}  // namespace

Result<uint64_t> read_number_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_fail(errno, "open(\"{}\", O_RDONLY)", path);
  char buf[64] = {};
  const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n < 0) return sys_fail(errno, "read(\"{}\")", path);
  uint64_t v = 0;
  const char* end = buf + n;
  auto [p, ec] = std::from_chars(buf, end, v);
  if (ec != std::errc() || p == buf)
    return fail(Errc::kSystem, "{} holds \"{}\", not a number", path,
                std::string(buf, static_cast<size_t>(n)));
  return v;
}

Status write_number_file(const std::string& path, uint64_t value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return sys_fail(errno, "open(\"{}\", O_WRONLY)", path);
  const std::string text = fmt::format("{}\n", value);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return sys_fail(errno, "write(\"{}\", \"{}\")", path, value);
  return {};
}

Result<std::vector<HugePageSize>> huge_page_sizes() {
  std::vector<HugePageSize> out;
  DIR* d = ::opendir(kHugeDir);
  if (d == nullptr) {
    if (errno == ENOENT) return out;  // kernel without hugetlbfs
    return sys_fail(errno, "opendir(\"{}\")", kHugeDir);
  }
  std::vector<uint64_t> sizes;
  while (const dirent* e = ::readdir(d)) {
    uint64_t kb = 0;
    const char* name = e->d_name;
    if (std::strncmp(name, "hugepages-", 10) != 0) continue;
    auto [p, ec] = std::from_chars(name + 10, name + std::strlen(name), kb);
    if (ec == std::errc() && std::strcmp(p, "kB") == 0) sizes.push_back(kb << 10);
  }
  ::closedir(d);
  std::sort(sizes.begin(), sizes.end());
  for (uint64_t s : sizes) {
    auto h = huge_page_counts(s);
    if (!h) return std::unexpected(h.error());
    out.push_back(*h);
  }
  return out;
}

Result<HugePageSize> huge_page_counts(uint64_t size) {
  HugePageSize h;
  h.size = size;
  h.dir = huge_dir_for(size);
  if (::access(h.dir.c_str(), F_OK) != 0) {
    std::string have;
    if (auto all = huge_page_sizes(); all) {
      for (const auto& x : *all) have += (have.empty() ? "" : ", ") + format_size(x.size);
    }
    return fail(Errc::kUnsupported, "huge page size {} is not offered by this kernel ({}); {}",
                format_size(size), h.dir,
                have.empty() ? std::string("it has no huge pages at all") : "it offers " + have);
  }
  struct {
    const char* file;
    uint64_t* field;
  } files[] = {{"nr_hugepages", &h.total},
               {"free_hugepages", &h.free},
               {"resv_hugepages", &h.reserved},
               {"surplus_hugepages", &h.surplus},
               {"nr_overcommit_hugepages", &h.overcommit}};
  for (auto& f : files) {
    auto v = read_number_file(h.dir + "/" + f.file);
    if (!v) return std::unexpected(v.error());
    *f.field = *v;
  }
  return h;
}

Result<uint64_t> set_huge_page_count(uint64_t size, uint64_t count) {
  const std::string path = huge_dir_for(size) + "/nr_hugepages";
  if (auto s = write_number_file(path, count); !s) return std::unexpected(s.error());
  return read_number_file(path);
}

Result<SysvLimits> sysv_limits() {
  SysvLimits l;
  struct {
    const char* path;
    uint64_t* field;
  } files[] = {{"/proc/sys/kernel/shmmax", &l.shmmax},
               {"/proc/sys/kernel/shmall", &l.shmall_pages},
               {"/proc/sys/kernel/shmmni", &l.shmmni}};
  for (auto& f : files) {
    auto v = read_number_file(f.path);
    if (!v) return std::unexpected(v.error());
    *f.field = *v;
  }
  return l;
}

Result<KernelInfo> kernel_info() {
  KernelInfo k;
  k.page_size = base_page_size();
  auto huge = huge_page_sizes();
  if (!huge) return std::unexpected(huge.error());
  k.huge_pages = std::move(*huge);
  k.pagemap_physical = pagemap_shows_physical();
  auto sysv = sysv_limits();
  if (!sysv) return std::unexpected(sysv.error());
  k.sysv = *sysv;
  auto nodes = online_numa_nodes();
  if (!nodes) return std::unexpected(nodes.error());
  k.numa_nodes = std::move(*nodes);
  return k;
}

}  // namespace pmm::os
