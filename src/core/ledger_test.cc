// Ledger: reference counting across sessions, session close, exports,
// expiry, SysV exports and pool access, on real pools.
#include "core/ledger.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/ledger_testing.h"

namespace pmm::core {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::kKiB;
using testing::kMiB;
using testing::make_ledger;
using testing::references;

const std::vector<std::string> kGeneral{"general"};

SessionInfo user(SessionId id, uint32_t uid = 1000, std::string device = "test") {
  return SessionInfo{
      .id = id, .pid = static_cast<int32_t>(100 + id), .uid = uid, .gid = uid, .device = device};
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    l_ = make_ledger({{.name = "general", .size = 16 * kMiB}}, {});
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
  uint64_t used() const { return l_->pools()[0].used; }
  BlockInfo alloc(SessionId s, uint64_t size) {
    auto b = l_->allocate(s, kGeneral, size, 0, {});
    EXPECT_TRUE(b) << b.error().describe();
    return b.value_or(BlockInfo{});
  }

  std::unique_ptr<Ledger> l_;
  FakeClock clock_;
};

TEST_F(LedgerTest, AllocateGivesOneReferenceAndThePutOfItReturnsTheBlock) {
  BlockInfo b = alloc(1, 1 * kMiB);
  EXPECT_EQ(b.size, 1 * kMiB);
  EXPECT_EQ(b.pool_name, "general");
  EXPECT_EQ(references(*l_, b.id), 1u);
  EXPECT_EQ(used(), 1 * kMiB);
  ASSERT_EQ(l_->put(1, b.id).value_or(99), 0u);
  EXPECT_EQ(used(), 0u);
  auto again = l_->put(1, b.id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kNotFound);
  EXPECT_NE(again.error().message.find("holds no reference"), std::string::npos);
}

TEST_F(LedgerTest, ReferencesAreCountedPerSession) {
  BlockInfo b = alloc(1, 64 * kKiB);
  EXPECT_EQ(l_->get(1, b.id).value_or(0), 2u);
  // Session 2 cannot take or drop references it was never given.
  EXPECT_EQ(l_->get(2, b.id).error().code, Errc::kNotFound);
  EXPECT_EQ(l_->put(2, b.id).error().code, Errc::kNotFound);
  auto t = l_->export_block(1, b.id, 1, 0ms, clock_.now());
  ASSERT_TRUE(t) << t.error().describe();
  ASSERT_TRUE(l_->import_block(2, *t, clock_.now()));
  EXPECT_EQ(references(*l_, b.id), 3u);  // 2 of session 1, 1 of session 2; export used up
  EXPECT_EQ(l_->put(1, b.id).value_or(99), 1u);
  EXPECT_EQ(l_->put(1, b.id).value_or(99), 0u);
  EXPECT_EQ(l_->put(1, b.id).error().code, Errc::kNotFound);  // all its own are gone
  EXPECT_EQ(used(), 64 * kKiB);                               // session 2 still holds it
  EXPECT_EQ(l_->put(2, b.id).value_or(99), 0u);
  EXPECT_EQ(used(), 0u);
}

TEST_F(LedgerTest, BlockIdsAreNeverReused) {
  BlockInfo a = alloc(1, 4 * kKiB);
  ASSERT_TRUE(l_->put(1, a.id));
  BlockInfo b = alloc(1, 4 * kKiB);
  EXPECT_EQ(b.offset, a.offset);  // same place in the pool ...
  EXPECT_GT(b.id, a.id);          // ... but a new name
}

// The daemon's way: begin_close() makes the session unusable at once, and
// reap() returns its blocks a bounded number at a time, with the books
// consistent after every slice and a block shared with another session
// kept for it.
TEST_F(LedgerTest, ABeganCloseIsReapedInBoundedSlices) {
  std::vector<BlockInfo> mine;
  for (int i = 0; i < 10; ++i) mine.push_back(alloc(1, 64 * kKiB));
  ASSERT_TRUE(l_->get(1, mine[3].id));
  auto t = l_->export_block(1, mine[7].id, 1, 0ms, clock_.now());
  ASSERT_TRUE(t);
  ASSERT_TRUE(l_->import_block(2, *t, clock_.now()));
  ASSERT_TRUE(l_->begin_close(1));
  EXPECT_TRUE(l_->reaping());
  EXPECT_EQ(l_->get(1, mine[0].id).error().code, Errc::kNotFound);  // gone to its clients
  EXPECT_EQ(l_->begin_close(1).error().code, Errc::kNotFound);
  EXPECT_EQ(l_->close_session(1).error().code, Errc::kNotFound);
  EXPECT_EQ(used(), 10 * 64 * kKiB);  // nothing returned yet
  size_t slices = 0;
  CloseSummary sum;
  while (l_->reaping()) {
    auto done = l_->reap(3);
    ++slices;
    auto inv = l_->check_invariants();
    ASSERT_TRUE(inv) << inv.error().message;
    for (const auto& [id, s] : done) {
      EXPECT_EQ(id, 1u);
      sum = s;
    }
    ASSERT_LE(slices, 4u);
  }
  EXPECT_EQ(slices, 4u);  // 10 holds, 3 per slice
  EXPECT_EQ(sum.references_dropped, 11u);
  EXPECT_EQ(sum.blocks_freed, 9u);
  EXPECT_EQ(used(), 64 * kKiB);  // what session 2 imported
  EXPECT_EQ(references(*l_, mine[7].id), 1u);
  EXPECT_EQ(l_->sessions().size(), 1u);
  EXPECT_TRUE(l_->reap(100).empty());
}

TEST_F(LedgerTest, ClosingASessionDropsAllItsReferencesAtOnce) {
  BlockInfo a = alloc(1, 1 * kMiB);
  BlockInfo b = alloc(1, 2 * kMiB);
  ASSERT_TRUE(l_->get(1, a.id));
  ASSERT_TRUE(l_->get(1, a.id));
  BlockInfo shared = alloc(1, 1 * kMiB);
  auto t = l_->export_block(1, shared.id, 1, 0ms, clock_.now());
  ASSERT_TRUE(t);
  ASSERT_TRUE(l_->import_block(2, *t, clock_.now()));
  EXPECT_EQ(used(), 4 * kMiB);

  auto sum = l_->close_session(1);
  ASSERT_TRUE(sum) << sum.error().describe();
  EXPECT_EQ(sum->references_dropped, 5u);  // a: 3, b: 1, shared: 1
  EXPECT_EQ(sum->blocks_freed, 2u);
  EXPECT_EQ(sum->bytes_freed, 3 * kMiB);
  EXPECT_EQ(used(), 1 * kMiB);  // only what session 2 imported
  EXPECT_EQ(references(*l_, shared.id), 1u);
  EXPECT_EQ(l_->get(1, b.id).error().code, Errc::kNotFound);  // the session is gone
  EXPECT_EQ(l_->close_session(1).error().code, Errc::kNotFound);
  EXPECT_EQ(l_->sessions().size(), 1u);
}

TEST_F(LedgerTest, AnExportOutlivesItsExporterAndIsUsedUpAfterMaxImports) {
  BlockInfo b = alloc(1, 64 * kKiB);
  auto t = l_->export_block(1, b.id, 2, 0ms, clock_.now());
  ASSERT_TRUE(t);
  ASSERT_TRUE(l_->close_session(1));
  EXPECT_EQ(references(*l_, b.id), 1u);  // the export's own reference
  ASSERT_TRUE(l_->open_session(user(3)));
  auto i1 = l_->import_block(2, *t, clock_.now());
  auto i2 = l_->import_block(3, *t, clock_.now());
  ASSERT_TRUE(i1 && i2);
  EXPECT_EQ(i1->id, b.id);
  EXPECT_EQ(i2->offset, b.offset);
  EXPECT_EQ(references(*l_, b.id), 2u);  // the importers; the export is used up
  auto i3 = l_->import_block(2, *t, clock_.now());
  ASSERT_FALSE(i3);
  EXPECT_EQ(i3.error().code, Errc::kExpired);
  EXPECT_NE(i3.error().message.find("as many times"), std::string::npos) << i3.error().message;
  ASSERT_TRUE(l_->put(2, b.id));
  ASSERT_TRUE(l_->put(3, b.id));
  EXPECT_EQ(used(), 0u);
}

TEST_F(LedgerTest, ExportsExpireOnTheTimerWithTheirReference) {
  BlockInfo b = alloc(1, 1 * kMiB);
  auto t = l_->export_block(1, b.id, 1, 200ms, clock_.now());
  ASSERT_TRUE(t);
  ASSERT_TRUE(l_->put(1, b.id));  // only the export holds it now
  EXPECT_EQ(l_->next_deadline(), clock_.now() + 200ms);
  clock_.advance(199ms);
  EXPECT_EQ(l_->expire(clock_.now()), 0u);
  EXPECT_EQ(used(), 1 * kMiB);
  clock_.advance(1ms);
  EXPECT_EQ(l_->expire(clock_.now()), 1u);
  EXPECT_EQ(used(), 0u);
  EXPECT_EQ(l_->next_deadline(), std::nullopt);
  auto late = l_->import_block(2, *t, clock_.now());
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::kExpired);
  EXPECT_NE(late.error().message.find("lifetime"), std::string::npos);
}

