// Ledger::pool_map: the extents tile the pool, the gaps are what the
// allocator calls free, the bound holds however many blocks there are, and
// a non-admin sees no other user's device or uid, nor physical addresses.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/ledger_testing.h"

namespace pmm::core {
namespace {

using testing::kKiB;
using testing::kMiB;
using testing::make_ledger;

constexpr uint32_t kAlice = 1000;
constexpr uint32_t kBob = 1001;

SessionInfo session(SessionId id, uint32_t uid, std::string device) {
  return SessionInfo{.id = id, .pid = 100, .uid = uid, .gid = uid, .device = std::move(device)};
}

// Extents in order, non-empty, covering [0, size) exactly; used within size.
void expect_tiled(const PoolMap& m) {
  uint64_t at = 0, used = 0;
  for (const MapExtent& e : m.extents) {
    ASSERT_EQ(e.offset, at);
    ASSERT_GT(e.size, 0u);
    ASSERT_LE(e.used, e.size);
    at += e.size;
    used += e.used;
  }
  EXPECT_EQ(at, m.size);
  EXPECT_EQ(used, m.bytes_used);
  EXPECT_EQ(m.bytes_used + m.bytes_free, m.size);
}

std::vector<DeviceConfig> devices() {
  return {DeviceConfig{.name = "cam", .pools = {"general"}, .access = {.everyone = true}},
          DeviceConfig{.name = "gpu", .pools = {"general"}, .access = {.everyone = true}}};
}

TEST(CoreLedgerMap, ExactMapMatchesTheAllocatorsFreeFigures) {
  auto l = make_ledger({{.name = "general", .size = 16 * kMiB}}, devices());
  ASSERT_TRUE(l);
  ASSERT_TRUE(l->open_session(session(1, kAlice, "cam")));
  ASSERT_TRUE(l->open_session(session(2, kBob, "gpu")));
  const std::vector<std::string> general{"general"};
  std::vector<BlockId> ids;
  for (int i = 0; i < 8; ++i) {
    auto b = l->allocate(i % 2 ? 2 : 1, general, (i + 1) * 256 * kKiB, 0, {});
    ASSERT_TRUE(b) << b.error().describe();
    ids.push_back(b->id);
  }
  // Holes: blocks 1, 4 and 5 go back, so the free space is in pieces.
  for (size_t i : {1, 4, 5}) ASSERT_TRUE(l->put(i % 2 ? 2 : 1, ids[i]));

  const PoolMap m = l->pool_map(Viewer{.uid = 0, .all = true}, 0, MapLimits{});
  expect_tiled(m);
  const alloc::Stats st = l->pool(0).stats().alloc;
  EXPECT_EQ(m.bucket_size, 0u);
  EXPECT_EQ(m.blocks, 5u);
  EXPECT_EQ(m.bytes_free, st.bytes_free);
  EXPECT_EQ(m.largest_free, st.largest_free);
  EXPECT_EQ(m.free_extents, st.free_extents);
  EXPECT_EQ(m.largest_free_in_run, m.largest_free);  // no physical runs
  EXPECT_EQ(m.extents.size(), m.blocks + m.free_extents);
  ASSERT_EQ(m.devices.size(), 2u);
  // The largest free extent is one of the gaps, where the map says.
  bool found = false;
  for (const MapExtent& e : m.extents)
    found = found || (e.used == 0 && e.offset == m.largest_free_offset && e.size == m.largest_free);
  EXPECT_TRUE(found);
  // An admin sees whose each block is.
  for (const MapExtent& e : m.extents) {
    if (e.used == 0) continue;
    ASSERT_LT(e.device, m.devices.size());
    EXPECT_EQ(e.uid == kAlice ? "cam" : "gpu", m.devices[e.device]);
  }
}

TEST(CoreLedgerMap, AUserSeesItsOwnBlocksNamedAndOthersAnonymous) {
  auto l = make_ledger({{.name = "general", .size = 16 * kMiB}}, devices());
  ASSERT_TRUE(l);
  ASSERT_TRUE(l->open_session(session(1, kAlice, "cam")));
  ASSERT_TRUE(l->open_session(session(2, kBob, "gpu")));
  const std::vector<std::string> general{"general"};
  ASSERT_TRUE(l->allocate(1, general, 1 * kMiB, 0, {}));
  ASSERT_TRUE(l->allocate(2, general, 2 * kMiB, 0, {}));
  // Bob's block that Alice imported is hers to see too.
  auto shared = l->allocate(2, general, 3 * kMiB, 0, {});
  ASSERT_TRUE(shared);
  testing::FakeClock clock;
  auto t = l->export_block(2, shared->id, 1, {}, clock.now());
  ASSERT_TRUE(t);
  ASSERT_TRUE(l->import_block(1, *t, clock.now()));

  const PoolMap m = l->pool_map(Viewer{.uid = kAlice, .all = false}, 0, MapLimits{});
  expect_tiled(m);
  EXPECT_EQ(m.blocks, 3u);
  // Her block's device, and the device Bob's shared block is charged to.
  EXPECT_EQ(m.devices.size(), 2u);
  int named = 0, hidden = 0;
  for (const MapExtent& e : m.extents) {
    if (e.used == 0) continue;
    if (e.device == MapExtent::kHidden) {
      ++hidden;
      EXPECT_EQ(e.uid, 0u) << "a hidden block shows no uid";
      EXPECT_EQ(e.size, 2 * kMiB);
    } else {
      ++named;
    }
  }
  EXPECT_EQ(named, 2);
  EXPECT_EQ(hidden, 1);
  for (const std::string& d : m.devices) EXPECT_NE(d, "") << "no empty device names";
}

TEST(CoreLedgerMap, ManyBlocksAreBucketedWithinTheBoundAndFiguresStayExact) {
  auto l = make_ledger({{.name = "general", .size = 64 * kMiB, .strategy = "tlsf"}}, devices(),
                       LedgerOptions{.quotas = {.blocks_per_session = 1 << 20,
                                                .blocks_per_uid = 1 << 20,
                                                .block_granule = 4096}});
  ASSERT_TRUE(l);
  ASSERT_TRUE(l->open_session(session(1, kAlice, "cam")));
  const std::vector<std::string> general{"general"};
  std::vector<BlockId> ids;
  for (int i = 0; i < 8000; ++i) {
    auto b = l->allocate(1, general, 4 * kKiB, 0, {});
    ASSERT_TRUE(b) << b.error().describe();
    ids.push_back(b->id);
  }
  std::mt19937 rng(7);
  for (size_t i = 0; i < ids.size(); ++i)
    if (rng() % 3 == 0) {
      ASSERT_TRUE(l->put(1, ids[i]));
    }

  const PoolMap m = l->pool_map(Viewer{.uid = 0, .all = true}, 0, MapLimits{.max_entries = 100});
  expect_tiled(m);
  EXPECT_LE(m.extents.size(), 100u);
  EXPECT_GT(m.bucket_size, 0u);
  const alloc::Stats st = l->pool(0).stats().alloc;
  EXPECT_EQ(m.bytes_free, st.bytes_free);
  EXPECT_EQ(m.free_extents, st.free_extents);
  EXPECT_EQ(m.largest_free, st.largest_free);
  EXPECT_EQ(m.blocks, st.live_blocks);
}

// A region on the heap with made-up physical runs (as in pool_test.cc).
class LaidOutRegion final : public mem::Region {
 public:
  LaidOutRegion(std::vector<uint64_t> run_pages, uint64_t page) : page_(page) {
    uint64_t off = 0, phys = 1ull << 32;
    for (uint64_t n : run_pages) {
      runs_.push_back({.offset = off, .length = n * page, .phys = phys});
      off += n * page;
      phys += (n + 1) * page;
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
  Result<std::optional<mem::MovedPage>> recheck_physical(uint64_t, uint64_t) const override {
    return std::nullopt;
  }

 private:
  uint64_t page_;
  std::vector<std::byte> bytes_;
  std::vector<mem::PhysicalRun> runs_;
};

TEST(CoreLedgerMap, RunEdgesAreBarriersWithAddressesOnlyForPhysViewers) {
  constexpr uint64_t k64K = 64 * kKiB;
  auto region = std::make_unique<LaidOutRegion>(std::vector<uint64_t>{3, 1, 4}, k64K);
  auto s = alloc::make_strategy("best_fit", region->size());
  ASSERT_TRUE(s);
  auto pool = Pool::create("laid", std::move(region), std::move(*s));
  ASSERT_TRUE(pool) << pool.error().describe();
  std::vector<LedgerPool> pools;
  pools.push_back(LedgerPool{.pool = std::move(*pool), .access = {.everyone = true}});
  auto l = Ledger::create(std::move(pools), {});
  ASSERT_TRUE(l) << l.error().describe();

  const PoolMap hidden = (*l)->pool_map(Viewer{.uid = kAlice}, 0, MapLimits{});
  ASSERT_EQ(hidden.barriers.size(), 2u);
  EXPECT_EQ(hidden.barriers[0].offset, 3 * k64K);
  EXPECT_EQ(hidden.barriers[1].offset, 4 * k64K);
  for (const MapBarrier& b : hidden.barriers) EXPECT_EQ(b.phys, 0u);
  // All free: one free extent of 8 pages, but 4 pages at most in one run.
  EXPECT_EQ(hidden.free_extents, 1u);
  EXPECT_EQ(hidden.largest_free, 8 * k64K);
  EXPECT_EQ(hidden.largest_free_in_run, 4 * k64K);

  const PoolMap shown = (*l)->pool_map(Viewer{.uid = 0, .all = true, .phys = true}, 0, {});
  ASSERT_EQ(shown.barriers.size(), 2u);
  EXPECT_NE(shown.barriers[0].phys, 0u);

  const PoolMap few = (*l)->pool_map(Viewer{.uid = 0, .all = true}, 0, {.max_barriers = 1});
  EXPECT_EQ(few.barriers.size(), 1u);
  EXPECT_EQ(few.barriers_omitted, 1u);
}

}  // namespace
}  // namespace pmm::core
