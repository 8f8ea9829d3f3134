// Random operation sequences against the ledger, checked after every step
// against a small reference model (who holds how many references to what)
// and by Ledger::check_invariants() (the ledger's records against each
// other and against the pools' allocators).
#include <gtest/gtest.h>

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

struct Model {
  // block -> session -> references; block -> live export tokens
  std::map<BlockId, std::map<SessionId, uint64_t>> refs;
  std::map<BlockId, std::set<SessionId>> sysv_by;
  struct Exp {
    BlockId block;
    uint32_t left;
  };
  std::map<Token, Exp> exports;
  std::map<BlockId, uint64_t> size;

  uint64_t total(BlockId b) const {
    uint64_t t = 0;
    if (auto it = refs.find(b); it != refs.end()) {
      for (const auto& [s, n] : it->second) t += n;
    }
    for (const auto& [tok, e] : exports) t += e.block == b ? 1 : 0;
    if (auto it = sysv_by.find(b); it != sysv_by.end()) t += it->second.size();
    return t;
  }
  void forget_if_free(BlockId b) {
    if (total(b) == 0) {
      refs.erase(b);
      sysv_by.erase(b);
      size.erase(b);
    }
  }
};

void run_sequence(uint32_t seed, const std::string& strategy, std::map<std::string, int>& done) {
  SCOPED_TRACE("seed " + std::to_string(seed) + ", strategy " + strategy);
  std::vector<DeviceConfig> devs(3);
  devs[0] = {.name = "cam", .pools = {"a"}, .max_bytes = 6 * kMiB, .min_bytes = 2 * kMiB};
  devs[1] = {.name = "gpu", .pools = {"b", "a"}, .max_bytes = std::nullopt, .min_bytes = 1 * kMiB};
  devs[2] = {.name = "disp", .pools = {}, .max_bytes = 4 * kMiB};
  for (auto& d : devs) d.access.everyone = true;  // every uid may claim them here
  auto l = testing::make_ledger(
      {{.name = "a", .size = 8 * kMiB, .strategy = strategy},
       {.name = "b", .size = 4 * kMiB, .type = mem::MemoryType::kSysv, .strategy = strategy}},
      devs);
  ASSERT_NE(l, nullptr);
  std::mt19937 rng(seed);
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  FakeClock clock;
  Model m;
  const std::vector<std::string> device_names{"cam", "gpu", "disp", "stranger"};
  std::set<SessionId> open;
  SessionId next_session = 1;
  auto any_block = [&]() -> BlockId {
    if (m.size.empty()) return 12345678;
    auto it = m.size.begin();
    std::advance(it, static_cast<long>(pick(m.size.size())));
    return it->first;
  };
  auto any_session = [&]() -> SessionId {
    if (open.empty()) return 999;
    auto it = open.begin();
    std::advance(it, static_cast<long>(pick(open.size())));
    return *it;
  };

  for (int step = 0; step < 3000; ++step) {
    int op = static_cast<int>(pick(12));
    SessionId s = any_session();
    BlockId b = any_block();
    bool holds = m.refs.contains(b) && m.refs[b].contains(s);
    switch (op) {
      case 0: {  // open
        if (open.size() < 8) {
          ASSERT_TRUE(l->open_session({.id = next_session,
                                       .pid = 1,
                                       .uid = 1000,
                                       .gid = 1000,
                                       .device = device_names[pick(4)]}));
          open.insert(next_session++);
        }
        break;
      }
      case 1: {  // close
        if (open.empty()) break;
        ASSERT_TRUE(l->close_session(s));
        ++done["close"];
        open.erase(s);
        for (auto& [blk, holders] : m.refs) holders.erase(s);
        for (auto& [blk, by] : m.sysv_by) by.erase(s);
        for (auto it = m.size.begin(); it != m.size.end();) {
          BlockId id = (it++)->first;
          m.forget_if_free(id);
        }
        break;
      }
      case 2:
      case 3: {  // allocate
        if (open.empty()) break;
        uint64_t size = (1 + pick(16)) * 64 * kKiB;
        auto r = l->allocate(s, {}, size, pick(2) ? 0 : 4096 << pick(4), {});
        if (r) {
          ASSERT_FALSE(m.size.contains(r->id)) << "block id reused";
          m.size[r->id] = r->size;
          m.refs[r->id][s] = 1;
          ++done["allocate"];
        } else {
          Errc c = r.error().code;
          ASSERT_TRUE(c == Errc::kNoMemory || c == Errc::kLimit) << r.error().describe();
          ++done[c == Errc::kLimit ? "refused by a device rule" : "refused for space"];
        }
        break;
      }
      case 4: {  // get
        auto r = l->get(s, b);
        ASSERT_EQ(r.has_value(), holds && m.refs[b][s] > 0);
        if (r) {
          ASSERT_EQ(*r, ++m.refs[b][s]);
          ++done["get"];
        }
        break;
      }
      case 5:
      case 6: {  // put
        auto r = l->put(s, b);
        ASSERT_EQ(r.has_value(), holds && m.refs[b][s] > 0);
        if (r) {
          ASSERT_EQ(*r, --m.refs[b][s]);
          ++done["put"];
          if (m.refs[b][s] == 0) m.refs[b].erase(s);
          m.forget_if_free(b);
        }
        break;
      }
      case 7: {  // export
        uint32_t max = static_cast<uint32_t>(pick(3));
        auto r = l->export_block(s, b, max, std::chrono::milliseconds(pick(3) * 100), clock.now());
        ASSERT_EQ(r.has_value(), holds && m.refs[b][s] > 0);
        if (r) {
          m.exports[*r] = {b, max == 0 ? 1 : max};
          ++done["export"];
        }
        break;
      }
      case 8: {  // import a live export (or an old token)
        if (m.exports.empty() || open.empty()) break;
        auto it = m.exports.begin();
        std::advance(it, static_cast<long>(pick(m.exports.size())));
        Token t = it->first;
        auto r = l->import_block(s, t, clock.now());
        if (r) {
          ++m.refs[it->second.block][s];
          ++done["import"];
          if (--it->second.left == 0) m.exports.erase(it);
        } else {
          // Only expiry (which the model learns from the ledger) may refuse.
          ASSERT_EQ(r.error().code, Errc::kExpired) << r.error().describe();
          ++done["import refused: expired"];
          BlockId eb = it->second.block;
          m.exports.erase(it);
          m.forget_if_free(eb);
        }
        break;
      }
      case 9: {  // unexport
        if (m.exports.empty() || open.empty()) break;
        auto it = m.exports.begin();
        Token t = it->first;
        BlockId eb = it->second.block;
        auto r = l->unexport(s, t);
        ASSERT_TRUE(r) << r.error().describe();
        ++done["unexport"];
        m.exports.erase(it);
        m.forget_if_free(eb);
        break;
      }
      case 10: {  // sysv export / unexport
        bool has = m.sysv_by.contains(b) && m.sysv_by[b].contains(s);
        if (pick(2)) {
          auto r = l->sysv_export(s, b);
          bool in_sysv_pool = m.size.contains(b) && l->block(b)->pool_name == "b";
          ASSERT_EQ(r.has_value(), holds && m.refs[b][s] > 0 && in_sysv_pool && !has);
          if (r) {
            m.sysv_by[b].insert(s);
            ++done["sysv export"];
          }
        } else {
          // Mostly a real SysV export, sometimes a random (block, session).
          if (!m.sysv_by.empty() && pick(4) != 0) {
            auto it = m.sysv_by.begin();
            std::advance(it, static_cast<long>(pick(m.sysv_by.size())));
            b = it->first;
            if (!it->second.empty()) s = *it->second.begin();
            has = m.sysv_by[b].contains(s);
          }
          auto r = l->sysv_unexport(s, b);
          ASSERT_EQ(r.has_value(), has);
          if (r) {
            ++done["sysv unexport"];
            m.sysv_by[b].erase(s);
            m.forget_if_free(b);
          }
        }
        break;
      }
      case 11: {  // time passes
        clock.advance(std::chrono::milliseconds(pick(150)));
        // Sometimes the timer is late: imports must then see the deadline.
        if (pick(2) == 0) break;
        done["expired"] += static_cast<int>(l->expire(clock.now()));
        // The model learns which exports remain from the ledger's view.
        std::set<Token> live;
        for (const auto& v : l->blocks()) {
          for (const auto& h : v.holders) {
            if (h.kind == HolderView::Kind::kExport) live.insert(h.token);
          }
        }
        for (auto it = m.exports.begin(); it != m.exports.end();) {
          BlockId eb = it->second.block;
          if (!live.contains(it->first)) {
            it = m.exports.erase(it);
            m.forget_if_free(eb);
          } else {
            ++it;
          }
        }
        break;
      }
    }
    auto inv = l->check_invariants();
    ASSERT_TRUE(inv) << "step " << step << " op " << op << ": " << inv.error().message;
    // The ledger agrees with the model on every block's holders.
    auto views = l->blocks();
    ASSERT_EQ(views.size(), m.size.size()) << "step " << step << " op " << op;
    for (const auto& v : views) {
      ASSERT_TRUE(m.size.contains(v.info.id));
      ASSERT_EQ(v.references, m.total(v.info.id)) << "block " << v.info.id << " step " << step;
    }
  }
  // Closing everything and letting every export expire empties the pools.
  for (SessionId s : open) ASSERT_TRUE(l->close_session(s));
  clock.advance(2h);
  l->expire(clock.now());
  EXPECT_TRUE(l->blocks().empty());
  for (const auto& p : l->pools()) EXPECT_EQ(p.used, 0u) << p.name;
  for (const auto& d : l->devices()) EXPECT_EQ(d.used_bytes, 0u) << d.config.name;
  EXPECT_TRUE(l->check_invariants());
}

// Every kind of operation happened, successes and refusals alike: the
// sequences exercised what they claim to.
void expect_everything_done(std::map<std::string, int>& done) {
  for (const char* kind : {"allocate", "refused by a device rule", "refused for space", "get",
                           "put", "export", "import", "import refused: expired", "unexport",
                           "sysv export", "sysv unexport", "expired", "close"}) {
    EXPECT_GT(done[kind], 0) << kind;
  }
}

TEST(LedgerRandom, BestFitSequencesKeepTheBooksStraight) {
  std::map<std::string, int> done;
  for (uint32_t seed = 1; seed <= 4; ++seed) run_sequence(seed, "best_fit", done);
  expect_everything_done(done);
}

TEST(LedgerRandom, TlsfSequencesKeepTheBooksStraight) {
  std::map<std::string, int> done;
  for (uint32_t seed = 101; seed <= 104; ++seed) run_sequence(seed, "tlsf", done);
  expect_everything_done(done);
}

}  // namespace
}  // namespace pmm::core
