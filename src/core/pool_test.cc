// Tests of core::Pool on real regions of each memory type, plus a region
// with a chosen run layout for the barrier logic (the kernel does not hand
// out fragmented huge pages on demand).
#include "core/pool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "mem/testing.h"
#include "os/capability.h"
#include "os/sysv.h"
#include "os/test_child.h"
#include "os/unique_fd.h"

namespace pmm::core {
namespace {

constexpr uint64_t k2M = 2ull << 20;

std::unique_ptr<Pool> make_pool(const std::string& name, mem::RegionOptions region,
                                std::string strategy = "best_fit", bool zero = false) {
  auto p = Pool::create(PoolOptions{
      .name = name, .region = region, .strategy = std::move(strategy), .zero_on_alloc = zero});
  EXPECT_TRUE(p) << p.error().describe();
  return p ? std::move(*p) : nullptr;
}

uint64_t pagemap_phys(const void* p) {
  os::UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  uint64_t raw = 0;
  const auto off = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / 4096 * 8);
  if (!fd || ::pread(fd.get(), &raw, 8, off) != 8) return 0;
  return (raw >> 63) != 0
             ? (raw & ((1ull << 55) - 1)) * 4096 + reinterpret_cast<uintptr_t>(p) % 4096
             : 0;
}

// A region on the heap whose physical runs the test chooses. Stands in for
// a hugetlb region only where the layout matters (many small runs).
class LaidOutRegion final : public mem::Region {
 public:
  LaidOutRegion(std::vector<uint64_t> run_pages, uint64_t page) : page_(page) {
    uint64_t off = 0, phys = 1ull << 32;
    for (uint64_t n : run_pages) {
      runs_.push_back({.offset = off, .length = n * page, .phys = phys});
      off += n * page;
      phys += (n + 1) * page;  // a gap: the next run is not adjacent
    }
    bytes_.resize(off);
  }
  mem::MemoryType type() const override { return mem::MemoryType::kHugetlb; }
  uint64_t size() const override { return bytes_.size(); }
  uint64_t page_size() const override { return page_; }
  std::byte* data() const override { return const_cast<std::byte*>(bytes_.data()); }
  int fd() const override { return -1; }
  int shmid() const override { return -1; }
  std::span<const mem::PhysicalRun> runs() const override { return runs_; }
  bool resident() const override { return false; }
  // The runs are made up: there is no pagemap to disagree with them.
  Result<std::optional<mem::MovedPage>> recheck_physical(uint64_t, uint64_t) const override {
    return std::nullopt;
  }

 private:
  uint64_t page_;
  std::vector<std::byte> bytes_;
  std::vector<mem::PhysicalRun> runs_;
};

const mem::PhysicalRun* run_containing(const mem::Region& r, uint64_t off) {
  for (const auto& run : r.runs())
    if (off >= run.offset && off < run.offset + run.length) return &run;
  return nullptr;
}

// Random allocate/release, half of the requests `contiguous`: every
// contiguous block must lie inside one run, every block carries the physical
// address of its first byte. Returns how many other blocks spanned a run
// edge.
int churn_and_check_runs(Pool& pool, uint64_t max_size, int ops, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Block> live;
  int allocated = 0;
  int spanned = 0;
  for (int i = 0; i < ops; ++i) {
    if (!live.empty() && rng() % 3 == 0) {
      const size_t k = rng() % live.size();
      EXPECT_TRUE(pool.release(live[k].handle));
      live[k] = live.back();
      live.pop_back();
      continue;
    }
    const uint64_t size = 1 + rng() % max_size;
    const uint64_t align = 1ull << (rng() % 22);
    const bool contiguous = rng() % 2 == 0;
    auto b = pool.allocate({.size = size, .alignment = align, .contiguous = contiguous});
    if (!b) {
      EXPECT_EQ(b.error().code, Errc::kNoMemory) << b.error().describe();
      continue;
    }
    ++allocated;
    EXPECT_EQ(b->offset % align, 0u);
    const mem::PhysicalRun* run = run_containing(pool.region(), b->offset);
    EXPECT_NE(run, nullptr);
    if (run == nullptr) return spanned;
    const bool inside = b->offset + b->size <= run->offset + run->length;
    if (contiguous) {
      EXPECT_TRUE(inside) << "contiguous block [" << b->offset << ", +" << b->size
                          << ") straddles the run edge at " << run->offset + run->length;
    }
    spanned += inside ? 0 : 1;
    EXPECT_EQ(b->phys, run->phys + (b->offset - run->offset));
    live.push_back(*b);
  }
  EXPECT_GT(allocated, ops / 4);
  EXPECT_TRUE(pool.check_invariants());
  for (const Block& b : live) EXPECT_TRUE(pool.release(b.handle));
  EXPECT_EQ(pool.stats().alloc.bytes_used, 0u);
  return spanned;
}

TEST(CorePool, ShmemBlocksArePageAlignedZeroedOnRequestAndAccounted) {
  auto pool = make_pool("general", {.size = 4 << 20});
  ASSERT_TRUE(pool);
  EXPECT_FALSE(pool->has_physical());
  std::memset(pool->region().data(), 0xAB, pool->region().size());
  auto a = pool->allocate({.size = 100});
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->offset % 4096, 0u);
  EXPECT_EQ(a->size, 100u);
  EXPECT_EQ(a->phys, 0u);
  EXPECT_EQ(static_cast<unsigned char>(pool->region().data()[a->offset]), 0xABu);  // not zeroed
  auto b = pool->allocate({.size = 8192, .zero = true});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->offset % 4096, 0u);
  for (uint64_t i = 0; i < b->size; ++i)
    ASSERT_EQ(static_cast<unsigned char>(pool->region().data()[b->offset + i]), 0u) << i;
  auto c = pool->allocate({.size = 64, .alignment = 64});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset % 64, 0u);

  PoolStats st = pool->stats();
  EXPECT_EQ(st.alloc.bytes_used, 100u + 8192 + 64);
  EXPECT_EQ(st.alloc.live_blocks, 3u);
  EXPECT_EQ(st.allocations, 3u);
  EXPECT_EQ(st.bytes_zeroed, 8192u);
  EXPECT_EQ(st.physical_runs, 0u);
  ASSERT_TRUE(pool->check_invariants());
  ASSERT_TRUE(pool->release(b->handle));
  auto again = pool->release(b->handle);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kNotFound);
  EXPECT_EQ(again.error().message.rfind("pool general: ", 0), 0u) << again.error().message;
  EXPECT_EQ(pool->stats().peak_bytes_used, 100u + 8192 + 64);
}

