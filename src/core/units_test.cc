// Sizes and durations as people write them, and export tokens' text form.
#include "core/units.h"

#include <gtest/gtest.h>

#include <set>

#include "core/tokens.h"

namespace pmm::core {
namespace {

using namespace std::chrono_literals;

TEST(Units, SizesParseWithBinaryUnits) {
  EXPECT_EQ(parse_size("256MiB").value(), 256ull << 20);
  EXPECT_EQ(parse_size("256 MiB").value(), 256ull << 20);
  EXPECT_EQ(parse_size("1.5GiB").value(), 3ull << 29);
  EXPECT_EQ(parse_size("4096").value(), 4096u);
  EXPECT_EQ(parse_size("64k").value(), 64u << 10);
  EXPECT_EQ(parse_size("2M").value(), 2u << 20);
  EXPECT_EQ(parse_size("1TB").value(), 1ull << 40);
}

TEST(Units, BadSizesSayWhatIsAccepted) {
  for (const char* bad : {"", "MiB", "12 parsecs", "1.2.3M", "-5", "1.", "0.3"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  }
  EXPECT_NE(parse_size("12 parsecs").error().message.find("MiB"), std::string::npos);
  EXPECT_NE(parse_size("0.3").error().message.find("whole number"), std::string::npos);
  EXPECT_FALSE(parse_size("99999999999999999999"));
  EXPECT_FALSE(parse_size("20000000TiB"));  // over 64 bits
}

TEST(Units, SizesFormatExactlyWhenTheyCan) {
  EXPECT_EQ(format_size(0), "0 bytes");
  EXPECT_EQ(format_size(1), "1 byte");
  EXPECT_EQ(format_size(4096), "4 KiB");
  EXPECT_EQ(format_size(1 << 20), "1 MiB");
  EXPECT_EQ(format_size(3ull << 29), "1.5 GiB");
  EXPECT_EQ(format_size(1000), "1000 bytes");
  EXPECT_EQ(parse_size("1.5 GiB").value(), 3ull << 29);  // what it prints parses back
}

TEST(Units, Durations) {
  EXPECT_EQ(parse_duration("60s").value(), 60s);
  EXPECT_EQ(parse_duration("500ms").value(), 500ms);
  EXPECT_EQ(parse_duration("1h").value(), 1h);
  EXPECT_EQ(parse_duration("5min").value(), 5min);
  EXPECT_EQ(parse_duration("1.5s").value(), 1500ms);
  EXPECT_EQ(parse_duration("250").value(), 250ms);
  EXPECT_FALSE(parse_duration("5 fortnights"));
  EXPECT_EQ(format_duration(60s), "1 min");
  EXPECT_EQ(format_duration(1h), "1 h");
  EXPECT_EQ(format_duration(1500ms), "1500 ms");
}

TEST(Tokens, AreRandomAndRoundTripThroughText) {
  std::set<Token> seen;
  for (int i = 0; i < 100; ++i) {
    auto t = Token::generate();
    ASSERT_TRUE(t);
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
