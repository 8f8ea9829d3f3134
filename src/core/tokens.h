// pmm::core::Token — the 128-bit name of an export, 120 bits of it secret.
//
// An export token is a capability: whoever presents it (and may use the
// block's pool) gets a reference to the block. So tokens come from the
// kernel's random source, are compared in full, and are never derived from
// block ids or time. Their text form is 32 lowercase hex digits, the same as
// pmm_token_format() in the C API.
//
// One byte is not secret: the last (kPoolByte) is the index of the exported
// block's pool, so that an importer knows before it asks whether the reply
// can bring that pool's fd (proto::kTokenPoolByte). The other 120 bits are
// random; the daemon finds an export by all 128, so a token whose pool byte
// was changed names no export.
//
// Usage:
//   pmm::Result<Token> t = Token::generate(pool_index);
//   std::string s = t->hex();                 // "3f9c...": 32 digits
//   pmm::Result<Token> back = Token::parse(s);
//
// Thread safety: plain values.
#pragma once

#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace pmm::core {

struct Token {
  std::array<uint8_t, 16> bytes{};
  static constexpr size_t kPoolByte = 15;

  // A fresh token for a block of pool `pool` (< 256): random (getrandom)
  // but for its last byte, which is `pool`. Errors: kSystem.
  [[nodiscard]] static Result<Token> generate(uint8_t pool);
  // Exactly 32 hex digits (either case). Errors: kInvalidArgument saying
  // what was wrong with the text.
  [[nodiscard]] static Result<Token> parse(std::string_view text);

  [[nodiscard]] std::string hex() const;
  // The first 8 hex digits, for logs: enough to tell tokens apart in a
  // log without printing the whole capability.
  [[nodiscard]] std::string short_hex() const;

  // Byte by byte (listings show tokens in this order), as two big-endian
  // 8-byte words: the set of export deadlines compares tokens on every
  // insert and erase, and the array's <=> was a memcmp call.
  friend std::strong_ordering operator<=>(const Token& a, const Token& b) {
    uint64_t x[2];
    uint64_t y[2];
    std::memcpy(x, a.bytes.data(), sizeof x);
    std::memcpy(y, b.bytes.data(), sizeof y);
    auto big = [](uint64_t v) {
      return std::endian::native == std::endian::little ? std::byteswap(v) : v;
    };
    if (x[0] != y[0]) return big(x[0]) <=> big(y[0]);
    return big(x[1]) <=> big(y[1]);
  }
  // In full, as two 8-byte words and without a branch on where they differ
  // (the maps of exports and ended tokens compare on every lookup; the
  // array's == was a memcmp call).
  friend bool operator==(const Token& a, const Token& b) {
    uint64_t x[2];
    uint64_t y[2];
    std::memcpy(x, a.bytes.data(), sizeof x);
    std::memcpy(y, b.bytes.data(), sizeof y);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
  }
};

}  // namespace pmm::core

template <>
struct std::hash<pmm::core::Token> {
  size_t operator()(const pmm::core::Token& t) const noexcept {
    // The first 8 bytes are uniformly random: a good hash in one load.
    uint64_t h = 0;
    std::memcpy(&h, t.bytes.data(), sizeof h);
    return static_cast<size_t>(h);
  }
};
