// baseline-stream-show: the copying twin of pmm-stream-show. Reads frames
// from stdin into one malloc'ed buffer until the input ends and sends each
// to the X server with plain PutImage (through the X socket), then syncs.
// Prints "shown frames=N ... via=putimage" at the end.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <optional>

#include "baseline/frame_pipe.h"
#include "stream/capture.h"
#include "stream/stats.h"

int main(int argc, char** argv) {
  std::string display, capture, capture_dir;
  bool stats_on = false;
  CLI::App app{"Show every frame read from stdin in an X window with PutImage (baseline)."};
  app.add_option("--display", display, "X display (default: $DISPLAY)");
  app.add_option("--capture", capture, "frame numbers to read back from the server");
  app.add_option("--capture-dir", capture_dir, "where captures go (frame-NNNNNN.bgrx)");
  app.add_flag("--stats", stats_on, "print 'stream stage=show ...' on stderr");
  CLI11_PARSE(app, argc, argv);
  examples::StreamStats stats("show");
  auto run = [&]() -> examples::Result<void> {
    examples::Captures captures;
    if (auto ok = captures.parse(capture, capture_dir); !ok) return ok;
    auto x = examples::XDisplay::connect(display.empty() ? nullptr : display.c_str());
    if (!x) return std::unexpected(x.error());
    examples::FrameReader reader;
    // Room for the largest frame the pipeline takes, faulted in before the frames.
    examples::Frame largest;
    largest.width = examples::kMaxDimension;
    largest.height = examples::kMaxPixels / examples::kMaxDimension;
    largest.stride = examples::stride_for_width(largest.width);
    if (auto ok = reader.reserve(largest.bytes()); !ok) return ok;
    std::optional<xcb_window_t> window;
    examples::Frame shown;
    uint64_t seq = 0;
    stats.begin();
    for (;; ++seq) {
      auto in = reader.next(stdin);
      if (!in) return std::unexpected(in.error());
      if (*in == nullptr) break;
      const examples::Frame& frame = **in;
      if (!window) {  // setup, once: not a frame's cost, but inside the clocks
        auto w = (*x)->create_window(frame.width, frame.height);
        if (!w) return std::unexpected(w.error());
        window = *w;
        shown = frame;
      } else if (frame.width != shown.width || frame.height != shown.height) {
        return std::unexpected(std::string("the frame size changed mid-stream"));
      }
      auto drawn = stats.work([&]() -> examples::Result<void> {
        if (auto ok = (*x)->put_image(*window, reader.pixels(), frame); !ok) return ok;
        return (*x)->sync();
      });
      if (!drawn) return std::unexpected(fmt::format("drawing frame {}: {}", seq, drawn.error()));
      if (captures.wants(seq)) {
        if (auto ok = captures.save(**x, *window, frame, seq); !ok) return ok;
      }
      stats.frame_done();
    }
    fmt::print("shown frames={} width={} height={} via=putimage\n", seq, shown.width, shown.height);
    std::fflush(stdout);
    return {};
  };
  if (auto ok = run(); !ok) {
    fmt::print(stderr, "baseline-stream-show: {}\n", ok.error());
    return 1;
  }
  stats.print_if(stats_on);
  return 0;
}
