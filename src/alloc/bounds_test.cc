// Bounded work per operation, checked through last_op_steps(): in steady
// state (a block allocated and a random one released, as in the benchmark)
// and with adversarial offsets (an arithmetic progression of widely aligned
// blocks), no single allocate or release of tlsf exceeds one constant, and
// none of best_fit exceeds c * log2(free extents) plus constants. With
// physical runs (barriers), both strategies also keep the one-run index
// (one_run_index.h): best_fit's bound once more, plus at most 35 placements
// or longest-piece look-ups of Runs::place_bound() steps each, O(log runs).
// The constants come from the documented rules (tlsf_index.h, fit_index.h,
// one_run_index.h, runs.h), not from measurement.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "alloc/best_fit_index.h"
#include "alloc/strategy.h"
#include "alloc/tlsf_index.h"

namespace pmm::alloc {
namespace {

// tlsf: find <= 3 + 4 * kScanLimit, one removal, two insertions, two
// merges (each a removal and a step).
constexpr uint64_t kTlsfBound = 3 + 4 * detail::TlsfIndex::kScanLimit + 3 + 4;

// best_fit: its length tree (AVL) of at most f nodes is at most
// h = 1.45 log2(f + 2) high (bins cost one step each). An allocate finds
// (two descents and a successor walk: 3h and 2 * kScanLimit list and bin
// steps), removes (a descent, a successor and a retrace: 3h) and inserts
// twice (a descent and a retrace each: 4h); a release removes twice and
// inserts once (8h).
uint64_t best_fit_bound(uint64_t free_extents) {
  const double h = 1.45 * std::log2(static_cast<double>(free_extents) + 2);
  return static_cast<uint64_t>(10 * h) + 2 * detail::BestFitIndex::kScanLimit + 4;
}

// runs.h: one Runs::place() or Runs::longest_piece() call for `runs` runs
// counts at most this many steps. With barriers both strategies keep the
// one-run index beside their own (one_run_index.h): a FitIndex with
// best_fit's bound over the same free extents, a longest_piece() for each of
// an operation's at most 2 insertions, and a one-run request's find looks
// at most kScanLimit + 1 extents (misses, then a hit or the fallback).
uint64_t place_bound(uint64_t runs) {
  return 2 * (std::bit_width(runs) + 1) + 3 * std::bit_width(std::bit_ceil(runs)) + 2;
}
uint64_t one_run_extra(uint64_t free_extents, uint64_t runs) {
  return best_fit_bound(free_extents) +
         (detail::BestFitIndex::kScanLimit + 1 + 2) * place_bound(runs);
}

struct Churn {
  uint64_t max_steps = 0;
  uint64_t max_free_extents = 0;
};

// Pre-fills `live` blocks, then runs `pairs` allocate + random release pairs
// (sizes 64 B - 4 KiB, alignment 64), recording the largest step count.
Churn churn(Strategy& s, uint64_t live, uint64_t pairs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto size = [&] { return 64 * (1 + rng() % 64); };
  std::vector<Handle> held;
  for (uint64_t i = 0; i < live; ++i) held.push_back(s.allocate(size(), 64)->handle);
  Churn c;
  for (uint64_t i = 0; i < pairs; ++i) {
    auto off = s.allocate(size(), 64);
    EXPECT_TRUE(off.has_value());
    if (!off) break;
    c.max_steps = std::max(c.max_steps, s.last_op_steps());
    Handle& victim = held[rng() % live];
    EXPECT_TRUE(s.release(victim).has_value());
    c.max_steps = std::max(c.max_steps, s.last_op_steps());
    victim = off->handle;
    if (i % 1024 == 0) c.max_free_extents = std::max(c.max_free_extents, s.stats().free_extents);
  }
  return c;
}

class Bounds : public ::testing::TestWithParam<std::string> {};

TEST_P(Bounds, SteadyStateStaysWithinTheBound) {
  for (uint64_t live : {1'000u, 100'000u}) {
    auto s = make_strategy(GetParam(), uint64_t{1} << 32);
    ASSERT_TRUE(s.has_value());
    Churn c = churn(**s, live, 300'000, live);
    const uint64_t bound =
        GetParam() == "tlsf" ? kTlsfBound : best_fit_bound(c.max_free_extents + live);
    EXPECT_LE(c.max_steps, bound) << live << " live";
    std::printf("%s, %llu live: max steps %llu (bound %llu)\n", GetParam().c_str(),
                static_cast<unsigned long long>(live), static_cast<unsigned long long>(c.max_steps),
                static_cast<unsigned long long>(bound));
    ASSERT_TRUE((*s)->check_invariants().has_value());
  }
}

// Blocks at offsets i * 2^30, released in random order, reallocated: every
// request pads to a wide alignment.
TEST_P(Bounds, WidelyAlignedOffsetsStayWithinTheBound) {
  constexpr uint64_t kBlocks = 100'000;
  auto made = make_strategy(GetParam(), uint64_t{1} << 50);
  ASSERT_TRUE(made.has_value());
  Strategy& s = **made;
  std::vector<Handle> offs;
  uint64_t max_steps = 0;
  for (uint64_t i = 0; i < kBlocks; ++i) {
    auto r = s.allocate(1 + i % 4096, uint64_t{1} << 30);
    ASSERT_TRUE(r.has_value());
    offs.push_back(r->handle);
  }
  std::mt19937_64 rng(3);
  std::shuffle(offs.begin(), offs.end(), rng);
  for (uint64_t i = 0; i < kBlocks; ++i) {
    ASSERT_TRUE(s.release(offs[i]).has_value());
    max_steps = std::max(max_steps, s.last_op_steps());
    auto r = s.allocate(4096, uint64_t{1} << 30);
    ASSERT_TRUE(r.has_value());
    max_steps = std::max(max_steps, s.last_op_steps());
    offs[i] = r->handle;
  }
  const uint64_t bound =
      GetParam() == "tlsf" ? kTlsfBound : best_fit_bound(s.stats().free_extents + kBlocks);
  EXPECT_LE(max_steps, bound);
  ASSERT_TRUE(s.check_invariants().has_value());
}

// A hugetlb-like space: 4096 runs of 2 MiB (no two adjacent), blocks of
// 4 KiB - 8 MiB, half of the requests for one run. Ordinary blocks span runs
// and one-run requests search among extents that cross many runs; refusals
// (a one-run request larger than every free piece) are the most work of all.
TEST_P(Bounds, OneRunRequestsAmongManyRunsStayWithinTheBound) {
  constexpr uint64_t kRun = 2 << 20;
  constexpr uint64_t kRuns = 4096;
  auto made = make_strategy(GetParam(), kRun * kRuns);
  ASSERT_TRUE(made.has_value());
  Strategy& s = **made;
  std::vector<uint64_t> barriers;
  for (uint64_t r = 1; r < kRuns; ++r) barriers.push_back(r * kRun);
  ASSERT_TRUE(s.set_barriers(barriers).has_value());
  std::mt19937_64 rng(11);
  auto size = [&] { return uint64_t{4096} << (rng() % 12); };  // 4 KiB - 8 MiB
  std::vector<Handle> held;
  uint64_t max_steps = 0;
  uint64_t max_free_extents = 0;
  uint64_t one_run_ok = 0;
  uint64_t refused = 0;
  for (uint64_t i = 0; i < 200'000; ++i) {
    const bool one_run = rng() % 2 == 0;
    const uint64_t align = uint64_t{4096} << (rng() % 11);  // 4 KiB - 4 MiB
    auto r = s.allocate(size(), align, one_run ? Span::kOneRun : Span::kAny);
    max_steps = std::max(max_steps, s.last_op_steps());
    if (r) {
      held.push_back(r->handle);
      one_run_ok += one_run ? 1 : 0;
    } else {
      ASSERT_EQ(r.error().code, Errc::kNoMemory);
      ++refused;
    }
    // Keep the space about three quarters full.
    while (!held.empty() && (!r || s.stats().bytes_used > kRun * kRuns / 4 * 3)) {
      const size_t k = rng() % held.size();
      ASSERT_TRUE(s.release(held[k]).has_value());
      max_steps = std::max(max_steps, s.last_op_steps());
      held[k] = held.back();
      held.pop_back();
      if (r) break;
    }
    if (i % 1024 == 0) max_free_extents = std::max(max_free_extents, s.stats().free_extents);
  }
  const uint64_t base =
      GetParam() == "tlsf" ? kTlsfBound : best_fit_bound(max_free_extents + held.size() + 1024);
  const uint64_t bound = base + one_run_extra(max_free_extents + held.size() + 1024, kRuns);
  EXPECT_LE(max_steps, bound);
  EXPECT_GT(one_run_ok, 1000u);
  EXPECT_GT(refused, 0u);
  std::printf("%s, %llu runs: max steps %llu (bound %llu), %llu one-run blocks, %llu refused\n",
              GetParam().c_str(), static_cast<unsigned long long>(kRuns),
              static_cast<unsigned long long>(max_steps), static_cast<unsigned long long>(bound),
              static_cast<unsigned long long>(one_run_ok),
              static_cast<unsigned long long>(refused));
  ASSERT_TRUE(s.check_invariants().has_value());
}

INSTANTIATE_TEST_SUITE_P(Both, Bounds, ::testing::Values("best_fit", "tlsf"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace pmm::alloc
