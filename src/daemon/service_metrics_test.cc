// The views in the service: requests are counted by type and timed into
// the histogram; metrics are for admins; a pool map is for anyone and comes
// in pages that each visit a bounded number of block records.
#include <gtest/gtest.h>
#include <unistd.h>

#include "daemon/service.h"

namespace pmm::daemon {
namespace {

constexpr uint64_t kPoolSize = 1 << 30;
const auto kNow = core::SteadyTime{} + std::chrono::hours(1);

struct Rig {
  Log log{.quiet = true};
  std::unique_ptr<Service> svc;
  uint32_t next_id = 1;

  Rig() {
    auto pool = core::Pool::create(core::PoolOptions{
        .name = "big", .region = {.type = mem::MemoryType::kShmem, .size = kPoolSize}});
    EXPECT_TRUE(pool) << pool.error().describe();
    std::vector<core::LedgerPool> pools;
    pools.push_back(core::LedgerPool{.pool = std::move(*pool), .access = {.everyone = true}});
    auto l = core::Ledger::create(
        std::move(pools), {},
        core::LedgerOptions{.quotas = {.blocks_per_session = 1 << 20, .blocks_per_uid = 1 << 20}});
    EXPECT_TRUE(l) << l.error().describe();
    svc = std::make_unique<Service>(std::move(*l), log);
  }
  SessionState open(uint32_t uid) {
    SessionState s{.id = next_id++, .peer = {.pid = 100, .uid = uid, .gid = uid}};
    Reply r = svc->handle(s, {.request_id = 1, .body = proto::Hello{.device = "t"}}, kNow);
    EXPECT_TRUE(std::holds_alternative<proto::Welcome>(r.message.body));
    return s;
  }
  proto::Body ask(SessionState& s, proto::Body b, core::SteadyTime now = kNow) {
    return svc->handle(s, {.request_id = 9, .body = std::move(b)}, now).message.body;
  }
};

const proto::RequestCount* count_of(const proto::MetricsReply& m, proto::MessageType t) {
  for (const auto& r : m.requests)
    if (r.type == static_cast<uint16_t>(t)) return &r;
  return nullptr;
}

TEST(ServiceMetrics, RequestsAreCountedByTypeAndTimed) {
  Rig rig;
  SessionState root = rig.open(0);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(
        std::holds_alternative<proto::BlockInfo>(rig.ask(root, proto::Allocate{.size = 4096})));
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(
      rig.ask(root, proto::Allocate{.size = kPoolSize * 2})));
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(rig.ask(root, proto::Put{.block_id = 99})));

  auto body = rig.ask(root, proto::MetricsRequest{});
  const auto* m = std::get_if<proto::MetricsReply>(&body);
  ASSERT_NE(m, nullptr);
  const auto* alloc = count_of(*m, proto::MessageType::kAllocate);
  ASSERT_NE(alloc, nullptr);
  EXPECT_EQ(alloc->count, 4u);
  EXPECT_EQ(alloc->errors, 1u);
  const auto* put = count_of(*m, proto::MessageType::kPut);
  ASSERT_NE(put, nullptr);
  EXPECT_EQ(put->errors, 1u);
  const auto* hello = count_of(*m, proto::MessageType::kHello);
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(hello->count, 1u);
  // Hello, 4 Allocate, 1 Put so far (this Metrics is counted after its reply).
  EXPECT_EQ(m->latency_count, 6u);
  uint64_t sum = 0;
  for (uint64_t c : m->latency_counts) sum += c;
  EXPECT_EQ(sum, m->latency_count);
  EXPECT_EQ(m->latency_counts.size(), m->latency_bounds_ns.size() + 1);
  EXPECT_GT(m->latency_sum_ns, 0u);
}

TEST(ServiceMetrics, OnlyAdminsReadTheCounters) {
  Rig rig;
  SessionState user = rig.open(1000);
  auto body = rig.ask(user, proto::MetricsRequest{});
  const auto* e = std::get_if<proto::ErrorReply>(&body);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, Errc::kPermission);
  EXPECT_NE(e->message.find("uid 1000 may not read the request counters"), std::string::npos)
      << e->message;
  rig.svc->set_admins(AdminAccess{.uids = {1000}});
  EXPECT_TRUE(std::holds_alternative<proto::MetricsReply>(rig.ask(user, proto::MetricsRequest{})));
}

TEST(ServiceMetrics, AMapOfABigPoolComesInBoundedPages) {
  Rig rig;
  SessionState root = rig.open(0);
  SessionState user = rig.open(1000);
  core::Ledger& l = rig.svc->ledger();
  const std::vector<std::string> big{"big"};
  for (int i = 0; i < 70'000; ++i) ASSERT_TRUE(l.allocate(root.id, big, 4096, 4096, {}));
  ASSERT_TRUE(std::holds_alternative<proto::BlockInfo>(
      rig.ask(user, proto::Allocate{.pools = big, .size = 4096})));

  proto::PoolMapRequest req{.pool = "big", .max_entries = 256};
  uint64_t used = 0, hidden = 0, named = 0, pages = 0;
  for (;;) {
    auto body = rig.ask(user, req);
    const auto* m = std::get_if<proto::PoolMapReply>(&body);
    ASSERT_NE(m, nullptr);
    ++pages;
    EXPECT_EQ(m->bucket_size, (kPoolSize + 255) / 256) << "70,001 blocks: buckets";
    EXPECT_LE(m->extents.size(), 256u);
    // A block id's bits above its 24-bit slot count allocations
    // (docs/protocol.md), and nothing was freed: the page walked as many.
    EXPECT_LE((m->next_after_id >> 24) - (req.after_id >> 24), proto::kMapPageRecords)
        << "a bounded walk";
    for (const auto& e : m->extents) {
      used += e.used;
      if (e.device == proto::kMapDeviceHidden) {
        ++hidden;
        EXPECT_EQ(e.uid, 0u);
      } else {
        ++named;
        EXPECT_EQ(e.uid, 1000u) << "only its own uid is named";
      }
    }
    if (!m->more) break;
    req.after_id = m->next_after_id;
    req.mode = proto::MapMode::kBuckets;
  }
  EXPECT_EQ(pages, (70'001u + proto::kMapPageRecords - 1) / proto::kMapPageRecords);
  EXPECT_EQ(used, 70'001u * 4096);
  EXPECT_GT(hidden, 0u);
  EXPECT_EQ(named, 1u) << "its one block names its bucket among root's";

  auto unknown = rig.ask(user, proto::PoolMapRequest{.pool = "nope"});
  const auto* u = std::get_if<proto::ErrorReply>(&unknown);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->code, Errc::kNotFound);
  EXPECT_NE(u->message.find("the pools are: big"), std::string::npos) << u->message;
}

}  // namespace
}  // namespace pmm::daemon