TEST_F(LedgerTest, AnImportPastTheDeadlineFailsEvenBeforeTheTimerRuns) {
  BlockInfo b = alloc(1, 1 * kMiB);
  auto t = l_->export_block(1, b.id, 1, 50ms, clock_.now());
  ASSERT_TRUE(t);
  ASSERT_TRUE(l_->put(1, b.id));
  clock_.advance(50ms);
  EXPECT_EQ(l_->import_block(2, *t, clock_.now()).error().code, Errc::kExpired);
  EXPECT_EQ(used(), 0u);  // and the block went back
}

TEST_F(LedgerTest, ExportLifetimeDefaultsAndIsBounded) {
  BlockInfo b = alloc(1, 4 * kKiB);
  ASSERT_TRUE(l_->export_block(1, b.id, 0, 0ms, clock_.now()));
  EXPECT_EQ(l_->next_deadline(), clock_.now() + 60s);
  ASSERT_TRUE(l_->export_block(1, b.id, 0, 1h, clock_.now()));
  auto too_long = l_->export_block(1, b.id, 0, 1h + 1ms, clock_.now());
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, Errc::kInvalidArgument);
  EXPECT_NE(too_long.error().message.find("1 h"), std::string::npos) << too_long.error().message;
  // Session 2 may not export what it does not hold.
  EXPECT_EQ(l_->export_block(2, b.id, 1, 0ms, clock_.now()).error().code, Errc::kNotFound);
}

