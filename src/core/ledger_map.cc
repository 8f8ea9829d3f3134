// Ledger::pool_map: a pool laid out by offset; see ledger_map.h.
//
// The ledger keeps blocks by id, so the map gathers the pool's blocks (24
// bytes each, one pass over the block table), sorts them by offset, and
// sweeps once: the gaps are the free extents, split at run edges for the
// largest free stretch inside one run. Then it either lists every block and
// gap, or folds them into equal buckets, so the answer stays bounded.
#include <algorithm>

#include "core/ledger.h"

namespace pmm::core {

namespace {

// One block of the pool, as the map needs it. `key` is the compact device
// index in PoolMap::devices, or MapExtent::kHidden.
struct Item {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t key = 0;
  uint32_t uid = 0;
};
constexpr uint32_t kHiddenKey = UINT32_MAX;

// Adds bytes [from, to) of one owner to the buckets they cover.
struct Buckets {
  uint64_t size = 0;  // bytes per bucket
  std::vector<MapExtent>& out;
  std::vector<uint64_t> largest;  // per bucket: the largest part added, for its device

  void add(uint64_t from, uint64_t to, size_t device, uint32_t uid) {
    while (from < to) {
      size_t i = from / size;
      uint64_t end = std::min<uint64_t>(to, (i + 1) * size);
      MapExtent& b = out[i];
      const uint64_t part = end - from;
      if (b.used != 0 && (b.device != device || b.uid != uid)) b.mixed = true;
      if (part > largest[i]) {
        largest[i] = part;
        b.device = device;
        b.uid = uid;
      }
      b.used += part;
      from = end;
    }
  }
};

}  // namespace

PoolMap Ledger::pool_map(const Viewer& viewer, size_t pool, const MapLimits& limits) const {
  const Pool& p = *pools_[pool].pool;
  PoolMap m;
  m.size = p.region().size();

  // Which blocks the viewer may name: those its uid allocated, and those a
  // session of its uid holds or its uid exported (uid_blocks_, in id order
  // like blocks_, so one merge walk decides).
  std::vector<BlockId> own;
  if (!viewer.all) {
    for (auto it = uid_blocks_.lower_bound({viewer.uid, 0});
         it != uid_blocks_.end() && it->first.first == viewer.uid; ++it)
      own.push_back(it->first.second);
  }
  std::vector<uint32_t> compact(devices_.all().size(), kHiddenKey);
  const size_t max_devices = std::max<size_t>(limits.max_devices, 1);
  auto key_of = [&](size_t device) -> uint32_t {
    if (compact[device] != kHiddenKey) return compact[device];
    if (m.devices.size() + 1 < max_devices) {
      m.devices.push_back(devices_.device(device).label());
    } else if (m.devices.size() + 1 == max_devices) {
      m.devices.push_back("(other devices)");  // the last slot stands for the rest
    }
    compact[device] = static_cast<uint32_t>(m.devices.size() - 1);
    return compact[device];
  };

  std::vector<Item> items;
  items.reserve(p.stats().alloc.live_blocks);
  auto own_it = own.begin();
  for (const auto& [id, rec] : blocks_) {
    if (rec.info.pool != pool) continue;
    bool shown = viewer.all || rec.uid == viewer.uid;
    if (!shown) {
      while (own_it != own.end() && *own_it < id) ++own_it;
      shown = own_it != own.end() && *own_it == id;
    }
    items.push_back(Item{.offset = rec.info.offset,
                         .size = rec.info.size,
                         .key = shown ? key_of(rec.device) : kHiddenKey,
                         .uid = shown ? rec.uid : 0});
  }
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.offset < b.offset; });

  // Run edges (where a run starts, other than at 0), in offset order.
  std::vector<MapBarrier> edges;
  for (const mem::PhysicalRun& r : p.region().runs()) {
    if (r.offset != 0) edges.push_back({.offset = r.offset, .phys = viewer.phys ? r.phys : 0});
  }

  // The sweep: gaps between blocks are the free extents.
  size_t edge = 0;
  auto gap = [&](uint64_t from, uint64_t to) {
    if (from >= to) return;
    ++m.free_extents;
    m.bytes_free += to - from;
    if (to - from > m.largest_free) {
      m.largest_free = to - from;
      m.largest_free_offset = from;
    }
    while (edge < edges.size() && edges[edge].offset <= from) ++edge;
    uint64_t start = from;
    for (size_t e = edge; e < edges.size() && edges[e].offset < to; ++e) {
      m.largest_free_in_run = std::max(m.largest_free_in_run, edges[e].offset - start);
      start = edges[e].offset;
    }
    m.largest_free_in_run = std::max(m.largest_free_in_run, to - start);
  };
  uint64_t at = 0;
  for (const Item& it : items) {
    gap(at, it.offset);
    at = std::max(at, it.offset + it.size);
    m.bytes_used += it.size;
  }
  gap(at, m.size);
  m.blocks = items.size();

  auto device_of = [](uint32_t key) {
    return key == kHiddenKey ? MapExtent::kHidden : static_cast<size_t>(key);
  };
  const size_t max_entries = std::max<size_t>(limits.max_entries, 1);
  if (items.size() + m.free_extents <= max_entries) {
    at = 0;
    for (const Item& it : items) {
      if (it.offset > at) m.extents.push_back({.offset = at, .size = it.offset - at});
      m.extents.push_back({.offset = it.offset,
                           .size = it.size,
                           .used = it.size,
                           .device = device_of(it.key),
                           .uid = it.uid});
      at = it.offset + it.size;
    }
    if (at < m.size) m.extents.push_back({.offset = at, .size = m.size - at});
  } else {
    m.bucket_size = (m.size + max_entries - 1) / max_entries;
    const size_t n = (m.size + m.bucket_size - 1) / m.bucket_size;
    m.extents.resize(n);
    for (size_t i = 0; i < n; ++i) {
      m.extents[i].offset = i * m.bucket_size;
      m.extents[i].size = std::min(m.bucket_size, m.size - i * m.bucket_size);
    }
    Buckets b{.size = m.bucket_size, .out = m.extents, .largest = std::vector<uint64_t>(n, 0)};
    for (const Item& it : items) b.add(it.offset, it.offset + it.size, device_of(it.key), it.uid);
  }

  const size_t max_barriers = limits.max_barriers;
  if (edges.size() <= max_barriers) {
    m.barriers = std::move(edges);
  } else if (max_barriers > 0) {
    // Spread evenly, so a long run of edges still shows where they lie.
    const size_t step = (edges.size() + max_barriers - 1) / max_barriers;
    for (size_t i = 0; i < edges.size(); i += step) m.barriers.push_back(edges[i]);
  }
  m.barriers_omitted = edges.size() - m.barriers.size();
  return m;
}

}  // namespace pmm::core
