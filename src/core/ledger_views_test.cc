// Ledger views: who sees which sessions, blocks, holders, tokens and
// devices, and paging through them with a cursor, on real pools.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
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
constexpr uint32_t kRoot = 0;
constexpr uint32_t kAlice = 1000;
constexpr uint32_t kBob = 1001;

SessionInfo session(SessionId id, uint32_t uid, std::string device = "cam") {
  return SessionInfo{
      .id = id, .pid = static_cast<int32_t>(500 + id), .uid = uid, .gid = uid, .device = device};
}

Viewer as_user(uint32_t uid) { return Viewer{.uid = uid, .all = false, .phys = false}; }
Viewer as_admin(uint32_t uid) { return Viewer{.uid = uid, .all = true, .phys = false}; }

// Every page of a listing, following the cursor as a client does: a page
// may end before it is full (a non-admin's block page scans a bounded
// stretch), but its cursor always moves on and lies at or past its items.
template <typename Page>
auto all_pages(Page page, size_t limit) {
  decltype(page(0, limit).items) out;
  uint64_t after = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    auto p = page(after, limit);
    EXPECT_LE(p.items.size(), limit);
    if (!p.items.empty()) {
      EXPECT_GE(p.next_after, p.items.back().info.id);
    }
    for (auto& item : p.items) out.push_back(std::move(item));
    if (!p.more) return out;
    EXPECT_GT(p.next_after, after) << "more, but the cursor did not move";
    if (p.next_after <= after) return out;
    after = p.next_after;
  }
  ADD_FAILURE() << "the listing never ended";
  return out;
}

std::vector<BlockId> block_ids(const Ledger& l, const Viewer& v, size_t limit = 64) {
  std::vector<BlockId> ids;
  for (const auto& b : all_pages([&](uint64_t a, size_t n) { return l.blocks(v, a, n); }, limit))
    ids.push_back(b.info.id);
  return ids;
}

std::vector<SessionId> session_ids(const Ledger& l, const Viewer& v, size_t limit = 256) {
  std::vector<SessionId> ids;
  for (const auto& s : all_pages([&](uint64_t a, size_t n) { return l.sessions(v, a, n); }, limit))
    ids.push_back(s.info.id);
  return ids;
}

class LedgerViews : public ::testing::Test {
 protected:
  void SetUp() override {
    l_ = make_ledger({{.name = "general", .size = 64 * kMiB}},
                     {DeviceConfig{.name = "cam", .access = {.everyone = true}},
                      DeviceConfig{.name = "secret", .access = {.everyone = true}}});
    ASSERT_NE(l_, nullptr);
    ASSERT_TRUE(l_->open_session(session(1, kRoot, "secret")));
    ASSERT_TRUE(l_->open_session(session(2, kAlice)));
    ASSERT_TRUE(l_->open_session(session(3, kAlice)));
    ASSERT_TRUE(l_->open_session(session(4, kBob)));
  }
  void TearDown() override {
    if (l_) {
      auto inv = l_->check_invariants();
      EXPECT_TRUE(inv) << inv.error().message;
    }
  }
  BlockId alloc(SessionId s, uint64_t size = 64 * kKiB) {
    auto b = l_->allocate(s, kGeneral, size, 0, {});
    EXPECT_TRUE(b) << b.error().describe();
    return b ? b->id : 0;
  }

  std::unique_ptr<Ledger> l_;
  FakeClock clock_;
};

