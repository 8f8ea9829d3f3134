// pmm::proto channel — send and receive whole protocol messages (with their
// fds) on a SEQPACKET socket: codec.h over os/socket.h.
//
// The fd rule is enforced on both sides: a BlockInfo with
// memory.fd_attached travels with exactly one fd, every other message with
// none. A message that breaks it, or fails to decode, is kProtocol and any
// fds that came with it are closed before the error returns. One exception
// is the receiver's own doing: an fd the kernel could not install here (a
// full fd table) leaves the message valid, with Envelope::fd_lost saying why.
//
// Usage (client):
//   PMM_TRY-style: if (auto s = proto::send(sock, {.request_id = 1, .body = Hello{...}}); !s) ...
//   auto in = proto::receive_reply(sock);        // blocking socket: never nullopt
//   if (in && *in) { Envelope& e = **in; ... e.fd (os::UniqueFd, valid if attached) }
// Usage (daemon, non-blocking session socket):
//   auto in = proto::receive_request(fd);  // nullopt: nothing yet; kDisconnected: gone
//   proto::send(fd, reply, pool_fd);        // pool_fd = -1 unless fd_attached
//
// Thread safety: as os/socket.h; one sender and one receiver per socket.
#pragma once

#include <array>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "base/error.h"
#include "os/socket.h"
#include "proto/messages.h"

namespace pmm::proto {

struct Envelope {
  Message message{};
  os::UniqueFd fd{};  // valid only for a BlockInfo with memory.fd_attached
  // A message that should have brought an fd whose fd this process could
  // not receive (a full fd table): why. The message itself is intact.
  std::optional<Error> fd_lost{};
};

// Encodes and sends `m`; `fd` >= 0 travels with it. kInvalidArgument when
// the fd does not match fds_expected(m.body) or m does not encode.
// `flags` are added to sendmsg's (MSG_DONTWAIT).
[[nodiscard]] Status send(int sock, const Message& m, int fd = -1, int flags = 0);

// Receive one message; only requests (<= kMaxRequestSize) / only replies.
// nullopt: nothing to read on a non-blocking socket. The datagram lands in
// a buffer of the calling thread's, allocated once (the largest message's
// size) and never zero-filled; the Envelope owns copies of what it holds.
// `flags` are added to recvmsg's: MSG_DONTWAIT reads a blocking socket
// without waiting; a read that SO_RCVTIMEO ends is nullopt.
[[nodiscard]] Result<std::optional<Envelope>> receive_request(int sock);
[[nodiscard]] Result<std::optional<Envelope>> receive_reply(int sock, int flags = 0);

// As receive_reply, into `out` (its message is replaced; its storage, e.g.
// a string's, is reused): a reader that keeps one Envelope moves no
// message around per reply (decode_reply_into: same checks and errors as
// decode_reply). false: nothing to read yet, and `out` is untouched; on an
// error `out` holds nothing usable.
//
// `fd_possible` false reads with recv() instead of recvmsg(): no control
// buffer, so any fd that came with the message is closed by the kernel
// unseen. Only a reader that knows no reply outstanding can bring one
// should ask for that (docs/protocol.md: a pool's fd comes once per
// session, with the first BlockInfo of that pool). Should a BlockInfo
// read that way announce fd_attached anyway, it comes back intact with
// `fd_lost` saying the fd was dropped, as for a full fd table: the pool is
// then unusable on this connection, never a wild pointer. An fd beside any
// other message is the daemon's fault and is simply gone.
[[nodiscard]] Result<bool> receive_reply_into(int sock, Envelope& out, int flags, bool fd_possible);

// The two replies that carry no more than a token: an Ok (a header and
// nothing else) and a TokenReply (a header and a token), read straight off
// the wire with the checks decode_reply_into makes of them (magic, this
// version, the header's length equal to the datagram's, exactly that
// payload). A reader that keeps a Message for the larger replies
// (libpmm's BlockInfo, its pool name included) takes these beside it, so
// that the Message keeps its alternative from one BlockInfo to the next.
struct SmallReply {
  bool set = false;  // the last read was one (`out` untouched)
  MessageType type{};
  uint32_t request_id = 0;
  Token token{};  // kToken's
  // Makes `out` hold it (as receive_reply_into would have), for a reader
  // that needs it as a Message after all.
  void into(Envelope& out) const;
};

// As receive_reply_into; a reply read with recv() that is an Ok or a
// TokenReply fills `small` instead of `out`.
[[nodiscard]] Result<bool> receive_reply_into(int sock, Envelope& out, int flags, bool fd_possible,
                                              SmallReply& small);

// A request encoded once and sent again and again with two fields new: the
// header's request_id and one field of the payload, found where the codec
// wrote a marker value (so its place is the codec's, not assumed here).
// Sending costs a copy and two stores instead of an encoding: libpmm's Put
// of each block's last reference, its Export and Import.
//   auto put = FieldRequest::make(Put{.block_id = FieldRequest::kU64Marker},
//                                 FieldRequest::u64(FieldRequest::kU64Marker));
//   put->send(sock, id, FieldRequest::u64(block_id), MSG_DONTWAIT);
class FieldRequest {
 public:
  static constexpr uint64_t kU64Marker = 0x6d6d702d6669656cULL;
  static constexpr Token kTokenMarker = {'p', 'm', 'm', '-', 'f', 'i', 'e', 'l',
                                         'd', '-', 'm', 'a', 'r', 'k', 'e', 'r'};
  static constexpr size_t kMaxSize = 64;
  static constexpr size_t kMaxField = 16;
  // A u64 field's bytes as the wire has them (little-endian).
  [[nodiscard]] static std::array<std::byte, 8> u64(uint64_t v);
  // A token field's bytes.
  [[nodiscard]] static std::span<const std::byte, 16> token(const Token& t) {
    return std::as_bytes(std::span<const uint8_t, 16>(t));
  }
  // `with_marker` is the body with the field set to the marker whose wire
  // bytes are `marker` (at most kMaxField). kInvalidArgument if the body
  // does not encode, encodes to more than kMaxSize bytes, or does not hold
  // the marker exactly once in its payload.
  [[nodiscard]] static Result<FieldRequest> make(const Body& with_marker,
                                                 std::span<const std::byte> marker);
  // As send(sock, m, -1, flags) of the body with the field's bytes set to
  // `value` (as many as the marker had).
  // Inline (below): a copy of at most kMaxSize bytes and two stores.
  [[nodiscard]] Status send(int sock, uint32_t request_id, std::span<const std::byte> value,
                            int flags = 0) const;

