// pmm::alloc::detail::OffsetMap — live block offset -> segment index, an
// open-addressing hash table.
//
// Both strategies keep their records out of band, so release(offset) needs a
// way from an offset to the record of the block that starts there. An
// in-band allocator reads a header just before the block; we read this table.
// It is linear probing with Fibonacci hashing (offsets are usually multiples
// of a large power of two, which a multiply-and-take-the-high-bits hash
// spreads well), at most half full, with backward-shift deletion so no
// tombstones accumulate and probe lengths stay short however long it runs.
//
// Every lookup adds the slots it probed to `steps`, the strategies' honest
// work count. Growing the table (doubling, amortised O(1) per insert) is
// memory management of the metadata heap, like std::vector growth, and is
// not counted.
//
// Usage:
//   OffsetMap m;
//   uint64_t steps = 0;
//   m.insert(4096, 7, steps);
//   uint32_t seg = m.find(4096, steps);   // 7, or kNoValue when absent
//   m.erase(4096, steps);
//
// Thread safety: none; owned by one strategy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pmm::alloc::detail {

class OffsetMap {
 public:
  static constexpr uint32_t kNoValue = UINT32_MAX;

  OffsetMap() { rehash(16); }

  [[nodiscard]] size_t size() const { return count_; }

  [[nodiscard]] uint32_t find(uint64_t key, uint64_t& steps) const {
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      ++steps;
      const Slot& s = slots_[i];
      if (s.key == key) return s.value;
      if (s.key == kEmpty) return kNoValue;
    }
  }

  // `key` must not be present and must not be UINT64_MAX (no offset in a
  // region of at most UINT64_MAX bytes is).
  void insert(uint64_t key, uint32_t value, uint64_t& steps) {
    if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
    size_t i = home(key);
    for (; slots_[i].key != kEmpty; i = (i + 1) & mask_) ++steps;
    ++steps;
    slots_[i] = Slot{key, value};
    ++count_;
  }

  // Returns false when `key` is absent.
  bool erase(uint64_t key, uint64_t& steps) {
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      ++steps;
      if (slots_[i].key == key) break;
      if (slots_[i].key == kEmpty) return false;
    }
    // Backward shift: pull later entries of the same probe run into the hole
    // when their home is at or before it, so lookups never need tombstones.
    size_t hole = i;
    for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      ++steps;
      if (slots_[j].key == kEmpty) break;
      size_t h = home(slots_[j].key);
      // Is h cyclically outside (hole, j]? Then the entry may move to hole.
      bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
      if (movable) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot{kEmpty, kNoValue};
    --count_;
    return true;
  }

  void clear() {
    count_ = 0;
    rehash(16);
  }

  // Calls f(key, value) for every entry, in no particular order.
  template <typename F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.key != kEmpty) f(s.key, s.value);
  }

 private:
  static constexpr uint64_t kEmpty = UINT64_MAX;
  struct Slot {
    uint64_t key = kEmpty;
    uint32_t value = kNoValue;
  };

  [[nodiscard]] size_t home(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
  }

  void rehash(size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(capacity));
    for (const Slot& s : old) {
      if (s.key == kEmpty) continue;
      size_t i = home(s.key);
      while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  unsigned shift_ = 60;
  size_t count_ = 0;
};

}  // namespace pmm::alloc::detail
