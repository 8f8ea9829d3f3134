// Ledger quotas: every limit at its value is refused with kLimit naming the
// limit, its value and the use; freeing makes room again; blocks and
// exports that outlive their session still count against their uid; root
// is held to per-session limits only; sizes round up to the block granule.
// Also prints the daemon heap each record costs (docs/config.md quotes it).
#include <malloc.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
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
const std::vector<std::string> kDisplay{"display"};

SessionInfo user(SessionId id, uint32_t uid) {
  return SessionInfo{.id = id, .pid = 1, .uid = uid, .gid = uid, .device = ""};
}

// The refusal names the limit, its value and the current use.
void expect_limit(const Error& e, const std::string& limit, uint64_t value) {
  EXPECT_EQ(e.code, Errc::kLimit) << e.message;
  EXPECT_NE(e.message.find(fmt::format("limit {} = {} reached ({} in use)", limit, value, value)),
            std::string::npos)
      << e.message;
}

struct Rig {
  std::unique_ptr<Ledger> l;
  FakeClock clock;
  explicit Rig(Quotas q, bool sysv = false) {
    std::vector<testing::PoolSpec> pools{{.name = "general", .size = 16 * kMiB}};
    if (sysv)
      pools.push_back({.name = "display", .size = 4 * kMiB, .type = mem::MemoryType::kSysv});
    l = make_ledger(pools, {}, LedgerOptions{.quotas = q});
  }
  ~Rig() {
    if (l) {
      auto inv = l->check_invariants();
      EXPECT_TRUE(inv) << inv.error().message;
    }
  }
  Result<BlockInfo> alloc(SessionId s, uint64_t size = 4 * kKiB,
                          const std::vector<std::string>& pools = kGeneral) {
    return l->allocate(s, pools, size, 0, {});
  }
};

TEST(LedgerQuotas, BlocksPerSessionCountAllocationsAndImportsAndPutMakesRoom) {
  Rig r(Quotas{.blocks_per_session = 3, .blocks_per_uid = 100});
  ASSERT_TRUE(r.l->open_session(user(1, 1000)));
  ASSERT_TRUE(r.l->open_session(user(2, 1001)));
  std::vector<BlockId> held;
  for (int i = 0; i < 3; ++i) held.push_back(r.alloc(1)->id);
  auto no = r.alloc(1);
  ASSERT_FALSE(no);
  expect_limit(no.error(), "blocks_per_session", 3);
  EXPECT_NE(no.error().message.find("session 1 (uid 1000) holds 3 blocks"), std::string::npos)
      << no.error().message;
  // An import is one more block held, too.
  auto other = r.alloc(2);
  ASSERT_TRUE(other);
  auto t = r.l->export_block(2, other->id, 1, 0ms, r.clock.now());
  ASSERT_TRUE(t);
  auto imp = r.l->import_block(1, *t, r.clock.now());
  ASSERT_FALSE(imp);
  expect_limit(imp.error(), "blocks_per_session", 3);
  EXPECT_NE(imp.error().message.find("import"), std::string::npos) << imp.error().message;
  // A reference more to a block it holds already is no new block.
  EXPECT_TRUE(r.l->get(1, held[0]));
  ASSERT_TRUE(r.l->put(1, held[0]));
  ASSERT_TRUE(r.l->put(1, held[0]));  // its last reference: room for one
  EXPECT_TRUE(r.l->import_block(1, *t, r.clock.now()));
  EXPECT_FALSE(r.alloc(1));
}

