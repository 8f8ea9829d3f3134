// Integration: a real pmmd (run as root, so it reads physical addresses)
// with a hugetlb pool whose huge pages the kernel placed where it liked.
// Before, every block had to fit inside one physically contiguous run, so
// a pool of scattered huge pages refused anything larger than its largest
// run ("LARGEST FREE 2 MiB"). Now a block without PMM_ALLOC_CONTIGUOUS
// spans runs (the whole pool is one block, `pmmctl pools` shows the whole
// pool free), and a PMM_ALLOC_CONTIGUOUS block is still one physical run,
// checked against this process's own pagemap.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <string>

#include "daemon_process.h"
#include "mem/testing.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

constexpr uint64_t k2M = 2ull << 20;
constexpr uint64_t kPages = 8;

// The physical address of the byte at `p` in this (root) process, which
// reads it first so that the page is mapped here.
uint64_t pagemap_phys(const void* p) {
  (void)*static_cast<const volatile char*>(p);
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  uint64_t raw = 0;
  const auto off = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / 4096 * 8);
  const bool ok = fd >= 0 && ::pread(fd, &raw, 8, off) == 8;
  if (fd >= 0) ::close(fd);
  return ok && (raw >> 63) != 0
             ? (raw & ((1ull << 55) - 1)) * 4096 + reinterpret_cast<uintptr_t>(p) % 4096
             : 0;
}

TEST(PhysicalRuns, OnlyContiguousBlocksStayInsideOneRun) {
  if (::prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) != 1 || ::geteuid() != 0) {
    GTEST_SKIP() << "pmmd reads physical addresses only as root with CAP_SYS_ADMIN";
  }
  mem::testing::HugePages hp(k2M, kPages);
  ASSERT_EQ(hp.unavailable(), "");
  DaemonProcess d(R"(
[pools.dma]
type = "hugetlb"
size = "16MiB"
)");
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "camera", &c), PMM_OK) << pmm_last_error();

  // The whole pool as one ordinary block, however its pages lie.
  pmm_block* all = nullptr;
  ASSERT_EQ(pmm_alloc(c, "dma", kPages * k2M, 0, 0, &all), PMM_OK) << pmm_last_error();
  const auto* base = static_cast<const char*>(pmm_block_ptr(all));
  EXPECT_EQ(pmm_block_phys(all), pagemap_phys(base));
  // The runs as this process sees them, and the longest.
  uint64_t runs = 1, run = 1, longest = 1;
  for (uint64_t i = 1; i < kPages; ++i) {
    const bool adjacent = pagemap_phys(base + i * k2M) == pagemap_phys(base + (i - 1) * k2M) + k2M;
    runs += adjacent ? 0 : 1;
    run = adjacent ? run + 1 : 1;
    longest = std::max(longest, run);
  }
  std::printf("%llu huge pages in %llu physical runs, the longest %llu pages\n",
              static_cast<unsigned long long>(kPages), static_cast<unsigned long long>(runs),
              static_cast<unsigned long long>(longest));
  ASSERT_EQ(pmm_block_put(all), PMM_OK);
  const std::string pools = run_command({PMM_PMMCTL_PATH, "--socket", d.socket(), "pools"}).out;
  EXPECT_NE(pools.find("16 MiB"), std::string::npos) << pools;  // largest free: all of it

  // A contiguous block of the longest run fits, in one run; one page more
  // does not, with a reason.
  pmm_block* one = nullptr;
  ASSERT_EQ(pmm_alloc(c, "dma", longest * k2M, 0, PMM_ALLOC_CONTIGUOUS, &one), PMM_OK)
      << pmm_last_error();
  const auto* p = static_cast<const char*>(pmm_block_ptr(one));
  EXPECT_EQ(pmm_block_phys(one), pagemap_phys(p));
  for (uint64_t i = 1; i < longest; ++i)
    EXPECT_EQ(pagemap_phys(p + i * k2M), pmm_block_phys(one) + i * k2M) << "page " << i;
  ASSERT_EQ(pmm_block_put(one), PMM_OK);
  if (longest < kPages) {
    pmm_block* too_big = nullptr;
    EXPECT_EQ(pmm_alloc(c, "dma", (longest + 1) * k2M, 0, PMM_ALLOC_CONTIGUOUS, &too_big),
              PMM_E_NO_MEMORY);
    EXPECT_NE(std::string(pmm_last_error()).find("larger than the largest physically contiguous"),
              std::string::npos)
        << pmm_last_error();
    // The same size without PMM_ALLOC_CONTIGUOUS: granted, across runs.
    ASSERT_EQ(pmm_alloc(c, "dma", (longest + 1) * k2M, 0, 0, &too_big), PMM_OK) << pmm_last_error();
    ASSERT_EQ(pmm_block_put(too_big), PMM_OK);
  }
  pmm_disconnect(c);
  EXPECT_EQ(d.stop(), 0) << d.log();
}

}  // namespace
}  // namespace pmm::testing
