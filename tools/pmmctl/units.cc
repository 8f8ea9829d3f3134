// See units.h. Parsing is strict: the whole text must be consumed, overflow
// is an error, and every error lists the accepted forms.
#include "units.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <utility>

namespace pmmctl {
namespace {

constexpr std::string_view kSizeForms =
    "write bytes as a whole number with an optional binary unit: 4096, 4096B, 4k, 4K, 4KiB, "
    "4m, 4M, 4MiB, 1g, 1G, 1GiB, 1t, 1T, 1TiB";
constexpr std::string_view kDurationForms =
    "write a whole number with an optional unit: 500ms, 60s, 60 (seconds), 2m, 1h";

struct Unit {
  std::string_view suffix;
  uint64_t factor;
};

// Splits "123abc" into its leading digits and the rest; false when there are
// no digits or the number does not fit 64 bits.
bool split_number(std::string_view text, uint64_t& value, std::string_view& rest) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value, 10);
  if (ec != std::errc{} || ptr == begin) return false;
  rest = text.substr(static_cast<size_t>(ptr - begin));
  return true;
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

}  // namespace

pmm::Result<uint64_t> parse_size(std::string_view text) {
  static constexpr std::array<Unit, 14> kUnits{{
      {"", 1},
      {"B", 1},
      {"k", 1ull << 10},
      {"K", 1ull << 10},
      {"KiB", 1ull << 10},
      {"m", 1ull << 20},
      {"M", 1ull << 20},
      {"MiB", 1ull << 20},
      {"g", 1ull << 30},
      {"G", 1ull << 30},
      {"GiB", 1ull << 30},
      {"t", 1ull << 40},
      {"T", 1ull << 40},
      {"TiB", 1ull << 40},
  }};
  uint64_t value = 0;
  std::string_view rest;
  if (text.empty() || text.front() == '+' || !split_number(text, value, rest))
    return pmm::fail(pmm::Errc::kInvalidArgument, "size '{}' is not a number of bytes; {}", text,
                     kSizeForms);
  for (const Unit& u : kUnits) {
    if (rest != u.suffix) continue;
    uint64_t bytes = 0;
    if (!checked_mul(value, u.factor, bytes))
      return pmm::fail(pmm::Errc::kInvalidArgument, "size '{}' does not fit in 64 bits", text);
    return bytes;
  }
  if (rest == "KB" || rest == "kB" || rest == "MB" || rest == "GB" || rest == "TB")
    return pmm::fail(pmm::Errc::kInvalidArgument,
                     "size '{}': unit '{}' is ambiguous (1000 or 1024?); pmmctl units are binary, "
                     "write {}iB; {}",
                     text, rest, static_cast<char>(std::toupper(rest[0])), kSizeForms);
  return pmm::fail(pmm::Errc::kInvalidArgument, "size '{}' has an unknown unit '{}'; {}", text,
                   rest, kSizeForms);
}

pmm::Result<uint64_t> parse_duration_ms(std::string_view text) {
  static constexpr std::array<Unit, 5> kUnits{{
      {"", 1000},
      {"ms", 1},
      {"s", 1000},
      {"m", 60'000},
      {"h", 3'600'000},
  }};
  uint64_t value = 0;
  std::string_view rest;
  if (text.empty() || text.front() == '+' || !split_number(text, value, rest))
    return pmm::fail(pmm::Errc::kInvalidArgument, "duration '{}' is not a number; {}", text,
                     kDurationForms);
  for (const Unit& u : kUnits) {
    if (rest != u.suffix) continue;
    uint64_t ms = 0;
    if (!checked_mul(value, u.factor, ms))
      return pmm::fail(pmm::Errc::kInvalidArgument, "duration '{}' is too long", text);
    return ms;
  }
  return pmm::fail(pmm::Errc::kInvalidArgument, "duration '{}' has an unknown unit '{}'; {}", text,
                   rest, kDurationForms);
}

std::string format_size(uint64_t bytes) {
  static constexpr std::array<std::string_view, 6> kNames{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes) / 1024.0;
  size_t i = 0;
  // Move up while the value would print as 1024.0 or more in this unit.
  while (v >= 1023.95 && i + 1 < kNames.size()) {
    v /= 1024.0;
    ++i;
  }
  return fmt::format("{:.1f} {}", v, kNames[i]);
}

}  // namespace pmmctl