TEST(LedgerQuotas, BlocksPerUidCountEverySessionAndBlocksThatOutliveTheirSession) {
  Rig r(Quotas{.blocks_per_session = 4, .blocks_per_uid = 5});
  ASSERT_TRUE(r.l->open_session(user(1, 1000)));
  ASSERT_TRUE(r.l->open_session(user(2, 1000)));
  ASSERT_TRUE(r.l->open_session(user(3, 2000)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r.alloc(1));
  auto kept = r.alloc(2);
  ASSERT_TRUE(kept);
  ASSERT_TRUE(r.alloc(2));
  auto no = r.alloc(2);
  ASSERT_FALSE(no);
  expect_limit(no.error(), "blocks_per_uid", 5);
  EXPECT_NE(no.error().message.find("uid 1000 has 5 live blocks"), std::string::npos)
      << no.error().message;
  EXPECT_TRUE(r.alloc(3));  // another uid has its own budget
  EXPECT_EQ(r.l->quota_use(1000).blocks, 5u);

  // Session 2 exports a block and goes: the export keeps it alive, and it
  // still counts for uid 1000 — reconnecting does not get round the limit.
  ASSERT_TRUE(r.l->export_block(2, kept->id, 1, 10s, r.clock.now()));
  ASSERT_TRUE(r.l->close_session(2));
  EXPECT_EQ(r.l->quota_use(1000).blocks, 4u);
  ASSERT_TRUE(r.l->open_session(user(4, 1000)));
  ASSERT_TRUE(r.alloc(4));
  expect_limit(r.alloc(4).error(), "blocks_per_uid", 5);
  // Once the export expires the block is freed and the uid has room again.
  r.clock.advance(11s);
  EXPECT_EQ(r.l->expire(r.clock.now()), 1u);
  EXPECT_TRUE(r.alloc(4));
}

TEST(LedgerQuotas, ExportsPerSessionAndPerUidOutliveTheSessionUntilTheyEnd) {
  Rig r(Quotas{.exports_per_session = 2, .exports_per_uid = 3});
  ASSERT_TRUE(r.l->open_session(user(1, 1000)));
  ASSERT_TRUE(r.l->open_session(user(2, 1000)));
  auto b = r.alloc(1);
  ASSERT_TRUE(b);
  auto t1 = r.l->export_block(1, b->id, 1, 10s, r.clock.now());
  auto t2 = r.l->export_block(1, b->id, 1, 20s, r.clock.now());
  ASSERT_TRUE(t1 && t2);
  auto no = r.l->export_block(1, b->id, 1, 10s, r.clock.now());
  ASSERT_FALSE(no);
  expect_limit(no.error(), "exports_per_session", 2);
  // Withdrawing one makes room in the session.
  ASSERT_TRUE(r.l->unexport(1, *t1));
  ASSERT_TRUE(r.l->export_block(1, b->id, 1, 10s, r.clock.now()));
  // The uid's exports outlive session 1: session 2 of the same uid has room
  // for one, then meets the uid's limit.
  auto c = r.alloc(2);
  ASSERT_TRUE(c);
  ASSERT_TRUE(r.l->close_session(1));
  EXPECT_EQ(r.l->quota_use(1000).exports, 2u);
  ASSERT_TRUE(r.l->export_block(2, c->id, 1, 10s, r.clock.now()));
  auto uid_no = r.l->export_block(2, c->id, 1, 10s, r.clock.now());
  ASSERT_FALSE(uid_no);
  expect_limit(uid_no.error(), "exports_per_uid", 3);
  EXPECT_NE(uid_no.error().message.find("closed sessions"), std::string::npos);
  // An import that uses a token up ends it: room again.
  ASSERT_TRUE(r.l->open_session(user(3, 2000)));
  ASSERT_TRUE(r.l->import_block(3, *t2, r.clock.now()));
  EXPECT_TRUE(r.l->export_block(2, c->id, 1, 10s, r.clock.now()));
  // Expiry ends the rest.
  r.clock.advance(1min);
  EXPECT_EQ(r.l->expire(r.clock.now()), 3u);
  EXPECT_EQ(r.l->quota_use(1000).exports, 0u);
}

TEST(LedgerQuotas, SysvExportsPerSessionAndPerUid) {
  Rig r(Quotas{.sysv_exports_per_session = 2, .sysv_exports_per_uid = 3}, /*sysv=*/true);
  ASSERT_TRUE(r.l->open_session(user(1, 1000)));
  ASSERT_TRUE(r.l->open_session(user(2, 1000)));
  std::vector<BlockId> a, b;
  for (int i = 0; i < 3; ++i) {
    a.push_back(r.alloc(1, 4 * kKiB, kDisplay)->id);
    b.push_back(r.alloc(2, 4 * kKiB, kDisplay)->id);
  }
  ASSERT_TRUE(r.l->sysv_export(1, a[0]));
  ASSERT_TRUE(r.l->sysv_export(1, a[1]));
  auto no = r.l->sysv_export(1, a[2]);
  ASSERT_FALSE(no);
  expect_limit(no.error(), "sysv_exports_per_session", 2);
  ASSERT_TRUE(r.l->sysv_export(2, b[0]));
  auto uid_no = r.l->sysv_export(2, b[1]);
  ASSERT_FALSE(uid_no);
  expect_limit(uid_no.error(), "sysv_exports_per_uid", 3);
  ASSERT_TRUE(r.l->sysv_unexport(1, a[0]));
  EXPECT_TRUE(r.l->sysv_export(2, b[1]));
  // Closing a session withdraws its SysV exports, and their count.
  ASSERT_TRUE(r.l->close_session(1));
  EXPECT_EQ(r.l->quota_use(1000).sysv_exports, 2u);
  ASSERT_TRUE(r.l->open_session(user(3, 1000)));
  auto d = r.alloc(3, 4 * kKiB, kDisplay);
  ASSERT_TRUE(d);
  EXPECT_TRUE(r.l->sysv_export(3, d->id)) << "uid 1000 has room again";
}

// A session finds its records through caches (by id modulo 256, and its
// uid's quota and (uid, device) entries): ids that share a cache entry, an
// id reused by another uid after a close, and a uid whose last session
// closes while its blocks live on must each be counted against the right
// uid, exactly as before.
TEST(LedgerQuotas, SessionsSharingACacheEntryOrAReusedIdCountForTheirOwnUid) {
  Rig r(Quotas{.blocks_per_session = 8, .blocks_per_uid = 3});
  ASSERT_TRUE(r.l->open_session(user(5, 1000)));
  ASSERT_TRUE(r.l->open_session(user(5 + 256, 2000)));  // the same cache entry
  auto a = r.alloc(5);
  auto b = r.alloc(5 + 256);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(r.l->quota_use(1000).blocks, 1u);
  EXPECT_EQ(r.l->quota_use(2000).blocks, 1u);
  ASSERT_TRUE(r.alloc(5 + 256));
  ASSERT_TRUE(r.alloc(5 + 256));
  expect_limit(r.alloc(5 + 256).error(), "blocks_per_uid", 3);
  ASSERT_TRUE(r.alloc(5));  // uid 1000 has its own budget
  // Session 5 exports a block and goes; its id comes back as uid 3000's.
  auto t = r.l->export_block(5, a->id, 1, 10s, r.clock.now());
  ASSERT_TRUE(t);
  ASSERT_TRUE(r.l->close_session(5));
  EXPECT_EQ(r.l->quota_use(1000).blocks, 1u) << "the exported block lives on for uid 1000";
  EXPECT_EQ(r.l->quota_use(1000).exports, 1u);
  EXPECT_FALSE(r.l->put(5, a->id)) << "a closed session is gone, cache or not";
  ASSERT_TRUE(r.l->open_session(user(5, 3000)));
  EXPECT_FALSE(r.l->put(5, a->id)) << "the new session 5 holds nothing";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r.alloc(5));
  expect_limit(r.alloc(5).error(), "blocks_per_uid", 3);
  EXPECT_EQ(r.l->quota_use(3000).blocks, 3u);
  EXPECT_EQ(r.l->quota_use(1000).blocks, 1u);
  // Uid 2000 imports uid 1000's block (the export ends) and puts it: the
  // block and the export go from uid 1000's count, which no session of
  // uid 1000 is open to hold.
  auto imp = r.l->import_block(5 + 256, *t, r.clock.now());
  ASSERT_TRUE(imp);
  EXPECT_EQ(r.l->quota_use(1000).exports, 0u);
  ASSERT_TRUE(r.l->put(5 + 256, imp->id));
  EXPECT_EQ(r.l->quota_use(1000).blocks, 0u);
  EXPECT_EQ(r.l->quota_use(2000).blocks, 3u);
  ASSERT_TRUE(r.l->close_session(5));
  EXPECT_EQ(r.l->quota_use(3000).blocks, 0u);
  auto check = r.l->check_invariants();
  EXPECT_TRUE(check) << check.error().message;
}

