// OffsetMap: cuckoo placement with bounded evictions, the stash, incremental
// growth and the (counted) reseed. See offset_map.h for the design.
#include "alloc/offset_map.h"

#include <algorithm>
#include <bit>
#include <new>
#include <vector>

namespace pmm::alloc::detail {
namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

OffsetMap::OffsetMap(size_t min_buckets)
    : min_buckets_(std::bit_ceil(std::max(min_buckets, kMinBuckets))) {
  cur_ = make_table(min_buckets_);
}

OffsetMap::~OffsetMap() {
  free_table(cur_);
  free_table(old_);
}

OffsetMap::Table OffsetMap::make_table(size_t buckets) {
  // calloc: large tables come as fresh zero pages from the kernel, so making
  // one writes nothing, and all-zero slots are empty (key1 == 0).
  Table t;
  t.raw = std::calloc(buckets * sizeof(Bucket) + alignof(Bucket), 1);
  if (t.raw == nullptr) throw std::bad_alloc();
  auto at = reinterpret_cast<uintptr_t>(t.raw);
  at = (at + alignof(Bucket) - 1) & ~uintptr_t{alignof(Bucket) - 1};
  t.buckets = reinterpret_cast<Bucket*>(at);
  t.mask = buckets - 1;
  return t;
}

void OffsetMap::free_table(Table& t) {
  std::free(t.raw);
  t = Table{};
}

void OffsetMap::clear() {
  free_table(cur_);
  free_table(old_);
  cur_ = make_table(min_buckets_);
  migrated_ = 0;
  stash_n_ = 0;
  count_ = 0;
}

OffsetMap::Slot* OffsetMap::locate(uint64_t key, uint64_t& steps) const {
  if (key == UINT64_MAX) return nullptr;  // never stored; key1 would read as empty
  const uint64_t key1 = key + 1;
  auto [a, b] = homes(cur_, key);
  Bucket* first = &cur_.buckets[a];
  Bucket* second = &cur_.buckets[b];
  __builtin_prefetch(second);
  for (Bucket* bucket : {first, second}) {
    ++steps;
    for (Slot& s : bucket->slot)
      if (s.key1 == key1) return &s;
  }
  if (old_.buckets != nullptr) {
    auto [c, d] = homes(old_, key);
    for (size_t i : {c, d}) {
      if (i < migrated_) continue;  // moved already: empty
      ++steps;
      for (Slot& s : old_.buckets[i].slot)
        if (s.key1 == key1) return &s;
    }
  }
  for (int i = 0; i < stash_n_; ++i) {
    ++steps;
    if (stash_[i].key1 == key1) return const_cast<Slot*>(&stash_[i]);
  }
  return nullptr;
}

uint32_t OffsetMap::take(uint64_t key, uint64_t& steps) {
  Slot* s = locate(key, steps);
  if (s == nullptr) return kNoValue;
  const uint32_t value = s->value;
  if (s >= stash_ && s < stash_ + kStash) {
    *s = stash_[--stash_n_];
    stash_[stash_n_] = Slot{};
  } else {
    *s = Slot{};
  }
  --count_;
  migrate(steps);
  return value;
}

void OffsetMap::insert(uint64_t key, uint32_t value, uint64_t& steps) {
  if ((count_ + 1) * 2 > (cur_.mask + 1) * kWays) {
    // Half full: start moving into a table twice the size. A migration still
    // running here cannot happen with kMigratePerOp >= 1 (the new table is a
    // quarter full when made, and a quarter more needs as many inserts as
    // the old table has slots); finish it anyway, counted, to stay correct.
    while (old_.buckets != nullptr) migrate(steps);
    old_ = cur_;
    cur_ = make_table((old_.mask + 1) * 2);
    migrated_ = 0;
  }
  migrate(steps);
  Slot e{key + 1, value, 0};
  if (!place(e, steps)) reseed(&e, cur_.mask + 1, steps);
  ++count_;
}

bool OffsetMap::place(Slot& e, uint64_t& steps) {
  auto [a, b] = homes(cur_, e.key1 - 1);
  for (size_t i : {a, b}) {
    ++steps;
    for (Slot& s : cur_.buckets[i].slot) {
      if (s.key1 == 0) {
        s = e;
        return true;
      }
    }
  }
  // Both full: evict a resident to its other bucket, a bounded number of
  // times (a random walk; victims come from a fixed-seed generator, so runs
  // are reproducible).
  auto next_rng = [this] {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  };
  size_t at = (next_rng() & 1) ? b : a;
  for (int kick = 0; kick < kMaxKicks; ++kick) {
    ++steps;
    std::swap(e, cur_.buckets[at].slot[next_rng() % kWays]);
    auto [x, y] = homes(cur_, e.key1 - 1);
    at = x == at ? y : x;
    for (Slot& s : cur_.buckets[at].slot) {
      if (s.key1 == 0) {
        s = e;
        return true;
      }
    }
  }
  if (stash_n_ < kStash) {
    ++steps;
    stash_[stash_n_++] = e;
    return true;
  }
  return false;
}

void OffsetMap::migrate(uint64_t& steps) {
  for (size_t n = 0; n < kMigratePerOp && old_.buckets != nullptr; ++n) {
    ++steps;
    for (Slot& s : old_.buckets[migrated_].slot) {
      if (s.key1 == 0) continue;
      Slot e = s;
      s = Slot{};
      if (!place(e, steps)) {
        reseed(&e, cur_.mask + 1, steps);  // takes what is left of old_ too
        return;
      }
    }
    if (++migrated_ > old_.mask) {
      free_table(old_);
      migrated_ = 0;
    }
  }
}

void OffsetMap::reseed(const Slot* extra, size_t buckets, uint64_t& steps) {
  std::vector<Slot> all;
  all.reserve(count_ + 1);
  for (Table* t : {&cur_, &old_}) {
    for (size_t b = 0; t->buckets && b <= t->mask; ++b) {
      ++steps;
      for (const Slot& s : t->buckets[b].slot)
        if (s.key1 != 0) all.push_back(s);
    }
  }
  for (int i = 0; i < stash_n_; ++i) all.push_back(stash_[i]);
  if (extra != nullptr) all.push_back(*extra);
  free_table(old_);
  migrated_ = 0;
  for (int attempt = 0;; ++attempt) {
    ++reseeds_;
    seed_ = splitmix(seed_ + reseeds_);
    // A seed that fails again and again means the table is too small for
    // these keys: give them more room.
    if (attempt > 0 && attempt % 4 == 0) buckets *= 2;
    free_table(cur_);
    cur_ = make_table(buckets);
    std::fill(stash_, stash_ + kStash, Slot{});
    stash_n_ = 0;
    bool ok = true;
    for (Slot e : all) {
      if (!place(e, steps)) {
        ok = false;
        break;
      }
    }
    if (ok) return;
  }
}

}  // namespace pmm::alloc::detail
