// Ledger::pool_map_page: pages list every block of the pool once whatever
// the page size, the gaps between them are what the allocator calls free,
// buckets add up to the bytes used, the bounds hold, and a non-admin sees
// no other user's device or uid, nor physical addresses.
#include <gtest/gtest.h>

#include <algorithm>
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

// Every page after the cursor, as `pmmctl map` reads them: the entries of
// all pages (device indexes made into names: "" free, "?" hidden).
struct Collected {
  std::vector<MapExtent> entries;
  std::vector<std::string> device;  // per entry
  std::vector<MapBarrier> barriers;
  size_t pages = 0;
};
Collected collect(const Ledger& l, const Viewer& v, size_t pool, MapPageRequest r) {
  Collected c;
  for (;;) {
    MapPage p = l.pool_map_page(v, pool, r);
    ++c.pages;
    EXPECT_LE(p.entries.size(), r.max_entries);
    if (r.after != 0) {
      EXPECT_TRUE(p.barriers.empty()) << "barriers come with the first page only";
    }
    for (const MapBarrier& b : p.barriers) c.barriers.push_back(b);
    for (const MapExtent& e : p.entries) {
      c.entries.push_back(e);
      c.device.push_back(e.device == MapExtent::kHidden ? "?"
                         : e.device == MapExtent::kNone ? ""
                                                        : p.devices.at(e.device));
    }
    if (!p.more) return c;
    EXPECT_GT(p.next_after, r.after) << "the cursor advances";
    if (p.next_after <= r.after) return c;
    r.after = p.next_after;
  }
}

// The gaps between the (exact) entries sorted by offset: what is free.
struct Gaps {
  uint64_t count = 0, bytes = 0, largest = 0;
};
Gaps gaps(std::vector<MapExtent> blocks, uint64_t size) {
  std::sort(blocks.begin(), blocks.end(),
            [](const MapExtent& a, const MapExtent& b) { return a.offset < b.offset; });
  Gaps g;
  uint64_t at = 0;
  auto gap = [&](uint64_t from, uint64_t to) {
    if (to <= from) return;
    ++g.count;
    g.bytes += to - from;
    g.largest = std::max(g.largest, to - from);
  };
  for (const MapExtent& b : blocks) {
    EXPECT_GE(b.offset, at) << "blocks overlap";
    gap(at, b.offset);
    at = b.offset + b.size;
  }
  gap(at, size);
  return g;
}

std::vector<DeviceConfig> devices() {
  return {DeviceConfig{.name = "cam", .access = {.everyone = true}},
          DeviceConfig{.name = "gpu", .access = {.everyone = true}}};
}

