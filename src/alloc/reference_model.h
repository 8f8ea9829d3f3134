// pmm::alloc::reference::ReferenceModel — a brute-force allocator model the
// differential tests run beside the real strategies. Test-only.
//
// It keeps the free extents in a vector sorted by start and answers every
// question by scanning it linearly: simple enough to be obviously right,
// too slow for anything but tests. It states the strategies' documented
// rules as plain scans: the exact extent best_fit must pick (fit_index.h),
// and the one a one-run request takes in either strategy,
// when tlsf must succeed and from which bin (tlsf_index.h), and where a
// request that must stay in one run goes inside an extent (runs.h), by
// walking the runs one by one rather than by search.
//
// Usage:
//   ReferenceModel m(1 << 20);
//   std::optional<uint64_t> want = m.best_fit_choice(4096, 64);
//   if (want) m.place(*want, 4096);
//   m.release(*want);
//
// Thread safety: none.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "alloc/best_fit_index.h"
#include "alloc/strategy.h"
#include "alloc/tlsf_index.h"

namespace pmm::alloc::reference {

class ReferenceModel {
 public:
  struct Extent {
    uint64_t start;
    uint64_t len;
    uint64_t seq = 0;  // when it became free or changed length; later is larger
  };

  explicit ReferenceModel(uint64_t size) : size_(size) { free_.push_back({0, size, 0}); }

  [[nodiscard]] bool valid_request(uint64_t size, uint64_t align) const {
    return size >= 1 && size <= size_ && std::has_single_bit(align) && align <= size_;
  }

  // Mirrors Strategy::set_barriers: all-or-nothing, only with no live block.
  // Barriers split no free extent; only one-run requests look at them.
  bool set_barriers(std::span<const uint64_t> offs) {
    if (!blocks_.empty()) return false;
    for (uint64_t b : offs)
      if (b == 0 || b >= size_) return false;
    barriers_.insert(barriers_.end(), offs.begin(), offs.end());
    std::sort(barriers_.begin(), barriers_.end());
    barriers_.erase(std::unique(barriers_.begin(), barriers_.end()), barriers_.end());
    return true;
  }

  [[nodiscard]] const std::vector<uint64_t>& barriers() const { return barriers_; }

  // Whether [off, off + size) straddles a barrier.
  [[nodiscard]] bool crosses_barrier(uint64_t off, uint64_t size) const {
    auto it = std::upper_bound(barriers_.begin(), barriers_.end(), off);
    return it != barriers_.end() && *it - off < size;
  }

  // Where a request goes in `e`: its aligned start if it holds, or with
  // `one_run` the place runs.h's rule names, found by walking every run
  // that meets e in address order.
  [[nodiscard]] std::optional<uint64_t> place(const Extent& e, uint64_t size, uint64_t align,
                                              bool one_run) const {
    if (!one_run || barriers_.empty()) {
      if (!holds(e, size, align)) return std::nullopt;
      return aligned_start(e, align);
    }
    uint64_t all = 0;
    for (uint64_t b : barriers_) all |= b;
    const uint64_t a = all & (0 - all);
    const uint64_t extra = align > a ? align - a : 0;
    const uint64_t last_byte = e.start + (e.len - 1);
    std::optional<uint64_t> last;  // the last piece, tried after the whole runs
    // From the run holding e.start: the walk is as long as e's runs.
    const size_t r0 = static_cast<size_t>(
        std::upper_bound(barriers_.begin(), barriers_.end(), e.start) - barriers_.begin());
    for (size_t r = r0; r <= barriers_.size(); ++r) {
      const uint64_t lo = r == 0 ? 0 : barriers_[r - 1];
      const uint64_t hi_byte = r == barriers_.size() ? size_ - 1 : barriers_[r] - 1;
      if (hi_byte < e.start) continue;
      if (lo > last_byte) break;
      const bool first = lo <= e.start;
      const bool final = hi_byte >= last_byte;
      const uint64_t from = std::max(lo, e.start);
      const Extent piece{from, std::min(hi_byte, last_byte) - from + 1};
      if (first) {
        if (holds(piece, size, align)) return aligned_start(piece, align);
      } else if (final) {
        if (holds(piece, size, align)) last = aligned_start(piece, align);
      } else if (size <= UINT64_MAX - extra && piece.len >= size + extra) {
        return aligned_start(piece, align);
      }
    }
    return last;
  }

