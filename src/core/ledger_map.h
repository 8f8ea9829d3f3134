// pmm::core::PoolMap — one pool laid out by offset, as `pmmctl map` draws it:
// its blocks and the gaps between them, its physical-run edges, and the free
// figures that explain a refusal (free bytes, the largest free extent and
// where it lies, how many free extents, the largest inside one run).
//
// Built by Ledger::pool_map from the ledger's block records (offset, size,
// device, owner) and the pool's physical runs, never from the allocator's
// own structures: free extents are the gaps between blocks, so the map is
// the same whatever strategy the pool runs.
//
// Bounded: at most `max_entries` extents whatever the pool holds. When the
// pool has more blocks and gaps than that, equal buckets of `bucket_size`
// bytes replace them, each with the bytes used in it; the free figures stay
// exact. Cost: O(b log b) for the pool's b blocks plus one pass over the
// ledger's blocks (see docs/protocol.md for what a 1M-block map costs).
//
// Who sees what (Viewer, ledger.h): an admin sees each block's device and
// allocating uid; anyone else sees them for the blocks its uid allocated or
// holds, and every other block as used by someone unnamed (kHidden).
// Physical addresses of run edges only when viewer.phys.
//
// Usage:
//   PoolMap m = ledger.pool_map(viewer, *ledger.find_pool("general"), 1024);
//   for (const MapExtent& e : m.extents) draw(e.offset, e.size, e.used, e.device);
//
// Thread safety: plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace pmm::core {

struct MapExtent {
  // MapExtent::device values that are not an index into PoolMap::devices.
  static constexpr size_t kHidden = std::numeric_limits<size_t>::max();  // another user's
  static constexpr size_t kNone = kHidden - 1;                           // nothing used

  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t used = 0;  // == size for a block, 0 for a gap, anything for a bucket
  size_t device = kNone;
  uint32_t uid = 0;    // allocating uid, when shown
  bool mixed = false;  // a bucket with blocks of several devices or owners
};

struct MapBarrier {
  uint64_t offset = 0;  // where a physical run starts (never 0)
  uint64_t phys = 0;    // its physical address, 0 unless viewer.phys
};

struct PoolMap {
  uint64_t size = 0;
  uint64_t blocks = 0;
  uint64_t bytes_used = 0;
  uint64_t bytes_free = 0;
  uint64_t free_extents = 0;
  uint64_t largest_free = 0;
  uint64_t largest_free_offset = 0;
  uint64_t largest_free_in_run = 0;  // = largest_free when the pool has no runs
  uint64_t bucket_size = 0;          // 0: one extent per block or gap
  std::vector<std::string> devices{};
  std::vector<MapExtent> extents{};  // tile [0, size) in order
  std::vector<MapBarrier> barriers{};
  uint64_t barriers_omitted = 0;  // run edges left out to stay within the bound
};

struct MapLimits {
  size_t max_entries = 2048;   // >= 1
  size_t max_barriers = 2048;  // spread evenly when there are more
  size_t max_devices = 64;     // >= 1; the last one stands for the rest
};

}  // namespace pmm::core
