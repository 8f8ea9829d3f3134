// tlsf: the bin mapping, the guard against good fit's blind spot, and the
// constant bound on its work.
#include "alloc/tlsf.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "alloc/tlsf_index.h"

namespace pmm::alloc {
namespace {

using detail::kTlsfBins;
using detail::kTlsfNoBin;
using detail::tlsf_bin_floor;
using detail::tlsf_bin_of;
using detail::tlsf_search_bin;

TEST(TlsfBins, CoverEveryLengthInOrderWithinOneThirtySecond) {
  EXPECT_EQ(tlsf_bin_of(1), 1u);
  EXPECT_EQ(tlsf_bin_of(63), 63u);
  EXPECT_EQ(tlsf_bin_of(64), 64u);
  EXPECT_EQ(tlsf_bin_of(65), 64u);
  EXPECT_EQ(tlsf_bin_of(66), 65u);
  EXPECT_EQ(tlsf_bin_of(UINT64_MAX), kTlsfBins - 1);
  // Every bin's floor maps to it, the next floor is above, and the span of a
  // bin is at most 1/32 of its floor.
  for (uint32_t b = 1; b + 1 < kTlsfBins; ++b) {
    uint64_t lo = tlsf_bin_floor(b);
    uint64_t hi = tlsf_bin_floor(b + 1);
    ASSERT_EQ(tlsf_bin_of(lo), b);
    ASSERT_EQ(tlsf_bin_of(hi - 1), b);
    ASSERT_GT(hi, lo);
    ASSERT_LE((hi - lo) * 32, std::max<uint64_t>(lo, 32));
  }
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100000; ++i) {
    uint64_t need = rng() >> (rng() % 64);
    if (need == 0) continue;
    uint32_t b = tlsf_search_bin(need);
    if (b == kTlsfNoBin) {
      ASSERT_GT(need, tlsf_bin_floor(kTlsfBins - 1));
      continue;
    }
    ASSERT_GE(tlsf_bin_floor(b), need);  // every member fits
    if (b > 0) {
      ASSERT_LT(tlsf_bin_floor(b - 1), need);  // and it is the first such bin
    }
  }
}

TEST(Tlsf, FindsAnExactFitInTheRequestsOwnBin) {
  // Holes of 1000 bytes between live blocks, and a big tail used up: good
  // fit alone would look only in bins >= 1000 rounded up and fail.
  auto s = make_tlsf(100000);
  std::vector<Handle> holes;
  for (int i = 0; i < 5; ++i) {
    holes.push_back(s->allocate(1000, 1)->handle);
    ASSERT_TRUE(s->allocate(10, 1).has_value());
  }
  ASSERT_TRUE(s->allocate(s->stats().largest_free, 1).has_value());
  for (Handle h : holes) ASSERT_TRUE(s->release(h).has_value());
  ASSERT_EQ(s->stats().largest_free, 1000u);
  for (int i = 0; i < 5; ++i) {
    auto r = s->allocate(1000, 1);
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error().message;
  }
  auto none = s->allocate(1000, 1);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, Errc::kNoMemory);
  EXPECT_TRUE(s->check_invariants().has_value());
}

TEST(Tlsf, PrefersAGoodFitBinOverScanning) {
  auto s = make_tlsf(1 << 20);
  auto a = s->allocate(4096, 4096);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->offset, 0u);
  auto b = s->allocate(1, 1);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->offset, 4096u);
  EXPECT_EQ(s->stats().free_extents, 1u);
  EXPECT_TRUE(s->check_invariants().has_value());
}

// A 4 KiB hole that starts 64-aligned holds a 4 KiB request aligned to 64
// exactly: tlsf searches by size and pads only where a start needs it, so
// it takes the hole rather than splitting the larger extent above it.
TEST(Tlsf, AnAlignedExactFitIsTakenNotPaddedPast) {
  auto s = make_tlsf(1 << 20);
  auto hole = s->allocate(4096, 64);
  auto sep1 = s->allocate(64, 64);
  auto big = s->allocate(8192, 64);
  auto sep2 = s->allocate(64, 64);
  ASSERT_TRUE(hole && sep1 && big && sep2);
  ASSERT_TRUE(s->allocate(s->stats().largest_free, 1).has_value());
  ASSERT_TRUE(s->release(hole->handle).has_value());
  ASSERT_TRUE(s->release(big->handle).has_value());
  auto r = s->allocate(4096, 64);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->offset, hole->offset);
  EXPECT_EQ(s->stats().free_extents, 1u);
  EXPECT_EQ(s->stats().largest_free, 8192u);
  // A misaligned start still pads: 4096 aligned to 4096 fits only the big one.
  auto wide = s->allocate(4096, 4096);
  ASSERT_TRUE(wide.has_value());
  EXPECT_EQ(wide->offset % 4096, 0u);
  EXPECT_GE(wide->offset, big->offset);
  EXPECT_TRUE(s->check_invariants().has_value());
}

TEST(Tlsf, WorkIsBoundedByAConstant) {
  // A crowded pool with many size classes; the worst count of steps of any
  // call must not depend on how many extents there are.
  auto s = make_tlsf(uint64_t{1} << 36);
  std::mt19937_64 rng(11);
  std::vector<Handle> live;
  uint64_t worst = 0;
  for (int i = 0; i < 400000; ++i) {
    if (live.empty() || rng() % 3 != 0) {
      uint64_t size = 1 + (rng() >> (rng() % 64)) % (1 << 20);
      auto r = s->allocate(size, uint64_t{1} << (rng() % 13));
      if (r) live.push_back(r->handle);
    } else {
      size_t k = rng() % live.size();
      ASSERT_TRUE(s->release(live[k]).has_value());
      live[k] = live.back();
      live.pop_back();
    }
    worst = std::max(worst, s->last_op_steps());
  }
  EXPECT_GT(s->stats().free_extents, 1000u);
  // Index: 3 + 4 * kScanLimit to find, a removal, two insertions, two merges.
  EXPECT_LE(worst, 3u + 4u * detail::TlsfIndex::kScanLimit + 7u);
  EXPECT_TRUE(s->check_invariants().has_value());
}

}  // namespace
}  // namespace pmm::alloc
