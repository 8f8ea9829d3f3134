// Token generation and text form; see tokens.h.
#include "core/tokens.h"

#include "os/random.h"

namespace pmm::core {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<Token> Token::generate(uint8_t pool) {
  Token t;
  if (auto s = os::random_bytes(std::span(t.bytes).first<kPoolByte>()); !s)
    return std::unexpected(s.error());
  t.bytes[kPoolByte] = pool;
  return t;
}

Result<Token> Token::parse(std::string_view text) {
  if (text.size() != 32) {
    return fail(Errc::kInvalidArgument,
                "token '{}' has {} characters; a token is exactly 32 hex digits", text,
                text.size());
  }
  Token t;
  for (size_t i = 0; i < 16; ++i) {
    int hi = hex_value(text[2 * i]);
    int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      size_t bad = hi < 0 ? 2 * i : 2 * i + 1;
      return fail(Errc::kInvalidArgument,
                  "token '{}': character {} ('{}') is not a hex digit; use 0-9 and a-f", text,
                  bad + 1, text[bad]);
    }
    t.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return t;
}

std::string Token::hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return s;
}

std::string Token::short_hex() const { return hex().substr(0, 8); }

}  // namespace pmm::core
