// AllocWaiters: first come, first served; a blocked head holds the line, a
// waiter refused by its own device is passed over; deadlines; bounds;
// a closed session leaves.
#include "core/alloc_waiters.h"

#include <gtest/gtest.h>

namespace pmm::core {
namespace {

using Outcome = AllocWaiters::Outcome;

AllocWaiter waiter(SessionId s, uint32_t id, SteadyTime deadline = SteadyTime::max()) {
  return AllocWaiter{.session = s, .request_id = id, .size = 4096, .deadline = deadline};
}

TEST(AllocWaiters, ServesInOrderAndABlockedHeadHoldsTheLine) {
  AllocWaiters q;
  ASSERT_TRUE(q.add(waiter(1, 10)));
  ASSERT_TRUE(q.add(waiter(2, 20)));
  ASSERT_TRUE(q.add(waiter(3, 30)));
  std::vector<uint32_t> tried;
  q.serve([&](const AllocWaiter& w) {
    tried.push_back(w.request_id);
    return w.request_id == 20 ? Outcome::kBlocked : Outcome::kServed;
  });
  EXPECT_EQ(tried, (std::vector<uint32_t>{10, 20}));  // 30 waits behind 20
  EXPECT_EQ(q.size(), 2u);
  tried.clear();
  q.serve([&](const AllocWaiter& w) {
    tried.push_back(w.request_id);
    return w.request_id == 20 ? Outcome::kPassed : Outcome::kServed;
  });
  EXPECT_EQ(tried, (std::vector<uint32_t>{20, 30}));  // a device refusal does not block
  EXPECT_EQ(q.size(), 1u);
}

TEST(AllocWaiters, DeadlinesBoundsAndClosedSessions) {
  AllocWaiters q({.per_session = 2, .total = 3});
  const SteadyTime t0{};
  ASSERT_TRUE(q.add(waiter(1, 1, t0 + std::chrono::seconds(2))));
  ASSERT_TRUE(q.add(waiter(1, 2, t0 + std::chrono::seconds(1))));
  auto third = q.add(waiter(1, 3));
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, Errc::kLimit);
  EXPECT_NE(third.error().message.find("per session"), std::string::npos);
  ASSERT_TRUE(q.add(waiter(2, 4)));
  auto full = q.add(waiter(3, 5));
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message.find("3 allocations waiting"), std::string::npos);

  EXPECT_EQ(q.next_deadline(), t0 + std::chrono::seconds(1));
  auto expired = q.take_expired(t0 + std::chrono::seconds(1));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].request_id, 2u);
  EXPECT_EQ(q.of_session(1), 1u);

  q.remove_session(1);
  EXPECT_EQ(q.of_session(1), 0u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_TRUE(q.add(waiter(3, 6)));  // room again
}

}  // namespace
}  // namespace pmm::core