TEST(CoreLedgerMap, ExactPagesListEveryBlockOnceAndTheGapsAreTheFreeExtents) {
  auto l = make_ledger({{.name = "general", .size = 16 * kMiB}, {.name = "other", .size = kMiB}},
                       devices());
  ASSERT_TRUE(l);
  ASSERT_TRUE(l->open_session(session(1, kAlice, "cam")));
  ASSERT_TRUE(l->open_session(session(2, kBob, "gpu")));
  const std::vector<std::string> general{"general"}, other{"other"};
  std::vector<BlockId> ids;
  for (int i = 0; i < 8; ++i) {
    auto b = l->allocate(i % 2 ? 2 : 1, general, (i + 1) * 256 * kKiB, 0, {});
    ASSERT_TRUE(b) << b.error().describe();
    ids.push_back(b->id);
    // Blocks of another pool between them: pages walk past those too.
    ASSERT_TRUE(l->allocate(1, other, 4 * kKiB, 0, {}));
  }
  // Holes: blocks 1, 4 and 5 go back, so the free space is in pieces.
  for (size_t i : {1, 4, 5}) ASSERT_TRUE(l->put(i % 2 ? 2 : 1, ids[i]));

  const alloc::Stats st = l->pool(0).stats().alloc;
  for (size_t limit : {1, 3, 100}) {
    Collected c = collect(*l, Viewer{.uid = 0, .all = true}, 0, {.limit = limit});
    ASSERT_EQ(c.entries.size(), 5u) << "limit " << limit;
    if (limit == 1) {
      EXPECT_GE(c.pages, 13u) << "13 live records, one per page";
    }
    Gaps g = gaps(c.entries, 16 * kMiB);
    EXPECT_EQ(g.bytes, st.bytes_free);
    EXPECT_EQ(g.count, st.free_extents);
    EXPECT_EQ(g.largest, st.largest_free);
    for (size_t i = 0; i < c.entries.size(); ++i) {
      EXPECT_EQ(c.entries[i].used, c.entries[i].size);
      // An admin sees whose each block is.
      EXPECT_EQ(c.device[i], c.entries[i].uid == kAlice ? "cam" : "gpu");
    }
  }
  // A page never holds more entries than asked; the rest follow.
  Collected few = collect(*l, Viewer{.uid = 0, .all = true}, 0, {.max_entries = 2});
  EXPECT_EQ(few.entries.size(), 5u);
  EXPECT_GE(few.pages, 3u);
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

  for (size_t limit : {1, 100}) {
    Collected c = collect(*l, Viewer{.uid = kAlice, .all = false}, 0, {.limit = limit});
    ASSERT_EQ(c.entries.size(), 3u);
    int named = 0, hidden = 0;
    for (size_t i = 0; i < c.entries.size(); ++i) {
      if (c.device[i] == "?") {
        ++hidden;
        EXPECT_EQ(c.entries[i].uid, 0u) << "a hidden block shows no uid";
        EXPECT_EQ(c.entries[i].size, 2 * kMiB);
      } else {
        ++named;
        EXPECT_NE(c.device[i], "");
      }
    }
    EXPECT_EQ(named, 2) << "her block and the one she imported";
    EXPECT_EQ(hidden, 1);
  }
}

TEST(CoreLedgerMap, BucketsAddUpToTheBytesUsedWithinTheBounds) {
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
  for (size_t i = 0; i < ids.size(); ++i) {
    if (rng() % 3 == 0) {
      ASSERT_TRUE(l->put(1, ids[i]));
    }
  }
  const uint64_t bucket = (64 * kMiB + 99) / 100;
  Collected c = collect(*l, Viewer{.uid = 0, .all = true}, 0,
                        {.limit = 1000, .max_entries = 100, .bucket_size = bucket});
  EXPECT_GE(c.pages, 5u) << "some 5,300 live blocks, 1,000 records a page";
  uint64_t used = 0;
  for (const MapExtent& e : c.entries) {
    EXPECT_EQ(e.offset % bucket, 0u);
    EXPECT_LE(e.used, e.size);
    used += e.used;
  }
  EXPECT_EQ(used, l->pool(0).stats().alloc.bytes_used);
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

  const MapPage hidden = (*l)->pool_map_page(Viewer{.uid = kAlice}, 0, {});
  ASSERT_EQ(hidden.barriers.size(), 2u);
  EXPECT_EQ(hidden.barriers[0].offset, 3 * k64K);
  EXPECT_EQ(hidden.barriers[1].offset, 4 * k64K);
  for (const MapBarrier& b : hidden.barriers) EXPECT_EQ(b.phys, 0u);

  const MapPage shown = (*l)->pool_map_page(Viewer{.uid = 0, .all = true, .phys = true}, 0, {});
  ASSERT_EQ(shown.barriers.size(), 2u);
  EXPECT_NE(shown.barriers[0].phys, 0u);

  const MapPage few = (*l)->pool_map_page(Viewer{.uid = 0, .all = true}, 0, {.max_barriers = 1});
  EXPECT_EQ(few.barriers.size(), 1u);
  EXPECT_EQ(few.barriers_omitted, 1u);
}

}  // namespace
}  // namespace pmm::core
