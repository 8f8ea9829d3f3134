// pmmctl's pool map: `pmmctl map POOL` draws the daemon's PoolMapReply as an
// SVG picture, or as a coloured terminal strip with --term.
//
// Both show the pool to scale (offset runs left to right, then down the
// rows), blocks coloured by device, other users' blocks in grey without a
// name, free space pale, physical-run edges as red bars, the largest free
// extent outlined, and a legend with the fragmentation figures: free bytes,
// the largest free extent, how many free extents, and 1 - largest/free
// (0: all free space in one piece; near 1: shattered). A request larger than
// the largest free extent is refused whatever the free total says; the
// legend says so in words when a size is given (--request).
//
// The SVG is plain SVG 1.1. Every extent is a <g class="extent"> with
// data-offset, data-size, data-used (bytes) and data-device, so a script
// can read the picture back; the largest free extent is <g class="largest">
// and each run edge a <line class="barrier" data-offset=...>.
//
// Usage:
//   auto m = conn.pool_map("general", 2048);
//   fmt::print("{}", pmmctl::render_map_svg(*m, {}));
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "proto/messages.h"

namespace pmmctl {

struct MapStyle {
  uint64_t request = 0;  // a size to explain (0: none)
  // Terminal only: cells per row and rows; colours off for NO_COLOR.
  unsigned columns = 80;
  unsigned rows = 4;
  bool color = true;
};

// 1 - largest/free; 0 for a pool with no free bytes.
[[nodiscard]] double fragmentation(const pmm::proto::PoolMapReply& m);

[[nodiscard]] std::string render_map_svg(const pmm::proto::PoolMapReply& m, const MapStyle& s);
[[nodiscard]] std::string render_map_term(const pmm::proto::PoolMapReply& m, const MapStyle& s);

}  // namespace pmmctl
