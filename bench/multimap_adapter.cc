// The naive peers: best fit over a std::multimap of free extents keyed by
// size, the way one writes it in an afternoon.
//
// allocate(size, align): lower_bound(size) in the size-ordered multimap, then
// walk upward to the first extent that still holds `size` once its start is
// rounded up to `align` (best fit; among equal sizes, the one inserted first).
// That extent is erased; the alignment gap in front and the tail behind go
// back as free extents of their own. One std::unordered_map<offset, size>
// records live blocks.
//
// release(offset) coalesces with the free extents that touch the block:
//   scan mode ("multimap-scan"): the multimap is the only index, so finding
//     the extent that ends at `offset` and the one that starts at its end is
//     a linear walk over every free extent: O(free extents) per release.
//   map mode ("multimap+map"): a second std::map<offset, iterator into the
//     multimap> finds both neighbours in O(log n), as a careful engineer
//     would do with the standard containers; each operation still allocates
//     and frees tree nodes on the heap.
#include <map>
#include <unordered_map>

#include "adapter.h"

namespace pmm::bench {
namespace {

class MultimapAllocator final : public BenchAllocator {
 public:
  MultimapAllocator(bool scan, uint64_t region_size) : scan_(scan), region_size_(region_size) {
    insert_free(0, region_size);
  }

  std::optional<Placed> allocate(uint64_t size, uint64_t alignment) override {
    for (auto it = by_size_.lower_bound(size); it != by_size_.end(); ++it) {
      const uint64_t len = it->first;
      const uint64_t off = it->second;
      const uint64_t start = (off + alignment - 1) & ~(alignment - 1);
      const uint64_t gap = start - off;
      if (gap > len || len - gap < size) continue;
      erase_free(it);
      if (gap > 0) insert_free(off, gap);
      if (len - gap > size) insert_free(start + size, len - gap - size);
      live_.emplace(start, size);
      return Placed{.offset = start, .ref = start};
    }
    return std::nullopt;
  }

  void release(uint64_t offset) override {  // ref == offset
    auto node = live_.find(offset);
    uint64_t start = offset;
    uint64_t end = offset + node->second;
    live_.erase(node);
    if (scan_) {
      auto left = by_size_.end();
      auto right = by_size_.end();
      for (auto it = by_size_.begin(); it != by_size_.end(); ++it) {
        if (it->second + it->first == start) left = it;
        if (it->second == end) right = it;
      }
      if (left != by_size_.end()) {
        start = left->second;
        by_size_.erase(left);
      }
      if (right != by_size_.end()) {
        end += right->first;
        by_size_.erase(right);
      }
    } else {
      auto right = by_offset_.find(end);
      if (right != by_offset_.end()) {
        end += right->second->first;
        erase_free(right->second);
      }
      auto left = by_offset_.lower_bound(start);
      if (left != by_offset_.begin()) {
        --left;
        if (left->first + left->second->first == start) {
          start = left->first;
          erase_free(left->second);
        }
      }
    }
    insert_free(start, end - start);
  }

  uint64_t region_size() const override { return region_size_; }

 private:
  using BySize = std::multimap<uint64_t, uint64_t>;  // length -> offset

  void insert_free(uint64_t offset, uint64_t length) {
    auto it = by_size_.emplace(length, offset);
    if (!scan_) by_offset_.emplace(offset, it);
  }

  void erase_free(BySize::iterator it) {
    if (!scan_) by_offset_.erase(it->second);
    by_size_.erase(it);
  }

  bool scan_;
  uint64_t region_size_;
  BySize by_size_;
  std::map<uint64_t, BySize::iterator> by_offset_;  // map mode only
  std::unordered_map<uint64_t, uint64_t> live_;     // offset -> size
};

}  // namespace

std::unique_ptr<BenchAllocator> make_multimap_allocator(bool scan, uint64_t region_size) {
  return std::make_unique<MultimapAllocator>(scan, region_size);
}

}  // namespace pmm::bench
