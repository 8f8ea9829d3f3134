// pmm::core pool map pages — one pool's blocks by offset, as `pmmctl map`
// draws it, read a page at a time like the listings.
//
// Built from the ledger's block records (offset, size, device, owner), never
// from the allocator's structures, so the map is the same whatever strategy
// the pool runs; the free figures come from the allocator's counters.
//
// Bounded twice. A page visits at most `limit` block records (of any pool)
// after the cursor, so one request costs O(limit), like a listing page, and
// other sessions wait no longer for it whatever the ledger holds. And a page
// holds at most `max_entries` entries: in an exact page one per block of the
// pool (the client sorts them and finds the gaps); in a bucketed page
// (bucket_size > 0) one per bucket of bucket_size bytes that the page's
// blocks touch, with the bytes they use in it. The client adds the pages up.
//
// Who sees what (Viewer, ledger.h): an admin sees each block's device and
// allocating uid; anyone else sees them for the blocks its uid allocated,
// holds or exported, and every other block as used by someone unnamed
// (kHidden, uid 0). Physical addresses of run edges only when viewer.phys.
//
// Usage:
//   MapPage p = ledger.pool_map_page(viewer, pool, {.after = 0, .bucket_size = 0});
//   while (p.more) p = ledger.pool_map_page(viewer, pool, {.after = p.next_after, ...});
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
  // MapExtent::device values that are not an index into MapPage::devices.
  static constexpr size_t kHidden = std::numeric_limits<size_t>::max();  // another user's
  static constexpr size_t kNone = kHidden - 1;                           // nothing used

  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t used = 0;  // == size for a block; a bucket's bytes used by this page's blocks
  size_t device = kNone;
  uint32_t uid = 0;    // allocating uid, when shown
  bool mixed = false;  // a bucket with blocks of several devices or owners
};

struct MapBarrier {
  uint64_t offset = 0;  // where a physical run starts (never 0)
  uint64_t phys = 0;    // its physical address, 0 unless viewer.phys
};

struct MapPageRequest {
  uint64_t after = 0;          // block id cursor: records with a larger id
  size_t limit = 1024;         // block records visited, >= 1
  size_t max_entries = 2048;   // >= 1
  uint64_t bucket_size = 0;    // 0: exact, one entry per block
  size_t max_barriers = 2048;  // spread evenly when there are more
  size_t max_devices = 64;     // >= 1; the last one stands for the rest
};

struct MapPage {
  std::vector<std::string> devices{};  // names of the devices entries refer to
  std::vector<MapExtent> entries{};    // blocks (exact) or touched buckets, by offset
  // Run edges: on the first page (after == 0) only.
  std::vector<MapBarrier> barriers{};
  uint64_t barriers_omitted = 0;
  uint64_t next_after = 0;  // the cursor for the next page
  bool more = false;        // records remain after next_after
};

}  // namespace pmm::core
