// pmm-jpegdec: use case 1 of the proposal. Decodes a JPEG straight into a
// pmm block and exports it for the next stage.
//
//   pmm-jpegdec photo.jpg [--pool general] | pmm-scale --to 1280x720 | pmm-show
//
// libjpeg-turbo writes every decoded row into the block itself (BGRX, the
// layout the X server and libyuv take), so the frame exists only there. The
// block is exported for one import; the export keeps it alive after this
// process exits, until the consumer imports it or the lifetime ends.
// Prints one frame line on stdout (see common/frame.h).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>

#include "common/jpeg.h"
#include "common/timing.h"
#include "pmm_stage.h"

namespace {

struct Options {
  std::string file;
  std::string pool = "general";
  std::string device = "decoder";
  uint32_t lifetime_ms = 0;
  bool timing = false;
};

examples::Result<std::string> run(const Options& opt, examples::StageTimer& timer) {
  auto conn = examples::connect_pmm(opt.device.c_str());
  if (!conn) return std::unexpected(conn.error());
  timer.lap(examples::Phase::kSetup);

  auto jpeg = examples::read_file(opt.file);
  if (!jpeg) return std::unexpected(jpeg.error());
  examples::JpegDecoder decoder;
  auto size = decoder.open(*jpeg);
  if (!size) return std::unexpected(fmt::format("{}: {}", opt.file, size.error()));
  examples::Frame frame;
  frame.width = size->width;
  frame.height = size->height;
  frame.stride = examples::stride_for_width(size->width);
  auto block = examples::alloc_frame(conn->get(), opt.pool, frame);
  if (!block) return std::unexpected(block.error());
  timer.lap(examples::Phase::kIn);

  auto* pixels = static_cast<uint8_t*>(pmm_block_ptr(block->get()));
  if (auto ok = decoder.decode_into(pixels, frame.stride); !ok) {
    return std::unexpected(fmt::format("{}: {}", opt.file, ok.error()));
  }
  timer.lap(examples::Phase::kWork);

  auto line = examples::export_frame(block->get(), frame, opt.lifetime_ms);
  if (!line) return std::unexpected(line.error());
  fmt::print("{}\n", *line);
  std::fflush(stdout);
  timer.lap(examples::Phase::kOut);
  return *line;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Decode a JPEG into a pmm block and print its export token line."};
  app.add_option("file", opt.file, "JPEG file, at most 3840x2160")->required();
  app.add_option("--pool", opt.pool, "pool(s) to allocate from, e.g. general or display,general")
      ->capture_default_str();
  app.add_option("--device", opt.device, "device name pmmd applies limits to")
      ->capture_default_str();
  app.add_option("--lifetime-ms", opt.lifetime_ms,
                 "how long the export waits for its import (0: the daemon's default, 60 s)");
  app.add_flag("--timing", opt.timing, "print 'timing stage=decode ...' on stderr");
  CLI11_PARSE(app, argc, argv);

  examples::StageTimer timer("decode");
  auto result = run(opt, timer);
  if (!result) {
    fmt::print(stderr, "pmm-jpegdec: {}\n", result.error());
    return 1;
  }
  timer.print_if(opt.timing);
  return 0;
}
