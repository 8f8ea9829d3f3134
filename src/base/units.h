// Byte sizes and durations: the one set of rules pmm uses wherever a person
// writes or reads one — the pmmd config file, pmmctl's arguments, pmmctl's
// tables, and every log line and error message.
//
// There is exactly one implementation so that whatever pmm prints can be
// pasted back where pmm reads ("256 MiB" in a log works in the config and on
// pmmctl's command line), and so that "1.5G" or "60" never means one thing
// to the daemon and another to the tool.
//
// Sizes: a whole number, or a decimal fraction whose result is a whole number
// of bytes, optionally followed (with or without spaces) by a unit. Every
// unit is a power of 1024:
//   B                  1        (or no unit: a plain number of bytes)
//   KiB  k  K          1024
//   MiB  m  M          1024^2
//   GiB  g  G          1024^3
//   TiB  t  T          1024^4
// KB, MB, GB and TB are refused: they mean 1000^n to some people and 1024^n
// to others, and a memory manager must not guess; the error says to write
// KiB, MiB, GiB or TiB. Results above 2^64 - 1 are refused.
//
// Durations: a number (fractions allowed when they come to whole
// milliseconds) with a unit: ms, s, m or min, h. A bare number is refused,
// because "60" has meant milliseconds to one pmm reader and seconds to
// another; "0" alone is accepted, as it means the same in every unit.
//
// Printing: format_size picks the largest unit the value reaches; values
// that are whole in it print without decimals ("1 MiB", "256 MiB", "4 KiB",
// "512 B"), others are rounded down to two decimals and keep at least one
// ("1.5 MiB", "1.0 MiB" for 1 MiB + 1 byte), so a number without a decimal
// point is always exact. format_duration is always exact: it picks the
// largest of ms, s, min, h in which the value is whole ("1 min", "1 h",
// "90 s", "1500 ms"), because durations are limits that messages compare
// ("lifetime 3601 s is above 1 h"), and a rounded value would hide why.
//
// Errors are Errc::kInvalidArgument; the message quotes the text and lists
// what would have been accepted.
//
// Usage:
//   pmm::Result<uint64_t> n = pmm::parse_size("1.5 GiB");      // 1610612736
//   std::string s = pmm::format_size(3 << 20);                 // "3 MiB"
//   auto d = pmm::parse_duration("60s");                       // 60000 ms
//   std::string t = pmm::format_duration(d.value());           // "1 min"
//
// Thread safety: pure functions; no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace pmm {

// Bytes, per the rules above.
[[nodiscard]] Result<uint64_t> parse_size(std::string_view text);

// "512 B", "4 KiB", "1.5 MiB", "1.0 MiB" (inexact), "16 TiB". Never above
// TiB, so everything it prints is something parse_size reads.
[[nodiscard]] std::string format_size(uint64_t bytes);

// Milliseconds, per the rules above; at most INT64_MAX ms.
[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// "250 ms", "90 s", "1 min", "1 h"; negative values print with a '-'.
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);

}  // namespace pmm
