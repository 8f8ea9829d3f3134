// The one-run search is complete (one_run_index.h): a request that must
// stay inside one physical run finds a free extent that holds it there
// however many longer-looking extents straddle barriers first. Before, both
// strategies looked at the first 32 candidates by whole length (tlsf 16 per
// step) and refused such a request. Runs for best_fit and tlsf, each beside
// the reference model.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "alloc/reference_model.h"
#include "alloc/strategy.h"

namespace pmm::alloc {
namespace {

constexpr uint64_t kRun = 4096;
constexpr uint64_t kStraddlers = 40;  // more than any scan limit

class OneRunSearch : public ::testing::TestWithParam<std::string> {};

// Runs of 4 KiB. 40 free extents of 3000 bytes, each across a barrier
// (1500 bytes on either side), then one of 3500 bytes inside one run; every
// other byte is live. A one-run request of 2000 bytes fits by size in all 41
// and inside one run only in the last.
TEST_P(OneRunSearch, FindsTheExtentBehindManyThatStraddleBarriers) {
  const uint64_t region = (kStraddlers + 3) * kRun;
  auto made = make_strategy(GetParam(), region);
  ASSERT_TRUE(made.has_value());
  Strategy& s = **made;
  reference::ReferenceModel model(region);
  std::vector<uint64_t> barriers;
  for (uint64_t r = 1; r * kRun < region; ++r) barriers.push_back(r * kRun);
  ASSERT_TRUE(s.set_barriers(barriers).has_value());
  ASSERT_TRUE(model.set_barriers(barriers));

  // Tile the region in address order: from empty, each block goes at the
  // start of the one free extent, which the model checks.
  struct Piece {
    uint64_t size;
    bool hole;
  };
  std::vector<Piece> tiling{{1500, false}};
  for (uint64_t k = 0; k < kStraddlers; ++k)
    tiling.insert(tiling.end(), {{1096, false}, {3000, true}});
  tiling.push_back({kRun - 1500, false});  // up to the start of run 41
  tiling.push_back({3500, true});          // inside run 41
  tiling.push_back({kRun - 3500 + kRun, false});
  std::vector<Handle> holes;
  std::vector<uint64_t> hole_offsets;
  uint64_t at = 0;
  for (const Piece& p : tiling) {
    auto r = s.allocate(p.size, 1);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ASSERT_EQ(r->offset, at);
    ASSERT_EQ(model.best_fit_choice(p.size, 1), std::optional<uint64_t>(at));
    model.place(at, p.size);
    if (p.hole) {
      holes.push_back(r->handle);
      hole_offsets.push_back(at);
    }
    at += p.size;
  }
  ASSERT_EQ(at, region);
  for (size_t i = 0; i < holes.size(); ++i) {
    ASSERT_TRUE(s.release(holes[i]).has_value());
    ASSERT_TRUE(model.release(hole_offsets[i]));
  }
  ASSERT_EQ(s.stats().free_extents, kStraddlers + 1);
  // Each of the 40 crosses a barrier, 1500 bytes in either run.
  for (uint64_t k = 0; k < kStraddlers; ++k)
    ASSERT_TRUE(model.crosses_barrier(hole_offsets[k], 3000));

  const uint64_t inside = (kStraddlers + 1) * kRun;
  ASSERT_EQ(model.best_fit_choice(2000, 1, /*one_run=*/true), std::optional<uint64_t>(inside));
  auto one = s.allocate(2000, 1, Span::kOneRun);
  ASSERT_TRUE(one.has_value()) << one.error().message;
  EXPECT_EQ(one->offset, inside);
  model.place(inside, 2000);

  // An ordinary request of the same size may cross: it takes a 3000-byte
  // extent (best_fit: the one freed last), not what is left of run 41.
  auto any = s.allocate(2000, 1);
  ASSERT_TRUE(any.has_value());
  EXPECT_TRUE(model.crosses_barrier(any->offset, 2000));
  if (GetParam() == "best_fit") {
    EXPECT_EQ(std::optional<uint64_t>(any->offset), model.best_fit_choice(2000, 1));
  }
  model.place(any->offset, 2000);

  // Nothing left inside one run holds 1600 bytes (pieces of 1500, and 1500
  // after the 2000 in run 41): refused, though 39 extents of 3000 are free.
  auto none = s.allocate(1600, 1, Span::kOneRun);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, Errc::kNoMemory);
  EXPECT_EQ(model.best_fit_choice(1600, 1, true), std::nullopt);
  // 1500 fits in a piece; 1024 aligned to 512 fits in a piece of 1500 that
  // starts 1500 bytes before a barrier only where the alignment allows.
  auto piece = s.allocate(1500, 1, Span::kOneRun);
  ASSERT_TRUE(piece.has_value()) << piece.error().message;
  EXPECT_EQ(std::optional<uint64_t>(piece->offset), model.best_fit_choice(1500, 1, true));
  EXPECT_FALSE(model.crosses_barrier(piece->offset, 1500));
  model.place(piece->offset, 1500);
  auto aligned = s.allocate(1024, 512, Span::kOneRun);
  ASSERT_TRUE(aligned.has_value()) << aligned.error().message;
  EXPECT_EQ(std::optional<uint64_t>(aligned->offset), model.best_fit_choice(1024, 512, true));
  EXPECT_EQ(aligned->offset % 512, 0u);
  EXPECT_FALSE(model.crosses_barrier(aligned->offset, 1024));
  ASSERT_TRUE(s.check_invariants().has_value()) << s.check_invariants().error().message;
}

INSTANTIATE_TEST_SUITE_P(Both, OneRunSearch, ::testing::Values("best_fit", "tlsf"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace pmm::alloc
