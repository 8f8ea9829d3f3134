// pmm-stream-scale: the middle stage of the streaming pipeline. Imports the
// producer's ring once, then for every frame scales the announced slot into
// a slot of its own ring (libyuv), gives the input slot back and announces
// the output. See pmm-stream-decode for the whole pipeline.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common/scale.h"
#include "stream/ring.h"
#include "stream/stats.h"

namespace {

using namespace std::chrono_literals;

struct Options {
  std::string in;
  std::string out;
  std::string to;
  std::string pool;
  uint32_t slots = 3;
  std::string device = "scaler";
  uint32_t lifetime_ms = 0;
  bool stats = false;
};

examples::Result<void> run(const Options& opt, examples::StreamStats& stats) {
  auto target = examples::parse_size(opt.to);
  if (!target) return std::unexpected("--to: " + target.error());
  auto conn = examples::connect_pmm(opt.device.c_str());
  if (!conn) return std::unexpected(conn.error());
  auto up = examples::Link::connect(opt.in, 30s);
  if (!up) return std::unexpected(up.error());
  auto in = examples::InputRing::import(conn->get(), *up);
  if (!in) return std::unexpected(in.error());
  examples::Frame out_frame;
  out_frame.width = target->width;
  out_frame.height = target->height;
  out_frame.stride = examples::stride_for_width(target->width);
  const std::string pools = opt.pool.empty() ? pmm_block_pool(in->block(0)) : opt.pool;
  auto out = examples::OutputRing::create(conn->get(), pools, out_frame, opt.slots);
  if (!out) return std::unexpected(out.error());
  auto down = examples::Link::accept_one(opt.out, 30s);
  if (!down) return std::unexpected(down.error());
  if (auto ok = out->announce(*down, opt.lifetime_ms); !ok) return ok;
  stats.begin();

  for (;;) {
    auto notice = in->next(*up);
    if (!notice) return std::unexpected(notice.error());
    if (notice->end) break;
    auto slot = out->acquire(*down);
    if (!slot) return std::unexpected(slot.error());
    auto scaled = stats.work([&] {
      return examples::scale_bgrx(in->pixels(notice->slot), in->frame(), out->pixels(*slot),
                                  out_frame);
    });
    if (!scaled) return scaled;
    if (auto ok = examples::InputRing::release(*up, notice->slot); !ok) return ok;
    if (auto ok = out->publish(*down, *slot, notice->seq); !ok) return ok;
    stats.frame_done();
  }
  return out->finish(*down, stats.frames());
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Scale every frame of a pmm ring into a ring of its own."};
  app.add_option("--in", opt.in, "socket path of the producer")->required();
  app.add_option("--out", opt.out, "socket path the next stage connects to")->required();
  app.add_option("--to", opt.to, "output size WIDTHxHEIGHT, e.g. 1920x1080")->required();
  app.add_option("--pool", opt.pool, "pool(s) for the output ring (default: the input's pool)");
  app.add_option("--slots", opt.slots, "blocks in the output ring")->capture_default_str();
  app.add_option("--device", opt.device, "device name pmmd applies limits to")
      ->capture_default_str();
  app.add_option("--lifetime-ms", opt.lifetime_ms,
                 "how long the ring's exports wait for their import (0: the daemon's default)");
  app.add_flag("--stats", opt.stats, "print 'stream stage=scale ...' on stderr");
  CLI11_PARSE(app, argc, argv);

  examples::StreamStats stats("scale");
  if (auto ok = run(opt, stats); !ok) {
    fmt::print(stderr, "pmm-stream-scale: {}\n", ok.error());
    return 1;
  }
  stats.print_if(opt.stats);
  return 0;
}
