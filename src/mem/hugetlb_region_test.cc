// Tests of the hugetlb memory type on real huge pages. Every test holds the
// machine's huge page lock (mem/testing.h) because ctest runs in parallel.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <unistd.h>

#include <cstring>

#include "mem/region.h"
#include "mem/testing.h"
#include "os/capability.h"
#include "os/kernel_info.h"
#include "os/memory.h"
#include "os/numa.h"
#include "os/test_child.h"
#include "os/unique_fd.h"

namespace pmm::mem {
namespace {

constexpr uint64_t k2M = 2ull << 20;
constexpr uint64_t k1G = 1ull << 30;

RegionOptions hugetlb(uint64_t size, uint64_t page = k2M) {
  return RegionOptions{.type = MemoryType::kHugetlb, .size = size, .huge_page_size = page};
}

// The physical address of the page at `p`, read from /proc/self/pagemap by
// hand here so the test does not trust the code it tests.
uint64_t pagemap_phys(const void* p) {
  os::UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  uint64_t raw = 0;
  const auto off = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / 4096 * 8);
  if (!fd || ::pread(fd.get(), &raw, 8, off) != 8) return 0;
  return (raw >> 63) != 0 ? (raw & ((1ull << 55) - 1)) * 4096 : 0;
}

TEST(MemHugetlb, SharedWithAnotherProcessAndFaultedInAtCreation) {
  testing::HugePages hp(k2M, 8);
  ASSERT_EQ(hp.unavailable(), "");
  const uint64_t mapped_before = testing::hugetlb_bytes_mapped();
  auto r = make_region("huge-share", hugetlb(8 * k2M - 1));
  ASSERT_TRUE(r) << r.error().describe();
  const Region& region = **r;
  EXPECT_EQ(region.type(), MemoryType::kHugetlb);
  EXPECT_EQ(region.size(), 8 * k2M);
  EXPECT_EQ(region.page_size(), k2M);
  // Faulted in at creation: the pages are in the file and mapped now, not
  // on first touch.
  EXPECT_EQ(testing::allocated_bytes(region.fd()), 8 * k2M);
  EXPECT_EQ(testing::hugetlb_bytes_mapped(), mapped_before + 8 * k2M);
  EXPECT_EQ(os::get_seals(region.fd()).value(), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);

  std::memcpy(region.data() + 3 * k2M + 5, "huge bytes", 10);
  const std::string path = fmt::format("/proc/{}/fd/{}", ::getpid(), region.fd());
  const uint64_t size = region.size();
  auto child = os::testing::run_in_child([&] {
    os::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) return "cannot open " + path;
    auto m = os::map_shared(fd.get(), size);
    if (!m) return m.error().describe();
    if (std::memcmp(m->data() + 3 * k2M + 5, "huge bytes", 10) != 0)
      return std::string("child read other bytes");
    std::memcpy(m->data() + size - 8, "child!", 6);
    return std::string();
  });
  ASSERT_EQ(child, "");
  EXPECT_EQ(std::memcmp(region.data() + size - 8, "child!", 6), 0);
  // Sharing did not take more pages.
  EXPECT_EQ(testing::allocated_bytes(region.fd()), 8 * k2M);
  r->reset();
  EXPECT_EQ(testing::hugetlb_bytes_mapped(), mapped_before);
}

TEST(MemHugetlb, PhysicalRunsAgreeWithPagemap) {
  if (!os::has_capability(CAP_SYS_ADMIN)) {
    GTEST_SKIP() << "pagemap PFNs need CAP_SYS_ADMIN";
  }
  testing::HugePages hp(k2M, 16);
  ASSERT_EQ(hp.unavailable(), "");
  auto r = make_region("huge-runs", hugetlb(16 * k2M));
  ASSERT_TRUE(r) << r.error().describe();
  const auto runs = (*r)->runs();
  ASSERT_FALSE(runs.empty());
  uint64_t expect_offset = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const PhysicalRun& run = runs[i];
    EXPECT_EQ(run.offset, expect_offset);
    EXPECT_GT(run.length, 0u);
    EXPECT_EQ(run.length % k2M, 0u);
    EXPECT_EQ(run.phys % k2M, 0u);  // a huge page is naturally aligned
    // Every page inside the run sits where the run says, by the pagemap
    // (both the first and the last 4 KiB of each huge page).
    for (uint64_t off = 0; off < run.length; off += k2M) {
      EXPECT_EQ(pagemap_phys((*r)->data() + run.offset + off), run.phys + off);
      EXPECT_EQ(pagemap_phys((*r)->data() + run.offset + off + k2M - 4096),
                run.phys + off + k2M - 4096);
    }
    // Runs are maximal: the next run does not continue this one physically.
    if (i + 1 < runs.size()) {
      EXPECT_NE(runs[i + 1].phys, run.phys + run.length);
    }
    expect_offset += run.length;
  }
  EXPECT_EQ(expect_offset, (*r)->size());
}

