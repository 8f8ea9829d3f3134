// pmm::proto::detail direct paths — the hot messages' payloads read and
// written field by field (codec_direct.cc), for codec.cc's RequestSlots and
// encode_reply_into. Private to the proto layer.
//
// Each returns "not handled" (nullopt, false) for anything it does not
// accept, refusals included; the caller then takes the generic path, which
// gives the answer and the error message. What a direct path does accept it
// reads or writes exactly as the generic path would (codec_test.cc).
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "proto/messages.h"

namespace pmm::proto::detail {

// A whole BlockInfo message (header and payload) at the front of `out`.
[[nodiscard]] std::optional<size_t> encode_block_info(uint32_t request_id, const BlockInfo& b,
                                                      std::span<std::byte> out);
// A whole message with no payload (Ok) at the front of `out`.
[[nodiscard]] std::optional<size_t> encode_empty(MessageType type, uint32_t request_id,
                                                 std::span<std::byte> out);

// The payload of a Get, Put, SysvExport... (one u64 block id).
[[nodiscard]] bool decode_block_id(std::span<const std::byte> payload, uint64_t& block_id);
// An Allocate's payload into `m`, reusing its pool names' storage (a name
// equal to the one it holds is not copied). On false `m` is unusable.
[[nodiscard]] bool decode_allocate(std::span<const std::byte> payload, Allocate& m);

}  // namespace pmm::proto::detail
