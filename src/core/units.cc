// Sizes and durations; see units.h.
#include "core/units.h"

#include <array>
#include <charconv>
#include <cstring>
#include <numeric>
#include <utility>

namespace pmm::core {

namespace {

constexpr std::array<std::pair<std::string_view, uint64_t>, 14> kSizeUnits{{
    {"", 1},
    {"b", 1},
    {"k", 1ull << 10},
    {"kb", 1ull << 10},
    {"kib", 1ull << 10},
    {"m", 1ull << 20},
    {"mb", 1ull << 20},
    {"mib", 1ull << 20},
    {"g", 1ull << 30},
    {"gb", 1ull << 30},
    {"gib", 1ull << 30},
    {"t", 1ull << 40},
    {"tb", 1ull << 40},
    {"tib", 1ull << 40},
}};

constexpr std::array<std::pair<std::string_view, uint64_t>, 5> kDurationUnits{{
    {"", 1},
    {"ms", 1},
    {"s", 1000},
    {"min", 60'000},
    {"h", 3'600'000},
}};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "1.5 GiB" into the number "1.5" and the unit "gib" (lowercased).
// The number part: digits with at most one '.', nothing else.
struct Parts {
  uint64_t whole = 0;
  uint64_t frac_num = 0;  // fractional digits as an integer
  uint64_t frac_den = 1;  // 10^(number of fractional digits)
  std::string unit;
};

Result<Parts> split(std::string_view text, std::string_view what, std::string_view units) {
  std::string_view t = trim(text);
  size_t i = 0;
  while (i < t.size() && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.')) ++i;
  std::string_view num = t.substr(0, i);
  Parts p;
  p.unit = lower(trim(t.substr(i)));
  size_t dot = num.find('.');
  std::string_view whole = num.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : num.substr(dot + 1);
  if (whole.empty() || frac.find('.') != std::string_view::npos || frac.size() > 9 ||
      (dot != std::string_view::npos && frac.empty())) {
    return fail(Errc::kInvalidArgument, "{} '{}' is not a number with an optional unit ({})", what,
                text, units);
  }
  auto [ptr, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), p.whole);
  if (ec != std::errc{} || ptr != whole.data() + whole.size()) {
    return fail(Errc::kInvalidArgument, "{} '{}' is too large", what, text);
  }
  for (char c : frac) {
    p.frac_num = p.frac_num * 10 + static_cast<uint64_t>(c - '0');
    p.frac_den *= 10;
  }
  return p;
}

template <size_t N>
Result<uint64_t> scale(std::string_view text, std::string_view what, std::string_view units,
                       const std::array<std::pair<std::string_view, uint64_t>, N>& table) {
  auto p = split(text, what, units);
  if (!p) return std::unexpected(p.error());
  for (const auto& [name, mult] : table) {
    if (p->unit != name) continue;
    uint64_t whole = 0;
    if (__builtin_mul_overflow(p->whole, mult, &whole)) {
      return fail(Errc::kInvalidArgument, "{} '{}' does not fit in 64 bits", what, text);
    }
    // Fractions: exact when they resolve to whole units of the base. With g
    // = gcd(mult, den), frac * mult / den is whole iff den/g divides frac,
    // and it is then (frac / (den/g)) * (mult/g), below mult: no overflow.
    uint64_t g = std::gcd(mult, p->frac_den);
    if (p->frac_num % (p->frac_den / g) != 0) {
      return fail(Errc::kInvalidArgument, "{} '{}' is not a whole number of {}", what, text,
                  what == "size" ? "bytes" : "milliseconds");
    }
    uint64_t frac = p->frac_num / (p->frac_den / g) * (mult / g);
    uint64_t total = 0;
    if (__builtin_add_overflow(whole, frac, &total)) {
      return fail(Errc::kInvalidArgument, "{} '{}' does not fit in 64 bits", what, text);
    }
    return total;
  }
  return fail(Errc::kInvalidArgument, "{} '{}': unknown unit '{}'; use {}", what, text, p->unit,
              units);
}

}  // namespace

std::string format_size(uint64_t bytes) {
  static constexpr std::array<std::string_view, 5> kNames{"bytes", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} {}", bytes, bytes == 1 ? "byte" : "bytes");
  size_t unit = 0;
  uint64_t mult = 1;
  while (unit + 1 < kNames.size() && bytes >= (mult << 10)) {
    mult <<= 10;
    ++unit;
  }
  if (bytes % mult == 0) return fmt::format("{} {}", bytes / mult, kNames[unit]);
  double v = static_cast<double>(bytes) / static_cast<double>(mult);
  std::string s = fmt::format("{:.2f}", v);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return fmt::format("{} {}", s, kNames[unit]);
}

Result<uint64_t> parse_size(std::string_view text) {
  return scale(text, "size", "bytes, KiB, MiB, GiB or TiB, e.g. \"256MiB\"", kSizeUnits);
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto ms = scale(text, "duration", "ms, s, min or h, e.g. \"60s\"", kDurationUnits);
  if (!ms) return std::unexpected(ms.error());
  if (*ms > static_cast<uint64_t>(INT64_MAX)) {
    return fail(Errc::kInvalidArgument, "duration '{}' is too long", text);
  }
  return std::chrono::milliseconds(static_cast<int64_t>(*ms));
}

std::string format_duration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{} h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{} min", ms / 60'000);
  if (ms != 0 && ms % 1000 == 0) return fmt::format("{} s", ms / 1000);
  return fmt::format("{} ms", ms);
}

}  // namespace pmm::core
