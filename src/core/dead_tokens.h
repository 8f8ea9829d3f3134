// pmm::core::DeadTokens — the export tokens that ended last, and why, so
// that a late import or unexport can say "expired" or "imported as often
// as allowed" rather than "no export has that token".
//
// Bounded: it holds the last kCapacity tokens that ended; remembering one
// more forgets the oldest. A ring of entries in the order they ended and an
// open-addressed index (linear probing, twice as many slots as entries)
// whose slots also hold each entry's home slot, so that a lookup reads the
// index and one entry, and forgetting the oldest moves index slots back
// without reading entries. Nothing is allocated per token: the ring and the
// index are allocated at the first remember(), once.
//
// A token's first 8 bytes are random (tokens.h): they are its hash.
//
// Usage:
//   DeadTokens dead;
//   dead.remember(token, DeadTokens::Reason::kUsedUp);
//   if (auto why = dead.find(token)) ...
//
// Not thread-safe (the Ledger's, which the daemon's one thread owns).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "base/error.h"
#include "core/tokens.h"

namespace pmm::core {

class DeadTokens {
 public:
  enum class Reason : uint8_t { kWithdrawn, kUsedUp, kExpired };
  static constexpr size_t kCapacity = 4096;

  // Remembers that `t` ended for `why`; a token remembered already keeps its
  // place and takes the new reason.
  void remember(const Token& t, Reason why);
  // Why `t` ended, if it is remembered.
  [[nodiscard]] std::optional<Reason> find(const Token& t) const;
  [[nodiscard]] size_t size() const { return count_; }
  // Every entry is found through the index and the index holds nothing
  // else. kSystem saying what disagrees.
  [[nodiscard]] Status check() const;

 private:
  static constexpr size_t kSlots = 2 * kCapacity;  // a power of two
  static constexpr uint32_t kEmpty = 0;
  struct Entry {
    Token token;
    Reason why = Reason::kWithdrawn;
  };
  // An index slot: the entry's home slot in the high half, its ring
  // position + 1 in the low half (0: empty).
  static uint32_t pack(size_t home, size_t position) {
    return static_cast<uint32_t>(home << 16 | (position + 1));
  }
  static size_t home_of(uint32_t slot) { return slot >> 16; }
  static size_t position_of(uint32_t slot) { return (slot & 0xffff) - 1; }
  static size_t home_of(const Token& t);
  // The index slot of `t`, or kSlots when it is not remembered.
  [[nodiscard]] size_t slot_of(const Token& t) const;
  // Empties index slot `i`, moving later slots of its cluster back.
  void erase_slot(size_t i);

  std::unique_ptr<Entry[]> ring_;
  std::unique_ptr<uint32_t[]> index_;
  size_t next_ = 0;   // where the next token goes in ring_
  size_t count_ = 0;  // <= kCapacity
};

}  // namespace pmm::core
