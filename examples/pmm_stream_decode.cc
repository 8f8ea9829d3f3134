// pmm-stream-decode: the first stage of the streaming pipeline. Decodes the
// test card once, then makes N frames — the card panned by --pan pixels per
// frame (stream/pan.h) — into a ring of pmm blocks allocated and shared once
// (stream/ring.h), and announces each frame to the next stage with one
// message on its link.
//
//   pmm-stream-decode card.jpg --frames 120 --out /tmp/p/decode.sock &
//   pmm-stream-scale --in /tmp/p/decode.sock --out /tmp/p/scale.sock --to 1920x1080 &
//   pmm-stream-show --in /tmp/p/scale.sock
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "stream/pan.h"
#include "stream/ring.h"
#include "stream/stats.h"

namespace {

using namespace std::chrono_literals;

struct Options {
  std::string file;
  uint64_t frames = 120;
  std::string pan = "16x8";
  uint32_t jpeg = 0;
  std::string pool = "general";
  uint32_t slots = 3;
  std::string out;
  std::string device = "decoder";
  uint32_t lifetime_ms = 0;
  bool stats = false;
};

examples::Result<void> run(const Options& opt, examples::StreamStats& stats) {
  auto step = examples::parse_pan(opt.pan);
  if (!step) return std::unexpected("--pan: " + step.error());
  auto conn = examples::connect_pmm(opt.device.c_str());
  if (!conn) return std::unexpected(conn.error());
  examples::PanSource source;
  if (auto ok = source.open(opt.file, *step); !ok) return ok;
  if (opt.jpeg > 0) {
    if (auto ok = source.encode_sequence(opt.jpeg); !ok) return ok;
  }
  auto ring = examples::OutputRing::create(conn->get(), opt.pool, source.frame(), opt.slots);
  if (!ring) return std::unexpected(ring.error());
  auto link = examples::Link::accept_one(opt.out, 30s);
  if (!link) return std::unexpected(link.error());
  if (auto ok = ring->announce(*link, opt.lifetime_ms); !ok) return ok;
  stats.begin();

  for (uint64_t k = 0; k < opt.frames; ++k) {
    auto slot = ring->acquire(*link);
    if (!slot) return std::unexpected(slot.error());
    auto made =
        stats.work([&] { return source.make(k, ring->pixels(*slot), ring->frame().stride); });
    if (!made) return made;
    if (auto ok = ring->publish(*link, *slot, k); !ok) return ok;
    stats.frame_done();
  }
  return ring->finish(*link, opt.frames);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Stream N panned frames of a JPEG through a ring of pmm blocks."};
  app.add_option("file", opt.file, "JPEG file, at most 3840x2160")->required();
  app.add_option("--frames", opt.frames, "how many frames")->capture_default_str();
  app.add_option("--pan", opt.pan, "pan per frame, DXxDY pixels")->capture_default_str();
  app.add_option("--jpeg", opt.jpeg,
                 "decode a JPEG per frame: encode this many panned frames at start (0: pan)")
      ->capture_default_str();
  app.add_option("--pool", opt.pool, "pool(s) for the ring")->capture_default_str();
  app.add_option("--slots", opt.slots, "blocks in the ring")->capture_default_str();
  app.add_option("--out", opt.out, "socket path the next stage connects to")->required();
  app.add_option("--device", opt.device, "device name pmmd applies limits to")
      ->capture_default_str();
  app.add_option("--lifetime-ms", opt.lifetime_ms,
                 "how long the ring's exports wait for their import (0: the daemon's default)");
  app.add_flag("--stats", opt.stats, "print 'stream stage=decode ...' on stderr");
  CLI11_PARSE(app, argc, argv);

  examples::StreamStats stats("decode");
  if (auto ok = run(opt, stats); !ok) {
    fmt::print(stderr, "pmm-stream-decode: {}\n", ok.error());
    return 1;
  }
  stats.print_if(opt.stats);
  return 0;
}
