// Fuzz target: bytes -> decode -> encode, over the strict wire codec.
//
// Whatever the decoder accepts must be a message the encoder writes back
// byte for byte (the codec is canonical: one encoding per message; only
// the version field of Hello, Welcome and ErrorReply, whose layout every
// version shares, may differ), that decodes again to the same message;
// decode_request and decode_reply must agree with decode and with the
// message's direction and size limit. Anything else aborts with what was
// wrong, which the fuzzer reports as a crash.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "proto/codec.h"

namespace {

[[noreturn]] void violated(const std::string& what) {
  std::fprintf(stderr, "codec fuzz: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pmm::proto;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto any = decode(in);
  auto req = decode_request(in);
  auto rep = decode_reply(in);
  if (!any) {
    if (req || rep) violated("decode_request/decode_reply accepted what decode refused");
    if (any.error().code != pmm::Errc::kProtocol) violated("a refusal that is not kProtocol");
    if (any.error().message.empty()) violated("a refusal without a reason");
    return 0;
  }
  const MessageType type = type_of(any->body);
  const bool request = is_request(type);
  if (request == is_reply(type)) violated("a message that is both or neither request and reply");
  if (req.has_value() != (request && size <= kMaxRequestSize)) {
    violated("decode_request disagrees with decode on a " + std::string(message_type_name(type)));
  }
  if (rep.has_value() != (!request && size <= kMaxReplySize)) {
    violated("decode_reply disagrees with decode on a " + std::string(message_type_name(type)));
  }
  if (req && *req != *any) violated("decode_request and decode give different messages");
  if (rep && *rep != *any) violated("decode_reply and decode give different messages");

  auto bytes = encode(*any);
  if (!bytes) {
    // decode() alone does not apply the size limits; decode_request/reply do.
    if (req || rep) violated("decoded but does not encode: " + bytes.error().describe());
    return 0;
  }
  std::vector<std::byte> expect(in.begin(), in.end());
  if (type == MessageType::kHello || type == MessageType::kWelcome || type == MessageType::kError) {
    expect[4] = static_cast<std::byte>(kProtocolVersion & 0xff);
    expect[5] = static_cast<std::byte>(kProtocolVersion >> 8);
  }
  if (*bytes != expect) {
    violated("a " + std::string(message_type_name(type)) +
             " decoded and re-encoded to other bytes: the codec is not canonical");
  }
  auto again = decode(*bytes);
  if (!again || *again != *any) violated("the re-encoded message decodes differently");
  if (const auto* e = std::get_if<ErrorReply>(&any->body)) {
    if (from_error(to_error(*e)) != *e) violated("ErrorReply -> Error -> ErrorReply changed it");
  }
  (void)fds_expected(any->body);
  return 0;
}