TEST(CorePool, ZeroOnAllocPoolZeroesEveryBlock) {
  auto pool = make_pool("zeroed", {.size = 1 << 20}, "tlsf", /*zero=*/true);
  ASSERT_TRUE(pool);
  EXPECT_EQ(pool->strategy().name(), "tlsf");
  auto a = pool->allocate({.size = 4096});
  ASSERT_TRUE(a);
  std::memset(pool->region().data() + a->offset, 0x5A, 4096);
  ASSERT_TRUE(pool->release(a->handle));
  auto b = pool->allocate({.size = 4096});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->offset, a->offset);     // the same bytes come back...
  for (uint64_t i = 0; i < 4096; ++i)  // ...zeroed
    ASSERT_EQ(static_cast<unsigned char>(pool->region().data()[b->offset + i]), 0u);
}

TEST(CorePool, ContiguousNeedsPhysicalAddresses) {
  auto pool = make_pool("plain", {.size = 1 << 20});
  ASSERT_TRUE(pool);
  auto r = pool->allocate({.size = 4096, .contiguous = true});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kUnsupported);
  EXPECT_EQ(r.error().message,
            "pool plain: a physically contiguous block of 4 KiB cannot be promised: a shmem pool "
            "of normal pages has no physically contiguous runs; use a hugetlb pool (or sysv with "
            "huge_pages)");
  EXPECT_EQ(pool->stats().failed_allocations, 1u);
}

TEST(CorePool, CreationErrorsNameThePoolAndTheRule) {
  auto s = Pool::create(PoolOptions{.name = "p", .region = {.size = 1 << 20}, .strategy = "buddy"});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message,
            "pool p: unknown allocation strategy \"buddy\"; use best_fit or tlsf");
  auto n = Pool::create(PoolOptions{.name = "", .region = {.size = 1 << 20}});
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, Errc::kInvalidArgument);
  auto z = Pool::create(PoolOptions{.name = "z", .region = {.size = 0}});
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().message.rfind("shmem pool z: size 0", 0), 0u) << z.error().message;
}

TEST(CorePool, ContiguousBlocksStayInOneRunOthersSpanRuns) {
  // Runs of 3, 1, 4, 1, 2 and 5 pages of 2 MiB.
  auto region = std::make_unique<LaidOutRegion>(std::vector<uint64_t>{3, 1, 4, 1, 2, 5}, k2M);
  for (std::string strategy : {"best_fit", "tlsf"}) {
    auto copy = std::make_unique<LaidOutRegion>(std::vector<uint64_t>{3, 1, 4, 1, 2, 5}, k2M);
    auto s = alloc::make_strategy(strategy, copy->size());
    ASSERT_TRUE(s);
    auto pool = Pool::create("laid-out", std::move(copy), std::move(*s));
    ASSERT_TRUE(pool) << pool.error().describe();
    EXPECT_TRUE((*pool)->has_physical());
    EXPECT_EQ((*pool)->stats().physical_runs, 6u);
    EXPECT_EQ((*pool)->stats().largest_run, 5 * k2M);
    EXPECT_GT(churn_and_check_runs(**pool, 3 * k2M, 3000, 42), 0) << strategy;
    // A contiguous block bigger than the largest run: refused, saying why.
    auto big = (*pool)->allocate({.size = 5 * k2M + 1, .contiguous = true});
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error().code, Errc::kNoMemory);
    EXPECT_EQ(big.error().message,
              "pool laid-out: a contiguous block of 10485761 bytes is larger than the largest "
              "physically contiguous run (10485760 bytes, 10 MiB); a block without `contiguous` "
              "may span runs");
    // Without `contiguous`, the whole pool is one block across all six runs.
    auto all = (*pool)->allocate({.size = 16 * k2M});
    ASSERT_TRUE(all) << all.error().describe();
    EXPECT_EQ(all->offset, 0u);
    EXPECT_EQ(all->phys, 1ull << 32);  // the first byte's, in the first run
    ASSERT_TRUE((*pool)->release(all->handle));
    // Exactly the largest run: fits, in that run.
    auto whole = (*pool)->allocate({.size = 5 * k2M, .contiguous = true});
    ASSERT_TRUE(whole) << whole.error().describe();
    EXPECT_EQ(whole->offset, 11 * k2M);
  }
  // A strategy of another size is refused.
  auto s = alloc::make_strategy("best_fit", region->size() / 2);
  auto bad = Pool::create("mismatch", std::move(region), std::move(*s));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("they must match"), std::string::npos);
}