  static bool holds(const Extent& e, uint64_t size, uint64_t align) {
    uint64_t pad = (0 - e.start) & (align - 1);
    return e.len >= size && pad <= e.len - size;
  }
  static uint64_t aligned_start(const Extent& e, uint64_t align) {
    return e.start + ((0 - e.start) & (align - 1));
  }
  // The longest piece of `e` inside one run (its length with no barriers):
  // the one-run index's key (fit_index.h, one_run_index.h).
  [[nodiscard]] uint64_t longest_piece(const Extent& e) const {
    uint64_t best = 0;
    uint64_t from = e.start;
    const uint64_t end = e.start + e.len;  // <= size_, so no overflow
    auto it = std::upper_bound(barriers_.begin(), barriers_.end(), e.start);
    for (; it != barriers_.end() && *it < end; ++it) {
      best = std::max(best, *it - from);
      from = *it;
    }
    return std::max(best, end - from);
  }

  // The index's order (fit_index.h): key ascending, then the most recently
  // freed first.
  static bool key_less(uint64_t ka, const Extent& a, uint64_t kb, const Extent& b) {
    return ka < kb || (ka == kb && a.seq > b.seq);
  }

  // The true best fit: smallest holding extent, most recently freed among equals.
  [[nodiscard]] std::optional<uint64_t> true_best_fit(uint64_t size, uint64_t align) const {
    const Extent* best = nullptr;
    for (const Extent& e : free_)
      if (holds(e, size, align) && (!best || key_less(e.len, e, best->len, *best))) best = &e;
    if (!best) return std::nullopt;
    return aligned_start(*best, align);
  }

  // The documented rule of fit_index.h, as a scan: best_fit's choice, and
  // for a one-run request (with barriers) the choice of both strategies, by
  // the longest piece inside one run.
  [[nodiscard]] std::optional<uint64_t> best_fit_choice(uint64_t size, uint64_t align,
                                                        bool one_run = false) const {
    one_run = one_run && !barriers_.empty();
    auto key = [&](const Extent& e) { return one_run ? longest_piece(e) : e.len; };
    auto fits = [&](const Extent& e) { return place(e, size, align, one_run).has_value(); };
    const Extent* best = nullptr;
    for (const Extent& e : free_)
      if (fits(e) && (!best || key_less(key(e), e, key(*best), *best))) best = &e;
    if (!best) return std::nullopt;
    int misses = 0;
    for (const Extent& e : free_)
      if (key(e) >= size && !fits(e) && key_less(key(e), e, key(*best), *best)) ++misses;
    if (misses < detail::BestFitIndex::kScanLimit) return place(*best, size, align, one_run);
    if (size > UINT64_MAX - (align - 1)) return std::nullopt;
    const Extent* fallback = nullptr;
    for (const Extent& e : free_)
      if (key(e) >= size + (align - 1) &&
          (!fallback || key_less(key(e), e, key(*fallback), *fallback)))
        fallback = &e;
    if (!fallback) return std::nullopt;
    return place(*fallback, size, align, one_run);
  }

  // tlsf's documented guarantee (tlsf_index.h) for an ordinary request:
  // whether it must succeed, and `good_bin`, the bin its answer must come
  // from when step 1 sees the whole of the lowest non-empty bin it walks and
  // some extent there holds the request (else kTlsfNoBin: no claim about
  // which bin). A one-run request is best_fit_choice(..., true) instead.
  [[nodiscard]] bool tlsf_must_succeed(uint64_t size, uint64_t align, uint32_t& good_bin) const {
    constexpr uint64_t kScan = detail::TlsfIndex::kScanLimit;
    good_bin = detail::kTlsfNoBin;
    bool must = false;
    const uint32_t by_size = detail::tlsf_search_bin(size);
    if (by_size != detail::kTlsfNoBin) {
      uint32_t lowest = detail::kTlsfNoBin;
      uint64_t n = 0;
      bool any = false;
      for (const Extent& e : free_) {
        uint32_t b = detail::tlsf_bin_of(e.len);
        if (b < by_size) continue;
        ++n;
        any = any || holds(e, size, align);
        lowest = std::min(lowest, b);
      }
      must = any && n <= kScan;
      uint64_t in_lowest = 0;
      bool lowest_holds = false;
      for (const Extent& e : free_) {
        if (detail::tlsf_bin_of(e.len) != lowest) continue;
        ++in_lowest;
        lowest_holds = lowest_holds || holds(e, size, align);
      }
      if (lowest != detail::kTlsfNoBin && in_lowest <= kScan && lowest_holds) {
        good_bin = lowest;
        must = true;
      }
    }
    if (align > 1 && size <= UINT64_MAX - (align - 1)) {
      const uint32_t padded = detail::tlsf_search_bin(size + (align - 1));
      if (padded != detail::kTlsfNoBin)
        for (const Extent& e : free_) must = must || detail::tlsf_bin_of(e.len) >= padded;
    }
    const uint32_t own = detail::tlsf_bin_of(size);
    const uint32_t limit = by_size == detail::kTlsfNoBin ? detail::kTlsfBins : by_size;
    uint64_t in_own = 0;
    bool own_holds = false;
    for (const Extent& e : free_) {
      uint32_t b = detail::tlsf_bin_of(e.len);
      if (b >= own && b < limit) {
        ++in_own;
        own_holds = own_holds || holds(e, size, align);
      }
    }
    return must || (own_holds && in_own <= kScan);
  }