TEST_F(LedgerViews, AUserSeesItsOwnSessionsAndBlocksAndAnAdminSeesAll) {
  BlockId r1 = alloc(1), a1 = alloc(2), r2 = alloc(1), a2 = alloc(3), b1 = alloc(4);
  EXPECT_EQ(session_ids(*l_, as_user(kAlice)), (std::vector<SessionId>{2, 3}));
  EXPECT_EQ(session_ids(*l_, as_user(kBob)), (std::vector<SessionId>{4}));
  EXPECT_EQ(session_ids(*l_, as_admin(kBob)), (std::vector<SessionId>{1, 2, 3, 4}));
  EXPECT_EQ(block_ids(*l_, as_user(kAlice)), (std::vector<BlockId>{a1, a2}));
  EXPECT_EQ(block_ids(*l_, as_user(kBob)), (std::vector<BlockId>{b1}));
  EXPECT_EQ(block_ids(*l_, as_user(kRoot)), (std::vector<BlockId>{r1, r2}));  // root as non-admin
  EXPECT_EQ(block_ids(*l_, as_admin(kAlice)), (std::vector<BlockId>{r1, a1, r2, a2, b1}));
  // A user with nothing sees nothing.
  EXPECT_TRUE(block_ids(*l_, as_user(4242)).empty());
  EXPECT_TRUE(session_ids(*l_, as_user(4242)).empty());
  // Session counters as the listing shows them.
  ASSERT_TRUE(l_->get(2, a1));
  auto s2 = l_->sessions(as_user(kAlice), 0, 1).items.at(0);
  EXPECT_EQ(s2.info.id, 2u);
  EXPECT_EQ(s2.blocks, 1u);
  EXPECT_EQ(s2.references, 2u);
  EXPECT_EQ(s2.bytes, 64 * kKiB);
}

TEST_F(LedgerViews, ASharedBlockShowsAUserOnlyItsOwnHolders) {
  BlockId r = alloc(1);
  auto t = l_->export_block(1, r, 2, 0ms, clock_.now());
  ASSERT_TRUE(t);
  ASSERT_TRUE(l_->import_block(2, *t, clock_.now()));
  // Alice now holds root's block: she sees it, with her own hold only.
  auto page = l_->blocks(as_user(kAlice), 0, 64);
  ASSERT_EQ(page.items.size(), 1u);
  const BlockView& v = page.items[0];
  EXPECT_EQ(v.info.id, r);
  EXPECT_EQ(v.references, 3u);  // root's, the export's, Alice's
  ASSERT_EQ(v.holders.size(), 1u);
  EXPECT_EQ(v.holders[0].session, 2u);
  EXPECT_EQ(v.holders[0].uid, kAlice);
  EXPECT_EQ(v.hidden_holders, 2u);
  for (const auto& h : v.holders) EXPECT_NE(h.pid, 501);  // root's pid
  // Bob sees none of it.
  EXPECT_TRUE(block_ids(*l_, as_user(kBob)).empty());
  // When Alice lets go, it leaves her view.
  ASSERT_TRUE(l_->put(2, r));
  EXPECT_TRUE(block_ids(*l_, as_user(kAlice)).empty());
}

TEST_F(LedgerViews, TokenBitsOnlyForTheExportersUidEvenForAnAdmin) {
  BlockId a = alloc(2);
  auto t = l_->export_block(2, a, 3, 10s, clock_.now());
  ASSERT_TRUE(t);
  auto export_of = [&](const Viewer& v) {
    auto page = l_->blocks(v, 0, 64);
    EXPECT_EQ(page.items.size(), 1u);
    for (const auto& h : page.items.at(0).holders) {
      if (h.kind == HolderView::Kind::kExport) return h;
    }
    ADD_FAILURE() << "no export holder";
    return HolderView{};
  };
  // Alice, and her other session, see her token.
  HolderView mine = export_of(as_user(kAlice));
  EXPECT_TRUE(mine.token_shown);
  EXPECT_EQ(mine.token, *t);
  // An admin (root, or an admin group's member) sees that it exists, how
  // many imports are left and when it ends; not its bits.
  for (Viewer admin : {as_admin(kRoot), as_admin(kBob)}) {
    HolderView seen = export_of(admin);
    EXPECT_FALSE(seen.token_shown);
    EXPECT_EQ(seen.token, Token{});
    EXPECT_EQ(seen.imports_left, 3u);
    EXPECT_EQ(seen.deadline, clock_.now() + 10s);
    EXPECT_EQ(seen.uid, kAlice);
  }
  // The export keeps the block in Alice's view after her sessions close,
  // and the token is still hers to see.
  ASSERT_TRUE(l_->put(2, a));
  ASSERT_TRUE(l_->close_session(2));
  EXPECT_EQ(block_ids(*l_, as_user(kAlice)), (std::vector<BlockId>{a}));
  EXPECT_TRUE(export_of(as_user(kAlice)).token_shown);
  EXPECT_TRUE(block_ids(*l_, as_user(kBob)).empty());
  // Used up: gone from every view.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(l_->import_block(4, *t, clock_.now()));
    ASSERT_TRUE(l_->put(4, a));
  }
  EXPECT_TRUE(block_ids(*l_, as_user(kAlice)).empty());
  EXPECT_TRUE(block_ids(*l_, as_admin(kRoot)).empty());
}