 private:
  FieldRequest() = default;
  [[gnu::noinline, gnu::cold]] Status refuse_size(size_t given) const;
  std::array<std::byte, kMaxSize> bytes_{};
  size_t size_ = 0;
  size_t field_ = 0;
  size_t field_size_ = 0;
};

// Sends a message encoded earlier (encode_into), e.g. a request repeated
// with only its id changed (set_request_id). No fd travels with it.
[[nodiscard]] Status send_encoded(int sock, std::span<const std::byte> bytes, int flags = 0);
// Rewrites the request_id in an encoded message's header (messages.h:
// bytes 8-11, little-endian). `bytes` must hold at least a header.
inline void set_request_id(std::span<std::byte> bytes, uint32_t request_id) {
  if constexpr (std::endian::native != std::endian::little) request_id = std::byteswap(request_id);
  std::memcpy(bytes.data() + 8, &request_id, sizeof request_id);
}

[[gnu::always_inline]] inline Status FieldRequest::send(int sock, uint32_t request_id,
                                                        std::span<const std::byte> value,
                                                        int flags) const {
  if (value.size() != field_size_) [[unlikely]]
    return refuse_size(value.size());
  // Copies of constant sizes (the whole array, a u64 or a token), which
  // the compiler makes a few moves, not calls.
  std::array<std::byte, kMaxSize> out = bytes_;
  set_request_id(out, request_id);
  if (field_size_ == 8) {
    std::memcpy(out.data() + field_, value.data(), 8);
  } else if (field_size_ == 16) {
    std::memcpy(out.data() + field_, value.data(), 16);
  } else {
    std::memcpy(out.data() + field_, value.data(), field_size_);
  }
  const std::span<const std::byte> bytes(out.data(), size_);
  const ssize_t n = os::send_datagram(sock, bytes, flags);
  if (n == static_cast<ssize_t>(size_)) [[likely]]
    return {};
  return os::send_outcome(sock, bytes, flags, n, errno);
}

}  // namespace pmm::proto
