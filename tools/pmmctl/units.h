// pmmctl's units: sizes and durations as people type them, and sizes as
// people like to read them.
//
// Accepted sizes (every unit is a power of 1024; no fractions):
//   4096  4096B  4k  4K  4KiB  4m  4M  4MiB  1g  1G  1GiB  1t  1T  1TiB
// "KB", "MB", "GB" are refused on purpose: they mean 1000 to some people and
// 1024 to others; the error says to write KiB/MiB/GiB.
// Accepted durations: 500ms  60s  60  (plain number = seconds)  2m  1h.
//
// Usage:
//   auto size = pmmctl::parse_size("4MiB");        // 4194304
//   fmt::print("{}\n", pmmctl::format_size(1 << 20));  // "1.0 MiB"
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace pmmctl {

// Bytes; errors (kInvalidArgument) name the text and list what is accepted.
[[nodiscard]] pmm::Result<uint64_t> parse_size(std::string_view text);
// Milliseconds; errors name the text and list what is accepted.
[[nodiscard]] pmm::Result<uint64_t> parse_duration_ms(std::string_view text);

// "512 B", "4.0 KiB", "1.5 MiB", "2.0 GiB": one decimal from KiB up.
[[nodiscard]] std::string format_size(uint64_t bytes);

}  // namespace pmmctl
