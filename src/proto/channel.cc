// Whole protocol messages over a SEQPACKET socket. See channel.h.
#include "proto/channel.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <memory>
#include <span>
#include <utility>
#include <variant>
#include <vector>

#include "proto/codec.h"

namespace pmm::proto {
namespace {

static_assert(kMaxReplySize >= kMaxRequestSize);

// The most a thread's encoding buffer keeps between messages (send).
constexpr size_t kKeptEncodeBuffer = 4096;

// Where this thread's messages land: the largest message's worth, allocated
// on first use and kept for the thread's life, never zero-filled (the
// kernel writes what arrives; the decoder reads only that). Filling 128 KiB
// per receive was the most expensive thing a request did in user space.
// Decoding copies everything out, so the next receive may overwrite it.
std::span<std::byte> thread_buffer(size_t size) {
  thread_local const std::unique_ptr<std::byte[]> storage =
      std::make_unique_for_overwrite<std::byte[]>(kMaxReplySize);
  return {storage.get(), size};
}

// `v` little-endian at `at` (the wire's byte order), one store on a
// little-endian machine.
template <typename T>
void store_le(std::byte* at, T v) {
  if constexpr (std::endian::native != std::endian::little) v = std::byteswap(v);
  std::memcpy(at, &v, sizeof v);
}

Result<std::optional<Envelope>> receive(int sock, size_t max_bytes, bool requests, int flags) {
  // Room for kMaxFdsPerMessage fds only: the kernel flags any more with
  // MSG_CTRUNC and closes them itself.
  auto in = os::receive_message_into(sock, thread_buffer(max_bytes), kMaxFdsPerMessage, flags);
  if (!in) return std::unexpected(in.error());
  if (!*in) return std::optional<Envelope>();
  os::ReceivedInto& raw = **in;  // its fds close when it goes, unless moved out
  auto m = requests ? decode_request(raw.bytes) : decode_reply(raw.bytes);
  if (!m) return std::unexpected(m.error());
  size_t want = fds_expected(m->body);
  if (raw.fds_lost && raw.fds.size() < want) {
    return std::optional<Envelope>(
        Envelope{.message = std::move(*m), .fd = {}, .fd_lost = std::move(raw.fds_lost)});
  }
  if (raw.fds.size() != want) {
    return fail(Errc::kProtocol, "{} came with {} file descriptors; it must carry {}",
                message_type_name(type_of(m->body)), raw.fds.size(), want);
  }
  Envelope e{.message = std::move(*m), .fd = {}};
  if (want == 1) e.fd = std::move(raw.fds.front());
  return std::optional<Envelope>(std::move(e));
}

}  // namespace

Status send(int sock, const Message& m, int fd, int flags) {
  size_t want = fds_expected(m.body);
  size_t have = fd >= 0 ? 1 : 0;
  if (want != have) {
    return fail(Errc::kInvalidArgument, "{} must carry {} file descriptors, not {}",
                message_type_name(type_of(m.body)), want, have);
  }
  // This thread's encoding buffer, kept: a message sent costs no heap
  // allocation (the daemon answers every request through here).
  thread_local std::vector<std::byte> bytes;
  if (bytes.capacity() < 256) bytes.reserve(256);  // every common message fits
  if (auto s = encode_into(m, bytes); !s) return std::unexpected(s.error());
  std::array<int, 1> fds{fd};
  Status sent = os::send_message(sock, bytes, std::span<const int>(fds.data(), have), flags);
  // A large reply (a listing page) does not keep its size for the thread's life.
  if (bytes.capacity() > kKeptEncodeBuffer) std::vector<std::byte>().swap(bytes);
  return sent;
}

namespace {

// receive_reply_into once it may bring an fd: recvmsg with room for one.
[[gnu::noinline]] Result<bool> receive_reply_with_fd(int sock, Envelope& out, int flags) {
  auto in = os::receive_message_into(sock, thread_buffer(kMaxReplySize), kMaxFdsPerMessage, flags);
  if (!in) return std::unexpected(std::move(in.error()));
  if (!*in) return false;
  os::ReceivedInto& raw = **in;  // its fds close when it goes, unless moved out
  out.fd.reset();
  out.fd_lost.reset();
  if (auto s = decode_reply_into(raw.bytes, out.message); !s)
    return std::unexpected(std::move(s.error()));
  // As receive() judges them.
  const size_t want = fds_expected(out.message.body);
  if (raw.fds_lost && raw.fds.size() < want) {
    out.fd_lost = std::move(raw.fds_lost);
    return true;
  }
  if (raw.fds.size() != want) {
    return fail(Errc::kProtocol, "{} came with {} file descriptors; it must carry {}",
                message_type_name(type_of(out.message.body)), raw.fds.size(), want);
  }
  if (want == 1) out.fd = std::move(raw.fds.front());
  return true;
}

// A BlockInfo that announced an fd read with recv(): the kernel dropped it.
[[gnu::noinline, gnu::cold]] void fd_dropped(Envelope& out) {
  const auto& info = std::get<BlockInfo>(out.message.body);
  out.fd_lost = Error{Errc::kSystem,
                      fmt::format("the daemon sent pool '{}''s file descriptor with a reply "
                                  "that was read without room for one (it had already sent "
                                  "that pool's fd, or the request named only pools whose fds "
                                  "this session holds), so the kernel dropped it",
                                  info.pool_name),
                      0};
}

}  // namespace

namespace {

// A header's u16 / u32 at `at` (little-endian on the wire).
template <typename T>
T load_le(std::span<const std::byte> bytes, size_t at) {
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof v);
  if constexpr (std::endian::native != std::endian::little) v = std::byteswap(v);
  return v;
}

// `bytes` as an Ok or a TokenReply (SmallReply), if it is a well-formed one.
[[gnu::always_inline]] inline bool take_small(std::span<const std::byte> bytes, SmallReply& small) {
  constexpr size_t kTokenSize = std::tuple_size_v<Token>;
  if (bytes.size() != kHeaderSize && bytes.size() != kHeaderSize + kTokenSize) return false;
  const auto type = static_cast<MessageType>(load_le<uint16_t>(bytes, 6));
  const size_t payload = bytes.size() - kHeaderSize;
  if (load_le<uint32_t>(bytes, 0) != kMagic || load_le<uint16_t>(bytes, 4) != kProtocolVersion ||
      load_le<uint32_t>(bytes, 12) != payload)
    return false;
  if (type == MessageType::kOk ? payload != 0 : type != MessageType::kToken || payload == 0)
    return false;
  small.set = true;
  small.type = type;
  small.request_id = load_le<uint32_t>(bytes, 8);
  if (payload != 0) std::memcpy(small.token.data(), bytes.data() + kHeaderSize, kTokenSize);
  return true;
}

// receive_reply_into, with `small` (when given) taking an Ok or a TokenReply.
[[gnu::always_inline]] inline Result<bool> receive_reply_small(int sock, Envelope& out, int flags,
                                                               bool fd_possible,
                                                               SmallReply* small) {
  // Decoded in place (decode_reply_into): a reply of the type the last one
  // was reuses its storage, and no Message or Envelope is built and moved.
  // The common case, a reply that cannot bring an fd, first and lean: what
  // the Envelope held before is cleared only if it held something.
  if (fd_possible) return receive_reply_with_fd(sock, out, flags);
  const std::span<std::byte> buffer = thread_buffer(kMaxReplySize);
  std::span<std::byte> bytes;
  // A whole reply that fits, the common case, without a Result in between.
  if (const ssize_t n = os::recv_datagram(sock, buffer, flags);
      n > 0 && static_cast<size_t>(n) <= buffer.size()) [[likely]] {
    bytes = buffer.first(static_cast<size_t>(n));
  } else {
    auto in = os::receive_bytes_outcome(sock, buffer, flags, n, errno);
    if (!in) return std::unexpected(std::move(in.error()));
    if (!*in) return false;
    bytes = **in;
  }
  if (small != nullptr && take_small(bytes, *small)) return true;
  if (out.fd) out.fd.reset();
  if (out.fd_lost) out.fd_lost.reset();
  if (auto s = decode_reply_into(bytes, out.message); !s) [[unlikely]]
    return std::unexpected(std::move(s.error()));
  if (const auto* info = std::get_if<BlockInfo>(&out.message.body);
      info != nullptr && info->memory.fd_attached) [[unlikely]]
    fd_dropped(out);
  return true;
}

}  // namespace

