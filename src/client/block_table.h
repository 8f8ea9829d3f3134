// pmm::client::IdTable — owned objects by a 64-bit id, for the C API's
// table of block handles (c_handles.h: one pmm_block per block per
// connection, found by id when an import brings a block already held).
//
// Open addressing with linear probing over a power-of-two array, at most
// half full; a removal shifts the entries after it back (no tombstones), so
// a lookup stops at the first empty slot however long the table has lived.
// An id hashes with one multiply. Compared with the std::unordered_map of
// unique_ptrs it replaces, an insert or removal touches one array, with no
// node, bucket or rehash bookkeeping (the C API does one of each per block).
//
// Not thread-safe: pmm_conn::mu guards it.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace pmm::client {

template <typename T>
class IdTable {
 public:
  [[nodiscard]] size_t size() const { return used_; }

  // The object under `id`, or nullptr.
  [[nodiscard]] T* find(uint64_t id) const {
    if (used_ == 0) return nullptr;
    for (size_t i = home(id);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.object) return nullptr;
      if (s.id == id) return s.object.get();
    }
  }

  // Keeps `object` (not null) under `id`, which must not be in the table.
  void insert(uint64_t id, std::unique_ptr<T> object) {
    if (2 * (used_ + 1) > slots_.size()) grow();
    size_t i = home(id);
    while (slots_[i].object) i = (i + 1) & mask_;
    slots_[i].id = id;
    slots_[i].object = std::move(object);
    ++used_;
  }

  // The object under `id` if there is one (`made` false); else the object
  // `make()` returns (not null), kept under `id` (`made` true). One probe
  // where find() then insert() would take two.
  template <typename Make>
  [[nodiscard]] T* find_or_insert(uint64_t id, Make&& make, bool& made) {
    if (2 * (used_ + 1) > slots_.size()) grow();
    size_t i = home(id);
    for (; slots_[i].object; i = (i + 1) & mask_) {
      if (slots_[i].id == id) {
        made = false;
        return slots_[i].object.get();
      }
    }
    slots_[i].id = id;
    slots_[i].object = make();
    ++used_;
    made = true;
    return slots_[i].object.get();
  }

  // Takes the object under `id` out of the table; nullptr if none.
  [[nodiscard]] std::unique_ptr<T> extract(uint64_t id) {
    if (used_ == 0) return nullptr;
    size_t i = home(id);
    for (;; i = (i + 1) & mask_) {
      if (!slots_[i].object) return nullptr;
      if (slots_[i].id == id) break;
    }
    std::unique_ptr<T> out = std::move(slots_[i].object);
    --used_;
    // Close the gap at i: an entry further on moves back into it when its
    // home slot does not lie after the gap (cyclically, between the gap
    // and the entry), so every entry stays reachable from its home without
    // crossing an empty slot.
    for (size_t j = (i + 1) & mask_; slots_[j].object; j = (j + 1) & mask_) {
      const size_t h = home(slots_[j].id);
      if (((j - h) & mask_) >= ((j - i) & mask_)) {
        slots_[i].id = slots_[j].id;
        slots_[i].object = std::move(slots_[j].object);
        i = j;
      }
    }
    return out;
  }

  void clear() {
    slots_.clear();
    mask_ = 0;
    shift_ = 64;
    used_ = 0;
  }

 private:
  struct Slot {
    uint64_t id = 0;
    std::unique_ptr<T> object;  // null: empty
  };
  static constexpr size_t kFirstSize = 16;

  // Fibonacci hashing: the top bits of id * 2^64/phi, so ids that differ in
  // any bits spread over the table.
  [[nodiscard]] size_t home(uint64_t id) const {
    return static_cast<size_t>((id * 0x9E3779B97F4A7C15ULL) >> shift_) & mask_;
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    const size_t size = old.empty() ? kFirstSize : 2 * old.size();
    slots_ = std::vector<Slot>(size);
    mask_ = size - 1;
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(size));
    used_ = 0;
    for (Slot& s : old)
      if (s.object) insert(s.id, std::move(s.object));
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  unsigned shift_ = 64;  // 64 - log2(slots_.size())
  size_t used_ = 0;
};

}  // namespace pmm::client
