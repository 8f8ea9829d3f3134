// pmm::alloc::detail::OffsetMap — live block offset -> segment index: a
// bucketised cuckoo hash table whose every operation does bounded work.
//
// Both strategies keep their records out of band, so release(offset) needs a
// way from an offset to the record of the block that starts there. An
// in-band allocator reads a header just before the block; we read this table.
//
// Why cuckoo: a key lives in one of exactly two buckets (each one 64-byte
// cache line of four slots) or in a stash of at most kStash entries, so a
// lookup reads at most two lines and the stash, whatever the keys are. The
// linear probing used before was O(1) only on average: a run of colliding
// offsets made lookups and backward-shift deletions walk the whole cluster.
// Both buckets are prefetched together, so a lookup costs one cache miss.
//
// Insert puts the key in a free slot of either bucket or evicts a resident
// to its other bucket, at most kMaxKicks times; a key still homeless goes to
// the stash. Only when the stash is full too (with a load of at most 1/2 and
// four-slot buckets this needs many keys sharing both buckets: adversarial
// keys or a bad seed) is the table rebuilt with a new hash seed: O(n), rare,
// and counted in full (reseeds() tells how often it happened).
//
// Growth is incremental: when the table is half full a table twice the size
// is made (calloc: zero pages, not written) and every later insert or erase
// moves kMigratePerOp old buckets over, which finishes long before the new
// table can fill. Lookups look in both tables meanwhile. So no single
// operation pays for the doubling.
//
// Steps (the strategies' honest work count, see strategy.h): one per bucket
// read or written (a cache line), one per stash entry compared, one per
// eviction. Bounds without a reseed: find <= kMaxFindSteps, insert and
// erase <= kMaxUpdateSteps. A reseed adds one step per bucket scanned and
// per entry placed again.
//
// Usage:
//   OffsetMap m;
//   uint64_t steps = 0;
//   m.insert(4096, 7, steps);
//   uint32_t seg = m.find(4096, steps);   // 7, or kNoValue when absent
//   seg = m.take(4096, steps);            // 7, and the entry is gone
//
// Thread safety: none; owned by one strategy. Not copyable (owns raw memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <utility>

namespace pmm::alloc::detail {

class OffsetMap {
 public:
  static constexpr uint32_t kNoValue = UINT32_MAX;
  static constexpr int kWays = 4;  // slots per bucket: 4 x 16 bytes = one cache line
  static constexpr int kMaxKicks = 16;
  static constexpr int kStash = 8;
  static constexpr size_t kMigratePerOp = 1;
  static constexpr size_t kMinBuckets = 8;

  // Two buckets in each of the current and the old table, and the stash.
  static constexpr uint64_t kMaxFindSteps = 4 + kStash;
  // Placing one entry: two buckets, kMaxKicks evictions, one stash write.
  static constexpr uint64_t kMaxPlaceSteps = 2 + kMaxKicks + 1;
  // A lookup, then migrating kMigratePerOp buckets (each read, each of its
  // entries placed), then placing the new entry.
  static constexpr uint64_t kMaxUpdateSteps =
      kMaxFindSteps + kMigratePerOp * (1 + kWays * kMaxPlaceSteps) + kMaxPlaceSteps;

  // `min_buckets` (rounded up to a power of two) sizes the first table;
  // tests use it to aim colliding keys at a table of known size.
  explicit OffsetMap(size_t min_buckets = kMinBuckets);
  ~OffsetMap();
  OffsetMap(const OffsetMap&) = delete;
  OffsetMap& operator=(const OffsetMap&) = delete;

  [[nodiscard]] size_t size() const { return count_; }

  // The value stored for `key`, or kNoValue.
  [[nodiscard]] uint32_t find(uint64_t key, uint64_t& steps) const {
    const Slot* s = locate(key, steps);
    return s ? s->value : kNoValue;
  }

  // Removes `key` and returns its value, or kNoValue when absent.
  [[nodiscard]] uint32_t take(uint64_t key, uint64_t& steps);

  // `key` must not be present and must not be UINT64_MAX (no offset in a
  // region of at most UINT64_MAX bytes is).
  void insert(uint64_t key, uint32_t value, uint64_t& steps);

  // Returns false when `key` is absent.
  bool erase(uint64_t key, uint64_t& steps) { return take(key, steps) != kNoValue; }

  void clear();

  // Calls f(key, value) for every entry, in no particular order.
  template <typename F>
  void for_each(F&& f) const {
    for (const Table* t : {&cur_, &old_})
      for (size_t b = 0; t->buckets && b <= t->mask; ++b)
        for (const Slot& s : t->buckets[b].slot)
          if (s.key1 != 0) f(s.key1 - 1, s.value);
    for (int i = 0; i < stash_n_; ++i) f(stash_[i].key1 - 1, stash_[i].value);
  }

  // For tests and benchmarks: how the table is laid out right now.
  [[nodiscard]] size_t bucket_count() const { return cur_.mask + 1; }
  [[nodiscard]] bool migrating() const { return old_.buckets != nullptr; }
  [[nodiscard]] int stashed() const { return stash_n_; }
  [[nodiscard]] uint64_t reseeds() const { return reseeds_; }
  // The two buckets of the current table that `key` may live in.
  [[nodiscard]] std::pair<size_t, size_t> buckets_of(uint64_t key) const {
    return homes(cur_, key);
  }

 private:
  // key1 = key + 1, so that zeroed memory (calloc) is an empty table.
  struct Slot {
    uint64_t key1 = 0;
    uint32_t value = kNoValue;
    uint32_t unused = 0;
  };
  struct alignas(64) Bucket {
    Slot slot[kWays];
  };
  struct Table {
    Bucket* buckets = nullptr;
    void* raw = nullptr;  // what calloc returned (buckets is raw aligned to 64)
    size_t mask = 0;
  };

  [[nodiscard]] std::pair<size_t, size_t> homes(const Table& t, uint64_t key) const {
    uint64_t x = key ^ seed_;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    size_t b1 = static_cast<size_t>(x) & t.mask;
    size_t b2 = static_cast<size_t>(x >> 32) & t.mask;
    if (b2 == b1) b2 = b1 ^ 1;  // two distinct buckets (tables have >= 2)
    return {b1, b2};
  }

  // The slot holding `key`, or nullptr.
  [[nodiscard]] Slot* locate(uint64_t key, uint64_t& steps) const;

  static Table make_table(size_t buckets);
  static void free_table(Table& t);
  // Puts `e` into cur_ (buckets, evictions, stash); false when even the
  // stash is full, with `e` then holding the entry left homeless.
  bool place(Slot& e, uint64_t& steps);
  // Moves up to kMigratePerOp buckets from old_ to cur_.
  void migrate(uint64_t& steps);
  // Rebuilds everything (and `extra`) into a table of `buckets` buckets
  // under a new seed, until every entry has a home.
  void reseed(const Slot* extra, size_t buckets, uint64_t& steps);

  Table cur_;
  Table old_;            // while migrating: the table being emptied into cur_
  size_t migrated_ = 0;  // old_ buckets already moved
  Slot stash_[kStash];
  int stash_n_ = 0;
  size_t count_ = 0;
  uint64_t seed_ = 0x243f6a8885a308d3ULL;
  uint64_t rng_ = 0x13198a2e03707344ULL;  // picks eviction victims; deterministic
  uint64_t reseeds_ = 0;
  size_t min_buckets_;
};

}  // namespace pmm::alloc::detail
