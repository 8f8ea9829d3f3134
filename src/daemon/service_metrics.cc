// Service: the views behind `pmmctl metrics`, `pmmctl top` and `pmmctl map`.
//
// Metrics (request counters and the latency histogram) describe the whole
// daemon's traffic, every user's together: admins only, like `check`. A
// non-admin still gets pool usage and totals from Stats and its own
// sessions and devices from the listings, which is what `top` shows it.
//
// A pool map is for anyone, filtered like the listings (core/ledger_map.h),
// and paged like them: each request visits at most PoolMapRequest.limit
// block records (1,024 by default, 2,048 at most). The loop answers up to
// kBatch (32) requests of one session before it serves the next session,
// so what another session can wait behind is 32 pages: a few milliseconds
// at most, where one page per map of a million blocks would be 100 ms.
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "daemon/service.h"

namespace pmm::daemon {

namespace {

uint16_t wire_device(size_t d) {
  if (d == core::MapExtent::kHidden) return proto::kMapDeviceHidden;
  if (d == core::MapExtent::kNone) return proto::kMapDeviceNone;
  return static_cast<uint16_t>(d);  // < proto::kMaxMapDevices (MapLimits)
}

}  // namespace

Reply Service::metrics(const SessionState& s, uint32_t request_id, core::SteadyTime now) {
  if (!viewer(s).all && s.peer.uid != ::geteuid()) {
    return error(s, request_id,
                 Error{Errc::kPermission,
                       fmt::format("metrics: uid {} may not read the request counters; they "
                                   "describe every user's traffic, so only admins ({}) or pmmd's "
                                   "own uid ({}) may (pool usage: pmmctl pools, status)",
                                   s.peer.uid, admins_.describe(), ::geteuid())},
                 "metrics");
  }
  return Reply{.message = proto::Message{.request_id = request_id, .body = metrics_.snapshot(now)}};
}

Reply Service::pool_map(const SessionState& s, uint32_t request_id,
                        const proto::PoolMapRequest& r) {
  const core::Ledger& l = *ledger_;
  auto index = l.find_pool(r.pool);
  if (!index) {
    std::string known;
    for (size_t i = 0; i < l.pool_count(); ++i)
      known += fmt::format("{}{}", i == 0 ? "" : ", ", l.pool(i).name());
    return error(
        s, request_id,
        Error{Errc::kNotFound, fmt::format("map: no pool '{}'; the pools are: {}", r.pool, known)},
        "map");
  }
  const core::Pool& pool = l.pool(*index);
  const core::PoolStats st = pool.stats();
  const uint64_t size = pool.region().size();
  const size_t max_entries = r.max_entries == 0 ? proto::kMaxMapEntries : r.max_entries;
  // Exact when every block and the gaps between them fit; the client keeps
  // the mode of the first page for the rest.
  const bool exact = r.mode == proto::MapMode::kExact ||
                     (r.mode == proto::MapMode::kAuto && st.alloc.live_blocks * 2 < max_entries);
  const uint64_t bucket = exact ? 0 : std::max<uint64_t>((size + max_entries - 1) / max_entries, 1);
  const auto start = std::chrono::steady_clock::now();
  core::MapPage m =
      l.pool_map_page(viewer(s), *index,
                      core::MapPageRequest{
                          .after = r.after_id,
                          // The codec refuses more than kMaxMapPageRecords.
                          .limit = r.limit == 0 ? proto::kMapPageRecords
                                                : std::min(r.limit, proto::kMaxMapPageRecords),
                          .max_entries = max_entries,
                          .bucket_size = bucket,
                          .max_barriers = proto::kMaxMapBarriers,
                          .max_devices = proto::kMaxMapDevices,
                      });
  const auto took = std::chrono::steady_clock::now() - start;

  proto::PoolMapReply out{.pool_index = static_cast<uint32_t>(*index),
                          .pool = pool.name(),
                          .strategy = std::string(pool.strategy().name()),
                          .size = size,
                          .page_size = pool.region().page_size(),
                          .blocks = st.alloc.live_blocks,
                          .bytes_used = st.alloc.bytes_used,
                          .bytes_free = st.alloc.bytes_free,
                          .free_extents = st.alloc.free_extents,
                          .largest_free = st.alloc.largest_free,
                          .bucket_size = bucket,
                          .devices = {},
                          .extents = {},
                          .barriers = {},
                          .barriers_omitted = m.barriers_omitted,
                          .next_after_id = m.next_after,
                          .more = m.more,
                          .micros = static_cast<uint64_t>(
                              std::chrono::duration_cast<std::chrono::microseconds>(took).count())};
  for (std::string& d : m.devices) {
    // Labels are config names (<= 64 bytes) or "default (uid N)".
    if (d.size() > proto::kMaxNameLength) d.resize(proto::kMaxNameLength);
    out.devices.push_back(std::move(d));
  }
  out.extents.reserve(m.entries.size());
  for (const core::MapExtent& e : m.entries) {
    out.extents.push_back(proto::MapExtent{.offset = e.offset,
                                           .size = e.size,
                                           .used = e.used,
                                           .device = wire_device(e.device),
                                           .uid = e.uid,
                                           .mixed = e.mixed});
  }
  for (const core::MapBarrier& b : m.barriers)
    out.barriers.push_back(proto::MapBarrier{.offset = b.offset, .phys = b.phys});
  log_.detail("{} mapped pool {} after block {} ({} entries) in {} us", who(s), pool.name(),
              r.after_id, out.extents.size(), out.micros);
  return Reply{.message = proto::Message{.request_id = request_id, .body = std::move(out)}};
}

}  // namespace pmm::daemon
