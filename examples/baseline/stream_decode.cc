// baseline-stream-decode: the copying twin of pmm-stream-decode. Makes the
// same panned frames (stream/pan.h) into one malloc'ed buffer and writes
// each, frame line and pixels, to stdout — the copy through a pipe that a
// pipeline without shared buffers makes at every stage boundary.
//
//   baseline-stream-decode card.jpg --frames 120 | baseline-stream-scale --to 1920x1080 |
//     baseline-stream-show
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstring>

#include "baseline/frame_pipe.h"
#include "stream/pan.h"
#include "stream/stats.h"

int main(int argc, char** argv) {
  std::string file;
  uint64_t frames = 120;
  std::string pan = "16x8";
  uint32_t jpeg = 0;
  bool stats_on = false;
  CLI::App app{"Write N panned frames of a JPEG to stdout, pixels and all (baseline)."};
  app.add_option("file", file, "JPEG file, at most 3840x2160")->required();
  app.add_option("--frames", frames, "how many frames")->capture_default_str();
  app.add_option("--pan", pan, "pan per frame, DXxDY pixels")->capture_default_str();
  app.add_option("--jpeg", jpeg,
                 "decode a JPEG per frame: encode this many panned frames at start (0: pan)")
      ->capture_default_str();
  app.add_flag("--stats", stats_on, "print 'stream stage=decode ...' on stderr");
  CLI11_PARSE(app, argc, argv);
  if (::isatty(STDOUT_FILENO)) {
    fmt::print(stderr, "baseline-stream-decode: stdout is a terminal; pipe it on\n");
    return 2;
  }
  examples::StreamStats stats("decode");
  auto run = [&]() -> examples::Result<void> {
    auto step = examples::parse_pan(pan);
    if (!step) return std::unexpected("--pan: " + step.error());
    examples::PanSource source;
    if (auto ok = source.open(file, *step); !ok) return ok;
    if (jpeg > 0) {
      if (auto ok = source.encode_sequence(jpeg); !ok) return ok;
    }
    auto pixels = examples::malloc_frame(source.frame());
    if (!pixels) return std::unexpected(pixels.error());
    std::memset(pixels->get(), 0, source.frame().bytes());  // faulted in once, as pmm's ring
    stats.begin();
    for (uint64_t k = 0; k < frames; ++k) {
      auto made = stats.work([&] { return source.make(k, pixels->get(), source.frame().stride); });
      if (!made) return made;
      if (auto ok = examples::write_frame(STDOUT_FILENO, source.frame(), pixels->get()); !ok) {
        return ok;
      }
      stats.frame_done();
    }
    return {};
  };
  if (auto ok = run(); !ok) {
    fmt::print(stderr, "baseline-stream-decode: {}\n", ok.error());
    return 1;
  }
  stats.print_if(stats_on);
  return 0;
}
