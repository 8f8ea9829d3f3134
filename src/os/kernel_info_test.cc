// Tests of os/kernel_info.h against the files it reads, read here again.
#include "os/kernel_info.h"

#include <gtest/gtest.h>

#include <linux/capability.h>

#include <fstream>

#include "base/units.h"
#include "os/capability.h"
#include "os/numa.h"

namespace pmm::os {
namespace {

uint64_t read_file(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  in >> v;
  return v;
}

TEST(OsKernelInfo, ReportsWhatTheKernelOffers) {
  auto k = kernel_info();
  ASSERT_TRUE(k) << k.error().describe();
  EXPECT_EQ(k->page_size, 4096u);
  EXPECT_EQ(k->sysv.shmmax, read_file("/proc/sys/kernel/shmmax"));
  EXPECT_EQ(k->sysv.shmall_pages, read_file("/proc/sys/kernel/shmall"));
  EXPECT_EQ(k->sysv.shmmni, read_file("/proc/sys/kernel/shmmni"));
  EXPECT_EQ(k->numa_nodes, online_numa_nodes().value());
  EXPECT_EQ(k->pagemap_physical, has_capability(CAP_SYS_ADMIN));
  for (size_t i = 1; i < k->huge_pages.size(); ++i)
    EXPECT_LT(k->huge_pages[i - 1].size, k->huge_pages[i].size);
  for (const auto& each : k->huge_pages) {
    EXPECT_EQ(each.dir, fmt::format("/sys/kernel/mm/hugepages/hugepages-{}kB", each.size >> 10));
    // The counts are five files read one after another while other
    // programs take and return pages: check a snapshot that read the same
    // twice in a row.
    HugePageSize h = each;
    for (int tries = 0; tries < 100; ++tries) {
      const HugePageSize a = huge_page_counts(each.size).value();
      h = huge_page_counts(each.size).value();
      if (a.total == h.total && a.free == h.free && a.reserved == h.reserved &&
          a.surplus == h.surplus)
        break;
    }
    EXPECT_LE(h.free, h.total + h.surplus);
    EXPECT_LE(h.reserved, h.free);
  }
}

TEST(OsKernelInfo, HugePageCountsMatchSysfs) {
  const std::string dir = "/sys/kernel/mm/hugepages/hugepages-2048kB/";
  // Another test or program may change nr_hugepages meanwhile: compare with
  // a value read before and after that agree.
  for (int tries = 0; tries < 100; ++tries) {
    const uint64_t before = read_file(dir + "nr_hugepages");
    auto h = huge_page_counts(2 << 20);
    if (!h && h.error().code == Errc::kUnsupported) GTEST_SKIP() << h.error().message;
    ASSERT_TRUE(h) << h.error().describe();
    if (read_file(dir + "nr_hugepages") != before) continue;
    EXPECT_EQ(h->total, before);
    return;
  }
  FAIL() << "nr_hugepages changed during each of 100 reads";
}

TEST(OsKernelInfo, UnknownHugePageSizeListsTheOffered) {
  auto h = huge_page_counts(3 << 20);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, Errc::kUnsupported);
  std::string offered;
  const auto sizes = huge_page_sizes().value();
  for (const auto& x : sizes) offered += (offered.empty() ? "" : ", ") + format_size(x.size);
  EXPECT_EQ(h.error().message,
            "huge page size 3 MiB is not offered by this kernel "
            "(/sys/kernel/mm/hugepages/hugepages-3072kB); it offers " +
                offered);
}

TEST(OsKernelInfo, ReadNumberFileNamesThePath) {
  auto r = read_number_file("/nonexistent/pmm");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "open(\"/nonexistent/pmm\", O_RDONLY) failed: No such file or directory (errno 2)");
  auto t = read_number_file("/proc/self/comm");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("/proc/self/comm holds"), std::string::npos);
}

}  // namespace
}  // namespace pmm::os
