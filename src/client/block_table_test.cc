// IdTable (block_table.h) against std::unordered_map over long random runs
// of inserts, lookups, find_or_inserts and removals: every id put in is found with its own
// object until it is taken out, and never after, whatever was removed
// around it (the backward shift keeps every entry reachable).
#include "client/block_table.h"
#include "client/futex_lock.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

namespace pmm::client {
namespace {

struct Obj {
  uint64_t id;
};

TEST(IdTable, AgreesWithAnUnorderedMapOverRandomInsertsLookupsAndRemovals) {
  IdTable<Obj> table;
  std::unordered_map<uint64_t, const Obj*> model;
  std::vector<uint64_t> live;
  std::mt19937_64 rng(13);
  for (int round = 0; round < 3; ++round) {
    // Ids of a few shapes: dense (the daemon counts up), colliding in the
    // low bits, and random.
    auto next_id = [&](int i) -> uint64_t {
      switch (round) {
        case 0:
          return static_cast<uint64_t>(i + 1);
        case 1:
          return (static_cast<uint64_t>(i) << 20) | 5;
        default:
          return rng() | 1;
      }
    };
    int made = 0;
    for (int step = 0; step < 20000; ++step) {
      const uint64_t r = rng() % 10;
      if (r < 5 || live.empty()) {
        const uint64_t id = next_id(made++);
        if (model.contains(id)) continue;
        auto o = std::make_unique<Obj>(Obj{id});
        model[id] = o.get();
        table.insert(id, std::move(o));
        live.push_back(id);
      } else if (r < 8) {
        const size_t k = rng() % live.size();
        const uint64_t id = live[k];
        live[k] = live.back();
        live.pop_back();
        auto o = table.extract(id);
        ASSERT_NE(o, nullptr) << id;
        EXPECT_EQ(o.get(), model[id]);
        EXPECT_EQ(o->id, id);
        model.erase(id);
        EXPECT_EQ(table.find(id), nullptr);
        EXPECT_EQ(table.extract(id), nullptr);
      } else if (r < 9) {
        // find_or_insert: a live id gives its object and makes nothing; a
        // new one keeps what make() gave.
        const uint64_t id = rng() % 2 == 0 ? live[rng() % live.size()] : next_id(made++);
        const bool present = model.contains(id);
        bool fresh = !present;
        bool called = false;
        const Obj* got = table.find_or_insert(
            id,
            [&] {
              called = true;
              return std::make_unique<Obj>(Obj{id});
            },
            fresh);
        ASSERT_NE(got, nullptr);
        EXPECT_EQ(fresh, !present);
        EXPECT_EQ(called, !present);
        EXPECT_EQ(got->id, id);
        if (present) {
          EXPECT_EQ(got, model[id]);
        } else {
          model[id] = got;
          live.push_back(id);
        }
        EXPECT_EQ(table.find(id), got);
      } else {
        const uint64_t id = live[rng() % live.size()];
        EXPECT_EQ(table.find(id), model[id]);
        const uint64_t absent = rng() | (uint64_t{1} << 63);
        if (!model.contains(absent)) {
          EXPECT_EQ(table.find(absent), nullptr);
        }
      }
      ASSERT_EQ(table.size(), model.size());
    }
    for (const auto& [id, o] : model) ASSERT_EQ(table.find(id), o) << id;
    // Drained one by one, in random order, then cleared.
    while (!live.empty() && round != 2) {
      const uint64_t id = live.back();
      live.pop_back();
      ASSERT_NE(table.extract(id), nullptr);
      model.erase(id);
    }
    for (const auto& [id, o] : model) ASSERT_EQ(table.find(id), o) << id;
    table.clear();
    model.clear();
    live.clear();
    EXPECT_EQ(table.size(), 0u);
    EXPECT_EQ(table.find(1), nullptr);
  }
}

// The table's lock excludes: threads that update a plain counter and a
// table under it, many times, contended, lose no update, and a holder
// never sees another inside (the contended path sleeps and wakes in turn).
TEST(FutexLock, ExcludesUnderContention) {
  FutexLock lock;
  IdTable<Obj> table;
  uint64_t counter = 0;
  int inside = 0;
  bool overlapped = false;
  constexpr int kThreads = 4;
  constexpr int kRounds = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard guard(lock);
        if (++inside != 1) overlapped = true;
        const uint64_t id = (static_cast<uint64_t>(t) << 32) | static_cast<uint64_t>(i % 64);
        if (auto o = table.extract(id); o == nullptr)
          table.insert(id, std::make_unique<Obj>(Obj{id}));
        ++counter;
        --inside;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(overlapped);
  EXPECT_EQ(counter, uint64_t{kThreads} * kRounds);
}

}  // namespace
}  // namespace pmm::client
