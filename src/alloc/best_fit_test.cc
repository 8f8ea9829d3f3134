// best_fit: the choice of extent (smallest that holds the aligned request,
// the most recently freed among equals) and the O(log n) bound on its work.
#include "alloc/best_fit.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <vector>

#include "alloc/best_fit_index.h"

namespace pmm::alloc {
namespace {

// Carves [0, size) into blocks of the given sizes and releases the ones
// marked free, leaving holes of exactly those sizes between live blocks.
std::vector<Allocation> carve(Strategy& s, const std::vector<uint64_t>& sizes,
                              const std::vector<bool>& hole) {
  std::vector<Allocation> offs;
  for (uint64_t n : sizes) {
    auto r = s.allocate(n, 1);
    EXPECT_TRUE(r.has_value());
    offs.push_back(*r);
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (hole[i]) {
      EXPECT_TRUE(s.release(offs[i].handle).has_value());
    }
  }
  return offs;
}

TEST(BestFit, TakesTheSmallestHoleThatHoldsTheRequest) {
  auto s = make_best_fit(10000);
  // Holes of 300, 120, 200 and 120 bytes between 10-byte live blocks.
  auto offs = carve(*s, {300, 10, 120, 10, 200, 10, 120, 10}, {1, 0, 1, 0, 1, 0, 1, 0});
  auto a = s->allocate(110, 1);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->offset, offs[6].offset);  // the 120-byte hole freed last
  auto b = s->allocate(110, 1);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->offset, offs[2].offset);  // then the other one
  auto c = s->allocate(150, 1);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->offset, offs[4].offset);  // 200 before 300 and before the tail
  EXPECT_TRUE(s->check_invariants().has_value());
}

TEST(BestFit, AlignmentIsExactNotRoundedUp) {
  auto s = make_best_fit(1 << 20);
  // A 200-byte hole at offset 1 cannot hold 150 bytes aligned to 64 (64 +
  // 150 > 201); a 250-byte hole at 1000 can (1024 + 150 <= 1250): best fit
  // must skip the first and take the second although 250 < 150 + 63 + 64.
  auto offs = carve(*s, {1, 200, 799, 250, 10}, {0, 1, 0, 1, 0});
  ASSERT_EQ(offs[1].offset, 1u);
  ASSERT_EQ(offs[3].offset, 1000u);
  auto a = s->allocate(150, 64);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->offset, 1024u);
  // The 24 bytes before it and the 76 after stay free.
  EXPECT_EQ(s->stats().free_extents, 4u);
  auto pad = s->allocate(24, 8);
  ASSERT_TRUE(pad.has_value());
  EXPECT_EQ(pad->offset, 1000u);
  ASSERT_TRUE(s->release(pad->handle).has_value());
  ASSERT_TRUE(s->release(a->handle).has_value());
  EXPECT_EQ(s->stats().free_extents, 3u);  // the hole at 1000 is whole again
  EXPECT_TRUE(s->check_invariants().has_value());
}

TEST(BestFit, WorkIsLogarithmicInFreeExtents) {
  // 100k holes of distinct sizes between 1-byte live blocks.
  constexpr uint64_t kHoles = 100000;
  auto s = make_best_fit(uint64_t{1} << 40);
  std::vector<Handle> holes;
  for (uint64_t i = 0; i < kHoles; ++i) {
    auto h = s->allocate(64 + (i * 7919) % kHoles, 1);
    auto sep = s->allocate(1, 1);
    ASSERT_TRUE(h && sep);
    holes.push_back(h->handle);
  }
  for (Handle h : holes) ASSERT_TRUE(s->release(h).has_value());
  ASSERT_EQ(s->stats().free_extents, kHoles + 1);
  const uint64_t log2n = std::bit_width(kHoles);  // 17
  // Lengths of 16 KiB and more sit in the length tree (AVL, height <= 1.44
  // log2(n)); a call does a few descents and retraces, plus up to
  // kScanLimit list or successor steps when the alignment is > 1.
  const uint64_t bound = 8 * log2n + 4 * detail::BestFitIndex::kScanLimit;
  uint64_t worst = 0;
  for (uint64_t i = 0; i < 20000; ++i) {
    auto r = s->allocate(1 + (i * 104729) % (kHoles + 100), uint64_t{1} << (i % 13));
    ASSERT_TRUE(r.has_value());
    worst = std::max(worst, s->last_op_steps());
    ASSERT_TRUE(s->release(r->handle).has_value());
    worst = std::max(worst, s->last_op_steps());
  }
  EXPECT_LE(worst, bound);
  EXPECT_GT(worst, log2n);  // it does count something
  EXPECT_TRUE(s->check_invariants().has_value());
}

}  // namespace
}  // namespace pmm::alloc
