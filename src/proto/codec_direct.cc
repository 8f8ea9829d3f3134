// The direct encoders of the codec (the decoders are in codec_direct.h):
// the replies pmmd sends most (BlockInfo, Ok, TokenReply, and the Welcome
// that answers every connection's Hello), written field by
// field without the generic layouts (codec.cc), which go through a variant
// visit and a Writer that keeps a sticky error, a field path and the bounds
// of every field.
//
// Each direct path accepts a subset of what the generic path accepts and
// produces the very same result for it (bytes when encoding, a Message when
// decoding); anything outside that subset — any refusal among it — is left
// to the generic path, so every error message stays the generic path's.
// codec_test.cc compares the two over many values, valid and not.
#include <bit>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

#include "proto/codec.h"
#include "proto/codec_direct.h"

namespace pmm::proto::detail {
namespace {

// Little-endian stores of fixed sizes: one move each.
template <typename U>
void store(std::byte* at, U v) {
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  std::memcpy(at, &v, sizeof(U));
}

void store_header(std::byte* out, MessageType type, uint32_t request_id, size_t payload) {
  store(out, kMagic);
  store(out + 4, kProtocolVersion);
  store(out + 6, static_cast<uint16_t>(type));
  store(out + 8, request_id);
  store(out + 12, static_cast<uint32_t>(payload));
}

// What the generic layouts would refuse in a PoolMemory (codec.cc's
// fields(io, PoolMemory&)): a type out of range, an fd or no shmid for sysv,
// a shmid for any other type.
bool memory_valid(const PoolMemory& m) {
  if (static_cast<uint8_t>(m.type) > 2) return false;
  if (m.type == PoolType::kSysv) return !m.fd_attached && m.shmid >= 0;
  return m.shmid == -1;
}

// Whether a message whose payload of `payload` bytes carries the string
// `name` fits in `out` as the generic layouts would write it: the name at
// most kMaxNameLength bytes and without a NUL (a string field's rules).
bool fits_with_name(std::string_view name, size_t payload, std::span<const std::byte> out) {
  return name.size() <= kMaxNameLength && kHeaderSize + payload <= out.size() &&
         std::memchr(name.data(), 0, name.size()) == nullptr;
}

// The fixed part of a BlockInfo's payload: every field but the name's bytes.
constexpr size_t kBlockInfoFixed = 8 + 4 + 2 + 8 + 8 + 8 + 1 + 1 + 8 + 8 + 4;

// A whole BlockInfo message (header and payload) at the front of `out`.
std::optional<size_t> encode_block_info(uint32_t request_id, const BlockInfo& b,
                                        std::span<std::byte> out) {
  const std::string& name = b.pool_name;
  const size_t payload = kBlockInfoFixed + name.size();
  if (!fits_with_name(name, payload, out) || !memory_valid(b.memory)) [[unlikely]]
    return std::nullopt;
  std::byte* p = out.data();
  store_header(p, MessageType::kBlockInfo, request_id, payload);
  p += kHeaderSize;
  store(p, b.block_id);
  store(p + 8, b.pool_index);
  store(p + 12, static_cast<uint16_t>(name.size()));
  p += 14;
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  store(p, b.offset);
  store(p + 8, b.size);
  store(p + 16, b.phys);
  store(p + 24, static_cast<uint8_t>(b.memory.type));
  store(p + 25, static_cast<uint8_t>(b.memory.fd_attached ? 1 : 0));
  store(p + 26, b.memory.pool_size);
  store(p + 34, b.memory.page_size);
  store(p + 42, static_cast<uint32_t>(b.memory.shmid));
  return kHeaderSize + payload;
}

// A whole TokenReply message at the front of `out`.
std::optional<size_t> encode_token(uint32_t request_id, const Token& token,
                                   std::span<std::byte> out) {
  if (out.size() < kHeaderSize + token.size()) [[unlikely]]
    return std::nullopt;
  store_header(out.data(), MessageType::kToken, request_id, token.size());
  std::memcpy(out.data() + kHeaderSize, token.data(), token.size());
  return kHeaderSize + token.size();
}

// A whole Welcome message (the answer to every Hello) at the front of `out`:
// protocol_version (u16), session_id (u64), daemon_version (u16 length, bytes).
std::optional<size_t> encode_welcome(uint32_t request_id, const Welcome& w,
                                     std::span<std::byte> out) {
  const std::string& name = w.daemon_version;
  const size_t payload = 2 + 8 + 2 + name.size();
  if (!fits_with_name(name, payload, out)) [[unlikely]]
    return std::nullopt;
  std::byte* p = out.data();
  store_header(p, MessageType::kWelcome, request_id, payload);
  p += kHeaderSize;
  store(p, w.protocol_version);
  store(p + 2, w.session_id);
  store(p + 10, static_cast<uint16_t>(name.size()));
  std::memcpy(p + 12, name.data(), name.size());
  return kHeaderSize + payload;
}

// A whole message with no payload (Ok) at the front of `out`.
std::optional<size_t> encode_empty(MessageType type, uint32_t request_id,
                                   std::span<std::byte> out) {
  if (out.size() < kHeaderSize) [[unlikely]]
    return std::nullopt;
  store_header(out.data(), type, request_id, 0);
  return kHeaderSize;
}

}  // namespace

// Out of line (codec_direct.h): inline, it made codec.cc large enough that
// the compiler stopped inlining what the generic reader uses, which libpmm
// paid for on every reply.
bool decode_allocate(std::span<const std::byte> payload, Allocate& m) {
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

bool decode_hello(std::span<const std::byte> payload, Hello& m) {
  // protocol_version (u16), device (u16 length, bytes), pid (i32): codec.cc's
  // fields(io, Hello&).
  constexpr size_t kNameAt = 4;
  if (payload.size() < kNameAt + 4) [[unlikely]]
    return false;
  const size_t len = load_le<uint16_t>(payload.data() + 2);
  if (len > kMaxNameLength || payload.size() != kNameAt + len + 4) [[unlikely]]
    return false;
  const char* name = reinterpret_cast<const char*>(payload.data() + kNameAt);
  if (std::memchr(name, 0, len) != nullptr) [[unlikely]]
    return false;
  m.protocol_version = load_le<uint16_t>(payload.data());
  if (std::string_view(m.device) != std::string_view(name, len)) m.device.assign(name, len);
  m.pid = static_cast<int32_t>(load_le<uint32_t>(payload.data() + kNameAt + len));
  return true;
}

}  // namespace pmm::proto::detail

namespace pmm::proto {

Result<size_t> encode_reply_into(const Message& m, std::span<std::byte> out) {
  std::optional<size_t> size;
  if (const auto* b = std::get_if<BlockInfo>(&m.body)) {
    size = detail::encode_block_info(m.request_id, *b, out);
  } else if (std::holds_alternative<Ok>(m.body)) {
    size = detail::encode_empty(MessageType::kOk, m.request_id, out);
  } else if (const auto* t = std::get_if<TokenReply>(&m.body)) {
    size = detail::encode_token(m.request_id, t->token, out);
  } else if (const auto* w = std::get_if<Welcome>(&m.body)) {
    size = detail::encode_welcome(m.request_id, *w, out);
  }
  if (size) [[likely]]
    return *size;
  return encode_into(m, out);
}

}  // namespace pmm::proto
