// pmm-show-wayland: use case 3 of the proposal on Wayland. Imports a frame
// and shows it in an xdg-shell window through wl_shm, so the compositor
// reads the pixels from the pmm block itself.
//
//   pmm-jpegdec photo.jpg --pool general | pmm-scale --to 1280x720 | pmm-show-wayland --hold 5
//   pmm-show-wayland 0123...ef 1920x1080 --display wayland-1
//
// No copy: the compositor receives a dup of the block's pool fd
// (wl_shm_create_pool over [0, offset + frame bytes)) and a wl_buffer at the
// block's offset in it (wl_shm_pool_create_buffer), and composites from that
// memory. The price is the trust domain: the compositor can read every
// block of that pool (the fd is the whole pool), so show frames from a pool
// whose other users trust the compositor, or from a pool kept for display.
// A block of a `sysv` pool has no fd: it is refused (pmm-show takes it).
//
// Prints "shown surface width=W height=H via=wl_shm offset=O block=ID" once
// the compositor has repainted with the frame, then keeps the window for
// --hold seconds (or until the compositor closes it). The block is held
// until the window is gone.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>

#include "common/timing.h"
#include "common/wayland_display.h"
#include "pmm_stage.h"

namespace {

using namespace std::chrono_literals;

struct Options {
  std::string token;
  std::string size;
  uint32_t stride = 0;
  std::string display;
  double hold_s = 0;
  bool fullscreen = false;
  std::string device = "display";
  bool timing = false;
};

// How long the compositor may take to configure the window and to repaint
// with the frame. A stopped compositor gives an error after this, not a hang.
constexpr auto kCompositorWait = 10s;

examples::Result<void> run(const Options& opt, examples::StageTimer& timer) {
  // Connect to pmmd and the compositor while the producers are at work.
  auto conn = examples::connect_pmm(opt.device.c_str());
  if (!conn) return std::unexpected(conn.error());
  // Declared before the display, so destroyed after it on every path: the
  // window goes before the block is put, and the compositor has stopped
  // reading the memory before it returns to the pool.
  examples::PmmBlock block;
  auto wl = examples::WaylandDisplay::connect(opt.display.empty() ? nullptr : opt.display.c_str());
  if (!wl) return std::unexpected(wl.error());
  timer.lap(examples::Phase::kSetup);
  auto frame = examples::input_frame(opt.token, opt.size, opt.stride);
  if (!frame) return std::unexpected(frame.error());
  timer.start();

  auto imported = examples::import_frame(conn->get(), *frame);
  if (!imported) return std::unexpected(imported.error());
  block = std::move(*imported);
  const int fd = pmm_block_fd(block.get());
  if (fd < 0) {
    return std::unexpected(fmt::format(
        "block {} is in pool '{}', a SysV segment, which has no fd for wl_shm: produce the frame "
        "in a shmem or hugetlb pool (e.g. pmm-jpegdec --pool general), or show it with pmm-show "
        "on X",
        pmm_block_id(block.get()), pmm_block_pool(block.get())));
  }
  timer.lap(examples::Phase::kIn);
  if (auto ok = (*wl)->create_window("pmm-show-wayland", opt.fullscreen, kCompositorWait); !ok)
    return ok;
  timer.lap(examples::Phase::kSetup);

  const uint64_t offset = pmm_block_offset(block.get());
  if (auto ok = (*wl)->show_shm(fd, offset, *frame, kCompositorWait); !ok) {
    return std::unexpected("showing the frame: " + ok.error());
  }
  timer.lap(examples::Phase::kWork);

  fmt::print("shown surface width={} height={} via=wl_shm offset={} block={}\n", frame->width,
             frame->height, offset, pmm_block_id(block.get()));
  std::fflush(stdout);
  timer.lap(examples::Phase::kOut);
  timer.print_if(opt.timing);  // now, not after --hold

  if (opt.hold_s > 0) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(opt.hold_s));
    auto closed = (*wl)->wait_events(deadline);
    if (!closed) return std::unexpected(closed.error());
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{
      "Show a pmm frame (token line on stdin, or TOKEN WxH) in a Wayland window through wl_shm, "
      "with no copy: the compositor maps the block's pool."};
  app.add_option("token", opt.token, "export token of the frame (default: read stdin)");
  app.add_option("size", opt.size, "frame size WIDTHxHEIGHT, with a token");
  app.add_option("--stride", opt.stride, "row stride in bytes, with a token");
  app.add_option("--display", opt.display,
                 "Wayland socket name or path (default: $WAYLAND_DISPLAY, else wayland-0)");
  app.add_option("--hold", opt.hold_s, "keep the window up this many seconds")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_flag("--fullscreen", opt.fullscreen,
               "ask for a fullscreen window (the shell centers the frame on black)");
  app.add_option("--device", opt.device, "device name pmmd applies limits to")
      ->capture_default_str();
  app.add_flag("--timing", opt.timing, "print 'timing stage=show-wayland ...' on stderr");
  CLI11_PARSE(app, argc, argv);

  examples::StageTimer timer("show-wayland");
  if (auto ok = run(opt, timer); !ok) {
    fmt::print(stderr, "pmm-show-wayland: {}\n", ok.error());
    return 1;
  }
  return 0;
}
