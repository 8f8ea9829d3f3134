// Tests of core::Pool when clients take its memory away: holes punched in
// the pool's file (fallocate(FALLOC_FL_PUNCH_HOLE), what any client holding
// the pool fd can do), on real huge pages and real shmem. The pool must
// never fault on it, refill or refuse with a reason, never report a stale
// physical address, and say what happened in its health.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <cstring>

#include "core/pool.h"
#include "mem/testing.h"
#include "os/capability.h"
#include "os/kernel_info.h"

namespace pmm::core {
namespace {

constexpr uint64_t k2M = 2ull << 20;

std::unique_ptr<Pool> make_pool(const std::string& name, mem::RegionOptions region) {
  auto p = Pool::create(PoolOptions{.name = name, .region = region});
  EXPECT_TRUE(p) << p.error().describe();
  return p ? std::move(*p) : nullptr;
}

void punch(const Pool& pool, uint64_t offset, uint64_t len) {
  ASSERT_EQ(::fallocate(pool.region().fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        static_cast<off_t>(offset), static_cast<off_t>(len)),
            0)
      << std::strerror(errno);
}

// Takes every 2 MiB huge page a new mapping could still get, and holds them.
std::unique_ptr<mem::Region> take_all_free_huge_pages() {
  const uint64_t n = os::huge_page_counts(k2M).value().available();
  if (n == 0) return nullptr;
  auto r = mem::make_region("thief", {.type = mem::MemoryType::kHugetlb, .size = n * k2M});
  EXPECT_TRUE(r) << r.error().describe();
  return r ? std::move(*r) : nullptr;
}

TEST(CorePoolPunched, NoHugePageToPutBackRefusesTheBlockAndTheDaemonLives) {
  mem::testing::HugePages hp(k2M, 2);
  ASSERT_EQ(hp.unavailable(), "");
  auto pool = make_pool("dma", {.type = mem::MemoryType::kHugetlb, .size = 2 * k2M});
  ASSERT_TRUE(pool);
  std::memset(pool->region().data(), 0x5a, 2 * k2M);
  EXPECT_EQ(describe_health(*pool), "ok");
  punch(*pool, k2M, k2M);
  EXPECT_EQ(pool->health().punched_bytes, k2M);
  EXPECT_EQ(describe_health(*pool), "degraded: 1 huge page punched");
  auto thief = take_all_free_huge_pages();  // the punched page included

  auto first = pool->allocate({.size = k2M, .zero = true});  // offset 0: still there
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_EQ(first->offset, 0u);
  EXPECT_EQ(pool->region().data()[k2M - 1], std::byte{0});
  // The punched page: a zeroed block, then a plain one (a resident pool
  // faults every block in before handing it out).
  for (bool zero : {true, false}) {
    auto b = pool->allocate({.size = k2M, .zero = zero});
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().code, Errc::kNoMemory);
    EXPECT_NE(b.error().message.find("pool dma: its memory at offsets [0x200000, 0x400000) "
                                     "cannot be faulted in"),
              std::string::npos)
        << b.error().message;
    EXPECT_NE(b.error().message.find("would raise SIGBUS"), std::string::npos) << b.error().message;
    EXPECT_NE(b.error().message.find("degraded: 1 huge page punched"), std::string::npos)
        << b.error().message;
  }
  EXPECT_EQ(pool->stats().alloc.live_blocks, 1u);  // the refused blocks went back
  const auto notices = pool->take_notices();
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(notices[0].rfind("pool dma: refused a block of 2 MiB at offset 0x200000 (1 refused "
                             "so far): ",
                             0),
            0u)
      << notices[0];
  EXPECT_EQ(describe_health(*pool), "degraded: 1 huge page punched; 2 allocations refused for it");

