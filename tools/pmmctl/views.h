// pmmctl's admin views: what `pmmctl status|pools|blocks|sessions|devices`
// print, as aligned tables for people or as JSON for scripts (--json).
//
// Human form: sizes humanised ("1.0 MiB"), absent values as "-", limits
// that do not apply as "none". JSON form: one object (status) or one array
// (the listings) with exact byte counts as integers; absent values are null.
// The JSON field names are documented in tools/pmmctl/README.md and are an
// interface: add fields, never rename them.
//
// Usage:
//   auto pools = conn.list_pools();
//   fmt::print("{}", pmmctl::render_pools(*pools, pmmctl::Format::kHuman));
//
// Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "proto/messages.h"

namespace pmmctl {

enum class Format { kHuman, kJson };

struct StatusView {
  std::string socket;
  std::string daemon_version;
  pmm::proto::StatsReply stats;
};

[[nodiscard]] std::string render_status(const StatusView& s, Format f);
[[nodiscard]] std::string render_pools(const std::vector<pmm::proto::PoolInfo>& pools, Format f);
// `pools` names each block's pool (by PoolInfo.index).
[[nodiscard]] std::string render_blocks(const std::vector<pmm::proto::BlockEntry>& blocks,
                                        const std::vector<pmm::proto::PoolInfo>& pools, Format f);
[[nodiscard]] std::string render_sessions(const std::vector<pmm::proto::SessionEntry>& sessions,
                                          Format f);
[[nodiscard]] std::string render_devices(const std::vector<pmm::proto::DeviceEntry>& devices,
                                         Format f);

// The JSON of one pool, as in `pools --json` (also used by `status`).
[[nodiscard]] nlohmann::json pool_json(const pmm::proto::PoolInfo& p);

}  // namespace pmmctl
