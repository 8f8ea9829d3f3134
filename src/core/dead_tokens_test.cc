// DeadTokens: remembers the last kCapacity ended tokens exactly, forgets the
// oldest first, and its index stays consistent through long runs of
// remembering (checked against a plain model).
#include "core/dead_tokens.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <random>

namespace pmm::core {
namespace {

using Reason = DeadTokens::Reason;

Token token_from(std::mt19937_64& rng) {
  Token t;
  for (size_t i = 0; i < t.bytes.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(t.bytes.data() + i, &v, 8);
  }
  return t;
}

TEST(DeadTokens, RemembersWhyAndReplacesTheReasonOfOneItHas) {
  DeadTokens dead;
  std::mt19937_64 rng(1);
  const Token a = token_from(rng);
  const Token b = token_from(rng);
  EXPECT_FALSE(dead.find(a));
  EXPECT_TRUE(dead.check());
  dead.remember(a, Reason::kUsedUp);
  dead.remember(b, Reason::kExpired);
  EXPECT_EQ(dead.find(a), Reason::kUsedUp);
  EXPECT_EQ(dead.find(b), Reason::kExpired);
  dead.remember(a, Reason::kWithdrawn);
  EXPECT_EQ(dead.find(a), Reason::kWithdrawn);
  EXPECT_EQ(dead.size(), 2u);
  Token c = a;
  c.bytes[Token::kPoolByte] ^= 1;  // differs only past the hashed bytes
  EXPECT_FALSE(dead.find(c));
  EXPECT_TRUE(dead.check());
}

// Many more tokens than it holds, some sharing their home slot (equal first
// 8 bytes, so they collide in the index), against a model of the last
// kCapacity: every remembered one is found with its reason, every forgotten
// one is not, and the index checks out along the way.
TEST(DeadTokens, HoldsExactlyTheLastCapacityThroughCollisionsAndEvictions) {
  DeadTokens dead;
  std::mt19937_64 rng(7);
  std::deque<Token> order;
  std::map<Token, Reason> model;
  std::vector<Token> forgotten;
  for (size_t n = 0; n < 5 * DeadTokens::kCapacity; ++n) {
    Token t = token_from(rng);
    if (n % 5 == 0 && !order.empty()) {
      // Same first 8 bytes as a recent one: the same home slot.
      std::memcpy(t.bytes.data(), order.back().bytes.data(), 8);
    }
    const auto why = static_cast<Reason>(n % 3);
    dead.remember(t, why);
    order.push_back(t);
    model[t] = why;
    if (order.size() > DeadTokens::kCapacity) {
      forgotten.push_back(order.front());
      model.erase(order.front());
      order.pop_front();
    }
    if (n % 997 == 0) {
      ASSERT_TRUE(dead.check()) << dead.check().error().message;
    }
  }
  EXPECT_EQ(dead.size(), DeadTokens::kCapacity);
  ASSERT_TRUE(dead.check()) << dead.check().error().message;
  for (const auto& [t, why] : model) EXPECT_EQ(dead.find(t), why);
  for (const Token& t : forgotten) EXPECT_FALSE(dead.find(t));
}

}  // namespace
}  // namespace pmm::core