TEST_F(LedgerTest, UnexportWithdrawsOnceAndOnlyForTheExportingUidOrRoot) {
  BlockInfo b = alloc(1, 4 * kKiB);
  auto t = l_->export_block(1, b.id, 1, 0ms, clock_.now());
  ASSERT_TRUE(t);
  ASSERT_TRUE(l_->open_session(user(3, 1001)));
  ASSERT_TRUE(l_->open_session(user(4, 0)));
  auto other = l_->unexport(3, *t);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Errc::kPermission);
  EXPECT_NE(other.error().message.find("1001"), std::string::npos);
  EXPECT_TRUE(l_->unexport(2, *t));  // same uid as the exporter, another session
  EXPECT_EQ(l_->unexport(1, *t).error().code, Errc::kExists);
  EXPECT_EQ(l_->import_block(2, *t, clock_.now()).error().code, Errc::kNotFound);
  auto t2 = l_->export_block(1, b.id, 1, 0ms, clock_.now());
  ASSERT_TRUE(t2);
  EXPECT_TRUE(l_->unexport(4, *t2));  // root
  EXPECT_EQ(references(*l_, b.id), 1u);
  auto never = Token::generate(0);
  ASSERT_TRUE(never);
  EXPECT_EQ(l_->unexport(1, *never).error().code, Errc::kNotFound);
  EXPECT_EQ(l_->import_block(1, *never, clock_.now()).error().code, Errc::kNotFound);
}

