// Service::handle_hot, which pmmd answers allocates, gets, puts and imports
// with, writing over the Reply kept for each kind of reply (HotReplies)
// across requests, must answer exactly as handle() does: the same replies and
// refusals, the same fd attached once per pool, the same counts in the
// metrics — whatever the kept Reply held before (a BlockInfo of another
// pool, an error, a handshake refusal).
#include <gtest/gtest.h>

#include <random>

#include "daemon/service.h"

namespace pmm::daemon {
namespace {

const auto kNow = core::SteadyTime{} + std::chrono::hours(1);

struct Rig {
  Log log{.quiet = true};
  std::unique_ptr<Service> svc;

  Rig() {
    std::vector<core::LedgerPool> pools;
    for (const char* name : {"big", "small"}) {
      auto pool = core::Pool::create(core::PoolOptions{
          .name = name,
          .region = {.type = mem::MemoryType::kShmem,
                     .size = std::string_view(name) == "big" ? 64u << 20 : 1u << 20}});
      EXPECT_TRUE(pool) << pool.error().describe();
      pools.push_back(core::LedgerPool{.pool = std::move(*pool), .access = {.everyone = true}});
    }
    auto l = core::Ledger::create(
        std::move(pools), {},
        core::LedgerOptions{.quotas = {.blocks_per_session = 64, .blocks_per_uid = 1 << 20}});
    EXPECT_TRUE(l) << l.error().describe();
    svc = std::make_unique<Service>(std::move(*l), log);
  }
};

// What the loop does with a reply once it is sent.
void sent(SessionState& s, const Reply& r) {
  if (r.fd_pool) s.fd_sent[*r.fd_pool] = true;
}

TEST(ServiceHot, AnswersAsHandleDoesWhateverTheKeptReplyHeld) {
  Rig plain;  // every request through handle()
  Rig hot;    // through handle_hot() into the kept Replies, else handle()
  HotReplies kept;
  SessionState a{.id = 1, .peer = {.pid = 100, .uid = 1000, .gid = 1000}};
  SessionState b = a;
  // Before Hello, nothing is hot: the handshake is refused the same way.
  EXPECT_EQ(hot.svc->handle_hot(b, {1, proto::Allocate{.size = 1}}, kNow, kept), nullptr);
  for (Rig* r : {&plain, &hot}) {
    SessionState& s = r == &plain ? a : b;
    Reply w = r->svc->handle(s, {1, proto::Hello{.device = "t"}}, kNow);
    ASSERT_TRUE(std::holds_alternative<proto::Welcome>(w.message.body));
  }

  std::mt19937_64 rng(5);
  std::vector<uint64_t> blocks;
  // An export made the same way in both: each rig's own token.
  std::vector<std::pair<proto::Token, proto::Token>> tokens;
  size_t hot_answered = 0;
  int imported = 0;
  std::array<int, 2> fds_attached{};
  for (uint32_t id = 2; id < 3000; ++id) {
    proto::Body body_a;
    proto::Body body_b;
    const uint64_t some_block =
        blocks.empty() || rng() % 8 == 0 ? rng() % 1000 : blocks[rng() % blocks.size()];
    switch (rng() % 8) {
      case 0:
      case 1: {
        std::vector<std::string> names;
        switch (rng() % 4) {
          case 0:
            break;
          case 1:
            names = {"big"};
            break;
          case 2:
            names = {"small", "big"};
            break;
          case 3:
            names = {"nowhere"};
            break;
        }
        const uint64_t size = rng() % 10 == 0 ? (128u << 20) : 1 + rng() % (512u << 10);
        const uint32_t flags = rng() % 20 == 0 ? 0x80 : static_cast<uint32_t>(rng() % 4);
        body_a = proto::Allocate{.pools = names, .size = size, .flags = flags};
        break;
      }
      case 2:
        body_a = proto::Get{.block_id = some_block};
        break;
      case 3:
      case 4:
        body_a = proto::Put{.block_id = some_block};
        break;
      case 5:
        body_a = proto::Export{.block_id = some_block, .max_imports = 2, .lifetime_ms = 60000};
        break;
      case 6:
        if (!tokens.empty() && rng() % 4 != 0) {
          const auto& t = tokens[rng() % tokens.size()];
          body_a = proto::Import{.token = t.first};
          body_b = proto::Import{.token = t.second};
        } else {
          body_a = proto::Import{.token = proto::Token{}};
        }
        break;
      case 7:
        body_a = proto::ListPools{};
        break;
    }
    if (body_b.index() == 0) body_b = body_a;  // Hello: not set, the same request
    const proto::Message ma{id, body_a};
    const proto::Message mb{id, body_b};
    Reply want = plain.svc->handle(a, ma, kNow);
    sent(a, want);
    const Reply* got = hot.svc->handle_hot(b, mb, kNow, kept);
    Reply other;
    if (got != nullptr) {
      ++hot_answered;
      EXPECT_TRUE(got == &kept.block || got == &kept.ok || got == &kept.token);
    } else {
      other = hot.svc->handle(b, mb, kNow);
      got = &other;
    }
    sent(b, *got);
    SCOPED_TRACE(id);
    ASSERT_EQ(got->message.body.index(), want.message.body.index());
    EXPECT_EQ(got->message.request_id, want.message.request_id);
    const bool import = std::holds_alternative<proto::Import>(body_a);
    if (const auto* t = std::get_if<proto::TokenReply>(&want.message.body)) {
      tokens.emplace_back(t->token, std::get<proto::TokenReply>(got->message.body).token);
    } else if (const auto* e = std::get_if<proto::ErrorReply>(&want.message.body); e && import) {
      // A refused import names its token, which differs between the rigs.
      EXPECT_EQ(std::get<proto::ErrorReply>(got->message.body).code, e->code);
    } else {
      EXPECT_EQ(got->message, want.message)
          << (std::holds_alternative<proto::ErrorReply>(want.message.body)
                  ? std::get<proto::ErrorReply>(want.message.body).message + " | " +
                        std::get<proto::ErrorReply>(got->message.body).message
                  : "");
    }
    EXPECT_EQ(got->fd >= 0, want.fd >= 0);
    EXPECT_EQ(got->fd_pool, want.fd_pool);
    EXPECT_EQ(got->close_after, want.close_after);
    EXPECT_EQ(got->deferred, want.deferred);
    if (const auto* info = std::get_if<proto::BlockInfo>(&want.message.body)) {
      blocks.push_back(info->block_id);
      if (import) ++imported;
      if (want.fd_pool) ++fds_attached[*want.fd_pool];
    }
  }
  // Each pool's fd went once; imports and refusals of every kind happened.
  EXPECT_EQ(fds_attached, (std::array<int, 2>{1, 1}));
  EXPECT_GT(imported, 10);
  // Most requests were hot ones, and both sides counted the same.
  EXPECT_GT(hot_answered, 1500u);
  SessionState admin{.id = 2, .peer = {.pid = 1, .uid = 0, .gid = 0}};
  SessionState admin_b = admin;
  (void)plain.svc->handle(admin, {1, proto::Hello{}}, kNow);
  (void)hot.svc->handle(admin_b, {1, proto::Hello{}}, kNow);
  auto ma = plain.svc->handle(admin, {2, proto::MetricsRequest{}}, kNow).message.body;
  auto mb = hot.svc->handle(admin_b, {2, proto::MetricsRequest{}}, kNow).message.body;
  ASSERT_TRUE(std::holds_alternative<proto::MetricsReply>(ma));
  EXPECT_EQ(std::get<proto::MetricsReply>(ma).requests, std::get<proto::MetricsReply>(mb).requests);
  EXPECT_EQ(std::get<proto::MetricsReply>(ma).latency_count,
            std::get<proto::MetricsReply>(mb).latency_count);
}

}  // namespace
}  // namespace pmm::daemon
