// Export tokens: random but for the pool byte, and their text form round-trips. (The size and
// duration tests that shared this file live in src/base/units_test.cc.)
#include "core/tokens.h"

#include <gtest/gtest.h>

#include <set>

namespace pmm::core {
namespace {

TEST(Tokens, AreRandomButForTheirPoolByteAndRoundTripThroughText) {
  std::set<Token> seen;
  for (int i = 0; i < 100; ++i) {
    const auto pool = static_cast<uint8_t>(i % 3 == 0 ? 255 : i % 3);
    auto t = Token::generate(pool);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->bytes[Token::kPoolByte], pool);
    EXPECT_TRUE(seen.insert(*t).second);
    std::string s = t->hex();
    EXPECT_EQ(s.size(), 32u);
    EXPECT_EQ(Token::parse(s).value(), *t);
    EXPECT_EQ(t->short_hex(), s.substr(0, 8));
  }
  EXPECT_EQ(Token::parse("00112233445566778899AABBCCDDEEFF").value().hex(),
            "00112233445566778899aabbccddeeff");
  auto short_text = Token::parse("abc");
  ASSERT_FALSE(short_text);
  EXPECT_NE(short_text.error().message.find("32 hex digits"), std::string::npos);
  auto bad_digit = Token::parse("0011223344556677889900112233445g");
  ASSERT_FALSE(bad_digit);
  EXPECT_NE(bad_digit.error().message.find("character 32 ('g')"), std::string::npos)
      << bad_digit.error().message;
}

}  // namespace
}  // namespace pmm::core
