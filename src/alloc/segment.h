// pmm::alloc::detail::Segment — one record per free extent or live block,
// kept in a vector pool on the heap, addressed by 32-bit index.
//
// The strategies tile [0, size) with segments in address order, linked by
// prev/next: boundary tags kept out of band. A release finds its neighbours
// in O(1) through these links instead of searching an address index. The
// two `link` words belong to the free index of the strategy (its free-list
// prev/next) while the segment is free, and hold a live block's handle
// stamp otherwise. Indices rather than pointers keep a record at 32 bytes,
// so that no record straddles a cache line (at 40 bytes, half of them did:
// two misses for one record), and survive the pool's reallocation.
//
// Whether a segment is free is kept only in a dense bitmap beside the pool
// (one bit per record: 128 KiB for a million), which is what allocate and
// release consult and update for a *neighbour*: a release reads its own
// record (to be freed anyway) and the bitmap, and touches a neighbour's
// record only to merge it. Stores to cold neighbour records stall like
// loads; the bitmap stays in cache.
//
// Usage:
//   SegmentPool pool;
//   uint32_t i = pool.take();     // pool.reserve_spare(n) first keeps pointers valid
//   pool[i].start = 0; ...
//   pool.put(i);
//
// Thread safety: none; owned by one strategy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace pmm::alloc::detail {

inline constexpr uint32_t kNil = UINT32_MAX;

struct Segment {
  uint64_t start = 0;
  uint64_t len = 0;
  uint32_t prev = kNil;  // address order
  uint32_t next = kNil;
  uint32_t link[2] = {kNil, kNil};  // owned by the free index; a live block's stamp
};
static_assert(sizeof(Segment) == 32, "a Segment is 32 bytes: two to a cache line");

class SegmentPool {
 public:
  // The most segments a pool may hold; index kNil is reserved.
  static constexpr uint32_t kMaxSegments = UINT32_MAX - 1;

  Segment& operator[](uint32_t i) { return segs_[i]; }
  const Segment& operator[](uint32_t i) const { return segs_[i]; }
  Segment* data() { return segs_.data(); }
  const Segment* data() const { return segs_.data(); }

  // Slots ever handed out (live and recycled); an upper bound for indices.
  [[nodiscard]] uint32_t extent() const { return static_cast<uint32_t>(segs_.size()); }
  [[nodiscard]] uint32_t in_use() const { return extent() - spare_; }

  // Makes the next `n` take() calls succeed without moving the pool, so
  // pointers from data() stay valid across them. False at kMaxSegments.
  [[nodiscard]] bool reserve_spare(uint32_t n) {
    if (spare_ >= n) return true;
    uint64_t need = static_cast<uint64_t>(segs_.size()) + (n - spare_);
    if (need > kMaxSegments) return false;
    if (need > segs_.capacity()) {
      // Grows by an eighth, not double: the spare capacity is metadata the
      // daemon pays per live block (at most 4 B of a 32 B record here),
      // and the copies stay amortised O(1) (at most 9 per record).
      uint64_t grown =
          std::max<uint64_t>(need, std::max<uint64_t>(64, segs_.capacity() + segs_.capacity() / 8));
      segs_.reserve(static_cast<size_t>(std::min<uint64_t>(grown, kMaxSegments)));
    }
    return true;
  }

  // A record with every field at its default and its free bit clear.
  uint32_t take() {
    if (free_head_ != kNil) {
      uint32_t i = free_head_;
      free_head_ = segs_[i].next;
      --spare_;
      segs_[i] = Segment{};
      return i;
    }
    segs_.emplace_back();
    if ((segs_.size() - 1) % 64 == 0) free_bits_.push_back(0);
    return static_cast<uint32_t>(segs_.size() - 1);
  }

  void put(uint32_t i) {
    set_free_bit(i, false);
    segs_[i] = Segment{};
    segs_[i].next = free_head_;
    segs_[i].len = kRecycled;
    free_head_ = i;
    ++spare_;
  }

  [[nodiscard]] bool recycled(uint32_t i) const { return segs_[i].len == kRecycled; }

  // Whether segment i is free (see the header comment).
  [[nodiscard]] bool free_bit(uint32_t i) const { return (free_bits_[i / 64] >> (i % 64)) & 1u; }
  void set_free_bit(uint32_t i, bool v) {
    const uint64_t m = uint64_t{1} << (i % 64);
    free_bits_[i / 64] = v ? free_bits_[i / 64] | m : free_bits_[i / 64] & ~m;
  }

  // Forgets every record and gives their memory back to the heap.
  void clear() {
    std::vector<Segment>().swap(segs_);  // `= {}` would keep the capacity
    std::vector<uint64_t>().swap(free_bits_);
    free_head_ = kNil;
    spare_ = 0;
  }

 private:
  // A recycled slot has length 0, which no real segment has.
  static constexpr uint64_t kRecycled = 0;

  std::vector<Segment> segs_;
  std::vector<uint64_t> free_bits_;
  uint32_t free_head_ = kNil;
  uint32_t spare_ = 0;
};

}  // namespace pmm::alloc::detail