TEST_F(LedgerViews, ExpiredAndClosedLeaveNoTraceInTheIndexes) {
  BlockId a = alloc(3);
  ASSERT_TRUE(l_->export_block(3, a, 1, 1s, clock_.now()));
  ASSERT_TRUE(l_->close_session(3));
  EXPECT_EQ(block_ids(*l_, as_user(kAlice)), (std::vector<BlockId>{a}));
  clock_.advance(2s);
  EXPECT_EQ(l_->expire(clock_.now()), 1u);
  EXPECT_TRUE(block_ids(*l_, as_user(kAlice)).empty());
  EXPECT_EQ(session_ids(*l_, as_user(kAlice)), (std::vector<SessionId>{2}));
}

TEST_F(LedgerViews, DevicesShowAUserOnlyItsOwnUse) {
  alloc(1, 2 * kMiB);  // root, device "secret"
  alloc(2, 1 * kMiB);  // Alice, "cam"
  alloc(4, 3 * kMiB);  // Bob, "cam"
  auto devices = [&](const Viewer& v) { return l_->devices(v, 0, 256).items; };
  auto alice = devices(as_user(kAlice));
  ASSERT_EQ(alice.size(), 1u);  // not "secret", which only root uses
  EXPECT_EQ(alice[0].device->config.name, "cam");
  EXPECT_EQ(alice[0].used, 1 * kMiB);
  EXPECT_EQ(alice[0].sessions, 2u);  // her two sessions, not Bob's
  auto admin = devices(as_admin(kBob));
  ASSERT_EQ(admin.size(), l_->devices().size());
  for (const auto& d : admin) {
    if (d.device->config.name == "cam") {
      EXPECT_EQ(d.used, 4 * kMiB);
      EXPECT_EQ(d.sessions, 3u);
    }
    if (d.device->config.name == "secret") {
      EXPECT_EQ(d.used, 2 * kMiB);
    }
  }
  // A block stays charged to the uid that allocated it after its session
  // closes (its export holds it).
  BlockId b = alloc(4, 1 * kMiB);
  ASSERT_TRUE(l_->export_block(4, b, 1, 0ms, clock_.now()));
  ASSERT_TRUE(l_->close_session(4));
  auto bob = devices(as_user(kBob));
  ASSERT_EQ(bob.size(), 1u);
  EXPECT_EQ(bob[0].used, 1 * kMiB);
  EXPECT_EQ(bob[0].sessions, 0u);
  // Paging: a cursor past the device skips it.
  EXPECT_TRUE(l_->devices(as_user(kBob), bob[0].index + 1, 256).items.empty());
}