Result<bool> receive_reply_into(int sock, Envelope& out, int flags, bool fd_possible) {
  return receive_reply_small(sock, out, flags, fd_possible, nullptr);
}

Result<bool> receive_reply_into(int sock, Envelope& out, int flags, bool fd_possible,
                                SmallReply& small) {
  small.set = false;
  return receive_reply_small(sock, out, flags, fd_possible, &small);
}

void SmallReply::into(Envelope& out) const {
  out.fd.reset();
  out.fd_lost.reset();
  out.message.request_id = request_id;
  if (type == MessageType::kOk) {
    if (!std::holds_alternative<Ok>(out.message.body)) out.message.body.emplace<Ok>();
    return;
  }
  TokenReply* t = std::get_if<TokenReply>(&out.message.body);
  if (t == nullptr) t = &out.message.body.emplace<TokenReply>();
  t->token = token;
}

std::array<std::byte, 8> FieldRequest::u64(uint64_t v) {
  std::array<std::byte, 8> out;
  store_le(out.data(), v);
  return out;
}

Result<FieldRequest> FieldRequest::make(const Body& with_marker,
                                        std::span<const std::byte> marker) {
  FieldRequest r;
  const std::string_view name = message_type_name(type_of(with_marker));
  if (marker.empty() || marker.size() > kMaxField)
    return fail(Errc::kInvalidArgument, "{}: a field marker is 1 to {} bytes, not {}", name,
                kMaxField, marker.size());
  std::vector<std::byte> bytes;
  if (auto s = encode_into(Message{.request_id = 0, .body = with_marker}, bytes); !s)
    return std::unexpected(s.error());
  if (bytes.size() > r.bytes_.size())
    return fail(Errc::kInvalidArgument, "{} encodes to {} bytes; a FieldRequest holds {}", name,
                bytes.size(), r.bytes_.size());
  // The field is where the codec wrote the marker, once, in the payload.
  const auto payload = std::span<const std::byte>(bytes).subspan(kHeaderSize);
  const auto at = std::ranges::search(payload, marker);
  if (at.empty() || !std::ranges::search(std::span(at.begin() + 1, payload.end()), marker).empty())
    return fail(Errc::kInvalidArgument, "{}: the marker is not in its encoding exactly once", name);
  r.size_ = bytes.size();
  r.field_ = kHeaderSize + static_cast<size_t>(at.begin() - payload.begin());
  r.field_size_ = marker.size();
  std::copy(bytes.begin(), bytes.end(), r.bytes_.begin());
  return r;
}

Status FieldRequest::refuse_size(size_t given) const {
  return fail(Errc::kInvalidArgument, "a field of {} bytes was given {}", field_size_, given);
}

Status send_encoded(int sock, std::span<const std::byte> bytes, int flags) {
  const ssize_t n = os::send_datagram(sock, bytes, flags);
  if (n == static_cast<ssize_t>(bytes.size())) [[likely]]
    return {};
  return os::send_outcome(sock, bytes, flags, n, errno);
}

Result<std::optional<Envelope>> receive_request(int sock) {
  return receive(sock, kMaxRequestSize, true, 0);
}

Result<std::optional<Envelope>> receive_reply(int sock, int flags) {
  return receive(sock, kMaxReplySize, false, flags);
}

}  // namespace pmm::proto
