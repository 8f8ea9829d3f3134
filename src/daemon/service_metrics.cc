// Service: the views behind `pmmctl metrics`, `pmmctl top` and `pmmctl map`.
//
// Metrics (request counters and the latency histogram) describe the whole
// daemon's traffic, every user's together: admins only, like `check`. A
// non-admin still gets pool usage and totals from Stats and its own
// sessions and devices from the listings, which is what `top` shows it.
//
// A pool map is for anyone, filtered like the listings (core/ledger_map.h).
// Unlike a listing page it costs O(blocks of the ledger), so a non-admin's
// map of a pool with more than kUnpacedBlocks blocks is paced: after such a
// map took T, the next one from any non-admin waits 20 T (the map gets at
// most 5% of the loop's time from them); an early one is refused with
// kLimit saying when to ask again. Admins are not paced (they may `check`).
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "daemon/service.h"

namespace pmm::daemon {

namespace {

constexpr uint64_t kUnpacedBlocks = 65536;
constexpr int kPaceFactor = 20;

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

Reply Service::pool_map(const SessionState& s, uint32_t request_id, const proto::PoolMapRequest& r,
                        core::SteadyTime now) {
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
  const core::Viewer v = viewer(s);
  const uint64_t blocks = pool.stats().alloc.live_blocks;
  const bool paced = !v.all && blocks > kUnpacedBlocks;
  if (paced && now < next_map_) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_map_ - now).count() + 1;
    return error(s, request_id,
                 Error{Errc::kLimit,
                       fmt::format("map: pool '{}' holds {} blocks; maps of pools above {} blocks "
                                   "are paced for non-admins (at most 5% of pmmd's time); ask "
                                   "again in {} ms",
                                   r.pool, blocks, kUnpacedBlocks, wait)},
                 "map");
  }
  const auto start = std::chrono::steady_clock::now();
  core::PoolMap m = l.pool_map(
      v, *index,
      core::MapLimits{.max_entries = r.max_entries == 0 ? proto::kMaxMapEntries : r.max_entries,
                      .max_barriers = proto::kMaxMapBarriers,
                      .max_devices = proto::kMaxMapDevices});
  const auto took = std::chrono::steady_clock::now() - start;
  if (paced) next_map_ = now + kPaceFactor * took;

  proto::PoolMapReply out{.pool_index = static_cast<uint32_t>(*index),
                          .pool = pool.name(),
                          .strategy = std::string(pool.strategy().name()),
                          .size = m.size,
                          .page_size = pool.region().page_size(),
                          .blocks = m.blocks,
                          .bytes_used = m.bytes_used,
                          .bytes_free = m.bytes_free,
                          .free_extents = m.free_extents,
                          .largest_free = m.largest_free,
                          .largest_free_offset = m.largest_free_offset,
                          .largest_free_in_run = m.largest_free_in_run,
                          .bucket_size = m.bucket_size,
                          .devices = {},
                          .extents = {},
                          .barriers = {},
                          .barriers_omitted = m.barriers_omitted,
                          .micros = static_cast<uint64_t>(
                              std::chrono::duration_cast<std::chrono::microseconds>(took).count())};
  for (std::string& d : m.devices) {
    // Labels are config names (<= 64 bytes) or "default (uid N)".
    if (d.size() > proto::kMaxNameLength) d.resize(proto::kMaxNameLength);
    out.devices.push_back(std::move(d));
  }
  out.extents.reserve(m.extents.size());
  for (const core::MapExtent& e : m.extents) {
    out.extents.push_back(proto::MapExtent{.offset = e.offset,
                                           .size = e.size,
                                           .used = e.used,
                                           .device = wire_device(e.device),
                                           .uid = e.uid,
                                           .mixed = e.mixed});
  }
  for (const core::MapBarrier& b : m.barriers)
    out.barriers.push_back(proto::MapBarrier{.offset = b.offset, .phys = b.phys});
  log_.detail("{} mapped pool {} ({} blocks, {} extents) in {} us", who(s), pool.name(), m.blocks,
              out.extents.size(), out.micros);
  return Reply{.message = proto::Message{.request_id = request_id, .body = std::move(out)}};
}

}  // namespace pmm::daemon