TEST_F(LedgerTest, SizesAndPoolNamesAreChecked) {
  auto zero = l_->allocate(1, kGeneral, 0, 0, {});
  EXPECT_EQ(zero.error().code, Errc::kInvalidArgument);
  auto huge = l_->allocate(1, kGeneral, 1ull << 40, 0, {});
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, Errc::kNoMemory);
  EXPECT_NE(huge.error().message.find("largest free"), std::string::npos);
  std::vector<std::string> bad{"nosuch"};
  auto unknown = l_->allocate(1, bad, 4096, 0, {});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::kNotFound);
  EXPECT_NE(unknown.error().message.find("general"), std::string::npos);
  auto odd = l_->allocate(1, kGeneral, 4096, 3, {});
  EXPECT_EQ(odd.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(l_->allocate(99, kGeneral, 4096, 0, {}).error().code, Errc::kNotFound);
  EXPECT_EQ(l_->open_session(user(1)).error().code, Errc::kExists);
}

TEST(LedgerPools, PoolsAreTriedInOrderAndEveryRefusalIsReported) {
  auto l =
      make_ledger({{.name = "small", .size = 1 * kMiB}, {.name = "big", .size = 8 * kMiB}}, {});
  ASSERT_NE(l, nullptr);
  ASSERT_TRUE(l->open_session(user(1)));
  std::vector<std::string> both{"small", "big"};
  auto a = l->allocate(1, both, 512 * kKiB, 0, {});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->pool_name, "small");
  auto b = l->allocate(1, both, 1 * kMiB, 0, {});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->pool_name, "big");  // small has only 512 KiB left
  auto c = l->allocate(1, both, 16 * kMiB, 0, {});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kNoMemory);
  EXPECT_NE(c.error().message.find("pool small"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("pool big"), std::string::npos) << c.error().message;
  // No list: the device's pools ("default": all of them, in order).
  auto d = l->allocate(1, {}, 4 * kKiB, 0, {});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pool_name, "small");
  EXPECT_TRUE(l->check_invariants());
}