  // Once a page is free again, the block is refilled, zeroed and handed out.
  thief.reset();
  auto b = pool->allocate({.size = k2M, .zero = true});
  ASSERT_TRUE(b) << b.error().describe();
  EXPECT_EQ(b->offset, k2M);
  EXPECT_EQ(pool->region().data()[k2M], std::byte{0});
  EXPECT_EQ(pool->health().punched_bytes, 0u);
  EXPECT_EQ(pool->health().refilled_bytes, k2M);
  // The kernel may have put back the same page or another (with
  // overcommit it comes from the surplus): a move is reported, and the
  // block then carries no physical address rather than the old one.
  if (pool->health().moved_pages == 0) {
    EXPECT_EQ(describe_health(*pool), "ok: 2 allocations refused for it");
  } else {
    EXPECT_EQ(describe_health(*pool),
              "degraded: 1 page moved (physical addresses re-read); 2 allocations refused for it");
    EXPECT_EQ(b->phys, 0u);
  }
  EXPECT_TRUE(pool->check_invariants());
}

TEST(CorePoolPunched, APageThatCameBackElsewhereIsNeverReportedAtItsOldAddress) {
  if (!os::has_capability(CAP_SYS_ADMIN)) {
    GTEST_SKIP() << "pagemap PFNs need CAP_SYS_ADMIN";
  }
  mem::testing::HugePages hp(k2M, 3);
  ASSERT_EQ(hp.unavailable(), "");
  auto pool = make_pool("dma", {.type = mem::MemoryType::kHugetlb, .size = 2 * k2M});
  ASSERT_TRUE(pool);
  ASSERT_TRUE(pool->has_physical());
  const uint64_t recorded = pool->physical_address(k2M);
  punch(*pool, k2M, k2M);
  // Someone takes the page that was freed (the kernel hands out the most
  // recently freed page first), so the refill gets another one.
  auto r = mem::make_region("thief", {.type = mem::MemoryType::kHugetlb, .size = k2M});
  ASSERT_TRUE(r) << r.error().describe();

  auto first = pool->allocate({.size = k2M, .contiguous = true});
  ASSERT_TRUE(first) << first.error().describe();
  ASSERT_EQ(first->offset, 0u);
  auto moved = pool->allocate({.size = k2M, .contiguous = true, .zero = true});
  if (moved) {
    // The kernel gave the same page back after all: then the address is
    // true, and that is what must be reported.
    EXPECT_EQ(moved->phys, recorded);
    GTEST_SKIP() << "the refill got the same physical page; nothing moved";
  }
  EXPECT_EQ(moved.error().code, Errc::kNoMemory);
  EXPECT_NE(moved.error().message.find("a physically contiguous block at offset 0x200000 cannot "
                                       "be promised: its page at offset 0x200000 is now at "
                                       "physical "),
            std::string::npos)
      << moved.error().message;
  EXPECT_NE(moved.error().message.find(fmt::format("not at {:#x} as recorded", recorded)),
            std::string::npos)
      << moved.error().message;
  // A block that does not ask for contiguity is handed out, without the
  // stale address.
  auto plain = pool->allocate({.size = k2M, .zero = true});
  ASSERT_TRUE(plain) << plain.error().describe();
  EXPECT_EQ(plain->offset, k2M);
  EXPECT_EQ(plain->phys, 0u);
  EXPECT_EQ(pool->region().data()[k2M + 17], std::byte{0});
  EXPECT_EQ(describe_health(*pool),
            "degraded: 1 page moved (physical addresses re-read); 1 allocation refused for it");
}

TEST(CorePoolPunched, ShmemPoolsRefillPunchedPages) {
  // A populated shmem pool is resident: a punched page is counted, then
  // faulted back in for the next block over it.
  auto pool = make_pool("general", {.size = 1 << 20, .populate = true});
  ASSERT_TRUE(pool);
  std::memset(pool->region().data(), 0x5a, 1 << 20);
  punch(*pool, 64 << 10, 128 << 10);
  EXPECT_EQ(pool->health().punched_bytes, 128u << 10);
  EXPECT_EQ(describe_health(*pool), "degraded: 32 pages punched");
  auto b = pool->allocate({.size = 256 << 10, .alignment = 4096, .zero = true});
  ASSERT_TRUE(b) << b.error().describe();
  for (uint64_t i = 0; i < b->size; i += 4096)
    ASSERT_EQ(pool->region().data()[b->offset + i], std::byte{0});
  EXPECT_EQ(describe_health(*pool), "ok");
  EXPECT_EQ(pool->health().refilled_bytes, 128u << 10);

  // A shmem pool of pages on demand: punching frees pages that were never
  // promised; zeroing re-faults them and nothing is degraded.
  auto lazy = make_pool("lazy", {.size = 1 << 20});
  ASSERT_TRUE(lazy);
  std::memset(lazy->region().data(), 0x5a, 1 << 20);
  punch(*lazy, 0, 1 << 20);
  auto z = lazy->allocate({.size = 1 << 20, .alignment = 4096, .zero = true});
  ASSERT_TRUE(z) << z.error().describe();
  EXPECT_EQ(lazy->region().data()[(1 << 20) - 1], std::byte{0});
  EXPECT_EQ(describe_health(*lazy), "ok");
}

}  // namespace
}  // namespace pmm::core
