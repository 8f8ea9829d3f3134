// See dead_tokens.h.
#include "core/dead_tokens.h"

#include <cstring>

namespace pmm::core {

static_assert((DeadTokens::kCapacity & (DeadTokens::kCapacity - 1)) == 0);
static_assert(DeadTokens::kCapacity < (1u << 16), "a ring position + 1 fits in 16 bits");

size_t DeadTokens::home_of(const Token& t) {
  uint64_t h = 0;
  std::memcpy(&h, t.bytes.data(), sizeof h);
  return static_cast<size_t>(h) & (kSlots - 1);
}

size_t DeadTokens::slot_of(const Token& t) const {
  if (count_ == 0) return kSlots;
  const size_t home = home_of(t);
  // The index is never more than half full: the probe ends at an empty slot.
  for (size_t i = home;; i = (i + 1) & (kSlots - 1)) {
    const uint32_t s = index_[i];
    if (s == kEmpty) return kSlots;
    if (home_of(s) == home && ring_[position_of(s)].token == t) return i;
  }
}

std::optional<DeadTokens::Reason> DeadTokens::find(const Token& t) const {
  const size_t i = slot_of(t);
  if (i == kSlots) return std::nullopt;
  return ring_[position_of(index_[i])].why;
}

void DeadTokens::erase_slot(size_t i) {
  // Backward shift: a later slot of the cluster moves into the hole unless
  // its home lies cyclically in (hole, slot], where the probe for it would
  // not pass the hole.
  for (size_t j = (i + 1) & (kSlots - 1); index_[j] != kEmpty; j = (j + 1) & (kSlots - 1)) {
    const size_t home = home_of(index_[j]);
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    index_[i] = index_[j];
    i = j;
  }
  index_[i] = kEmpty;
}

void DeadTokens::remember(const Token& t, Reason why) {
  if (ring_ == nullptr) {
    ring_ = std::make_unique<Entry[]>(kCapacity);
    index_ = std::make_unique<uint32_t[]>(kSlots);  // zeroed: all empty
  }
  if (const size_t i = slot_of(t); i != kSlots) {
    ring_[position_of(index_[i])].why = why;
    return;
  }
  if (count_ == kCapacity) {
    erase_slot(slot_of(ring_[next_].token));  // the oldest
  } else {
    ++count_;
  }
  ring_[next_] = Entry{.token = t, .why = why};
  const size_t home = home_of(t);
  size_t i = home;
  while (index_[i] != kEmpty) i = (i + 1) & (kSlots - 1);
  index_[i] = pack(home, next_);
  next_ = (next_ + 1) & (kCapacity - 1);
}

Status DeadTokens::check() const {
  size_t used = 0;
  for (size_t i = 0; index_ != nullptr && i < kSlots; ++i) {
    const uint32_t s = index_[i];
    if (s == kEmpty) continue;
    ++used;
    const size_t p = position_of(s);
    if (p >= count_ || home_of(ring_[p].token) != home_of(s) || slot_of(ring_[p].token) != i)
      return fail(Errc::kSystem, "invariant: dead-token index slot {} names ring entry {} wrongly",
                  i, p);
  }
  if (used != count_)
    return fail(Errc::kSystem, "invariant: {} dead tokens but {} index slots in use", count_, used);
  return {};
}

}  // namespace pmm::core
