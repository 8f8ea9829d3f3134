// pmm::proto::detail direct decoders — the hot requests' payloads read field
// by field, inline, for codec.cc's RequestSlots (the direct encoders of the
// hot replies are codec_direct.cc's, behind encode_reply_into). Private to
// the proto layer.
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

// An Allocate's payload into `m`, reusing its pool names' storage (a name
// equal to the one it holds is not copied). Every name `m` holds must be
// one that decoded (RequestSlots keeps it so). On false `m` is unusable.
inline bool decode_allocate(std::span<const std::byte> payload, Allocate& m) {
  // pool count (u32), each name (u16 length, bytes), size, alignment (u64),
  // flags (u32): codec.cc's allocate_fields.
  const std::byte* p = payload.data();
  const std::byte* const end = p + payload.size();
  constexpr size_t kTail = 8 + 8 + 4;
  if (payload.size() < 4 + kTail) [[unlikely]]
    return false;
  const uint32_t count = load_le<uint32_t>(p);
  p += 4;
  if (count > kMaxAllocatePools) [[unlikely]]
    return false;
  if (m.pools.size() != count) m.pools.resize(count);
  for (std::string& name : m.pools) {
    if (end - p < 2) [[unlikely]]
      return false;
    const uint16_t len = load_le<uint16_t>(p);
    p += 2;
    if (len > kMaxNameLength || static_cast<size_t>(end - p) < len) [[unlikely]]
      return false;
    const char* bytes = reinterpret_cast<const char*>(p);
    // The same name as the last Allocate's (the common case): nothing to
    // copy, and nothing to check: a name the slot holds passed these very
    // checks (RequestSlots clears the list when a decode fails).
    if (std::string_view(name) != std::string_view(bytes, len)) {
      if (std::memchr(bytes, 0, len) != nullptr) [[unlikely]]
        return false;
      name.assign(bytes, len);
    }
    p += len;
  }
  if (static_cast<size_t>(end - p) != kTail) [[unlikely]]
    return false;
  m.size = load_le<uint64_t>(p);
  m.alignment = load_le<uint64_t>(p + 8);
  m.flags = load_le<uint32_t>(p + 16);
  return (m.flags & ~kAllocKnownFlags) == 0;
}

}  // namespace pmm::proto::detail
