// Ledger: the block table's storage (ledger_slab.cc) — ids that name a slot
// and an allocation count, slots reused lowest first, the table shrinking
// as blocks go, bounded non-admin listings, and blocks with many holders.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/ledger_testing.h"

namespace pmm::core {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::kKiB;
using testing::kMiB;
using testing::make_ledger;

const std::vector<std::string> kGeneral{"general"};
// docs/protocol.md: a block id's low 24 bits name its slot in the table.
constexpr uint64_t kSlotMask = (uint64_t{1} << 24) - 1;

SessionInfo user(SessionId id, uint32_t uid = 1000) {
  return SessionInfo{.id = id, .pid = static_cast<int32_t>(100 + id), .uid = uid, .gid = uid};
}

Quotas roomy() {
  return Quotas{.blocks_per_session = 1 << 20,
                .blocks_per_uid = 1 << 20,
                .exports_per_session = 1 << 20,
                .exports_per_uid = 1 << 20};
}

class LedgerSlab : public ::testing::Test {
 protected:
  void SetUp() override {
    l_ = make_ledger({{.name = "general", .size = 256 * kMiB}}, {},
                     LedgerOptions{.quotas = roomy()});
    ASSERT_NE(l_, nullptr);
    ASSERT_TRUE(l_->open_session(user(1)));
    ASSERT_TRUE(l_->open_session(user(2)));
  }
  void TearDown() override {
    if (l_) {
      auto inv = l_->check_invariants();
      EXPECT_TRUE(inv) << inv.error().message;
    }
  }
  BlockId alloc(SessionId s = 1) {
    auto b = l_->allocate(s, kGeneral, 4 * kKiB, 0, {});
    EXPECT_TRUE(b) << b.error().describe();
    return b ? b->id : 0;
  }
  // Every way a client names a block, each refused as naming no block.
  void expect_unknown(BlockId b) {
    SCOPED_TRACE(b);
    EXPECT_EQ(l_->block(b).error().code, Errc::kNotFound);
    EXPECT_EQ(l_->references_of(b, 1).error().code, Errc::kNotFound);
    EXPECT_EQ(l_->get(1, b).error().code, Errc::kNotFound);
    EXPECT_EQ(l_->put(1, b).error().code, Errc::kNotFound);
    EXPECT_EQ(l_->export_block(1, b, 1, 0ms, clock_.now()).error().code, Errc::kNotFound);
    EXPECT_EQ(l_->sysv_export(1, b).error().code, Errc::kNotFound);
    EXPECT_EQ(l_->sysv_unexport(1, b).error().code, Errc::kNotFound);
  }

