// The Check request in the service: root gets the walk's result, clean or
// naming the first violation; anybody else gets kPermission naming who may;
// the walk changes nothing. The violation is real: a strategy under a real
// pool starts lying about itself, as a buggy allocator would.
#include <gtest/gtest.h>
#include <unistd.h>

#include "alloc/lying_strategy.h"
#include "daemon/service.h"

namespace pmm::daemon {
namespace {

constexpr uint64_t kPoolSize = 4 << 20;
const auto kNow = core::SteadyTime{} + std::chrono::hours(1);

struct Rig {
  bool broken_check = false;
  bool lying_stats = false;
  Log log{.quiet = true};
  std::unique_ptr<Service> svc;
  uint32_t next_id = 1;

  Rig() {
    auto region = mem::make_region("chk", {.type = mem::MemoryType::kShmem, .size = kPoolSize});
    EXPECT_TRUE(region) << region.error().describe();
    auto real = alloc::make_strategy("best_fit", kPoolSize);
    auto pool = core::Pool::create(
        "chk", std::move(*region),
        std::make_unique<alloc::LyingStrategy>(std::move(*real), &broken_check, &lying_stats));
    EXPECT_TRUE(pool) << pool.error().describe();
    std::vector<core::LedgerPool> pools;
    pools.push_back(core::LedgerPool{.pool = std::move(*pool), .access = {}});
    auto l = core::Ledger::create(std::move(pools), {});
    EXPECT_TRUE(l) << l.error().describe();
    svc = std::make_unique<Service>(std::move(*l), log);
  }
  SessionState open(uint32_t uid) {
    SessionState s{.id = next_id++, .peer = {.pid = 100, .uid = uid, .gid = uid}};
    Reply r = svc->handle(s, {.request_id = 1, .body = proto::Hello{.device = "t"}}, kNow);
    EXPECT_TRUE(std::holds_alternative<proto::Welcome>(r.message.body));
    return s;
  }
  proto::Body ask(SessionState& s, proto::Body b) {
    return svc->handle(s, {.request_id = 9, .body = std::move(b)}, kNow).message.body;
  }
};

TEST(ServiceCheck, RootGetsACleanWalkOfEverything) {
  Rig rig;
  SessionState root = rig.open(0);
  uint64_t first = 0;
  for (int i = 0; i < 3; ++i) {
    auto b = rig.ask(root, proto::Allocate{.size = 4096});
    ASSERT_TRUE(std::holds_alternative<proto::BlockInfo>(b));
    if (i == 0) first = std::get<proto::BlockInfo>(b).block_id;
  }
  ASSERT_TRUE(std::holds_alternative<proto::TokenReply>(
      rig.ask(root, proto::Export{.block_id = first, .max_imports = 1})));
  auto r = rig.ask(root, proto::CheckRequest{});
  const auto* c = std::get_if<proto::CheckReply>(&r);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->violation, "");
  EXPECT_EQ(c->pools, 1u);
  EXPECT_EQ(c->blocks, 3u);
  EXPECT_EQ(c->sessions, 1u);
  EXPECT_EQ(c->exports, 1u);
}

TEST(ServiceCheck, AViolationIsReportedNotFatal) {
  Rig rig;
  SessionState root = rig.open(0);
  ASSERT_TRUE(std::holds_alternative<proto::BlockInfo>(rig.ask(root, proto::Allocate{.size = 1})));
  rig.lying_stats = true;
  auto r = rig.ask(root, proto::CheckRequest{});
  const auto* c = std::get_if<proto::CheckReply>(&r);
  ASSERT_NE(c, nullptr);
  // The pools are walked first: the pool's own accounting catches the lie.
  EXPECT_NE(c->violation.find("pool chk: 4097 bytes used but the peak says 4096"),
            std::string::npos)
      << c->violation;
  rig.lying_stats = false;
  rig.broken_check = true;
  r = rig.ask(root, proto::CheckRequest{});
  c = std::get_if<proto::CheckReply>(&r);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c->violation.find("pool chk: free extent at 4096 overlaps block at 0"),
            std::string::npos)
      << c->violation;
}

TEST(ServiceCheck, AnUnprivilegedUidIsRefusedAndToldWhoMay) {
  if (::geteuid() == 65534) GTEST_SKIP() << "the test runs as uid 65534 itself";
  Rig rig;
  SessionState nobody = rig.open(65534);
  auto r = rig.ask(nobody, proto::CheckRequest{});
  const auto* e = std::get_if<proto::ErrorReply>(&r);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, Errc::kPermission);
  EXPECT_NE(e->message.find("uid 65534 may not run the invariant check"), std::string::npos)
      << e->message;
  EXPECT_NE(e->message.find("only admins (root) or pmmd's own uid"), std::string::npos)
      << e->message;
  // The session goes on: a refusal is not a protocol error.
  EXPECT_TRUE(std::holds_alternative<proto::PoolList>(rig.ask(nobody, proto::ListPools{})));
}

}  // namespace
}  // namespace pmm::daemon
