// TlsfIndex: bitmap bookkeeping and the good-fit search with a bounded
// fallback scan. See tlsf_index.h for the rule.
#include "alloc/tlsf_index.h"

#include <vector>

namespace pmm::alloc::detail {
namespace {

enum : int { kPrev = 0, kNext = 1 };

// Where the request goes in e, or kNoPlace.
inline uint64_t place(const Segment& e, uint64_t size, uint64_t align) {
  return place_anywhere(e.start, e.len, size, align);
}

}  // namespace

void TlsfIndex::clear() {
  heads_.fill(kNil);
  sl_bitmap_.fill(0);
  fl_bitmap_ = 0;
  count_ = 0;
}

void TlsfIndex::insert(Segment* s, uint32_t i, uint64_t& steps) {
  ++steps;
  uint32_t bin = tlsf_bin_of(s[i].len);
  uint32_t head = heads_[bin];
  s[i].link[kPrev] = kNil;
  s[i].link[kNext] = head;
  if (head != kNil) s[head].link[kPrev] = i;
  heads_[bin] = i;
  sl_bitmap_[bin / kTlsfSl] |= 1u << (bin % kTlsfSl);
  fl_bitmap_ |= uint64_t{1} << (bin / kTlsfSl);
  ++count_;
}

void TlsfIndex::remove(Segment* s, uint32_t i, uint64_t& steps) {
  remove_from(s, i, tlsf_bin_of(s[i].len), steps);  // its length has not changed since insert
}

void TlsfIndex::rekey(Segment* s, uint32_t i, uint64_t was, uint64_t& steps) {
  const uint32_t bin = tlsf_bin_of(was);
  if (s[i].link[kPrev] == kNil && tlsf_bin_of(s[i].len) == bin) {
    ++steps;
    return;
  }
  remove_from(s, i, bin, steps);
  insert(s, i, steps);
}

void TlsfIndex::remove_from(Segment* s, uint32_t i, uint32_t bin, uint64_t& steps) {
  ++steps;
  uint32_t prev = s[i].link[kPrev];
  uint32_t next = s[i].link[kNext];
  if (next != kNil) s[next].link[kPrev] = prev;
  if (prev != kNil) {
    s[prev].link[kNext] = next;
  } else {
    heads_[bin] = next;
    if (next == kNil) {
      sl_bitmap_[bin / kTlsfSl] &= ~(1u << (bin % kTlsfSl));
      if (sl_bitmap_[bin / kTlsfSl] == 0) fl_bitmap_ &= ~(uint64_t{1} << (bin / kTlsfSl));
    }
  }
  s[i].link[kPrev] = s[i].link[kNext] = kNil;
  --count_;
}

uint32_t TlsfIndex::first_nonempty(uint32_t bin) const {
  if (bin >= kTlsfBins) return kTlsfNoBin;
  uint32_t fl = bin / kTlsfSl;
  uint32_t sl_map = sl_bitmap_[fl] & (~0u << (bin % kTlsfSl));
  if (sl_map != 0) return fl * kTlsfSl + static_cast<uint32_t>(__builtin_ctz(sl_map));
  uint64_t fl_map = fl + 1 < 64 ? fl_bitmap_ & (~uint64_t{0} << (fl + 1)) : 0;
  if (fl_map == 0) return kTlsfNoBin;
  uint32_t fl2 = static_cast<uint32_t>(__builtin_ctzll(fl_map));
  return fl2 * kTlsfSl + static_cast<uint32_t>(__builtin_ctz(sl_bitmap_[fl2]));
}

uint32_t TlsfIndex::find(const Segment* s, uint64_t size, uint64_t align, uint64_t& at,
                         uint64_t& steps) const {
  // Scans bins [from, to) in bin order and list order, at most kScanLimit
  // extents, for the first that holds the request.
  auto scan = [&](uint32_t from, uint32_t to) -> uint32_t {
    int scanned = 0;
    for (uint32_t bin = from; bin < to && scanned < kScanLimit; ++bin) {
      ++steps;
      bin = first_nonempty(bin);
      if (bin == kTlsfNoBin || bin >= to) break;
      for (uint32_t x = heads_[bin]; x != kNil && scanned < kScanLimit; x = s[x].link[kNext]) {
        ++steps;
        ++scanned;
        if ((at = place(s[x], size, align)) != kNoPlace) return x;
      }
    }
    return kNil;
  };
  // Step 1: by size alone; the alignment costs nothing where a start
  // already satisfies it.
  const uint32_t by_size = tlsf_search_bin(size);
  if (by_size != kTlsfNoBin) {
    if (uint32_t x = scan(by_size, kTlsfBins); x != kNil) return x;
  }
  // Step 2: an extent that holds the request wherever it starts.
  if (align > 1 && size <= UINT64_MAX - (align - 1)) {
    const uint32_t padded = tlsf_search_bin(size + (align - 1));
    if (padded != kTlsfNoBin) {
      ++steps;
      uint32_t bin = first_nonempty(padded);
      if (bin != kTlsfNoBin) {
        // Holds the request wherever it starts.
        at = place(s[heads_[bin]], size, align);
        if (at != kNoPlace) return heads_[bin];
      }
    }
  }
  // Step 3: the request's own bin, whose extents may be shorter than it.
  return scan(tlsf_bin_of(size), by_size == kTlsfNoBin ? kTlsfBins : by_size);
}

uint32_t TlsfIndex::largest(const Segment* s) const {
  if (fl_bitmap_ == 0) return kNil;
  uint32_t fl = 63u - static_cast<uint32_t>(__builtin_clzll(fl_bitmap_));
  uint32_t bin = fl * kTlsfSl + 31u - static_cast<uint32_t>(__builtin_clz(sl_bitmap_[fl]));
  uint32_t best = heads_[bin];
  for (uint32_t x = best; x != kNil; x = s[x].link[kNext])
    if (s[x].len > s[best].len || (s[x].len == s[best].len && s[x].start > s[best].start)) best = x;
  return best;
}

Status TlsfIndex::check(const SegmentPool& segs) const {
  const Segment* s = segs.data();
  const uint32_t extent = segs.extent();
  std::vector<bool> seen(extent, false);
  uint64_t n = 0;
  for (uint32_t bin = 0; bin < kTlsfBins; ++bin) {
    bool bit = (sl_bitmap_[bin / kTlsfSl] >> (bin % kTlsfSl)) & 1u;
    if (bit != (heads_[bin] != kNil))
      return fail(Errc::kProtocol, "tlsf: bin {} bitmap bit {} but list {}", bin, bit,
                  heads_[bin] == kNil ? "empty" : "non-empty");
    uint32_t prev = kNil;
    for (uint32_t x = heads_[bin]; x != kNil; prev = x, x = s[x].link[kNext]) {
      if (x >= extent || seen[x])
        return fail(Errc::kProtocol, "tlsf: node {} out of range or listed twice", x);
      seen[x] = true;
      const Segment& e = s[x];
      if (!segs.free_bit(x))
        return fail(Errc::kProtocol, "tlsf: listed node at {} is not free", e.start);
      if (e.link[kPrev] != prev)
        return fail(Errc::kProtocol, "tlsf: node at {} has a wrong prev link", e.start);
      if (tlsf_bin_of(e.len) != bin)
        return fail(Errc::kProtocol, "tlsf: extent of {} bytes at {} listed in bin {}", e.len,
                    e.start, bin);
      ++n;
    }
  }
  for (uint32_t fl = 0; fl < kTlsfFl; ++fl) {
    bool bit = (fl_bitmap_ >> fl) & 1u;
    if (bit != (sl_bitmap_[fl] != 0))
      return fail(Errc::kProtocol, "tlsf: first-level bit {} disagrees with its bins", fl);
  }
  if (n != count_)
    return fail(Errc::kProtocol, "tlsf: lists hold {} extents, counted {}", n, count_);
  return {};
}

}  // namespace pmm::alloc::detail