TEST(LedgerPools, AccessIsCheckedOnAllocateAndImportAndTheRefusalSaysWhy) {
  auto l =
      make_ledger({{.name = "open", .size = 4 * kMiB},
                   {.name = "video", .size = 4 * kMiB, .access = {.uids = {1000}, .gids = {44}}}},
                  {});
  ASSERT_NE(l, nullptr);
  ASSERT_TRUE(l->open_session(user(1, 1000)));
  ASSERT_TRUE(l->open_session(SessionInfo{.id = 2, .pid = 2, .uid = 2000, .gid = 2000}));
  ASSERT_TRUE(l->open_session(SessionInfo{.id = 3, .pid = 3, .uid = 3000, .gid = 44}));
  ASSERT_TRUE(l->open_session(SessionInfo{.id = 4, .pid = 4, .uid = 0, .gid = 0}));
  std::vector<std::string> video{"video"};
  auto mine = l->allocate(1, video, 4096, 0, {});
  ASSERT_TRUE(mine);
  auto refused = l->allocate(2, video, 4096, 0, {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::kPermission);
  const std::string& why = refused.error().message;
  EXPECT_NE(why.find("video"), std::string::npos) << why;
  EXPECT_NE(why.find("uid 2000"), std::string::npos) << why;
  EXPECT_NE(why.find("uids 1000"), std::string::npos) << why;
  EXPECT_TRUE(l->allocate(3, video, 4096, 0, {}));  // by group
  EXPECT_TRUE(l->allocate(4, video, 4096, 0, {}));  // root
  std::vector<std::string> open{"open"};
  EXPECT_TRUE(l->allocate(2, open, 4096, 0, {}));  // an open pool: everyone
  // A token does not get round the pool's access list.
  FakeClock clock;
  auto t = l->export_block(1, mine->id, 1, 0ms, clock.now());
  ASSERT_TRUE(t);
  EXPECT_EQ(l->import_block(2, *t, clock.now()).error().code, Errc::kPermission);
  EXPECT_TRUE(l->import_block(3, *t, clock.now()));  // the refusal did not use the import up
  EXPECT_TRUE(l->check_invariants());
}

// A token's last byte names the pool of the block it exports (an importer
// reads it to know whether the reply can bring that pool's fd); the export is
// found by all 16 bytes, so a token with another pool byte names none.
TEST(LedgerTokens, TheLastByteNamesThePoolAndIsCheckedWithTheRest) {
  auto l =
      make_ledger({{.name = "general", .size = 4 * kMiB}, {.name = "video", .size = 4 * kMiB}}, {});
  ASSERT_NE(l, nullptr);
  ASSERT_TRUE(l->open_session(user(1)));
  ASSERT_TRUE(l->open_session(user(2)));
  FakeClock clock;
  for (size_t pool : {0u, 1u}) {
    const std::vector<std::string> names{l->pools()[pool].name};
    auto b = l->allocate(1, names, 4096, 0, {});
    ASSERT_TRUE(b) << b.error().describe();
    auto t = l->export_block(1, b->id, 1, 0ms, clock.now());
    ASSERT_TRUE(t) << t.error().describe();
    EXPECT_EQ(t->bytes[Token::kPoolByte], pool);
    Token other = *t;
    other.bytes[Token::kPoolByte] = static_cast<uint8_t>(1 - pool);
    EXPECT_EQ(l->import_block(2, other, clock.now()).error().code, Errc::kNotFound);
    EXPECT_TRUE(l->import_block(2, *t, clock.now()));  // the refusal used nothing up
  }
  EXPECT_TRUE(l->check_invariants());
}

TEST(LedgerSysv, OnlyBlocksOfSysvPoolsExportAsSegmentsAndTheExportHoldsAReference) {
  auto l = make_ledger({{.name = "general", .size = 4 * kMiB},
                        {.name = "display", .size = 4 * kMiB, .type = mem::MemoryType::kSysv}},
                       {});
  ASSERT_NE(l, nullptr);
  ASSERT_TRUE(l->open_session(user(1)));
  auto plain = l->allocate(1, kGeneral, 4096, 0, {});
  ASSERT_TRUE(plain);
  auto no = l->sysv_export(1, plain->id);
  ASSERT_FALSE(no);
  EXPECT_EQ(no.error().code, Errc::kUnsupported);
  EXPECT_NE(no.error().message.find("shmem"), std::string::npos) << no.error().message;
  EXPECT_NE(no.error().message.find("display"), std::string::npos) << no.error().message;

  std::vector<std::string> display{"display"};
  auto b = l->allocate(1, display, 64 * kKiB, 0, {});
  ASSERT_TRUE(b);
  auto seg = l->sysv_export(1, b->id);
  ASSERT_TRUE(seg) << seg.error().describe();
  EXPECT_EQ(seg->shmid, l->pool(1).region().shmid());
  EXPECT_GE(seg->shmid, 0);
  EXPECT_EQ(seg->offset, b->offset);
  EXPECT_EQ(seg->size, 64 * kKiB);
  EXPECT_EQ(l->sysv_export(1, b->id).error().code, Errc::kExists);
  ASSERT_TRUE(l->put(1, b->id));  // the SysV export still holds it
  EXPECT_EQ(references(*l, b->id), 1u);
  EXPECT_TRUE(l->check_invariants());
  ASSERT_TRUE(l->sysv_unexport(1, b->id));
  EXPECT_EQ(references(*l, b->id), 0u);
  EXPECT_EQ(l->sysv_unexport(1, b->id).error().code, Errc::kNotFound);

  // Closing the session withdraws its SysV exports: nothing else would.
  auto c = l->allocate(1, display, 64 * kKiB, 0, {});
  ASSERT_TRUE(c);
  ASSERT_TRUE(l->sysv_export(1, c->id));
  auto sum = l->close_session(1);
  ASSERT_TRUE(sum);
  EXPECT_EQ(sum->references_dropped, 3u);  // plain, c, c's SysV export
  EXPECT_EQ(l->pools()[1].used, 0u);
  EXPECT_TRUE(l->check_invariants());
}

}  // namespace
}  // namespace pmm::core
