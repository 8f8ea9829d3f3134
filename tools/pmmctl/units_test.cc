// pmmctl's size and duration parsing and size formatting: what a user types
// and reads.
#include "units.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace pmmctl {
namespace {

TEST(ParseSize, AcceptsBytesAndBinaryUnits) {
  EXPECT_EQ(parse_size("4096").value(), 4096u);
  EXPECT_EQ(parse_size("4096B").value(), 4096u);
  EXPECT_EQ(parse_size("4k").value(), 4096u);
  EXPECT_EQ(parse_size("4K").value(), 4096u);
  EXPECT_EQ(parse_size("4KiB").value(), 4096u);
  EXPECT_EQ(parse_size("4M").value(), 4u << 20);
  EXPECT_EQ(parse_size("4m").value(), 4u << 20);
  EXPECT_EQ(parse_size("4MiB").value(), 4u << 20);
  EXPECT_EQ(parse_size("1GiB").value(), 1ull << 30);
  EXPECT_EQ(parse_size("1g").value(), 1ull << 30);
  EXPECT_EQ(parse_size("2T").value(), 2ull << 40);
  EXPECT_EQ(parse_size("0").value(), 0u);
}

TEST(ParseSize, RefusesWithTheAcceptedForms) {
  for (const char* bad : {"", "abc", "-4k", "+4k", "4 k", "4kib", "1.5M", "4x", "k4", " 4"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, pmm::Errc::kInvalidArgument);
    EXPECT_NE(r.error().message.find("4KiB"), std::string::npos) << r.error().message;
  }
}

TEST(ParseSize, AmbiguousDecimalUnitsAreRefusedWithTheFix) {
  auto r = parse_size("4MB");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("write MiB"), std::string::npos) << r.error().message;
  EXPECT_FALSE(parse_size("4KB"));
  EXPECT_FALSE(parse_size("4kB"));
}

TEST(ParseSize, OverflowIsAnError) {
  EXPECT_EQ(parse_size("18446744073709551615").value(), UINT64_MAX);
  EXPECT_FALSE(parse_size("18446744073709551616"));
  auto r = parse_size("16777216TiB");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("64 bits"), std::string::npos);
}

TEST(ParseDuration, AcceptsUnitsAndPlainSeconds) {
  EXPECT_EQ(parse_duration_ms("500ms").value(), 500u);
  EXPECT_EQ(parse_duration_ms("60s").value(), 60000u);
  EXPECT_EQ(parse_duration_ms("60").value(), 60000u);
  EXPECT_EQ(parse_duration_ms("2m").value(), 120000u);
  EXPECT_EQ(parse_duration_ms("1h").value(), 3600000u);
  for (const char* bad : {"", "s", "1d", "1.5s", "-1s", "1 s"}) {
    auto r = parse_duration_ms(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("500ms"), std::string::npos) << r.error().message;
  }
}

TEST(FormatSize, OneDecimalFromKiBUp) {
  EXPECT_EQ(format_size(0), "0 B");
  EXPECT_EQ(format_size(1023), "1023 B");
  EXPECT_EQ(format_size(1024), "1.0 KiB");
  EXPECT_EQ(format_size(1536), "1.5 KiB");
  EXPECT_EQ(format_size(1 << 20), "1.0 MiB");
  EXPECT_EQ(format_size((1 << 20) - 1), "1.0 MiB");  // not "1024.0 KiB"
  EXPECT_EQ(format_size(256ull << 20), "256.0 MiB");
  EXPECT_EQ(format_size(3ull << 30), "3.0 GiB");
  EXPECT_EQ(format_size(UINT64_MAX), "16.0 EiB");
}

}  // namespace
}  // namespace pmmctl
