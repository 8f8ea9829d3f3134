// baseline-jpegdec: the copying twin of pmm-jpegdec. Decodes into a
// malloc'ed buffer and writes the frame line plus all its pixels to stdout.
//
//   baseline-jpegdec photo.jpg | baseline-scale --to 1920x1080 | baseline-show
//
// Same decoder code as the pmm stage (common/jpeg.h); only the memory and
// the hand-off differ, so the timings compare the two ways of passing frames.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include "baseline/frame_pipe.h"
#include "common/jpeg.h"
#include "common/timing.h"

namespace {

examples::Result<void> run(const std::string& file, examples::StageTimer& timer) {
  auto jpeg = examples::read_file(file);
  if (!jpeg) return std::unexpected(jpeg.error());
  examples::JpegDecoder decoder;
  auto size = decoder.open(*jpeg);
  if (!size) return std::unexpected(fmt::format("{}: {}", file, size.error()));
  examples::Frame frame;
  frame.width = size->width;
  frame.height = size->height;
  frame.stride = examples::stride_for_width(size->width);
  auto pixels = examples::malloc_frame(frame);
  if (!pixels) return std::unexpected(pixels.error());
  timer.lap(examples::Phase::kIn);

  if (auto ok = decoder.decode_into(pixels->get(), frame.stride); !ok) {
    return std::unexpected(fmt::format("{}: {}", file, ok.error()));
  }
  timer.lap(examples::Phase::kWork);

  if (auto ok = examples::write_frame(STDOUT_FILENO, frame, pixels->get()); !ok) return ok;
  timer.lap(examples::Phase::kOut);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  std::string file;
  bool timing = false;
  CLI::App app{"Decode a JPEG into malloc'ed memory and write the frame to stdout (baseline)."};
  app.add_option("file", file, "JPEG file, at most 3840x2160")->required();
  app.add_flag("--timing", timing, "print 'timing stage=decode ...' on stderr");
  CLI11_PARSE(app, argc, argv);
  if (::isatty(STDOUT_FILENO)) {
    fmt::print(stderr, "baseline-jpegdec: stdout is a terminal; pipe it into baseline-scale\n");
    return 2;
  }
  examples::StageTimer timer("decode");
  if (auto ok = run(file, timer); !ok) {
    fmt::print(stderr, "baseline-jpegdec: {}\n", ok.error());
    return 1;
  }
  timer.print_if(timing);
  return 0;
}
