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
// The daemon sends the map in pages (docs/protocol.md, PoolMap); a
// PictureBuilder adds them up into one PoolPicture: exact pages' blocks
// sorted by offset with the gaps between them, or bucketed pages' bytes
// summed per bucket. Figures in the legend are the daemon's (its
// allocator's counters); the outline of the largest free extent is the
// largest gap of an exact map, or in a bucketed one the longest stretch of
// wholly free buckets.
//
// Usage:
//   PictureBuilder b;
//   for (each page p of conn.pool_map(...)) b.add(p);
//   fmt::print("{}", pmmctl::render_map_svg(b.finish(), {}));
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/messages.h"

namespace pmmctl {

struct MapStyle {
  uint64_t request = 0;  // a size to explain (0: none)
  // Terminal only: cells per row and rows; colours off for NO_COLOR.
  unsigned columns = 80;
  unsigned rows = 4;
  bool color = true;
};

struct PoolPicture {
  std::string pool;
  std::string strategy;
  uint64_t size = 0;
  uint64_t page_size = 0;
  // The daemon's figures, as of the last page.
  uint64_t blocks = 0;
  uint64_t bytes_used = 0;
  uint64_t bytes_free = 0;
  uint64_t free_extents = 0;
  uint64_t largest_free = 0;
  // The outlined free stretch (see the header comment); size 0: none.
  uint64_t largest_offset = 0;
  uint64_t largest_size = 0;
  bool exact = true;                 // bucket_size == 0
  uint64_t largest_free_in_run = 0;  // exact maps with run edges only
  uint64_t bucket_size = 0;
  std::vector<std::string> devices;
  std::vector<pmm::proto::MapExtent> extents;  // tile [0, size) in order
  std::vector<pmm::proto::MapBarrier> barriers;
  uint64_t barriers_omitted = 0;
  uint64_t pages = 0;
  uint64_t worst_page_micros = 0;
};

class PictureBuilder {
 public:
  // Pages in the order the daemon sent them.
  void add(const pmm::proto::PoolMapReply& page);
  [[nodiscard]] PoolPicture finish();

 private:
  PoolPicture p_;
  std::vector<pmm::proto::MapExtent> blocks_;   // exact pages
  std::vector<pmm::proto::MapExtent> buckets_;  // bucketed pages, dense
  std::vector<uint64_t> best_;                  // per bucket: the largest part seen
};

// 1 - largest/free; 0 for a pool with no free bytes.
[[nodiscard]] double fragmentation(const PoolPicture& m);

[[nodiscard]] std::string render_map_svg(const PoolPicture& m, const MapStyle& s);
[[nodiscard]] std::string render_map_term(const PoolPicture& m, const MapStyle& s);

}  // namespace pmmctl