TEST(LedgerQuotas, RootIsHeldToPerSessionLimitsOnly) {
  Rig r(Quotas{.blocks_per_session = 3, .blocks_per_uid = 3});
  ASSERT_TRUE(r.l->open_session(user(1, 0)));
  ASSERT_TRUE(r.l->open_session(user(2, 0)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r.alloc(1));
  expect_limit(r.alloc(1).error(), "blocks_per_session", 3);
  EXPECT_TRUE(r.alloc(2)) << "root's other session: no per-uid limit";
  EXPECT_EQ(r.l->quota_use(0).blocks, 4u);
}

TEST(LedgerQuotas, SizesRoundUpToTheGranuleSoTinyBlocksCannotMultiply) {
  Rig r(Quotas{
      .blocks_per_session = 1'000'000, .blocks_per_uid = 1'000'000, .block_granule = 4 * kKiB});
  ASSERT_TRUE(r.l->open_session(user(1, 1000)));
  auto b = r.l->allocate(1, kGeneral, 1, 1, {});
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->size, 4 * kKiB);
  EXPECT_EQ(r.l->pools()[0].used, 4 * kKiB);
  // A 16 MiB pool holds at most 16 MiB / 4 KiB blocks however small they
  // are asked for: the daemon's records stay proportional to what it lends.
  uint64_t n = 1;
  while (r.l->allocate(1, kGeneral, 1, 1, {})) ++n;
  EXPECT_EQ(n, 16 * kMiB / (4 * kKiB));
  auto huge = r.l->allocate(1, kGeneral, UINT64_MAX - 5, 0, {});
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, Errc::kInvalidArgument);
}