TEST(MemHugetlb, PhysicalAddressesUnknownWithoutCapSysAdmin) {
  testing::HugePages hp(k2M, 2);
  ASSERT_EQ(hp.unavailable(), "");
  auto child = os::testing::run_in_child([] {
    if (auto s = os::drop_capability(CAP_SYS_ADMIN); !s) return s.error().describe();
    auto r = make_region("huge-nocap", hugetlb(2 * k2M));
    if (!r) return r.error().describe();
    if (!(*r)->runs().empty()) return std::string("runs reported without CAP_SYS_ADMIN");
    return std::string();
  });
  EXPECT_EQ(child, "");
}

TEST(MemHugetlb, TooManyPagesFailsAtCreationNamingTheFreeCount) {
  testing::HugePageLock lock;
  // Far more than any machine here has, so another program taking or
  // returning pages meanwhile does not change the outcome (only the counts
  // the message quotes, which are therefore not compared).
  const uint64_t want = os::huge_page_counts(k2M).value().available() + 100000;
  const uint64_t mapped_before = testing::hugetlb_bytes_mapped();
  auto r = make_region("huge-big", hugetlb(want * k2M));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kNoMemory);
  const std::string& m = r.error().message;
  EXPECT_EQ(m.rfind(fmt::format("hugetlb pool huge-big needs {} pages of 2 MiB; ", want), 0), 0u)
      << m;
  EXPECT_NE(m.find(" free (free_hugepages "), std::string::npos) << m;
  EXPECT_NE(m.find("raise /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages (now "),
            std::string::npos)
      << m;
  // Nothing was taken by the attempt.
  EXPECT_EQ(testing::hugetlb_bytes_mapped(), mapped_before);
}

TEST(MemHugetlb, UnofferedOrOddPageSizesAreRefused) {
  auto odd = make_region("huge-odd", hugetlb(8 << 20, 3 << 20));
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().message,
            "hugetlb pool huge-odd: huge page size 3145728 is not a power of two; use 2 MiB or "
            "1 GiB");
  auto four = make_region("huge-4m", hugetlb(8 << 20, 4 << 20));
  ASSERT_FALSE(four);
  EXPECT_EQ(four.error().code, Errc::kUnsupported);
  EXPECT_EQ(four.error().message.rfind("hugetlb pool huge-4m: huge page size 4 MiB is not "
                                       "offered by this kernel "
                                       "(/sys/kernel/mm/hugepages/hugepages-4096kB); it offers ",
                                       0),
            0u)
      << four.error().message;
}

TEST(MemHugetlb, ANodeThatDoesNotExistIsReportedWhateverTheFreePages) {
  // No huge pages are reserved for this test: on a machine with none free
  // the node must still be the error, not the free count.
  const auto nodes = os::online_numa_nodes().value();
  RegionOptions o = hugetlb(100000 * k2M);
  o.numa_node = nodes.back() + 1;
  auto bad = make_region("huge-numa", o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message,
            fmt::format("hugetlb pool huge-numa: NUMA node {} does not exist; the nodes online "
                        "are {} (/sys/devices/system/node/online)",
                        nodes.back() + 1, os::format_node_list(nodes)));
}

TEST(MemHugetlb, BindsToANumaNode) {
  testing::HugePages hp(k2M, 2);
  ASSERT_EQ(hp.unavailable(), "");
  const auto nodes = os::online_numa_nodes().value();
  RegionOptions o = hugetlb(2 * k2M);
  o.numa_node = nodes.front();
  o.lock = true;
  auto r = make_region("huge-numa", o);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(os::node_of_address((*r)->data()).value(), nodes.front());
  EXPECT_EQ(os::node_of_address((*r)->data() + k2M).value(), nodes.front());
  o.numa_node = nodes.back() + 1;
  auto bad = make_region("huge-numa", o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            fmt::format("hugetlb pool huge-numa: NUMA node {} does not exist; the nodes online "
                        "are {} (/sys/devices/system/node/online)",
                        nodes.back() + 1, os::format_node_list(nodes)));
}

TEST(MemHugetlb, OneGigabytePages) {
  testing::HugePages hp(k1G, 1);
  if (!hp.unavailable().empty()) {
    GTEST_SKIP() << "1 GiB pages: " << hp.unavailable();
  }
  auto r = make_region("huge-1g", hugetlb(k1G, k1G));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ((*r)->page_size(), k1G);
  (*r)->data()[k1G - 1] = std::byte{1};
  if (os::has_capability(CAP_SYS_ADMIN)) {
    ASSERT_EQ((*r)->runs().size(), 1u);
    EXPECT_EQ((*r)->runs()[0].length, k1G);
    EXPECT_EQ((*r)->runs()[0].phys % k1G, 0u);
  }
}

}  // namespace
}  // namespace pmm::mem