  std::unique_ptr<Ledger> l_;
  FakeClock clock_;
};

TEST_F(LedgerSlab, StaleAndForgedIdsNameNoBlock) {
  const BlockId a = alloc();
  const BlockId b = alloc();
  EXPECT_NE(a & kSlotMask, b & kSlotMask);
  expect_unknown(0);
  expect_unknown(a + (uint64_t{1} << 24));       // a's slot, a later allocation count
  expect_unknown(a - (uint64_t{1} << 24));       // a's slot, count 0
  expect_unknown((a & ~kSlotMask) | kSlotMask);  // a slot beyond the table
  expect_unknown(UINT64_MAX);
  // a's slot reused by a later block: a's id is stale, the new one works.
  ASSERT_EQ(l_->put(1, a).value_or(99), 0u);
  expect_unknown(a);
  const BlockId c = alloc(2);
  EXPECT_EQ(c & kSlotMask, a & kSlotMask) << "the lowest free slot";
  EXPECT_GT(c, b) << "ids grow with every allocation";
  expect_unknown(a);
  EXPECT_EQ(l_->get(2, a).error().code, Errc::kNotFound);
  EXPECT_EQ(l_->get(2, c).value_or(0), 2u);
  EXPECT_EQ(l_->block(c)->id, c);
  EXPECT_EQ(l_->get(1, b).value_or(0), 2u);  // the neighbour is untouched
}

TEST_F(LedgerSlab, FreeSlotsAreReusedLowestFirstAndTheTableShrinks) {
  constexpr size_t kN = 20'000;
  std::vector<BlockId> ids(kN);
  for (auto& id : ids) id = alloc();
  Ledger::TableUse full = l_->table_use();
  EXPECT_EQ(full.live, kN);
  EXPECT_EQ(full.slots, kN);
  // Free slots 7000, 3000 and 5000 (in that order): they come back 3000,
  // 5000, 7000.
  for (size_t i : {7000, 3000, 5000}) ASSERT_TRUE(l_->put(1, ids[i]));
  EXPECT_EQ(l_->table_use().slots, kN) << "holes do not shrink the table";
  for (size_t i : {3000, 5000, 7000}) {
    const BlockId n = alloc();
    EXPECT_EQ(n & kSlotMask, ids[i] & kSlotMask);
    ids[i] = n;
  }
  EXPECT_EQ(l_->table_use().slots, kN);
  ASSERT_TRUE(l_->check_invariants());
  // Free all but the first block in random order: the table ends at it
  // once the rest are gone, its storage and the id order shrunk too.
  std::vector<BlockId> rest(ids.begin() + 1, ids.end());
  std::shuffle(rest.begin(), rest.end(), std::mt19937(3));
  for (size_t i = 0; i < rest.size(); ++i) {
    ASSERT_TRUE(l_->put(1, rest[i]));
    if (i % 4999 == 0) {
      ASSERT_TRUE(l_->check_invariants());
    }
  }
  Ledger::TableUse one = l_->table_use();
  EXPECT_EQ(one.live, 1u);
  EXPECT_EQ(one.slots, 1u);
  EXPECT_LT(one.capacity, full.capacity / 8);
  EXPECT_LT(one.order, 200u) << "freed ids leave the order once they outnumber the live";
  ASSERT_TRUE(l_->check_invariants());
  // A new block after the trim lands next to the survivor.
  EXPECT_EQ(alloc() & kSlotMask, 1u);
  ASSERT_TRUE(l_->close_session(1));
  EXPECT_EQ(l_->table_use().slots, 0u);
  EXPECT_EQ(l_->table_use().order, 0u);
}

TEST_F(LedgerSlab, ANonAdminPageIsBoundedAndTheCursorStillFindsItsOneBlock) {
  ASSERT_TRUE(l_->open_session(user(3, 2000)));
  constexpr size_t kN = 10'000;
  BlockId mine = 0;
  for (size_t i = 0; i < kN; ++i) {
    if (i == kN / 2) mine = alloc(3);
    alloc(1);
  }
  const Viewer other{.uid = 2000, .all = false, .phys = false};
  // A page from the start scans a bounded stretch and comes back empty,
  // with more and a cursor past what it scanned.
  auto first = l_->blocks(other, 0, 1);
  EXPECT_TRUE(first.items.empty());
  EXPECT_TRUE(first.more);
  EXPECT_GT(first.next_after, 0u);
  EXPECT_LT(first.next_after, mine);
  // Following the cursor, as pmmctl and libpmm do, finds it exactly once.
  std::vector<BlockId> seen;
  uint64_t after = 0;
  size_t pages = 0;
  for (;; ++pages) {
    ASSERT_LT(pages, kN) << "the listing never ended";
    auto p = l_->blocks(other, after, 1);
    for (const auto& v : p.items) seen.push_back(v.info.id);
    if (!p.more) break;
    ASSERT_GT(p.next_after, after);
    after = p.next_after;
  }
  EXPECT_EQ(seen, std::vector<BlockId>{mine});
  EXPECT_GT(pages, kN / 128) << "each page scanned a bounded stretch";
  // An admin's full page is still full.
  auto all = l_->blocks(Viewer{.uid = 0, .all = true}, 0, 64);
  EXPECT_EQ(all.items.size(), 64u);
  EXPECT_EQ(all.next_after, all.items.back().info.id);
}

// One block held by many sessions (several with SysV exports) and many
// export tokens: the side record holds them, and every order of letting go
// keeps the books straight until the last frees the block.
TEST(LedgerSlabShared, ManyHoldersAndExportsGoInEveryOrder) {
  constexpr SessionId kSessions = 12;
  constexpr int kExports = 6;
  for (unsigned seed = 0; seed < 12; ++seed) {
    SCOPED_TRACE(seed);
    auto l = make_ledger({{.name = "general", .size = 4 * kMiB},
                          {.name = "display", .size = 4 * kMiB, .type = mem::MemoryType::kSysv}},
                         {});
    ASSERT_NE(l, nullptr);
    FakeClock clock;
    for (SessionId s = 1; s <= kSessions; ++s)
      ASSERT_TRUE(l->open_session(user(s, 1000 + static_cast<uint32_t>(s % 3))));
    auto b = l->allocate(1, std::vector<std::string>{"display"}, 4 * kKiB, 0, {});
    ASSERT_TRUE(b);
    const BlockId id = b->id;
    // A neighbour with one holder, which nothing below may disturb.
    ASSERT_TRUE(l->allocate(1, kGeneral, 4 * kKiB, 0, {}));
    // What each step undoes.
    enum class Kind { kPut, kSysvUnexport, kUnexport, kClose };
    struct Step {
      Kind kind;
      SessionId session;
      Token token{};
    };
    std::vector<Step> steps;
    // Sessions 2.. import it (in a shuffled order, so the side record's
    // holders arrive out of session order).
    std::vector<SessionId> importers(kSessions - 1);
    std::iota(importers.begin(), importers.end(), SessionId{2});
    std::mt19937 rng(seed);
    std::shuffle(importers.begin(), importers.end(), rng);
    for (SessionId s : importers) {
      auto t = l->export_block(1, id, 1, 0ms, clock.now());
      ASSERT_TRUE(t);
      ASSERT_TRUE(l->import_block(s, *t, clock.now()));
      steps.push_back({s % 4 == 0 ? Kind::kClose : Kind::kPut, s});
      if (s % 3 == 0) {
        ASSERT_TRUE(l->sysv_export(s, id));
        if (s % 4 != 0) steps.push_back({Kind::kSysvUnexport, s});
      }
    }
    steps.push_back({Kind::kPut, 1});
    for (int e = 0; e < kExports; ++e) {
      auto t = l->export_block(1, id, 2, 0ms, clock.now());
      ASSERT_TRUE(t);
      steps.push_back({Kind::kUnexport, 1, *t});
    }
    ASSERT_TRUE(l->check_invariants());
    const uint64_t total = testing::references(*l, id);
    ASSERT_EQ(total, kSessions + kSessions / 3 + kExports);
    if (seed == 1) std::reverse(steps.begin(), steps.end());
    if (seed > 1) std::shuffle(steps.begin(), steps.end(), rng);
    for (size_t i = 0; i < steps.size(); ++i) {
      ASSERT_TRUE(l->block(id)) << "freed before its last holder let go, step " << i;
      const Step& st = steps[i];
      switch (st.kind) {
        case Kind::kPut:
          ASSERT_TRUE(l->put(st.session, id));
          break;
        case Kind::kSysvUnexport:
          ASSERT_TRUE(l->sysv_unexport(st.session, id));
          break;
        case Kind::kUnexport:
          ASSERT_TRUE(l->unexport(st.session, st.token));
          break;
        case Kind::kClose:
          ASSERT_TRUE(l->close_session(st.session));
          break;
      }
      auto inv = l->check_invariants();
      ASSERT_TRUE(inv) << "step " << i << ": " << inv.error().message;
    }
    EXPECT_EQ(l->block(id).error().code, Errc::kNotFound);
    EXPECT_EQ(l->table_use().live, 1u);
  }
}

}  // namespace
}  // namespace pmm::core
