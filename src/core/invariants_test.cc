// Run-time invariant checks (base/invariants.h): a build with
// PMM_CHECK_INVARIANTS aborts at the operation that breaks the pool's or
// the ledger's books, naming it; the pacing keeps the cost bounded.
//
// The break is real, not simulated by calling the check: a strategy that
// starts lying about itself (as a buggy one would) sits under a real pool
// and a real ledger, and the next ordinary operation must die saying so.
#include <gtest/gtest.h>

#include "alloc/lying_strategy.h"
#include "base/invariants.h"
#include "core/ledger.h"
#include "core/pool.h"

namespace pmm::core {
namespace {

constexpr uint64_t kPoolSize = 4 << 20;

struct Rig {
  bool broken_check = false;
  bool lying_stats = false;
  std::unique_ptr<Pool> make_pool() {
    auto region = mem::make_region("inv", {.type = mem::MemoryType::kShmem, .size = kPoolSize});
    EXPECT_TRUE(region) << region.error().describe();
    auto real = alloc::make_strategy("best_fit", kPoolSize);
    EXPECT_TRUE(real);
    auto pool = Pool::create(
        "inv", std::move(*region),
        std::make_unique<alloc::LyingStrategy>(std::move(*real), &broken_check, &lying_stats));
    EXPECT_TRUE(pool) << pool.error().describe();
    return std::move(*pool);
  }
};

TEST(Invariants, CadenceChecksEveryOperationWhileSmallAndAmortisesWhenLarge) {
  InvariantCadence c;
  for (size_t n = 0; n <= InvariantCadence::kEveryOperation; ++n) EXPECT_TRUE(c.due(n));
  // 100k records: a check every 100000 / 64 + 1 = 1563 operations, so the
  // work per operation stays about 64 records' worth.
  const size_t n = 100'000;
  size_t checks = 0;
  const size_t ops = 1563 * 10;
  for (size_t i = 0; i < ops; ++i) checks += c.due(n) ? 1 : 0;
  EXPECT_EQ(checks, 10u);
}

TEST(InvariantsDeathTest, PoolAbortsAtTheOperationThatBrokeItsAllocator) {
  if (!kCheckInvariants) GTEST_SKIP() << "a build without PMM_CHECK_INVARIANTS (release)";
  Rig rig;
  auto pool = rig.make_pool();
  auto b = pool->allocate({.size = 4096});
  ASSERT_TRUE(b) << b.error().describe();
  rig.broken_check = true;
  EXPECT_DEATH((void)pool->release(b->handle),
               "invariant violated after Pool::release: .*pool inv: free extent at 4096 "
               "overlaps block at 0");
}

TEST(InvariantsDeathTest, LedgerAbortsWhenAPoolAndItsBooksDisagree) {
  if (!kCheckInvariants) GTEST_SKIP() << "a build without PMM_CHECK_INVARIANTS (release)";
  Rig rig;
  std::vector<LedgerPool> pools;
  pools.push_back(LedgerPool{.pool = rig.make_pool(), .access = {}});
  auto l = Ledger::create(std::move(pools), {});
  ASSERT_TRUE(l) << l.error().describe();
  ASSERT_TRUE((*l)->open_session({.id = 1, .pid = 1, .uid = 0, .gid = 0, .device = ""}));
  auto b = (*l)->allocate(1, {}, 4096, 0, {});
  ASSERT_TRUE(b) << b.error().describe();
  rig.lying_stats = true;
  EXPECT_DEATH((void)(*l)->get(1, b->id),
               "invariant violated after Ledger::get: .*pool inv allocator has 1 blocks / 4097 "
               "bytes, the ledger 1 / 4096");
}

TEST(Invariants, AHealthyLedgerPassesEveryCheckUnderLoad) {
  // Runs in every build; with PMM_CHECK_INVARIANTS each call below is
  // followed by a check, and any false alarm would abort the test.
  Rig rig;
  std::vector<LedgerPool> pools;
  pools.push_back(LedgerPool{.pool = rig.make_pool(), .access = {}});
  auto l = Ledger::create(std::move(pools), {});
  ASSERT_TRUE(l);
  ASSERT_TRUE((*l)->open_session({.id = 1, .pid = 1, .uid = 0, .gid = 0, .device = ""}));
  ASSERT_TRUE((*l)->open_session({.id = 2, .pid = 2, .uid = 0, .gid = 0, .device = ""}));
  const auto now = SteadyTime{} + std::chrono::hours(1);
  std::vector<BlockId> ids;
  for (int i = 0; i < 200; ++i) {
    auto b = (*l)->allocate(1, {}, 4096, 0, {});
    ASSERT_TRUE(b) << b.error().describe();
    ids.push_back(b->id);
    auto t = (*l)->export_block(1, b->id, 1, {}, now);
    ASSERT_TRUE(t);
    ASSERT_TRUE((*l)->import_block(2, *t, now));
  }
  EXPECT_FALSE((*l)->allocate(1, {}, kPoolSize, 0, {}));  // a refusal is checked too
  ASSERT_TRUE((*l)->close_session(1));
  for (BlockId id : ids) ASSERT_TRUE((*l)->put(2, id));
  EXPECT_TRUE((*l)->check_invariants());
  EXPECT_EQ((*l)->pool(0).stats().alloc.live_blocks, 0u);
}

}  // namespace
}  // namespace pmm::core