TEST(CorePool, HugetlbBlocksCarryTheirPhysicalAddressAndStayInOneRun) {
  if (!os::has_capability(CAP_SYS_ADMIN)) {
    GTEST_SKIP() << "pagemap PFNs need CAP_SYS_ADMIN";
  }
  mem::testing::HugePages hp(k2M, 16);
  ASSERT_EQ(hp.unavailable(), "");
  auto pool = make_pool("dma", {.type = mem::MemoryType::kHugetlb, .size = 16 * k2M});
  ASSERT_TRUE(pool);
  ASSERT_TRUE(pool->has_physical());
  // Whatever the kernel's page layout, the whole pool is one block when it
  // need not be contiguous (before, a block could not outgrow the largest
  // run: often one huge page).
  std::printf("%llu physical runs, the largest %llu bytes\n",
              static_cast<unsigned long long>(pool->stats().physical_runs),
              static_cast<unsigned long long>(pool->stats().largest_run));
  auto all = pool->allocate({.size = 16 * k2M});
  ASSERT_TRUE(all) << all.error().describe();
  EXPECT_EQ(all->phys, pagemap_phys(pool->region().data()));
  ASSERT_TRUE(pool->release(all->handle));
  auto b = pool->allocate({.size = 3 << 20, .contiguous = true});
  if (pool->stats().largest_run >= (3u << 20)) {
    ASSERT_TRUE(b) << b.error().describe();
    EXPECT_EQ(b->offset % k2M, 0u);  // the default alignment is the huge page size
    // The block's physical address, and that of its last byte, by the pagemap.
    EXPECT_EQ(b->phys, pagemap_phys(pool->region().data() + b->offset));
    EXPECT_EQ(b->phys + b->size - 1, pagemap_phys(pool->region().data() + b->offset + b->size - 1));
    ASSERT_TRUE(pool->release(b->handle));
  }
  const int spanned = churn_and_check_runs(*pool, k2M + k2M / 2, 2000, 7);
  if (pool->stats().physical_runs > 1) {
    EXPECT_GT(spanned, 0);
  }
}

TEST(CorePool, SysvBlockBytesSeenByAnotherProcessAtTheBlockOffset) {
  auto pool = make_pool("x11", {.type = mem::MemoryType::kSysv, .size = 8 << 20});
  ASSERT_TRUE(pool);
  ASSERT_TRUE(pool->allocate({.size = 1 << 20}));
  auto b = pool->allocate({.size = 640 * 480 * 4});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->offset, 1u << 20);
  for (uint64_t i = 0; i < b->size; i += 4096)
    pool->region().data()[b->offset + i] = std::byte(i >> 12);
  const int shmid = pool->region().shmid();
  const Block blk = *b;
  auto child = os::testing::run_in_child([shmid, blk] {
    auto at = os::shm_attach(shmid);
    if (!at) return at.error().describe();
    for (uint64_t i = 0; i < blk.size; i += 4096)
      if (at->data()[blk.offset + i] != std::byte(i >> 12))
        return fmt::format("byte at block offset {} differs", i);
    return std::string();
  });
  EXPECT_EQ(child, "");
}

TEST(CorePool, PoolThatCannotBeCreatedSaysWhichLimit) {
  mem::testing::HugePageLock lock;
  // Far beyond what is free, whatever another program does meanwhile.
  const uint64_t want = os::huge_page_counts(k2M).value().available() + 100000;
  auto p = Pool::create(PoolOptions{
      .name = "toobig", .region = {.type = mem::MemoryType::kHugetlb, .size = want * k2M}});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errc::kNoMemory);
  EXPECT_EQ(p.error().message.rfind(
                fmt::format("hugetlb pool toobig needs {} pages of 2 MiB; ", want), 0),
            0u)
      << p.error().message;
  auto numa =
      Pool::create(PoolOptions{.name = "far", .region = {.size = 1 << 20, .numa_node = 63}});
  ASSERT_FALSE(numa);
  EXPECT_NE(numa.error().message.find("shmem pool far: NUMA node 63 does not exist; the nodes "
                                      "online are "),
            std::string::npos)
      << numa.error().message;
}

}  // namespace
}  // namespace pmm::core
