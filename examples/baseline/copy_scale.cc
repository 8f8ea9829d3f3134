// baseline-scale: the copying twin of pmm-scale. Reads a frame (line and
// pixels) from stdin into a malloc'ed buffer, scales it with the same libyuv
// call into another, and writes that to stdout.
//
//   baseline-jpegdec photo.jpg | baseline-scale --to 1920x1080 | baseline-show
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include "baseline/frame_pipe.h"
#include "common/scale.h"
#include "common/timing.h"

namespace {

examples::Result<void> run(const std::string& to, examples::StageTimer& timer) {
  auto target = examples::parse_size(to);
  if (!target) return std::unexpected("--to: " + target.error());
  auto in = examples::read_frame(stdin, [&] { timer.start(); });
  if (!in) return std::unexpected(in.error());
  examples::Frame out_frame;
  out_frame.width = target->width;
  out_frame.height = target->height;
  out_frame.stride = examples::stride_for_width(target->width);
  auto out = examples::malloc_frame(out_frame);
  if (!out) return std::unexpected(out.error());
  timer.lap(examples::Phase::kIn);

  if (auto ok = examples::scale_bgrx(in->pixels.get(), in->frame, out->get(), out_frame); !ok) {
    return ok;
  }
  in->pixels.reset();
  timer.lap(examples::Phase::kWork);

  if (auto ok = examples::write_frame(STDOUT_FILENO, out_frame, out->get()); !ok) return ok;
  timer.lap(examples::Phase::kOut);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  std::string to;
  bool timing = false;
  CLI::App app{"Scale a frame read from stdin and write it to stdout (baseline)."};
  app.add_option("--to", to, "output size WIDTHxHEIGHT, e.g. 1920x1080")->required();
  app.add_flag("--timing", timing, "print 'timing stage=scale ...' on stderr");
  CLI11_PARSE(app, argc, argv);
  examples::StageTimer timer("scale");
  if (auto ok = run(to, timer); !ok) {
    fmt::print(stderr, "baseline-scale: {}\n", ok.error());
    return 1;
  }
  timer.print_if(timing);
  return 0;
}
