// pmm-scale: use case 2 of the proposal. Imports a decoded frame, scales it
// with libyuv into a second pmm block and exports that.
//
//   pmm-jpegdec photo.jpg | pmm-scale --to 1920x1080 | pmm-show
//   pmm-scale 0123...ef 3840x2160 --to 1920x1080
//
// The scaler reads the decoder's block and writes its own, both mapped from
// the pool: no frame is copied on the way in or out. The output goes to the
// input block's pool unless --pool says otherwise.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>

#include "common/scale.h"
#include "common/timing.h"
#include "pmm_stage.h"

namespace {

struct Options {
  std::string token;
  std::string size;
  uint32_t stride = 0;
  std::string to;
  std::string pool;
  std::string device = "scaler";
  uint32_t lifetime_ms = 0;
  bool timing = false;
};

examples::Result<void> run(const Options& opt, examples::StageTimer& timer) {
  auto target = examples::parse_size(opt.to);
  if (!target) return std::unexpected("--to: " + target.error());
  // Connect while the producer is still at work, then wait for its line.
  auto conn = examples::connect_pmm(opt.device.c_str());
  if (!conn) return std::unexpected(conn.error());
  timer.lap(examples::Phase::kSetup);
  auto in_frame = examples::input_frame(opt.token, opt.size, opt.stride);
  if (!in_frame) return std::unexpected(in_frame.error());
  timer.start();  // the wait for the producer's line is not ours

  auto in = examples::import_frame(conn->get(), *in_frame);
  if (!in) return std::unexpected(in.error());
  examples::Frame out_frame;
  out_frame.width = target->width;
  out_frame.height = target->height;
  out_frame.stride = examples::stride_for_width(target->width);
  const std::string pools = opt.pool.empty() ? pmm_block_pool(in->get()) : opt.pool;
  auto out = examples::alloc_frame(conn->get(), pools, out_frame);
  if (!out) return std::unexpected(out.error());
  timer.lap(examples::Phase::kIn);

  auto scaled =
      examples::scale_bgrx(static_cast<const uint8_t*>(pmm_block_ptr(in->get())), *in_frame,
                           static_cast<uint8_t*>(pmm_block_ptr(out->get())), out_frame);
  if (!scaled) return scaled;
  in->reset();  // the decoded frame is no longer needed: back to the pool now
  timer.lap(examples::Phase::kWork);

  auto line = examples::export_frame(out->get(), out_frame, opt.lifetime_ms);
  if (!line) return std::unexpected(line.error());
  fmt::print("{}\n", *line);
  std::fflush(stdout);
  timer.lap(examples::Phase::kOut);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{
      "Scale a pmm frame (token line on stdin, or TOKEN WxH) into a new pmm block; print its "
      "token line."};
  app.add_option("token", opt.token, "export token of the input frame (default: read stdin)");
  app.add_option("size", opt.size, "input frame size WIDTHxHEIGHT, with a token");
  app.add_option("--stride", opt.stride, "input row stride in bytes, with a token");
  app.add_option("--to", opt.to, "output size WIDTHxHEIGHT, e.g. 1920x1080")->required();
  app.add_option("--pool", opt.pool, "pool(s) for the output (default: the input's pool)");
  app.add_option("--device", opt.device, "device name pmmd applies limits to")
      ->capture_default_str();
  app.add_option("--lifetime-ms", opt.lifetime_ms,
                 "how long the export waits for its import (0: the daemon's default, 60 s)");
  app.add_flag("--timing", opt.timing, "print 'timing stage=scale ...' on stderr");
  CLI11_PARSE(app, argc, argv);

  examples::StageTimer timer("scale");
  if (auto ok = run(opt, timer); !ok) {
    fmt::print(stderr, "pmm-scale: {}\n", ok.error());
    return 1;
  }
  timer.print_if(opt.timing);
  return 0;
}