  // The free extent containing [off, off + size), or nullptr.
  [[nodiscard]] const Extent* containing(uint64_t off, uint64_t size) const {
    auto it = std::upper_bound(free_.begin(), free_.end(), off,
                               [](uint64_t o, const Extent& e) { return o < e.start; });
    if (it == free_.begin()) return nullptr;
    --it;
    if (off - it->start > it->len || size > it->len - (off - it->start)) return nullptr;
    return &*it;
  }

  // Carves a block out of a free extent; `containing(off, size)` must hold.
  void place(uint64_t off, uint64_t size) {
    const Extent* e = containing(off, size);
    auto it = free_.begin() + (e - free_.data());
    // The order the strategies insert them in (fit_index.h).
    Extent before{it->start, off - it->start, before_seq(off - it->start)};
    Extent after{off + size, it->start + it->len - (off + size), 0};
    after.seq = after.len ? ++seq_ : 0;
    it = free_.erase(it);
    if (after.len) it = free_.insert(it, after);
    if (before.len) free_.insert(it, before);
    blocks_[off] = size;
    used_ += size;
  }

  bool release(uint64_t off) {
    auto b = blocks_.find(off);
    if (b == blocks_.end()) return false;
    Extent x{off, b->second, ++seq_};
    used_ -= b->second;
    blocks_.erase(b);
    auto it = std::upper_bound(free_.begin(), free_.end(), off,
                               [](uint64_t o, const Extent& e) { return o < e.start; });
    if (it != free_.end() && it->start == x.start + x.len) {
      x.len += it->len;
      it = free_.erase(it);
    }
    if (it != free_.begin()) {
      auto p = it - 1;
      if (p->start + p->len == x.start) {
        p->len += x.len;
        p->seq = x.seq;  // the merged extent is inserted anew
        return true;
      }
    }
    free_.insert(it, x);
    return true;
  }

  [[nodiscard]] std::optional<uint64_t> block_size(uint64_t off) const {
    auto b = blocks_.find(off);
    if (b == blocks_.end()) return std::nullopt;
    return b->second;
  }

  [[nodiscard]] Stats stats() const {
    Stats st;
    st.size = size_;
    st.bytes_used = used_;
    st.bytes_free = size_ - used_;
    st.free_extents = free_.size();
    for (const Extent& e : free_) st.largest_free = std::max(st.largest_free, e.len);
    st.live_blocks = blocks_.size();
    return st;
  }

  [[nodiscard]] const std::map<uint64_t, uint64_t>& blocks() const { return blocks_; }
  [[nodiscard]] const std::vector<Extent>& free_extents() const { return free_; }
  [[nodiscard]] uint64_t size() const { return size_; }

 private:
  uint64_t size_;
  uint64_t used_ = 0;
  std::vector<Extent> free_;  // sorted by start, maximal between blocks
  std::map<uint64_t, uint64_t> blocks_;
  std::vector<uint64_t> barriers_;
  uint64_t seq_ = 0;  // the last Extent::seq handed out

  uint64_t before_seq(uint64_t len) { return len ? ++seq_ : 0; }
};

}  // namespace pmm::alloc::reference
