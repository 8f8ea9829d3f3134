// OffsetMap: agrees with std::unordered_map over random operations through
// several incremental growths, and every operation stays within its step
// bound, also for keys chosen to collide in both of their buckets, and for
// the arithmetic progressions that aligned offsets form. A reseed happens
// only when the buckets and the stash are full, and is counted in full.
#include "alloc/offset_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace pmm::alloc::detail {
namespace {

TEST(OffsetMap, RandomOperationsMatchAModelWithinTheBounds) {
  OffsetMap m;
  std::unordered_map<uint64_t, uint32_t> model;
  std::vector<uint64_t> keys;
  std::mt19937_64 rng(7);
  uint64_t max_find = 0, max_update = 0;
  for (uint32_t i = 0; i < 400'000; ++i) {
    const uint64_t reseeds = m.reseeds();
    uint64_t steps = 0;
    // Grow to ~100k keys, then churn around that.
    if (keys.empty() || (keys.size() < 100'000 ? rng() % 4 != 0 : rng() % 2 == 0)) {
      uint64_t key = (rng() % (uint64_t{1} << 40)) * 64;
      if (model.count(key)) continue;
      m.insert(key, i, steps);
      model[key] = i;
      keys.push_back(key);
      if (m.reseeds() == reseeds) max_update = std::max(max_update, steps);
    } else {
      size_t k = rng() % keys.size();
      uint64_t key = keys[k];
      keys[k] = keys.back();
      keys.pop_back();
      ASSERT_EQ(m.take(key, steps), model[key]);
      model.erase(key);
      if (m.reseeds() == reseeds) max_update = std::max(max_update, steps);
    }
    if (i % 7 == 0 && !keys.empty()) {
      uint64_t key = keys[rng() % keys.size()];
      steps = 0;
      ASSERT_EQ(m.find(key, steps), model[key]);
      max_find = std::max(max_find, steps);
      steps = 0;
      ASSERT_EQ(m.find(key + 1, steps), OffsetMap::kNoValue);
      max_find = std::max(max_find, steps);
    }
  }
  EXPECT_EQ(m.size(), model.size());
  size_t seen = 0;
  m.for_each([&](uint64_t key, uint32_t value) {
    ++seen;
    EXPECT_EQ(model.at(key), value);
  });
  EXPECT_EQ(seen, model.size());
  EXPECT_LE(max_find, OffsetMap::kMaxFindSteps);
  EXPECT_LE(max_update, OffsetMap::kMaxUpdateSteps);
  EXPECT_GE(m.bucket_count() * OffsetMap::kWays, 2 * m.size());  // it grew
  uint64_t steps = 0;
  EXPECT_EQ(m.take(UINT64_MAX - 1, steps), OffsetMap::kNoValue);
  EXPECT_EQ(m.find(UINT64_MAX, steps), OffsetMap::kNoValue);
}

// Keys whose two buckets are the same pair: at most 2 * kWays fit in the
// buckets, kStash more in the stash, and the next one forces a reseed.
TEST(OffsetMap, KeysCollidingInBothBucketsStayBounded) {
  OffsetMap m(64);
  ASSERT_EQ(m.bucket_count(), 64u);
  const auto target = m.buckets_of(0);
  std::vector<uint64_t> colliding{0};
  for (uint64_t k = 4096; colliding.size() < 40; k += 4096) {
    auto b = m.buckets_of(k);
    if ((b.first == target.first && b.second == target.second) ||
        (b.first == target.second && b.second == target.first))
      colliding.push_back(k);
  }
  const size_t fit = 2 * OffsetMap::kWays + OffsetMap::kStash;
  for (size_t i = 0; i < colliding.size(); ++i) {
    uint64_t steps = 0;
    m.insert(colliding[i], static_cast<uint32_t>(i), steps);
    if (i < fit) {
      EXPECT_EQ(m.reseeds(), 0u) << i;
      EXPECT_LE(steps, OffsetMap::kMaxUpdateSteps) << i;
    } else if (i == fit) {
      // The first key with no room: a reseed, counted bucket by bucket.
      EXPECT_GE(m.reseeds(), 1u);
      EXPECT_GE(steps, m.bucket_count() + i) << "a reseed must count the rebuild";
    }
    for (size_t j = 0; j <= i; ++j) {
      steps = 0;
      ASSERT_EQ(m.find(colliding[j], steps), j) << "after inserting " << i;
      EXPECT_LE(steps, OffsetMap::kMaxFindSteps);
    }
  }
  EXPECT_LE(m.stashed(), OffsetMap::kStash);
  for (size_t i = 0; i < colliding.size(); ++i) {
    uint64_t steps = 0;
    ASSERT_EQ(m.take(colliding[i], steps), i);
    EXPECT_LE(steps, OffsetMap::kMaxUpdateSteps);
  }
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.stashed(), 0);
}

// Aligned blocks have offsets i * 2^k: a million of them, for several k,
// never need more than the bounds (and, with this hash, never a reseed).
TEST(OffsetMap, ArithmeticProgressionsOfOffsets) {
  for (unsigned shift : {0u, 6u, 12u, 21u, 30u, 40u}) {
    OffsetMap m;
    uint64_t max_insert = 0, max_find = 0;
    const uint64_t n = uint64_t{1} << 20;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t steps = 0;
      m.insert(i << shift, static_cast<uint32_t>(i), steps);
      max_insert = std::max(max_insert, steps);
    }
    for (uint64_t i = 0; i < n; i += 3) {
      uint64_t steps = 0;
      ASSERT_EQ(m.find(i << shift, steps), i);
      max_find = std::max(max_find, steps);
    }
    EXPECT_EQ(m.reseeds(), 0u) << "shift " << shift;
    EXPECT_LE(max_insert, OffsetMap::kMaxUpdateSteps) << "shift " << shift;
    EXPECT_LE(max_find, OffsetMap::kMaxFindSteps) << "shift " << shift;
  }
}

TEST(OffsetMap, ClearEmptiesAndStaysUsable) {
  OffsetMap m;
  uint64_t steps = 0;
  for (uint32_t i = 0; i < 1000; ++i) m.insert(uint64_t{i} * 4096, i, steps);
  m.clear();
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.find(4096, steps), OffsetMap::kNoValue);
  m.insert(4096, 9, steps);
  EXPECT_EQ(m.find(4096, steps), 9u);
}

}  // namespace
}  // namespace pmm::alloc::detail
