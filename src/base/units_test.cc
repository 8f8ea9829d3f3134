// Sizes and durations as people write and read them: the rules shared by
// the config file, pmmctl and every message (merged from the former
// src/core and tools/pmmctl unit tests, which disagreed).
#include "base/units.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace pmm {
namespace {

using namespace std::chrono_literals;

bool mentions(const Error& e, std::string_view what) {
  return e.message.find(what) != std::string::npos;
}

TEST(ParseSize, AcceptsBytesAndEveryBinaryUnit) {
  EXPECT_EQ(parse_size("4096").value(), 4096u);
  EXPECT_EQ(parse_size("0").value(), 0u);
  EXPECT_EQ(parse_size("4096B").value(), 4096u);
  EXPECT_EQ(parse_size("4k").value(), 4096u);
  EXPECT_EQ(parse_size("4K").value(), 4096u);
  EXPECT_EQ(parse_size("4KiB").value(), 4096u);
  EXPECT_EQ(parse_size("4m").value(), 4u << 20);
  EXPECT_EQ(parse_size("4M").value(), 4u << 20);
  EXPECT_EQ(parse_size("4MiB").value(), 4u << 20);
  EXPECT_EQ(parse_size("1g").value(), 1ull << 30);
  EXPECT_EQ(parse_size("1G").value(), 1ull << 30);
  EXPECT_EQ(parse_size("1GiB").value(), 1ull << 30);
  EXPECT_EQ(parse_size("2t").value(), 2ull << 40);
  EXPECT_EQ(parse_size("2T").value(), 2ull << 40);
  EXPECT_EQ(parse_size("2TiB").value(), 2ull << 40);
}

TEST(ParseSize, SpacesAndFractionsThatComeToWholeBytes) {
  EXPECT_EQ(parse_size("256 MiB").value(), 256ull << 20);
  EXPECT_EQ(parse_size(" 256MiB\t").value(), 256ull << 20);
  EXPECT_EQ(parse_size("4 k").value(), 4096u);
  EXPECT_EQ(parse_size("1.5GiB").value(), 3ull << 29);
  EXPECT_EQ(parse_size("1.5 G").value(), 3ull << 29);
  EXPECT_EQ(parse_size("0.5k").value(), 512u);
  EXPECT_EQ(parse_size("1.250M").value(), 5ull << 18);  // trailing zeros are harmless
  EXPECT_EQ(parse_size("3.0").value(), 3u);
  // 1 byte written in TiB: 2^-40 has 40 decimals; the limit is 18.
  EXPECT_EQ(parse_size("0.0000152587890625 TiB").value(), 1ull << 24);
}

TEST(ParseSize, BadTextIsRefusedWithTheAcceptedForms) {
  for (const char* bad : {"", "  ", "abc", "MiB", "-4k", "+4k", "k4", "4x", "1.2.3M", "1.", ".5M",
                          "12 parsecs", "4 MiB MiB", "0x10"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << bad;
    EXPECT_TRUE(mentions(r.error(), fmt::format("'{}'", bad))) << r.error().message;
    EXPECT_TRUE(mentions(r.error(), "4KiB")) << r.error().message;
    EXPECT_TRUE(mentions(r.error(), "power of 1024")) << r.error().message;
  }
}

TEST(ParseSize, FractionsThatAreNotWholeBytesAreRefused) {
  for (const char* bad : {"0.3", "1.1G", "1.5B", "0.0001k"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(mentions(r.error(), "whole number of bytes")) << r.error().message;
  }
  auto precise = parse_size("1.0000000000000000001M");
  ASSERT_FALSE(precise);
  EXPECT_TRUE(mentions(precise.error(), "18 decimals")) << precise.error().message;
}

TEST(ParseSize, AmbiguousDecimalUnitsAreRefusedWithTheFix) {
  auto mb = parse_size("4MB");
  ASSERT_FALSE(mb);
  EXPECT_EQ(mb.error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(mentions(mb.error(), "ambiguous")) << mb.error().message;
  EXPECT_TRUE(mentions(mb.error(), "write 4MiB")) << mb.error().message;
  EXPECT_TRUE(mentions(parse_size("1.5 GB").error(), "write 1.5GiB"));
  EXPECT_TRUE(mentions(parse_size("4KB").error(), "write 4KiB"));
  EXPECT_TRUE(mentions(parse_size("4kB").error(), "write 4KiB"));
  EXPECT_TRUE(mentions(parse_size("2TB").error(), "write 2TiB"));
  EXPECT_TRUE(mentions(parse_size("8mb").error(), "ambiguous"));
}

TEST(ParseSize, UnitsInTheWrongCaseGetAHint) {
  auto r = parse_size("4kib");
  ASSERT_FALSE(r);
  EXPECT_TRUE(mentions(r.error(), "did you mean 'KiB'")) << r.error().message;
  EXPECT_TRUE(mentions(parse_size("1 MIB").error(), "did you mean 'MiB'"));
  EXPECT_TRUE(mentions(parse_size("10b").error(), "did you mean 'B'"));
}

TEST(ParseSize, OverflowIsRefused) {
  EXPECT_EQ(parse_size("18446744073709551615").value(), UINT64_MAX);
  EXPECT_EQ(parse_size("16777215 TiB").value(), 16777215ull << 40);
  for (const char* big : {"18446744073709551616", "99999999999999999999999", "16777216TiB",
                          "20000000T", "16777216.5T"}) {
    auto r = parse_size(big);
    ASSERT_FALSE(r) << big;
    EXPECT_TRUE(mentions(r.error(), "64 bits")) << r.error().message;
  }
}

TEST(FormatSize, WholeUnitsAreExactAndWithoutDecimals) {
  EXPECT_EQ(format_size(0), "0 B");
  EXPECT_EQ(format_size(1), "1 B");
  EXPECT_EQ(format_size(512), "512 B");
  EXPECT_EQ(format_size(1000), "1000 B");
  EXPECT_EQ(format_size(1023), "1023 B");
  EXPECT_EQ(format_size(1024), "1 KiB");
  EXPECT_EQ(format_size(4096), "4 KiB");
  EXPECT_EQ(format_size(1 << 20), "1 MiB");
  EXPECT_EQ(format_size(2 << 20), "2 MiB");
  EXPECT_EQ(format_size(256ull << 20), "256 MiB");
  EXPECT_EQ(format_size(1ull << 30), "1 GiB");
  EXPECT_EQ(format_size(3ull << 40), "3 TiB");
  EXPECT_EQ(format_size(2048ull << 40), "2048 TiB");  // TiB is the largest unit
}

TEST(FormatSize, OthersHaveUpToTwoDecimalsRoundedDown) {
  EXPECT_EQ(format_size(1536), "1.5 KiB");
  EXPECT_EQ(format_size(1536 << 10), "1.5 MiB");
  EXPECT_EQ(format_size(3ull << 29), "1.5 GiB");
  EXPECT_EQ(format_size(5ull << 18), "1.25 MiB");
  EXPECT_EQ(format_size((1 << 20) + 1), "1.0 MiB");  // not "1 MiB": that would be exact
  EXPECT_EQ(format_size((1 << 20) - 1), "1023.99 KiB");
  EXPECT_EQ(format_size((2ull << 30) + (1ull << 30) / 100 + 1), "2.01 GiB");
  EXPECT_EQ(format_size(UINT64_MAX), "16777215.99 TiB");
}

TEST(FormatSize, WhatItPrintsParsesBack) {
  for (uint64_t v : {0ull, 1ull, 777ull, 4096ull, 1536ull << 10, 5ull << 18, 3ull << 29,
                     256ull << 20, 7ull << 40}) {
    EXPECT_EQ(parse_size(format_size(v)).value(), v) << format_size(v);
  }
}

TEST(ParseDuration, ANumberWithAUnit) {
  EXPECT_EQ(parse_duration("500ms").value(), 500ms);
  EXPECT_EQ(parse_duration("60s").value(), 60s);
  EXPECT_EQ(parse_duration("60 s").value(), 60s);
  EXPECT_EQ(parse_duration("2m").value(), 2min);
  EXPECT_EQ(parse_duration("5min").value(), 5min);
  EXPECT_EQ(parse_duration("1h").value(), 1h);
  EXPECT_EQ(parse_duration("1.5s").value(), 1500ms);
  EXPECT_EQ(parse_duration("0.25h").value(), 15min);
  EXPECT_EQ(parse_duration("0s").value(), 0ms);
  EXPECT_EQ(parse_duration("0").value(), 0ms);  // the same in every unit
}

TEST(ParseDuration, ABareNumberIsRefusedBecauseItsUnitIsAGuess) {
  for (const char* bare : {"60", "250", "1.5", "00"}) {
    auto r = parse_duration(bare);
    ASSERT_FALSE(r) << bare;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_TRUE(mentions(r.error(), "write a unit: 500ms, 60s, 5min")) << r.error().message;
  }
}

TEST(ParseDuration, BadTextIsRefusedWithTheAcceptedForms) {
  for (const char* bad : {"", "s", "1d", "5 fortnights", "-1s", "+1s", "1.s", "1.0005s", "1 day",
                          "99999999999999999999h", "3000000000000000h", "3000000000000h"}) {
    auto r = parse_duration(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_TRUE(mentions(r.error(), fmt::format("'{}'", bad))) << r.error().message;
  }
  EXPECT_TRUE(mentions(parse_duration("1d").error(), "500ms"));
  EXPECT_TRUE(mentions(parse_duration("1.0005s").error(), "whole number of milliseconds"));
  EXPECT_TRUE(mentions(parse_duration("3000000000000000h").error(), "too long"));  // > 2^64 ms
  EXPECT_TRUE(mentions(parse_duration("3000000000000h").error(), "too long"));     // > 2^63 ms
  EXPECT_TRUE(mentions(parse_duration("5S").error(), "did you mean 's'"));
}

TEST(FormatDuration, TheLargestUnitInWhichItIsWhole) {
  EXPECT_EQ(format_duration(0ms), "0 ms");
  EXPECT_EQ(format_duration(250ms), "250 ms");
  EXPECT_EQ(format_duration(1500ms), "1500 ms");
  EXPECT_EQ(format_duration(5s), "5 s");
  EXPECT_EQ(format_duration(90s), "90 s");
  EXPECT_EQ(format_duration(60s), "1 min");
  EXPECT_EQ(format_duration(10min), "10 min");
  EXPECT_EQ(format_duration(1h), "1 h");
  EXPECT_EQ(format_duration(3601s), "3601 s");  // exact: it is compared with "1 h"
  EXPECT_EQ(format_duration(-2s), "-2 s");
  for (auto d : {250ms, 1500ms, 90000ms, 3600000ms, 3601000ms}) {
    EXPECT_EQ(parse_duration(format_duration(d)).value(), d) << format_duration(d);
  }
}

}  // namespace
}  // namespace pmm
