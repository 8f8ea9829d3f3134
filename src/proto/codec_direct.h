// pmm::proto::detail direct decoders — the hot requests' payloads read field
// by field for codec.cc's RequestSlots: inline, but for Allocate's and
// Hello's (in codec_direct.cc, with the direct encoders of the hot replies
// that encode_reply_into uses). Private to the proto layer.
//
// Each returns false ("not handled") for anything it does not accept,
// refusals included; the caller then takes the generic path, which gives the
// answer and the error message. What a direct path does accept it reads
// exactly as the generic path would (codec_test.cc).
//
// Thread safety: pure functions.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "proto/messages.h"

namespace pmm::proto::detail {

// Little-endian loads of fixed sizes; the caller has checked the bytes are there.
template <typename U>
U load_le(const std::byte* at) {
  U v;
  std::memcpy(&v, at, sizeof(U));
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  return v;
}

// The payload of a Get, Put, SysvExport... (one u64 block id).
inline bool decode_block_id(std::span<const std::byte> payload, uint64_t& block_id) {
  if (payload.size() != sizeof(uint64_t)) [[unlikely]]
    return false;
  block_id = load_le<uint64_t>(payload.data());
  return true;
}

// An Export's payload: block id (u64), max imports, lifetime in ms (u32).
inline bool decode_export(std::span<const std::byte> payload, Export& m) {
  if (payload.size() != 8 + 4 + 4) [[unlikely]]
    return false;
  m.block_id = load_le<uint64_t>(payload.data());
  m.max_imports = load_le<uint32_t>(payload.data() + 8);
  m.lifetime_ms = load_le<uint32_t>(payload.data() + 12);
  return true;
}

// An Import's payload: the token's bytes.
inline bool decode_token(std::span<const std::byte> payload, Token& token) {
  if (payload.size() != token.size()) [[unlikely]]
    return false;
  std::memcpy(token.data(), payload.data(), token.size());
  return true;
}

// A Hello's payload into `m` (once per connection; out of line). On false
// `m` is unusable.
bool decode_hello(std::span<const std::byte> payload, Hello& m);

// An Allocate's payload into `m`, reusing its pool names' storage (a name
// equal to the one it holds is not copied). Every name `m` holds must be
// one that decoded (RequestSlots keeps it so). On false `m` is unusable.
bool decode_allocate(std::span<const std::byte> payload, Allocate& m);

}  // namespace pmm::proto::detail
