// baseline-show: the copying twin of pmm-show. Reads a frame from stdin into
// a malloc'ed buffer and sends its pixels to the X server with plain
// PutImage requests (through the X socket), no MIT-SHM.
//
//   baseline-jpegdec photo.jpg | baseline-scale --to 1920x1080 | baseline-show
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "baseline/frame_pipe.h"
#include "common/timing.h"
#include "common/x_display.h"

namespace {

struct Options {
  std::string display;
  std::string screenshot;
  double hold_s = 0;
  bool timing = false;
};

examples::Result<void> run(const Options& opt, examples::StageTimer& timer) {
  // Connect to the X server while the producers are at work.
  auto x = examples::XDisplay::connect(opt.display.empty() ? nullptr : opt.display.c_str());
  if (!x) return std::unexpected(x.error());
  timer.lap(examples::Phase::kSetup);
  auto in = examples::read_frame(stdin, [&] { timer.start(); });
  if (!in) return std::unexpected(in.error());
  const examples::Frame& frame = in->frame;
  timer.lap(examples::Phase::kIn);
  const examples::Size screen = (*x)->screen_size();
  if (frame.width > screen.width || frame.height > screen.height) {
    return std::unexpected(fmt::format("a {}x{} frame does not fit the {}x{} screen", frame.width,
                                       frame.height, screen.width, screen.height));
  }
  auto window = (*x)->create_window(frame.width, frame.height);
  if (!window) return std::unexpected(window.error());
  timer.lap(examples::Phase::kSetup);

  auto draw = [&]() -> examples::Result<void> {
    if (auto ok = (*x)->put_image(*window, in->pixels.get(), frame); !ok) return ok;
    return (*x)->sync();
  };
  if (auto ok = draw(); !ok) return std::unexpected("drawing the frame: " + ok.error());
  timer.lap(examples::Phase::kWork);

  fmt::print("shown window=0x{:x} width={} height={} via=putimage\n", *window, frame.width,
             frame.height);
  std::fflush(stdout);
  timer.lap(examples::Phase::kOut);
  timer.print_if(opt.timing);

  if (!opt.screenshot.empty()) {
    auto pixels = (*x)->get_image(*window, 0, 0, frame.width, frame.height);
    if (!pixels) return std::unexpected("screenshot: " + pixels.error());
    if (auto ok = examples::write_png(opt.screenshot.c_str(), pixels->data(), frame.width,
                                      frame.height, frame.width * examples::kBytesPerPixel);
        !ok) {
      return ok;
    }
  }
  if (opt.hold_s > 0) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(opt.hold_s));
    if (auto ok = (*x)->wait_events(deadline, draw); !ok) return ok;
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Show a frame read from stdin in an X window with plain PutImage (baseline)."};
  app.add_option("--display", opt.display, "X display (default: $DISPLAY)");
  app.add_option("--screenshot", opt.screenshot, "write what the server shows to this PNG");
  app.add_option("--hold", opt.hold_s, "keep the window up this many seconds")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_flag("--timing", opt.timing, "print 'timing stage=show ...' on stderr");
  CLI11_PARSE(app, argc, argv);
  examples::StageTimer timer("show");
  if (auto ok = run(opt, timer); !ok) {
    fmt::print(stderr, "baseline-show: {}\n", ok.error());
    return 1;
  }
  return 0;
}
