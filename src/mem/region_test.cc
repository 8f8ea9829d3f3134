// Tests of what all memory types share: type names, size checks, merging
// pagemap addresses into physical runs.
#include "mem/region.h"

#include <gtest/gtest.h>

#include <vector>

#include "mem/physical_runs.h"

namespace pmm::mem {
namespace {

constexpr uint64_t k2M = 2ull << 20;

TEST(MemRegion, TypeNamesRoundTripAndUnknownOnesAreListed) {
  for (MemoryType t : {MemoryType::kShmem, MemoryType::kHugetlb, MemoryType::kSysv})
    EXPECT_EQ(parse_memory_type(memory_type_name(t)).value(), t);
  auto bad = parse_memory_type("dma");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message,
            "memory type \"dma\" is unknown; use \"shmem\", \"hugetlb\" or \"sysv\"");
}

TEST(MemRegion, SizeZeroAndEmptyNameAreRefused) {
  for (MemoryType t : {MemoryType::kShmem, MemoryType::kHugetlb, MemoryType::kSysv}) {
    auto r = make_region("zero", RegionOptions{.type = t, .size = 0});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_NE(r.error().message.find("pool zero: size 0; a region needs at least one page"),
              std::string::npos)
        << r.error().message;
  }
  auto n = make_region("", RegionOptions{.size = 4096});
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().message, "a region needs a name without NUL characters");
}

TEST(MemPhysicalRuns, AdjacentPagesMergeAndGapsSplit) {
  const std::vector<uint64_t> phys = {0x40000000, 0x40200000, 0x40400000,  // one run
                                      0x10000000,                          // alone
                                      0x80000000, 0x80200000};             // another
  auto runs = merge_physical_runs(phys, k2M);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].offset, 0u);
  EXPECT_EQ(runs[0].length, 3 * k2M);
  EXPECT_EQ(runs[0].phys, 0x40000000u);
  EXPECT_EQ(runs[1].offset, 3 * k2M);
  EXPECT_EQ(runs[1].length, k2M);
  EXPECT_EQ(runs[1].phys, 0x10000000u);
  EXPECT_EQ(runs[2].offset, 4 * k2M);
  EXPECT_EQ(runs[2].length, 2 * k2M);
}

TEST(MemPhysicalRuns, DescendingNeighboursDoNotMerge) {
  // Physically adjacent but in the wrong order: offset order != address order.
  const std::vector<uint64_t> phys = {0x40200000, 0x40000000};
  EXPECT_EQ(merge_physical_runs(phys, k2M).size(), 2u);
}

TEST(MemPhysicalRuns, AnyUnknownAddressMeansNoRuns) {
  const std::vector<uint64_t> phys = {0x40000000, 0, 0x40400000};
  EXPECT_TRUE(merge_physical_runs(phys, k2M).empty());
  EXPECT_TRUE(merge_physical_runs({}, k2M).empty());
}

}  // namespace
}  // namespace pmm::mem
