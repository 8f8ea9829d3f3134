// Edge cases every strategy must handle the same way: bad arguments, bad
// releases, a full region, exact fits, barriers. Runs for best_fit and tlsf.
#include "alloc/strategy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pmm::alloc {
namespace {

using ::testing::HasSubstr;

class StrategyEdges : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Strategy> make(uint64_t size) {
    auto s = make_strategy(GetParam(), size);
    EXPECT_TRUE(s.has_value()) << s.error().message;
    return std::move(*s);
  }
};

TEST(MakeStrategy, RejectsUnknownNameAndEmptyRegion) {
  auto bad = make_strategy("first_fit", 1024);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(bad.error().message, HasSubstr("best_fit or tlsf"));
  auto empty = make_strategy("tlsf", 0);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(empty.error().message, HasSubstr("at least 1 byte"));
  auto ok = make_strategy("best_fit", 1);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ((*ok)->name(), "best_fit");
}

TEST_P(StrategyEdges, RejectsBadSizesAndAlignments) {
  auto s = make(1 << 20);
  auto zero = s->allocate(0, 1);
  ASSERT_FALSE(zero.has_value());
  EXPECT_EQ(zero.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(zero.error().message, HasSubstr("at least 1 byte"));

  auto huge = s->allocate(UINT64_MAX, 1);
  ASSERT_FALSE(huge.has_value());
  EXPECT_EQ(huge.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(huge.error().message, HasSubstr("1 to 1048576 bytes"));

  for (uint64_t a : {uint64_t{0}, uint64_t{3}, uint64_t{6}, (uint64_t{1} << 63) + 1}) {
    auto r = s->allocate(64, a);
    ASSERT_FALSE(r.has_value()) << a;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_THAT(r.error().message, HasSubstr("not a power of two"));
    EXPECT_THAT(r.error().message, HasSubstr("up to 1 MiB"));
  }
  auto big_align = s->allocate(64, uint64_t{1} << 63);
  ASSERT_FALSE(big_align.has_value());
  EXPECT_EQ(big_align.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(big_align.error().message, HasSubstr("larger than the region"));

  // Alignment equal to the region is valid: offset 0 is aligned to anything.
  auto whole = s->allocate(1, 1 << 20);
  ASSERT_TRUE(whole.has_value()) << whole.error().message;
  EXPECT_EQ(whole->offset, 0u);
  EXPECT_TRUE(s->check_invariants().has_value());
}

// Handles that name no live block: released (stale), reused record with
// another stamp, a free extent's record, an index beyond every record,
// anything made up. Each is kNotFound, and the live block is untouched.
TEST_P(StrategyEdges, RejectsStaleForgedAndDoubleReleases) {
  auto s = make(1 << 20);
  auto a = s->allocate(4096, 4096);
  ASSERT_TRUE(a.has_value());
  auto b = s->allocate(4096, 4096);
  ASSERT_TRUE(b.has_value());
  const uint64_t index = a->handle.bits & 0xffff'ffffu;
  const uint64_t stamp = a->handle.bits >> 32;
  for (uint64_t forged : {uint64_t{0}, uint64_t{12345}, UINT64_MAX,
                          ((stamp + 1) << 32) | index,   // a's record, wrong stamp
                          (stamp << 32) | 0xffff'fffeu,  // beyond every record
                          (stamp << 32) | (b->handle.bits & 0xffff'ffffu)}) {
    auto r = s->release(Handle{forged});
    ASSERT_FALSE(r.has_value()) << std::hex << forged;
    EXPECT_EQ(r.error().code, Errc::kNotFound);
    EXPECT_THAT(r.error().message, HasSubstr("names no live block"));
  }
  auto ext = s->block(a->handle);
  ASSERT_TRUE(ext.has_value());
  EXPECT_EQ(ext->offset, a->offset);
  EXPECT_EQ(ext->size, 4096u);
  ASSERT_TRUE(s->release(a->handle).has_value());
  auto twice = s->release(a->handle);
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code, Errc::kNotFound);
  EXPECT_THAT(twice.error().message, HasSubstr("released already"));
  EXPECT_EQ(s->block(a->handle).error().code, Errc::kNotFound);
  // A new block (best_fit puts it where a was, in a's old record): a new
  // handle, and the old one still refused.
  auto again = s->allocate(4096, 4096);
  ASSERT_TRUE(again.has_value());
  EXPECT_NE(again->handle, a->handle);
  EXPECT_EQ(s->release(a->handle).error().code, Errc::kNotFound);
  EXPECT_EQ(s->stats().live_blocks, 2u);
  ASSERT_TRUE(s->release(again->handle).has_value());
  ASSERT_TRUE(s->release(b->handle).has_value());
  EXPECT_TRUE(s->check_invariants().has_value());
  Stats st = s->stats();
  EXPECT_EQ(st.live_blocks, 0u);
  EXPECT_EQ(st.free_extents, 1u);
  EXPECT_EQ(st.largest_free, 1u << 20);
}

TEST_P(StrategyEdges, FillsTheRegionExactlyAndReportsTheLargestExtent) {
  auto s = make(1000);
  std::vector<Allocation> offs;
  for (int i = 0; i < 10; ++i) {
    auto r = s->allocate(100, 1);
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error().message;
    offs.push_back(*r);
  }
  Stats full = s->stats();
  EXPECT_EQ(full.bytes_used, 1000u);
  EXPECT_EQ(full.bytes_free, 0u);
  EXPECT_EQ(full.free_extents, 0u);
  EXPECT_EQ(full.largest_free, 0u);
  auto none = s->allocate(1, 1);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, Errc::kNoMemory);
  EXPECT_THAT(none.error().message, HasSubstr("none is free"));
  // Free one block in the middle: an exact fit for 100 bytes, not for 101.
  ASSERT_TRUE(s->release(offs[4].handle).has_value());
  auto too_big = s->allocate(101, 1);
  ASSERT_FALSE(too_big.has_value());
  EXPECT_EQ(too_big.error().code, Errc::kNoMemory);
  EXPECT_THAT(too_big.error().message, HasSubstr("101 bytes"));
  EXPECT_THAT(too_big.error().message, HasSubstr("largest free extent is 100 bytes at offset"));
  auto exact = s->allocate(100, 1);
  ASSERT_TRUE(exact.has_value()) << exact.error().message;
  EXPECT_EQ(exact->offset, offs[4].offset);
  offs[4] = *exact;
  for (const Allocation& o : offs) ASSERT_TRUE(s->release(o.handle).has_value());
  EXPECT_TRUE(s->check_invariants().has_value());
  EXPECT_EQ(s->stats().largest_free, 1000u);
}

TEST_P(StrategyEdges, WholeRegionOfMaximalSize) {
  auto s = make(UINT64_MAX);
  auto all = s->allocate(UINT64_MAX, 1);
  ASSERT_TRUE(all.has_value()) << all.error().message;
  EXPECT_EQ(all->offset, 0u);
  EXPECT_EQ(s->block(all->handle)->size, UINT64_MAX);
  ASSERT_TRUE(s->release(all->handle).has_value());
  auto high = s->allocate(uint64_t{1} << 62, uint64_t{1} << 62);
  ASSERT_TRUE(high.has_value()) << high.error().message;
  EXPECT_EQ(high->offset % (uint64_t{1} << 62), 0u);
  auto r2 = s->allocate((uint64_t{1} << 63) - 1, 2);
  ASSERT_TRUE(r2.has_value()) << r2.error().message;
  EXPECT_TRUE(s->check_invariants().has_value()) << s->check_invariants().error().message;
}

// Barriers bind only requests that ask for one run: an ordinary block spans
// them, free space merges across them, and a one-run block lies inside one
// run (runs [0, 256K), [256K, 512K), [512K, 1M) here).
TEST_P(StrategyEdges, BarriersBindOnlyOneRunRequests) {
  auto s = make(1 << 20);
  const std::vector<uint64_t> zero{0}, end{1 << 20}, out{uint64_t{1} << 40};
  EXPECT_EQ(s->set_barriers(zero).error().code, Errc::kInvalidArgument);
  EXPECT_THAT(s->set_barriers(end).error().message, HasSubstr("strictly inside"));
  EXPECT_EQ(s->set_barriers(out).error().code, Errc::kInvalidArgument);
  const std::vector<uint64_t> bars{1 << 19, 1 << 18, 1 << 19};  // unsorted, repeated
  ASSERT_TRUE(s->set_barriers(bars).has_value());
  EXPECT_EQ(s->stats().free_extents, 1u);
  EXPECT_EQ(s->stats().largest_free, 1u << 20);
  // An ordinary block crosses both barriers.
  auto across = s->allocate((1 << 19) + 1, 1);
  ASSERT_TRUE(across.has_value()) << across.error().message;
  EXPECT_EQ(across->offset, 0u);
  const std::vector<uint64_t> more{12345};
  auto late = s->set_barriers(more);
  ASSERT_FALSE(late.has_value());
  EXPECT_THAT(late.error().message, HasSubstr("while no block is live"));
  ASSERT_TRUE(s->release(across->handle).has_value());
  EXPECT_EQ(s->stats().free_extents, 1u);  // merged across the barriers again
  // A one-run block larger than every run is refused, saying why.
  auto big = s->allocate((1 << 19) + 1, 1, Span::kOneRun);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code, Errc::kNoMemory);
  EXPECT_THAT(big.error().message, HasSubstr("inside one of the 3 physical runs"));
  // 512 KiB in one run: only the last run is that long, though the free
  // extent starts at 0.
  auto half = s->allocate(1 << 19, 1, Span::kOneRun);
  ASSERT_TRUE(half.has_value()) << half.error().message;
  EXPECT_EQ(half->offset, 1u << 19);
  // 200 KiB in one run, 4 KiB aligned, with [0, 100K) taken: not at 100K
  // (that would cross 256K) but at the start of the next run.
  auto low = s->allocate(100 << 10, 1);
  ASSERT_TRUE(low.has_value());
  EXPECT_EQ(low->offset, 0u);
  auto mid = s->allocate(200 << 10, 4096, Span::kOneRun);
  ASSERT_TRUE(mid.has_value()) << mid.error().message;
  EXPECT_EQ(mid->offset, 1u << 18);
  // The same request, ordinary, takes the first fit and crosses 256K.
  ASSERT_TRUE(s->release(mid->handle).has_value());
  auto any = s->allocate(200 << 10, 4096);
  ASSERT_TRUE(any.has_value());
  EXPECT_EQ(any->offset, 100u << 10);
  EXPECT_GT(any->offset + (200 << 10), 1u << 18);
  EXPECT_TRUE(s->check_invariants().has_value()) << s->check_invariants().error().message;
  for (Handle h : {half->handle, low->handle, any->handle}) ASSERT_TRUE(s->release(h).has_value());
  EXPECT_EQ(s->stats().free_extents, 1u);
  ASSERT_TRUE(s->set_barriers(more).has_value());
  EXPECT_EQ(s->stats().free_extents, 1u);
  EXPECT_TRUE(s->check_invariants().has_value()) << s->check_invariants().error().message;
}

TEST_P(StrategyEdges, AlignmentPaddingStaysFreeAndCoalesces) {
  auto s = make(1 << 16);
  auto a = s->allocate(1, 1);  // at 0
  ASSERT_TRUE(a.has_value());
  auto b = s->allocate(100, 4096);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->offset % 4096, 0u);
  EXPECT_EQ(s->stats().free_extents, 2u);  // the padding and the rest
  EXPECT_EQ(s->stats().bytes_used, 101u);
  ASSERT_TRUE(s->release(b->handle).has_value());
  ASSERT_TRUE(s->release(a->handle).has_value());
  EXPECT_EQ(s->stats().free_extents, 1u);
  EXPECT_EQ(s->stats().largest_free, 1u << 16);
  EXPECT_TRUE(s->check_invariants().has_value());
}

INSTANTIATE_TEST_SUITE_P(Both, StrategyEdges, ::testing::Values("best_fit", "tlsf"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace pmm::alloc
