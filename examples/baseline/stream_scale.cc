// baseline-stream-scale: the copying twin of pmm-stream-scale. Reads frames
// from stdin into one malloc'ed buffer until the input ends, scales each
// into another and writes it to stdout.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstring>

#include "baseline/frame_pipe.h"
#include "common/scale.h"
#include "stream/stats.h"

int main(int argc, char** argv) {
  std::string to;
  bool stats_on = false;
  CLI::App app{"Scale every frame read from stdin and write it to stdout (baseline)."};
  app.add_option("--to", to, "output size WIDTHxHEIGHT, e.g. 1920x1080")->required();
  app.add_flag("--stats", stats_on, "print 'stream stage=scale ...' on stderr");
  CLI11_PARSE(app, argc, argv);
  examples::StreamStats stats("scale");
  auto run = [&]() -> examples::Result<void> {
    auto target = examples::parse_size(to);
    if (!target) return std::unexpected("--to: " + target.error());
    examples::Frame out_frame;
    out_frame.width = target->width;
    out_frame.height = target->height;
    out_frame.stride = examples::stride_for_width(target->width);
    auto out = examples::malloc_frame(out_frame);
    if (!out) return std::unexpected(out.error());
    std::memset(out->get(), 0, out_frame.bytes());  // faulted in once, as pmm's ring
    examples::FrameReader reader;
    // Room for the largest frame the pipeline takes, faulted in before the frames.
    examples::Frame largest;
    largest.width = examples::kMaxDimension;
    largest.height = examples::kMaxPixels / examples::kMaxDimension;
    largest.stride = examples::stride_for_width(largest.width);
    if (auto ok = reader.reserve(largest.bytes()); !ok) return ok;
    stats.begin();
    for (;;) {
      auto in = reader.next(stdin);
      if (!in) return std::unexpected(in.error());
      if (*in == nullptr) return {};  // the input ended after a whole frame
      auto scaled = stats.work(
          [&] { return examples::scale_bgrx(reader.pixels(), **in, out->get(), out_frame); });
      if (!scaled) return scaled;
      if (auto ok = examples::write_frame(STDOUT_FILENO, out_frame, out->get()); !ok) return ok;
      stats.frame_done();
    }
  };
  if (auto ok = run(); !ok) {
    fmt::print(stderr, "baseline-stream-scale: {}\n", ok.error());
    return 1;
  }
  stats.print_if(stats_on);
  return 0;
}
