// pmm-show: use case 3 of the proposal. Imports a frame and puts it on an X
// display through MIT-SHM, so the X server reads the pixels from the pmm
// block itself.
//
//   pmm-jpegdec photo.jpg | pmm-scale --to 1920x1080 | pmm-show --hold 5
//   pmm-show 0123...ef 1920x1080 --screenshot screen.png
//
// Two ways to hand the block to the server, no copy in either:
// - a block of a `sysv` pool is exported as (shmid, offset): the server
//   attaches the SysV segment (ShmAttach) and draws from `offset` — the
//   proposal's "convert a block into a System V segment";
// - any other pool: the server receives a dup of the pool's fd
//   (ShmAttachFd, MIT-SHM 1.2), maps it, and draws from the block's offset.
// Prints "shown window=0x... width=W height=H via=sysv|fd" once the server
// has drawn the frame, then keeps the window (redrawing on Expose) for
// --hold seconds.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>

#include "common/timing.h"
#include "common/x_display.h"
#include "pmm_stage.h"

namespace {

struct Options {
  std::string token;
  std::string size;
  uint32_t stride = 0;
  std::string display;
  std::string screenshot;
  double hold_s = 0;
  std::string device = "display";
  bool timing = false;
};

// The block as the X server sees it: an attached segment and where the
// frame starts inside it.
struct Shown {
  xcb_shm_seg_t seg = 0;
  uint64_t offset = 0;
  const char* via = "";
};

examples::Result<Shown> attach(examples::XDisplay& x, pmm_block* block) {
  pmm_sysv_segment sysv{};
  const pmm_status st = pmm_sysv_export(block, &sysv);
  if (st == PMM_OK) {
    auto seg = x.attach_sysv(sysv.shmid);
    if (!seg) {
      (void)pmm_sysv_unexport(block);
      return std::unexpected(seg.error());
    }
    return Shown{*seg, sysv.offset, "sysv"};
  }
  if (st != PMM_E_UNSUPPORTED) {
    return std::unexpected(examples::pmm_failure(
        fmt::format("cannot export block {} as a SysV segment", pmm_block_id(block)), st));
  }
  // Not a sysv pool: give the server its own descriptor of the pool memory.
  const int fd = ::dup(pmm_block_fd(block));
  if (fd < 0) return std::unexpected(fmt::format("dup of the pool fd: {}", std::strerror(errno)));
  auto seg = x.attach_fd(fd);
  if (!seg) return std::unexpected(seg.error());
  return Shown{*seg, pmm_block_offset(block), "fd"};
}

examples::Result<void> run(const Options& opt, examples::StageTimer& timer) {
  // Connect to pmmd and the X server while the producers are at work.
  auto conn = examples::connect_pmm(opt.device.c_str());
  if (!conn) return std::unexpected(conn.error());
  auto x = examples::XDisplay::connect(opt.display.empty() ? nullptr : opt.display.c_str());
  if (!x) return std::unexpected(x.error());
  timer.lap(examples::Phase::kSetup);
  auto frame = examples::input_frame(opt.token, opt.size, opt.stride);
  if (!frame) return std::unexpected(frame.error());
  timer.start();

  auto block = examples::import_frame(conn->get(), *frame);
  if (!block) return std::unexpected(block.error());
  timer.lap(examples::Phase::kIn);
  const examples::Size screen = (*x)->screen_size();
  if (frame->width > screen.width || frame->height > screen.height) {
    return std::unexpected(fmt::format("a {}x{} frame does not fit the {}x{} screen", frame->width,
                                       frame->height, screen.width, screen.height));
  }
  auto window = (*x)->create_window(frame->width, frame->height);
  if (!window) return std::unexpected(window.error());
  timer.lap(examples::Phase::kSetup);

  auto shown = attach(**x, block->get());
  if (!shown) return std::unexpected(shown.error());
  auto draw = [&]() -> examples::Result<void> {
    if (auto ok = (*x)->put_shm(*window, shown->seg, shown->offset, *frame); !ok) return ok;
    return (*x)->sync();
  };
  if (auto ok = draw(); !ok) return std::unexpected("drawing the frame: " + ok.error());
  timer.lap(examples::Phase::kWork);

  fmt::print("shown window=0x{:x} width={} height={} via={} block={}\n", *window, frame->width,
             frame->height, shown->via, pmm_block_id(block->get()));
  std::fflush(stdout);
  timer.lap(examples::Phase::kOut);
  timer.print_if(opt.timing);  // now, not after --hold

  if (!opt.screenshot.empty()) {
    auto pixels = (*x)->get_image(*window, 0, 0, frame->width, frame->height);
    if (!pixels) return std::unexpected("screenshot: " + pixels.error());
    if (auto ok = examples::write_png(opt.screenshot.c_str(), pixels->data(), frame->width,
                                      frame->height, frame->width * examples::kBytesPerPixel);
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
  (*x)->detach(shown->seg);
  if (std::string_view(shown->via) == "sysv") {
    if (pmm_status st = pmm_sysv_unexport(block->get()); st != PMM_OK) {
      return std::unexpected(examples::pmm_failure("pmm_sysv_unexport", st));
    }
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{
      "Show a pmm frame (token line on stdin, or TOKEN WxH) in an X window through MIT-SHM."};
  app.add_option("token", opt.token, "export token of the frame (default: read stdin)");
  app.add_option("size", opt.size, "frame size WIDTHxHEIGHT, with a token");
  app.add_option("--stride", opt.stride, "row stride in bytes, with a token");
  app.add_option("--display", opt.display, "X display (default: $DISPLAY)");
  app.add_option("--screenshot", opt.screenshot, "write what the server shows to this PNG");
  app.add_option("--hold", opt.hold_s, "keep the window up this many seconds")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--device", opt.device, "device name pmmd applies limits to")
      ->capture_default_str();
  app.add_flag("--timing", opt.timing, "print 'timing stage=show ...' on stderr");
  CLI11_PARSE(app, argc, argv);

  examples::StageTimer timer("show");
  if (auto ok = run(opt, timer); !ok) {
    fmt::print(stderr, "pmm-show: {}\n", ok.error());
    return 1;
  }
  return 0;
}
