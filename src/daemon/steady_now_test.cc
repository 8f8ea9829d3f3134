// steady_now() reads steady_clock's own clock: against steady_clock::now()
// it never runs backwards, in either order, and never strays, so pmmd's
// deadlines and latencies may mix the two.
#include "daemon/steady_now.h"

#include <gtest/gtest.h>

namespace pmm::daemon {
namespace {

TEST(SteadyNow, IsSteadyClockItself) {
  for (int i = 0; i < 1000; ++i) {
    const auto a = std::chrono::steady_clock::now();
    const auto b = steady_now();
    const auto c = std::chrono::steady_clock::now();
    ASSERT_LE(a, b);
    ASSERT_LE(b, c);
    ASSERT_LT(c - a, std::chrono::seconds(1));
  }
}

}  // namespace
}  // namespace pmm::daemon
