// Sizes and durations; the rules are in units.h.
//
// Parsing is exact: the number is kept as its digits and scaled with integer
// arithmetic, never through a double, so "1.1G" is refused (it is not a whole
// number of bytes) instead of being rounded to a size nobody wrote.
#include "base/units.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <span>

namespace pmm {
namespace {

constexpr std::string_view kSizeForms =
    "write a whole number of bytes or a number with a binary unit: 4096, 4096B, 64k, 64K, "
    "64KiB, 1.5m, 1.5M, 1.5MiB, 1g, 1G, 1GiB, 2t, 2T, 2TiB (every unit is a power of 1024)";
constexpr std::string_view kDurationForms = "write a unit: 500ms, 60s, 5min (or 5m), 1h";

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr std::array<Unit, 14> kSizeUnits{{
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

// What format_size prints, largest last.
constexpr std::array<Unit, 5> kSizeNames{{
    {"B", 1},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
}};

constexpr std::array<Unit, 5> kDurationUnits{{
    {"ms", 1},
    {"s", 1000},
    {"m", 60'000},
    {"min", 60'000},
    {"h", 3'600'000},
}};

// What format_duration prints, largest first.
constexpr std::array<Unit, 3> kDurationNames{{
    {"h", 3'600'000},
    {"min", 60'000},
    {"s", 1000},
}};

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// "1.50 GiB" split into the number as written ("1.50"), its whole digits
// ("1"), its fraction digits without trailing zeros ("5") and the unit.
struct Number {
  std::string_view text;
  std::string_view whole;
  std::string_view frac;
  std::string_view unit;
};

// nullopt unless `t` starts with digits, optionally '.' and more digits.
std::optional<Number> split(std::string_view t) {
  size_t i = 0;
  while (i < t.size() && is_digit(t[i])) ++i;
  if (i == 0) return std::nullopt;
  Number n;
  n.whole = t.substr(0, i);
  if (i < t.size() && t[i] == '.') {
    size_t j = i + 1;
    while (j < t.size() && is_digit(t[j])) ++j;
    if (j == i + 1) return std::nullopt;  // "1." or "1.M"
    n.frac = t.substr(i + 1, j - i - 1);
    i = j;
  }
  n.text = t.substr(0, i);
  n.unit = trim(t.substr(i));
  while (!n.frac.empty() && n.frac.back() == '0') n.frac.remove_suffix(1);
  return n;
}

const Unit* find_unit(std::string_view name, std::span<const Unit> units) {
  for (const Unit& u : units) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

// A unit written in the wrong case ("mib", "MS"), for the error's hint.
const Unit* find_unit_ignoring_case(std::string_view name, std::span<const Unit> units) {
  for (const Unit& u : units) {
    if (!u.name.empty() && equal_ignoring_case(u.name, name)) return &u;
  }
  return nullptr;
}

enum class Scaled { kOk, kOverflow, kNotWhole, kTooPrecise };

// n * factor, exactly. With g = gcd(factor, 10^digits), frac * factor /
// 10^digits is whole iff 10^digits / g divides frac, and is then below
// factor: only the whole part can overflow.
Scaled scale(const Number& n, uint64_t factor, uint64_t& out) {
  uint64_t whole = 0;
  auto [ptr, ec] = std::from_chars(n.whole.data(), n.whole.data() + n.whole.size(), whole);
  if (ec != std::errc{}) return Scaled::kOverflow;  // digits only, so only out of range
  if (n.frac.size() > 18) return Scaled::kTooPrecise;
  uint64_t num = 0;
  uint64_t den = 1;
  for (char c : n.frac) {
    num = num * 10 + static_cast<uint64_t>(c - '0');
    den *= 10;
  }
  uint64_t g = std::gcd(factor, den);
  if (num % (den / g) != 0) return Scaled::kNotWhole;
  uint64_t frac = num / (den / g) * (factor / g);
  uint64_t total = 0;
  if (__builtin_mul_overflow(whole, factor, &total) ||
      __builtin_add_overflow(total, frac, &total)) {
    return Scaled::kOverflow;
  }
  out = total;
  return Scaled::kOk;
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  auto n = split(trim(text));
  if (!n) {
    return fail(Errc::kInvalidArgument, "size '{}' is not a number of bytes; {}", text, kSizeForms);
  }
  const Unit* unit = find_unit(n->unit, kSizeUnits);
  if (!unit) {
    if (n->unit.size() == 2 && lower(n->unit[1]) == 'b' &&
        std::string_view("kmgt").find(lower(n->unit[0])) != std::string_view::npos) {
      char prefix = static_cast<char>(lower(n->unit[0]) - 'a' + 'A');
      return fail(Errc::kInvalidArgument,
                  "size '{}': unit '{}' is ambiguous (1000 or 1024?); pmm units are powers of "
                  "1024: write {}{}iB (KiB, MiB, GiB or TiB)",
                  text, n->unit, n->text, prefix);
    }
    if (const Unit* near = find_unit_ignoring_case(n->unit, kSizeUnits)) {
      return fail(Errc::kInvalidArgument, "size '{}': unknown unit '{}' (did you mean '{}'?); {}",
                  text, n->unit, near->name, kSizeForms);
    }
    return fail(Errc::kInvalidArgument, "size '{}': unknown unit '{}'; {}", text, n->unit,
                kSizeForms);
  }
  uint64_t bytes = 0;
  switch (scale(*n, unit->factor, bytes)) {
    case Scaled::kOk:
      return bytes;
    case Scaled::kOverflow:
      return fail(Errc::kInvalidArgument,
                  "size '{}' does not fit in 64 bits (the most is 18446744073709551615 bytes, "
                  "just under 16777216 TiB)",
                  text);
    case Scaled::kNotWhole:
      return fail(Errc::kInvalidArgument, "size '{}' is not a whole number of bytes; {}", text,
                  kSizeForms);
    case Scaled::kTooPrecise:
      return fail(Errc::kInvalidArgument, "size '{}' has more than 18 decimals; {}", text,
                  kSizeForms);
  }
  return fail(Errc::kInvalidArgument, "size '{}': {}", text, kSizeForms);
}

std::string format_size(uint64_t bytes) {
  size_t u = 0;
  while (u + 1 < kSizeNames.size() && bytes >= kSizeNames[u + 1].factor) ++u;
  const Unit& unit = kSizeNames[u];
  uint64_t whole = bytes / unit.factor;
  uint64_t rest = bytes % unit.factor;
  if (rest == 0) return fmt::format("{} {}", whole, unit.name);
  // Rounded down, so a printed value never exceeds the real one, and with at
  // least one decimal, so "1.0 MiB" is visibly not the exact "1 MiB". rest
  // is below 2^40, so rest * 100 cannot overflow.
  uint64_t hundredths = rest * 100 / unit.factor;
  if (hundredths % 10 == 0) return fmt::format("{}.{} {}", whole, hundredths / 10, unit.name);
  return fmt::format("{}.{:02} {}", whole, hundredths, unit.name);
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::string_view t = trim(text);
  if (t == "0") return std::chrono::milliseconds(0);
  auto n = split(t);
  if (!n) {
    return fail(Errc::kInvalidArgument, "duration '{}' is not a number with a unit; {}", text,
                kDurationForms);
  }
  if (n->unit.empty()) {
    return fail(Errc::kInvalidArgument, "duration '{}' has no unit; {}", text, kDurationForms);
  }
  const Unit* unit = find_unit(n->unit, kDurationUnits);
  if (!unit) {
    if (const Unit* near = find_unit_ignoring_case(n->unit, kDurationUnits)) {
      return fail(Errc::kInvalidArgument,
                  "duration '{}': unknown unit '{}' (did you mean '{}'?); {}", text, n->unit,
                  near->name, kDurationForms);
    }
    return fail(Errc::kInvalidArgument, "duration '{}': unknown unit '{}'; {}", text, n->unit,
                kDurationForms);
  }
  uint64_t ms = 0;
  switch (scale(*n, unit->factor, ms)) {
    case Scaled::kOk:
      if (ms <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return std::chrono::milliseconds(static_cast<int64_t>(ms));
      }
      [[fallthrough]];
    case Scaled::kOverflow:
      return fail(Errc::kInvalidArgument,
                  "duration '{}' is too long (the most is 9223372036854775807 ms)", text);
    case Scaled::kNotWhole:
      return fail(Errc::kInvalidArgument, "duration '{}' is not a whole number of milliseconds; {}",
                  text, kDurationForms);
    case Scaled::kTooPrecise:
      return fail(Errc::kInvalidArgument, "duration '{}' has more than 18 decimals; {}", text,
                  kDurationForms);
  }
  return fail(Errc::kInvalidArgument, "duration '{}': {}", text, kDurationForms);
}

std::string format_duration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0 ms";
  std::string_view sign = ms < 0 ? "-" : "";
  // The magnitude without negating INT64_MIN.
  uint64_t v = ms < 0 ? static_cast<uint64_t>(-(ms + 1)) + 1 : static_cast<uint64_t>(ms);
  for (const Unit& u : kDurationNames) {
    if (v % u.factor == 0) return fmt::format("{}{} {}", sign, v / u.factor, u.name);
  }
  return fmt::format("{}{} ms", sign, v);
}

}  // namespace pmm
