// Ledger::pool_map_page: one page of a pool laid out by offset; see
// ledger_map.h.
//
// The ledger keeps blocks by id, so a page is a stretch of the id order
// after the cursor, like a listing page: its cost is the
// records it visits, never the whole table (a million-block map in one go
// stalled the loop for 100-250 ms on the 2-core test machine, and so did 31
// pages of 32k records answered in one batch). The client sorts exact pages
// by offset and adds bucketed ones up.
#include <algorithm>

#include "core/ledger.h"

namespace pmm::core {

MapPage Ledger::pool_map_page(const Viewer& viewer, size_t pool,
                              const MapPageRequest& request) const {
  const Pool& p = *pools_[pool].pool;
  const uint64_t size = p.region().size();
  MapPage page;
  page.next_after = request.after;

  // Device table index -> index in page.devices, filled as blocks show them.
  constexpr uint32_t kUnset = UINT32_MAX;
  std::vector<uint32_t> compact(devices_.all().size(), kUnset);
  const size_t max_devices = std::max<size_t>(request.max_devices, 1);
  auto device_of = [&](size_t device) -> size_t {
    if (compact[device] != kUnset) return compact[device];
    if (page.devices.size() + 1 < max_devices) {
      page.devices.push_back(devices_.device(device).label());
    } else if (page.devices.size() + 1 == max_devices) {
      page.devices.push_back("(other devices)");  // the last slot stands for the rest
    }
    compact[device] = static_cast<uint32_t>(page.devices.size() - 1);
    return compact[device];
  };

  // Buckets this page touches, dense over the pool (at most max_entries of
  // them: the caller picks bucket_size so), with the part that names each.
  const uint64_t bucket = request.bucket_size;
  std::vector<MapExtent> buckets;
  std::vector<uint64_t> largest_part;
  if (bucket != 0) {
    const size_t n = static_cast<size_t>((size + bucket - 1) / bucket);
    buckets.resize(n);
    largest_part.assign(n, 0);
  }
  auto add_to_buckets = [&](uint64_t from, uint64_t to, size_t device, uint32_t uid) {
    while (from < to) {
      const size_t i = static_cast<size_t>(from / bucket);
      const uint64_t end = std::min<uint64_t>(to, (i + 1) * bucket);
      MapExtent& b = buckets[i];
      const uint64_t part = end - from;
      if (b.used != 0 && (b.device != device || b.uid != uid)) b.mixed = true;
      // A bucket names the viewer's own block where it has one (so a user
      // finds its blocks among others'), else the largest part's owner.
      const bool take = device == MapExtent::kHidden
                            ? b.device == MapExtent::kNone ||
                                  (b.device == MapExtent::kHidden && part > largest_part[i])
                            : b.device == MapExtent::kNone || b.device == MapExtent::kHidden ||
                                  part > largest_part[i];
      if (take) {
        largest_part[i] = part;
        b.device = device;
        b.uid = uid;
      }
      b.used += part;
      from = end;
    }
  };

  const size_t limit = std::max<size_t>(request.limit, 1);
  const size_t max_entries = std::max<size_t>(request.max_entries, 1);
  size_t visited = 0;
  size_t at = order_after(request.after);
  for (; at < order_.size() && visited < limit; ++at, ++visited) {
    const BlockId id = order_[at];
    const BlockRecord* rec = find(id);
    if (rec != nullptr && rec->pool() == pool) {
      if (bucket == 0 && page.entries.size() == max_entries) break;
      // Named to its allocating uid, its holders' and its exporters'.
      const bool shown = viewer.all || rec->uid == viewer.uid || visible_to(viewer.uid, *rec);
      const size_t device = shown ? device_of(rec->device()) : MapExtent::kHidden;
      const uint32_t uid = shown ? rec->uid : 0;
      if (bucket == 0) {
        page.entries.push_back({.offset = rec->offset,
                                .size = rec->size,
                                .used = rec->size,
                                .device = device,
                                .uid = uid});
      } else {
        add_to_buckets(rec->offset, std::min(rec->offset + rec->size, size), device, uid);
      }
    }
    page.next_after = id;
  }
  // Freed ids the order still keeps are not "more".
  while (at < order_.size() && find(order_[at]) == nullptr) ++at;
  page.more = at < order_.size();

  if (bucket == 0) {
    std::sort(page.entries.begin(), page.entries.end(),
              [](const MapExtent& a, const MapExtent& b) { return a.offset < b.offset; });
  } else {
    for (size_t i = 0; i < buckets.size(); ++i) {
      if (buckets[i].used == 0) continue;
      MapExtent e = buckets[i];
      e.offset = i * bucket;
      e.size = std::min(bucket, size - e.offset);
      page.entries.push_back(e);
    }
  }

  if (request.after == 0) {
    std::vector<MapBarrier> edges;
    for (const mem::PhysicalRun& r : p.region().runs()) {
      if (r.offset != 0) edges.push_back({.offset = r.offset, .phys = viewer.phys ? r.phys : 0});
    }
    if (edges.size() <= request.max_barriers) {
      page.barriers = std::move(edges);
    } else if (request.max_barriers > 0) {
      // Spread evenly, so a long run of edges still shows where they lie.
      const size_t step = (edges.size() + request.max_barriers - 1) / request.max_barriers;
      for (size_t i = 0; i < edges.size(); i += step) page.barriers.push_back(edges[i]);
    }
    page.barriers_omitted = edges.size() - page.barriers.size();
  }
  return page;
}

}  // namespace pmm::core
