// Byte sizes and durations in the forms people write and read them.
//
// The config file and the logs use the same units, so what pmmd prints can
// be pasted back into a config: "256MiB", "1.5 GiB", "4096", "60s".
// Binary units only for bytes (KiB, MiB, GiB, TiB; also K/M/G/T and
// KB/MB/GB/TB, which mean the same binary multiples, as in most memory
// tools). Durations: ms, s, min, h.
//
// Usage:
//   pmm::Result<uint64_t> n = pmm::core::parse_size("256MiB");   // 268435456
//   std::string s = pmm::core::format_size(3 << 20);             // "3 MiB"
//   auto d = pmm::core::parse_duration("60s");                   // 60000 ms
//
// Thread safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace pmm::core {

// "1 MiB", "1.5 GiB", "4 KiB", "100 bytes". Exact values in whole units
// print without decimals; others with up to two.
[[nodiscard]] std::string format_size(uint64_t bytes);

// A number, optional spaces, optional unit. Errors: kInvalidArgument naming
// the text and the accepted units; overflow of 64 bits is refused too.
[[nodiscard]] Result<uint64_t> parse_size(std::string_view text);

// "500ms", "60s", "5min", "1h". A bare number means milliseconds.
[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// "60 s", "1 h", "250 ms".
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);

}  // namespace pmm::core
