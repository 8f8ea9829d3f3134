// Differential test: millions of random operations on best_fit and tlsf,
// each answered also by the brute-force ReferenceModel and compared.
//
// best_fit's offset is fixed by its rule, so every offset is compared
// exactly, and so is every one-run block of either strategy (both take the
// one-run index's answer). tlsf's is checked for validity (aligned, inside one free extent
// of the model, hence in range, not overlapping, not straddling a barrier),
// for taking the bin its rule names, and a failure is accepted only when the
// model shows no extent its guarantee promises to find. Stats are compared
// and check_invariants runs periodically and at the end.
//
// PMM_TEST_SCALE (default 1) multiplies the operation count; the default
// keeps the suite well under a minute in release and a few under ASan.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "alloc/reference_model.h"
#include "alloc/strategy.h"

namespace pmm::alloc {
namespace {

using reference::ReferenceModel;

double test_scale() {
  const char* s = std::getenv("PMM_TEST_SCALE");
  double v = s ? std::atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

struct Config {
  uint64_t region;
  int barriers;               // random barriers set before the run
  uint64_t max_size;          // largest ordinary request
  unsigned max_align;         // log2 of the largest ordinary alignment
  uint64_t ops;               // operations at scale 1
  uint64_t barrier_unit = 1;  // barriers fall on multiples of this (a page size)
};

class Differential {
 public:
  Differential(std::string name, const Config& c, uint64_t seed)
      : name_(std::move(name)), c_(c), rng_(seed), model_(c.region) {
    auto s = make_strategy(name_, c.region);
    EXPECT_TRUE(s.has_value());
    s_ = std::move(*s);
  }

  void run() {
    set_barriers();
    const uint64_t ops = static_cast<uint64_t>(static_cast<double>(c_.ops) * test_scale());
    // The live-block target drifts so runs see both crowded and empty pools.
    uint64_t target = 1 + rng_() % 300;
    for (uint64_t i = 0; i < ops && !::testing::Test::HasFailure(); ++i) {
      if (i % 5000 == 0) target = 1 + rng_() % 300;
      uint64_t live = model_.blocks().size();
      bool alloc = live == 0 || (live < target ? rng_() % 4 != 0 : rng_() % 4 == 0);
      if (alloc) {
        allocate();
      } else {
        release();
      }
      if (i % 997 == 0) compare_stats();
      if (i % 9973 == 0) check();
    }
    compare_stats();
    check();
    std::vector<uint64_t> offs;
    for (const auto& [off, size] : model_.blocks()) offs.push_back(off);
    for (uint64_t off : offs) {
      ASSERT_TRUE(s_->release(handles_.at(off)).has_value());
      ASSERT_TRUE(model_.release(off));
      handles_.erase(off);
    }
    compare_stats();
    check();
    EXPECT_EQ(s_->stats().free_extents, model_.free_extents().size());
  }

 private:
  uint64_t log_uniform(uint64_t lo, uint64_t hi) {  // inclusive, lo >= 1
    double a = std::log2(static_cast<double>(lo));
    double b = std::log2(static_cast<double>(hi) + 1);
    double x = std::exp2(a + (b - a) * std::uniform_real_distribution<double>(0, 1)(rng_));
    return std::clamp(static_cast<uint64_t>(x), lo, hi);
  }

  void set_barriers() {
    if (c_.barriers == 0 || c_.region < 2) return;
    std::vector<uint64_t> b;
    const uint64_t units = (c_.region - 1) / c_.barrier_unit;
    for (int i = 0; i < c_.barriers; ++i) b.push_back(c_.barrier_unit * (1 + rng_() % units));
    bool want = model_.set_barriers(b);
    ASSERT_EQ(s_->set_barriers(b).has_value(), want);
  }

  void allocate() {
    uint64_t size;
    uint64_t align;
    uint64_t pick = rng_() % 100;
    if (pick == 0) {
      size = rng_() % 3 == 0 ? 0 : c_.region + 1 + rng_() % 1000;  // invalid: 0 or beyond
    } else if (pick < 3) {
      size = 1 + rng_() % c_.region;  // anything up to the whole region
    } else {
      size = log_uniform(1, std::min(c_.max_size, c_.region));
    }
    pick = rng_() % 100;
    if (pick == 0) {
      align = rng_() % 5 == 0 ? 0 : (rng_() | 1) + 2;  // not a power of two
    } else if (pick == 1) {
      align = uint64_t{1} << (rng_() % 64);  // may exceed the region
    } else {
      align = uint64_t{1} << (rng_() % (c_.max_align + 1));
      if (rng_() % 2 == 0) align = 1;
    }
    // A third of the requests in a space with barriers must stay in one run.
    const bool one_run = !model_.barriers().empty() && rng_() % 3 == 0;
    auto r = s_->allocate(size, align, one_run ? Span::kOneRun : Span::kAny);
    if (!model_.valid_request(size, align)) {
      ASSERT_FALSE(r.has_value()) << "size " << size << " align " << align;
      ASSERT_EQ(r.error().code, Errc::kInvalidArgument);
      return;
    }
    // A one-run request (barriers exist) takes the one-run index's answer
    // in both strategies (one_run_index.h), which the model names exactly.
    if (name_ == "best_fit" || one_run) {
      std::optional<uint64_t> want = model_.best_fit_choice(size, align, one_run);
      if (!want) {
        ASSERT_FALSE(r.has_value())
            << "size " << size << " align " << align << " got " << r->offset;
        ASSERT_EQ(r.error().code, Errc::kNoMemory);
        ++no_memory_;
        return;
      }
      ASSERT_TRUE(r.has_value()) << r.error().message;
      ASSERT_EQ(r->offset, *want) << "size " << size << " align " << align;
      if (!one_run && model_.true_best_fit(size, align) != want) ++settled_;
    } else {
      uint32_t good_bin = 0;
      bool must = model_.tlsf_must_succeed(size, align, good_bin);
      if (!r.has_value()) {
        ASSERT_EQ(r.error().code, Errc::kNoMemory);
        ASSERT_FALSE(must) << "size " << size << " align " << align << ": " << r.error().message;
        ++no_memory_;
        return;
      }
      ASSERT_EQ(r->offset % align, 0u);
      const ReferenceModel::Extent* e = model_.containing(r->offset, size);
      ASSERT_NE(e, nullptr) << "tlsf placed " << size << " bytes at " << r->offset
                            << " outside every free extent";
      // Wherever tlsf's extent is, the block sits where the rule puts it.
      ASSERT_EQ(r->offset, model_.place(*e, size, align, one_run)) << "size " << size;
      if (good_bin != detail::kTlsfNoBin) {
        ASSERT_EQ(detail::tlsf_bin_of(e->len), good_bin) << "size " << size << " align " << align;
      }
    }
    // Checked apart from the rule: a one-run block never straddles a barrier.
    if (one_run) {
      ASSERT_FALSE(model_.crosses_barrier(r->offset, size))
          << size << " bytes at " << r->offset << " asked for one run";
      ++one_run_;
    } else if (model_.crosses_barrier(r->offset, size)) {
      ++crossed_;
    }
    model_.place(r->offset, size);
    handles_[r->offset] = r->handle;
  }

  void release() {
    uint64_t pick = rng_() % 100;
    if (pick < 3 || model_.blocks().empty()) {
      // A handle that names no live block: random bits, a live block's
      // with its stamp changed, or one just released.
      Handle h{rng_()};
      if (pick == 1 && !model_.blocks().empty())
        h.bits = handles_.begin()->second.bits ^ (uint64_t{1} << (32 + rng_() % 32));
      if (pick == 2 && last_released_) h = *last_released_;
      auto r = s_->release(h);
      ASSERT_FALSE(r.has_value()) << "handle " << h.bits;
      ASSERT_EQ(r.error().code, Errc::kNotFound);
      return;
    }
    // A live block, chosen roughly uniformly.
    auto it = model_.blocks().lower_bound(rng_() % c_.region);
    if (it == model_.blocks().end()) it = model_.blocks().begin();
    uint64_t off = it->first;
    uint64_t size = it->second;
    const Handle h = handles_.at(off);
    auto ext = s_->block(h);
    ASSERT_TRUE(ext.has_value());
    ASSERT_EQ(ext->offset, off);
    ASSERT_EQ(ext->size, size);
    ASSERT_TRUE(model_.release(off));
    auto r = s_->release(h);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    handles_.erase(off);
    last_released_ = h;
  }

  void compare_stats() {
    Stats got = s_->stats();
    Stats want = model_.stats();
    ASSERT_EQ(got.size, want.size);
    ASSERT_EQ(got.bytes_used, want.bytes_used);
    ASSERT_EQ(got.bytes_free, want.bytes_free);
    ASSERT_EQ(got.free_extents, want.free_extents);
    ASSERT_EQ(got.largest_free, want.largest_free);
    ASSERT_EQ(got.live_blocks, want.live_blocks);
  }

  void check() {
    Status ok = s_->check_invariants();
    ASSERT_TRUE(ok.has_value()) << ok.error().message;
  }

  std::string name_;
  Config c_;
  std::mt19937_64 rng_;
  ReferenceModel model_;
  std::unique_ptr<Strategy> s_;
  std::map<uint64_t, Handle> handles_;  // live blocks by offset
  std::optional<Handle> last_released_;

 public:
  uint64_t settled_ = 0;    // best_fit answers that differ from the true best fit
  uint64_t no_memory_ = 0;  // allocations refused for lack of space
  uint64_t one_run_ = 0;    // one-run blocks placed
  uint64_t crossed_ = 0;    // ordinary blocks placed across a barrier
};

struct Case {
  const char* label;
  Config config;
};

const Case kCases[] = {
    {"Tiny1", {1, 0, 1, 0, 2000}},
    {"Tiny7", {7, 2, 7, 3, 20000}},
    {"Page", {4096, 3, 512, 8, 60000}},
    {"Odd100k", {100003, 0, 20000, 12, 60000}},
    {"MiB", {1 << 20, 8, 1 << 16, 12, 80000}},
    {"MiB64Barriers", {64 << 20, 64, 8 << 20, 21, 80000}},
    {"GiB4Odd", {(uint64_t{4} << 30) + 12345, 16, 8 << 20, 30, 60000}},
    {"TiB", {uint64_t{1} << 40, 0, 8 << 20, 40, 40000}},
    {"Max", {UINT64_MAX, 4, 8 << 20, 62, 40000}},
    // A hugetlb-like pool: 1 GiB of 2 MiB pages in 300 physical runs, blocks
    // up to 16 MiB, alignments up to 8 MiB (above the runs' 2 MiB).
    {"HugeRuns", {uint64_t{1} << 30, 300, 16 << 20, 23, 60000, 2 << 20}},
};

class DifferentialTest : public ::testing::TestWithParam<std::tuple<std::string, size_t>> {};

TEST_P(DifferentialTest, MatchesTheReferenceModel) {
  const auto& [name, index] = GetParam();
  const Case& c = kCases[index];
  uint64_t settled = 0;
  uint64_t no_memory = 0;
  uint64_t one_run = 0;
  uint64_t crossed = 0;
  for (uint64_t seed : {1u, 2u, 3u}) {
    Differential d(name, c.config, seed * 7919 + index);
    d.run();
    settled += d.settled_;
    no_memory += d.no_memory_;
    one_run += d.one_run_;
    crossed += d.crossed_;
    if (HasFailure()) {
      ADD_FAILURE() << "seed " << seed;
      return;
    }
  }
  // Shows the runs reach the out-of-space paths, how often best_fit's
  // bounded scan settled for a larger extent than the true best fit, and
  // that both kinds of request met barriers.
  std::printf(
      "%s %s: %llu refused for space, %llu settled for a larger extent, %llu one-run blocks, "
      "%llu ordinary blocks across a barrier\n",
      name.c_str(), c.label, static_cast<unsigned long long>(no_memory),
      static_cast<unsigned long long>(settled), static_cast<unsigned long long>(one_run),
      static_cast<unsigned long long>(crossed));
  if (c.config.barriers > 0 && c.config.region >= (uint64_t{1} << 20)) {
    EXPECT_GT(one_run, 0u);
    EXPECT_GT(crossed, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(All, DifferentialTest,
                         ::testing::Combine(::testing::Values("best_fit", "tlsf"),
                                            ::testing::Range<size_t>(0, std::size(kCases))),
                         [](const ::testing::TestParamInfo<std::tuple<std::string, size_t>>& p) {
                           return std::get<0>(p.param) + "_" + kCases[std::get<1>(p.param)].label;
                         });

}  // namespace
}  // namespace pmm::alloc