// Random holds, exports and closes by three uids; every viewer pages with
// several page sizes and gets exactly the blocks and sessions the records
// say it may see, in order, each once.
TEST_F(LedgerViews, CursorPagesMatchTheRecordsForEveryViewer) {
  std::mt19937 rng(7);
  const std::vector<uint32_t> uids{kRoot, kAlice, kBob};
  std::map<SessionId, uint32_t> open{{1, kRoot}, {2, kAlice}, {3, kAlice}, {4, kBob}};
  SessionId next = 5;
  for (int step = 0; step < 3000; ++step) {
    auto it = std::next(open.begin(), static_cast<long>(rng() % open.size()));
    SessionId s = it->first;
    switch (rng() % 10) {
      case 0:
        if (open.size() > 2) {
          ASSERT_TRUE(l_->close_session(s));
          open.erase(it);
        }
        break;
      case 1: {
        uint32_t uid = uids[rng() % uids.size()];
        ASSERT_TRUE(l_->open_session(session(next, uid)));
        open[next++] = uid;
        break;
      }
      case 2:
      case 3: {  // export something this session holds, maybe import it elsewhere
        auto mine = l_->blocks(as_user(it->second), 0, 64).items;
        for (const auto& b : mine) {
          bool held = std::any_of(b.holders.begin(), b.holders.end(), [&](const HolderView& h) {
            return h.kind == HolderView::Kind::kSession && h.session == s;
          });
          if (!held) continue;
          auto t = l_->export_block(s, b.info.id, 1, 0ms, clock_.now());
          ASSERT_TRUE(t);
          if (rng() % 2) {
            SessionId other =
                std::next(open.begin(), static_cast<long>(rng() % open.size()))->first;
            ASSERT_TRUE(l_->import_block(other, *t, clock_.now()));
          }
          break;
        }
        break;
      }
      case 4: {  // put one of this session's references
        auto v = l_->sessions(as_admin(0), s - 1, 1).items;
        ASSERT_EQ(v.size(), 1u);
        if (v[0].references == 0) break;
        for (const auto& b : l_->blocks()) {
          for (const auto& h : b.holders) {
            if (h.kind == HolderView::Kind::kSession && h.session == s) {
              ASSERT_TRUE(l_->put(s, b.info.id));
              goto done;
            }
          }
        }
      done:
        break;
      }
      default:
        (void)l_->allocate(s, kGeneral, 4 * kKiB, 0, {});
        break;
    }
    if (step % 500 != 499) continue;
    ASSERT_TRUE(l_->check_invariants());
    // What the records say each uid may see.
    std::map<uint32_t, std::vector<BlockId>> expect_blocks;
    std::vector<BlockId> every_block;
    for (const auto& b : l_->blocks()) {
      every_block.push_back(b.info.id);
      std::set<uint32_t> who;
      for (const auto& h : b.holders) who.insert(h.uid);
      for (uint32_t u : who) expect_blocks[u].push_back(b.info.id);
    }
    for (size_t limit : {1, 3, 64}) {
      EXPECT_EQ(block_ids(*l_, as_admin(kBob), limit), every_block);
      for (uint32_t u : uids) {
        EXPECT_EQ(block_ids(*l_, as_user(u), limit), expect_blocks[u]) << "uid " << u;
        std::vector<SessionId> sessions;
        for (const auto& [id, uid] : open)
          if (uid == u) sessions.push_back(id);
        EXPECT_EQ(session_ids(*l_, as_user(u), limit), sessions) << "uid " << u;
      }
    }
  }
}

TEST_F(LedgerViews, ACursorBeyondEverythingIsAnEmptyLastPage) {
  alloc(2);
  for (const Viewer& v : {as_user(kAlice), as_admin(kRoot)}) {
    auto p = l_->blocks(v, UINT64_MAX, 64);
    EXPECT_TRUE(p.items.empty());
    EXPECT_FALSE(p.more);
    EXPECT_TRUE(l_->sessions(v, UINT64_MAX, 64).items.empty());
    EXPECT_TRUE(l_->devices(v, UINT64_MAX, 64).items.empty());
  }
}

}  // namespace
}  // namespace pmm::core