TEST(LedgerQuotas, ZeroLimitsAndOddGranulesAreRefused) {
  std::vector<LedgerPool> none;
  auto zero = Ledger::create({}, {}, LedgerOptions{.quotas = {.exports_per_uid = 0}});
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message.find("exports_per_uid is 0"), std::string::npos);
  auto odd = Ledger::create({}, {}, LedgerOptions{.quotas = {.block_granule = 3000}});
  ASSERT_FALSE(odd);
  EXPECT_NE(odd.error().message.find("not a power of two"), std::string::npos);
}

// Daemon heap per record, measured with mallinfo2 over 100k records (the
// figures docs/config.md quotes; PMM_MEASURE_BLOCKS sets the count). Printed, with a generous bound
// so that a change that makes records several times larger is noticed.
TEST(LedgerQuotas, DaemonMemoryPerBlockExportAndSessionIsPrinted) {
  const char* env = std::getenv("PMM_MEASURE_BLOCKS");
  const uint64_t kN =
      std::clamp<uint64_t>(env ? std::strtoull(env, nullptr, 10) : 100'000, 1000, 1'000'000);
  Quotas q{.blocks_per_session = kN,
           .blocks_per_uid = kN,
           .exports_per_session = kN,
           .exports_per_uid = kN,
           .block_granule = 4 * kKiB};
  auto l = make_ledger({{.name = "general", .size = kN * 4 * kKiB}}, {},
                       LedgerOptions{.max_exports_per_block = 256, .quotas = q});
  ASSERT_NE(l, nullptr);
  FakeClock clock;
  // In use in the heap plus in malloc's own mappings, where the block
  // table's large vectors live (their whole capacity counts here, touched or
  // not, so this is an upper bound on what the records cost in RSS).
  auto heap = [] {
    struct mallinfo2 mi = mallinfo2();
    return static_cast<double>(mi.uordblks + mi.hblkhd);
  };
  ASSERT_TRUE(l->open_session(user(1, 1000)));
  std::vector<BlockId> ids;
  ids.reserve(kN);
  double before = heap();
  for (uint64_t i = 0; i < kN; ++i) {
    auto b = l->allocate(1, kGeneral, 1, 0, {});
    ASSERT_TRUE(b) << b.error().message;
    ids.push_back(b->id);
  }
  const auto n = static_cast<double>(kN);
  double per_block = (heap() - before) / n;
  before = heap();
  for (uint64_t i = 0; i < kN; ++i) ASSERT_TRUE(l->export_block(1, ids[i], 1, 1h, clock.now()));
  double per_export = (heap() - before) / n;
  before = heap();
  constexpr uint64_t kSessions = 10'000;
  for (uint64_t s = 2; s < 2 + kSessions; ++s) ASSERT_TRUE(l->open_session(user(s, 1000)));
  double per_session = (heap() - before) / kSessions;
  std::printf("daemon heap: %.0f B per block, %.0f B per export, %.0f B per session\n", per_block,
              per_export, per_session);
  EXPECT_LT(per_block, 2048);
  EXPECT_LT(per_export, 2048);
  EXPECT_LT(per_session, 2048);
}

}  // namespace
}  // namespace pmm::core
