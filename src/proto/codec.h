// pmm::proto codec — messages.h structs to wire bytes and back, strictly.
//
// The decoder trusts nothing: the header's magic, version, type and payload
// length are checked, every string length and list count is bounded before
// anything is allocated, enums and booleans are range-checked, unknown flag
// bits and trailing bytes are refused. Every refusal is Errc::kProtocol with
// a message naming the message and field, what was found and what is allowed:
//   "Allocate: pool list has 300 entries; at most 16"
// The encoder runs the same checks (as Errc::kInvalidArgument: the caller
// asked for something the protocol cannot say), so whatever encodes decodes.
//
// Usage:
//   auto bytes = proto::encode({.request_id = 1, .body = proto::Get{.block_id = 9}});
//   if (!bytes) return std::unexpected(bytes.error());
//   auto msg = proto::decode_reply(received);   // kProtocol on anything odd
//
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <variant>
#include <vector>

#include "base/error.h"
#include "proto/messages.h"

namespace pmm::proto {

// The 16-byte header. decode_header checks magic and the payload length
// against the bytes that follow; it does not judge version or type.
struct Header {
  uint32_t magic = kMagic;
  uint16_t version = kProtocolVersion;
  MessageType type = MessageType::kOk;
  uint32_t request_id = 0;
  uint32_t payload_length = 0;
};
[[nodiscard]] Result<Header> decode_header(std::span<const std::byte> bytes);

// Header + payload. kInvalidArgument when a field is over its limit, an enum
// is out of range, or the whole message would exceed kMaxRequestSize
// (requests) / kMaxReplySize (replies).
[[nodiscard]] Result<std::vector<std::byte>> encode(const Message& m);
// As encode, into `out` (cleared first; its capacity is reused, so a
// sender that keeps one buffer allocates nothing per message). On failure
// `out` holds nothing usable.
[[nodiscard]] Status encode_into(const Message& m, std::vector<std::byte>& out);
// As encode_into, into the front of `out` (at least kHeaderSize bytes):
// returns the message's size. A size above out.size() means it did not fit
// and nothing usable was written (a buffer of kMaxReplySize always fits
// what encodes). For a sender that keeps one uninitialised buffer: nothing
// is allocated or zero-filled per message.
[[nodiscard]] Result<size_t> encode_into(const Message& m, std::span<std::byte> out);
// As encode_into (span form), with the replies pmmd sends most — BlockInfo,
// Ok, TokenReply and Welcome — written field by field rather than through
// the generic layouts:
// the same bytes, the same size when `out` is too small, the same refusals
// (whatever the direct path does not accept takes encode_into's). pmmd
// encodes every reply through it.
[[nodiscard]] Result<size_t> encode_reply_into(const Message& m, std::span<std::byte> out);

// Any message type. The header's version must be kProtocolVersion, except
// for Hello, Welcome and ErrorReply, whose layout every version shares: a
// daemon can read an old or new client's Hello to answer "version 2 is not
// supported; this daemon speaks 1".
[[nodiscard]] Result<Message> decode(std::span<const std::byte> bytes);
// As decode, but only requests (<= kMaxRequestSize) / only replies.
[[nodiscard]] Result<Message> decode_request(std::span<const std::byte> bytes);
[[nodiscard]] Result<Message> decode_reply(std::span<const std::byte> bytes);
// decode_request into a Message kept per message type: decoding the same
// type again reuses its storage (an Allocate's pool list), and no Body is
// built, moved or destroyed per message. pmmd decodes every request
// through one. The Message returned stays valid until the next decode of
// that type; on failure, what the slot of the type held is unusable.
//   proto::RequestSlots slots;
//   auto m = slots.decode(bytes);  // Result<const Message*>, as decode_request
class RequestSlots {
 public:
  [[nodiscard]] Result<const Message*> decode(std::span<const std::byte> bytes);

 private:
  std::array<Message, std::variant_size_v<Body>> slots_{};
};

// decode_reply into `out`, reusing what it holds: a reply of the type it
// held before is decoded over it (a BlockInfo's pool name keeps its
// storage), and no Message is built, moved or destroyed. A well-formed
// reply's header is checked inline; anything else takes decode_reply's
// path, so it accepts and refuses exactly what decode_reply does, with the
// same errors. On failure `out` holds nothing usable. libpmm reads every
// reply through one per thread.
[[nodiscard]] Status decode_reply_into(std::span<const std::byte> bytes, Message& out);

// How many fds must travel with this message: 1 for a BlockInfo whose
// memory.fd_attached is set, else 0. A receiver refuses any other count.
// (Inline: pmmd asks it of every reply.)
[[nodiscard]] inline size_t fds_expected(const Body& body) {
  const auto* b = std::get_if<BlockInfo>(&body);
  return b != nullptr && b->memory.fd_attached ? 1 : 0;
}

}  // namespace pmm::proto
