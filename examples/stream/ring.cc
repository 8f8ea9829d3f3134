// The pmm block ring of the streaming pipeline; see ring.h.
#include "stream/ring.h"

#include <fmt/format.h>

namespace examples {

Result<OutputRing> OutputRing::create(pmm_conn* conn, const std::string& pools, const Frame& frame,
                                      uint32_t slots) {
  if (slots < 1 || slots > kMaxSlots) {
    return std::unexpected(fmt::format("--slots {}: a ring has 1 to {} slots", slots, kMaxSlots));
  }
  OutputRing ring;
  ring.frame_ = frame;
  for (uint32_t i = 0; i < slots; ++i) {
    auto block = alloc_frame(conn, pools, frame);  // prefaults it
    if (!block) return std::unexpected(fmt::format("ring slot {}: {}", i, block.error()));
    ring.blocks_.push_back(std::move(*block));
  }
  ring.handed_on_.assign(slots, false);
  return ring;
}

Result<void> OutputRing::announce(Link& link, uint32_t lifetime_ms) {
  std::string tokens;
  for (const PmmBlock& block : blocks_) {
    auto line = export_frame(block.get(), frame_, lifetime_ms);
    if (!line) return std::unexpected(line.error());
    auto exported = parse_frame_line(*line, "pmm-frame");
    if (!exported) return std::unexpected(exported.error());
    if (!tokens.empty()) tokens += ',';
    tokens += exported->token;
  }
  Frame geometry = frame_;
  geometry.token.clear();
  return link.send(fmt::format("{} slots={} tokens={}", format_frame_line("pmm-ring", geometry),
                               blocks_.size(), tokens));
}

Result<void> OutputRing::take_free_message(Link& link) {
  auto message = link.receive();
  if (!message) return std::unexpected(message.error());
  if (!message->starts_with("free ")) {
    return std::unexpected(
        fmt::format("expected 'free slot=N' from the consumer, got '{}'", message->substr(0, 80)));
  }
  auto slot = message_number(*message, "slot");
  if (!slot) return std::unexpected(slot.error());
  if (*slot >= blocks_.size() || !handed_on_[*slot]) {
    return std::unexpected(
        fmt::format("the consumer freed slot {}, which it does not hold", *slot));
  }
  handed_on_[*slot] = false;
  return {};
}

Result<uint32_t> OutputRing::acquire(Link& link) {
  for (;;) {
    for (uint32_t i = 0; i < handed_on_.size(); ++i) {
      if (!handed_on_[i]) return i;
    }
    if (auto ok = take_free_message(link); !ok) return std::unexpected(ok.error());
  }
}

uint8_t* OutputRing::pixels(uint32_t slot) const {
  return static_cast<uint8_t*>(pmm_block_ptr(blocks_[slot].get()));
}

Result<void> OutputRing::publish(Link& link, uint32_t slot, uint64_t seq) {
  handed_on_[slot] = true;
  return link.send(fmt::format("frame slot={} seq={}", slot, seq));
}

Result<void> OutputRing::finish(Link& link, uint64_t frames) {
  if (auto ok = link.send(fmt::format("end frames={}", frames)); !ok) return ok;
  for (;;) {
    bool any = false;
    for (bool held : handed_on_) any = any || held;
    if (!any) return {};
    if (auto ok = take_free_message(link); !ok) return ok;
  }
}

Result<InputRing> InputRing::import(pmm_conn* conn, Link& link) {
  auto message = link.receive();
  if (!message) return std::unexpected(message.error());
  auto frame = parse_frame_line(*message, "pmm-ring");
  if (!frame) return std::unexpected(frame.error());
  auto slots = message_number(*message, "slots");
  if (!slots) return std::unexpected(slots.error());
  if (*slots < 1 || *slots > kMaxSlots) {
    return std::unexpected(fmt::format("a ring of {} slots; 1 to {} accepted", *slots, kMaxSlots));
  }
  std::string_view tokens = message_field(*message, "tokens");
  InputRing ring;
  ring.frame_ = *frame;
  for (uint64_t i = 0; i < *slots; ++i) {
    const size_t comma = tokens.find(',');
    Frame slot_frame = *frame;
    slot_frame.token = tokens.substr(0, comma);
    auto block = import_frame(conn, slot_frame);  // populates this process's view
    if (!block) return std::unexpected(fmt::format("ring slot {}: {}", i, block.error()));
    ring.blocks_.push_back(std::move(*block));
    tokens = comma == std::string_view::npos ? std::string_view{} : tokens.substr(comma + 1);
  }
  if (!tokens.empty()) {
    return std::unexpected(fmt::format("the ring message has more tokens than slots={}", *slots));
  }
  return ring;
}

Result<InputRing::Notice> InputRing::next(Link& link) const {
  auto message = link.receive();
  if (!message) return std::unexpected(message.error());
  Notice notice;
  if (message->starts_with("end ")) {
    notice.end = true;
    return notice;
  }
  if (!message->starts_with("frame ")) {
    return std::unexpected(
        fmt::format("expected 'frame slot=N seq=K' or 'end', got '{}'", message->substr(0, 80)));
  }
  auto slot = message_number(*message, "slot");
  auto seq = message_number(*message, "seq");
  if (!slot) return std::unexpected(slot.error());
  if (!seq) return std::unexpected(seq.error());
  if (*slot >= blocks_.size()) {
    return std::unexpected(
        fmt::format("frame in slot {} of a {}-slot ring", *slot, blocks_.size()));
  }
  notice.slot = static_cast<uint32_t>(*slot);
  notice.seq = *seq;
  return notice;
}

Result<void> InputRing::release(Link& link, uint32_t slot) {
  return link.send(fmt::format("free slot={}", slot));
}

const uint8_t* InputRing::pixels(uint32_t slot) const {
  return static_cast<const uint8_t*>(pmm_block_ptr(blocks_[slot].get()));
}

}  // namespace examples
