// pmm::mem::testing — huge pages for tests, one test at a time.
//
// For tests only (header-only; not part of the library). Huge pages are a
// machine-wide resource and ctest runs test cases in parallel, so every test
// that creates, counts or reserves huge pages holds HugePageLock, an
// flock() on /tmp/pmm-test-hugepages.lock, for its whole run. HugePages
// adds the lock and makes sure the test's pages are there: it raises
// nr_hugepages by the shortfall (tests run as root) and puts the old value
// back when it goes. When the kernel cannot find the memory (1 GiB pages
// on a fragmented machine), unavailable() says why, for GTEST_SKIP().
//
// Usage:
//   mem::testing::HugePages hp(2 << 20, 16);
//   if (!hp.unavailable().empty()) GTEST_SKIP() << hp.unavailable();
//   auto r = mem::make_region("t", {.type = MemoryType::kHugetlb, .size = 32 << 20});
//
// The machine's free counts are not the test's to assert: another program
// (not a pmm test, so not under the lock) may take or return huge pages at
// any time, and with nr_overcommit_hugepages set the pages come from the
// surplus and free_hugepages says nothing. What a test can assert exactly
// is its own use: hugetlb_bytes_mapped() (this process's HugetlbPages in
// /proc/self/status) and allocated_bytes(fd) (the file's st_blocks, which
// hugetlbfs and shmem keep as pages are added and punched).
//
// Thread safety: one per test, on the test's main thread.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "base/units.h"
#include "os/kernel_info.h"

namespace pmm::mem::testing {

inline constexpr const char* kHugePageLockPath = "/tmp/pmm-test-hugepages.lock";

// Exclusive use of the machine's huge pages among pmm tests.
class HugePageLock {
 public:
  HugePageLock() : fd_(::open(kHugePageLockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) {
    if (fd_ >= 0) {
      while (::flock(fd_, LOCK_EX) != 0) {
      }
    }
  }
  ~HugePageLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  HugePageLock(const HugePageLock&) = delete;
  HugePageLock& operator=(const HugePageLock&) = delete;

 private:
  int fd_;
};

// The lock, plus `pages` huge pages of `size` that a region can reserve.
class HugePages {
 public:
  HugePages(uint64_t size, uint64_t pages) : size_(size) {
    auto h = os::huge_page_counts(size);
    if (!h) {
      why_ = h.error().message;
      return;
    }
    if (h->available() >= pages) return;
    original_ = h->total;
    const uint64_t want = h->total + (pages - h->available());
    auto got = os::set_huge_page_count(size, want);
    if (!got) {
      why_ = got.error().message;
    } else if (*got < want) {
      why_ = fmt::format("the kernel found only {} of {} huge pages of {} (memory too fragmented)",
                         *got, want, format_size(size));
    }
    restore_ = true;
  }
  ~HugePages() {
    if (restore_) (void)os::set_huge_page_count(size_, original_);
  }
  HugePages(const HugePages&) = delete;
  HugePages& operator=(const HugePages&) = delete;

  // "" when the pages are there; otherwise the reason they are not.
  [[nodiscard]] const std::string& unavailable() const { return why_; }

 private:
  HugePageLock lock_;  // first member: taken before counting, released last
  uint64_t size_;
  uint64_t original_ = 0;
  bool restore_ = false;
  std::string why_;
};

// Bytes of huge pages mapped into this process (HugetlbPages in
// /proc/self/status, Linux 4.4+); UINT64_MAX when the line is missing.
inline uint64_t hugetlb_bytes_mapped() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "HugetlbPages:") {
      uint64_t kb = 0;
      in >> kb;
      return kb << 10;
    }
    std::getline(in, key);
  }
  return UINT64_MAX;
}

// Bytes the file behind `fd` holds in memory (st_blocks * 512).
inline uint64_t allocated_bytes(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace pmm::mem::testing
