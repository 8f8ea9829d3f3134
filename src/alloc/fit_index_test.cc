// FitIndex::rekey (an extent's length changed while it stayed free) leaves
// the index exactly as removing the extent under its old key and inserting
// it under its new one would: every find answers the same extent at the same
// place, the largest is the same, and the structure checks pass, whether the
// tree node was re-keyed in place or not. And the in-place case does less
// work than the removal and insertion it replaces.
#include "alloc/fit_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "alloc/segment.h"
#include "alloc/size_bins.h"

namespace pmm::alloc::detail {
namespace {

// Free extents as records of their own: key = length, list words beside.
struct Extents {
  std::vector<Segment> segs;
  std::vector<uint32_t> prev, next;
  std::vector<bool> in;
};

struct TestLinks {
  Extents* e;
  [[nodiscard]] uint64_t key(uint32_t i) const { return e->segs[i].len; }
  [[nodiscard]] uint32_t& prev(uint32_t i) const { return e->prev[i]; }
  [[nodiscard]] uint32_t& next(uint32_t i) const { return e->next[i]; }
};

constexpr uint32_t kExtents = 400;

// A length drawn so that equal lengths, bin lengths (< SizeBins::kBins) and
// tree lengths all occur, and neighbours in the tree are often adjacent.
uint64_t draw_len(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return 1 + rng() % (2 * SizeBins::kBins);
    case 1:
      return SizeBins::kBins + (rng() % 64) * 4096;  // few distinct: shared nodes
    case 2:
      return SizeBins::kBins + rng() % (uint64_t{1} << 30);
    default:
      return (uint64_t{1} << 32) + rng() % 1000;  // near the largest
  }
}

TEST(FitIndex, RekeyMatchesRemoveThenInsertWhateverTheKeys) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    std::mt19937_64 rng(seed);
    // a: changed through rekey; b: through remove and insert.
    Extents a, b;
    for (Extents* x : {&a, &b}) {
      x->segs.resize(kExtents);
      x->prev.assign(kExtents, kNil);
      x->next.assign(kExtents, kNil);
      x->in.assign(kExtents, false);
    }
    FitIndex<TestLinks> fa, fb;
    uint64_t steps = 0;
    for (uint32_t i = 0; i < kExtents; ++i) a.segs[i].start = b.segs[i].start = uint64_t{i} << 40;
    for (int op = 0; op < 6000; ++op) {
      const uint32_t i = static_cast<uint32_t>(rng() % kExtents);
      const uint64_t len = draw_len(rng);
      if (!a.in[i]) {
        a.segs[i].len = b.segs[i].len = len;
        fa.insert({&a}, i, steps);
        fb.insert({&b}, i, steps);
        a.in[i] = b.in[i] = true;
      } else if (rng() % 5 == 0) {
        fa.remove({&a}, i, steps);
        fb.remove({&b}, i, steps);
        a.in[i] = b.in[i] = false;
      } else {
        // Often a small move, the case rekey keeps in place.
        uint64_t to = len;
        if (rng() % 2 != 0) to = a.segs[i].len > 4096 ? a.segs[i].len - 4096 : a.segs[i].len + 4096;
        if (to == a.segs[i].len) to = a.segs[i].len + 1;
        const uint64_t was = a.segs[i].len;
        a.segs[i].len = to;
        fa.rekey({&a}, i, was, steps);
        fb.remove({&b}, i, steps);
        b.segs[i].len = to;
        fb.insert({&b}, i, steps);
      }
      ASSERT_EQ(fa.count(), fb.count());
      ASSERT_EQ(fa.largest(), fb.largest()) << "seed " << seed << " op " << op;
      for (int q = 0; q < 4; ++q) {
        const uint64_t size = draw_len(rng);
        const uint64_t align = uint64_t{1} << (rng() % 20);
        uint64_t at_a = 0, at_b = 0;
        const uint32_t xa = fa.find({&a}, a.segs.data(), size, align, nullptr, at_a, steps);
        const uint32_t xb = fb.find({&b}, b.segs.data(), size, align, nullptr, at_b, steps);
        ASSERT_EQ(xa, xb) << "seed " << seed << " op " << op << " size " << size;
        if (xa != kNil) {
          ASSERT_EQ(at_a, at_b);
        }
      }
      if (op % 50 == 0) {
        Status ok = fa.check({&a}, kExtents, [&](uint32_t x) { return a.in[x]; });
        ASSERT_TRUE(ok.has_value()) << ok.error().message;
      }
    }
    Status ok = fa.check({&a}, kExtents, [&](uint32_t x) { return a.in[x]; });
    ASSERT_TRUE(ok.has_value()) << ok.error().message;
  }
}

// The largest of many distinct long extents shrinking and growing (blocks
// cut from it and given back) costs fewer steps re-keyed than removed and
// inserted: its node changes length in place, no erase or rebalancing.
TEST(FitIndex, RekeyOfTheLargestIsCheaperThanRemoveAndInsert) {
  Extents a;
  constexpr uint32_t kN = 1000;
  a.segs.resize(kN);
  a.prev.assign(kN, kNil);
  a.next.assign(kN, kNil);
  a.in.assign(kN, true);
  FitIndex<TestLinks> f;
  uint64_t steps = 0;
  for (uint32_t i = 0; i < kN; ++i) {
    a.segs[i].len = SizeBins::kBins + uint64_t{i} * 8192;
    f.insert({&a}, i, steps);
  }
  const uint32_t big = kN - 1;
  uint64_t rekey_steps = 0, plain_steps = 0;
  for (int round = 0; round < 100; ++round) {
    const uint64_t was = a.segs[big].len;
    a.segs[big].len = was - 4096;
    steps = 0;
    f.rekey({&a}, big, was, steps);
    rekey_steps += steps;
    // The same change back, the plain way.
    steps = 0;
    f.remove({&a}, big, steps);
    a.segs[big].len = was;
    f.insert({&a}, big, steps);
    plain_steps += steps;
  }
  EXPECT_EQ(f.largest(), big);
  Status ok = f.check({&a}, kN, [&](uint32_t x) { return a.in[x]; });
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_LT(rekey_steps, plain_steps);
  std::printf("largest of %u re-keyed: %llu steps per change, removed and inserted: %llu\n", kN,
              static_cast<unsigned long long>(rekey_steps / 100),
              static_cast<unsigned long long>(plain_steps / 100));
}

}  // namespace
}  // namespace pmm::alloc::detail
