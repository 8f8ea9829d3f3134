// pmm-stream-show: the last stage of the streaming pipeline. Imports the
// scaler's ring once, attaches it to the X server once (the SysV segment of
// a `sysv` pool, else a dup of the pool's fd; see pmm-show), then for every
// frame has the server draw the announced slot through MIT-SHM and gives the
// slot back once the server is done with it (a round trip after the draw).
// Prints "shown frames=N via=sysv|fd" at the end; with --progress also
// "frame seq=K" as each frame is drawn.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <map>

#include "stream/capture.h"
#include "stream/ring.h"
#include "stream/stats.h"

namespace {

using namespace std::chrono_literals;

struct Options {
  std::string in;
  std::string display;
  std::string capture;
  std::string capture_dir;
  bool progress = false;
  std::string device = "display";
  bool stats = false;
};

// The ring as the X server sees it: the segment and offset of every slot.
struct Attached {
  std::vector<xcb_shm_seg_t> seg;
  std::vector<uint64_t> offset;
  std::vector<xcb_shm_seg_t> distinct;  // each attached once
  bool sysv = false;
};

examples::Result<Attached> attach(examples::XDisplay& x, const examples::InputRing& ring) {
  Attached a;
  std::map<int64_t, xcb_shm_seg_t> by_segment;  // shmid, or the pool fd
  for (uint32_t i = 0; i < ring.slots(); ++i) {
    pmm_block* block = ring.block(i);
    pmm_sysv_segment sysv{};
    const pmm_status st = pmm_sysv_export(block, &sysv);
    if (st != PMM_OK && st != PMM_E_UNSUPPORTED) {
      return std::unexpected(examples::pmm_failure(
          fmt::format("cannot export block {} as a SysV segment", pmm_block_id(block)), st));
    }
    a.sysv = st == PMM_OK;
    const int64_t key = a.sysv ? sysv.shmid : -1 - int64_t{pmm_block_fd(block)};
    auto it = by_segment.find(key);
    if (it == by_segment.end()) {
      examples::Result<xcb_shm_seg_t> seg = a.sysv ? x.attach_sysv(sysv.shmid) : [&] {
        const int fd = ::dup(pmm_block_fd(block));
        return fd < 0 ? examples::Result<xcb_shm_seg_t>(std::unexpected(std::string("dup failed")))
                      : x.attach_fd(fd);
      }();
      if (!seg) return std::unexpected(seg.error());
      it = by_segment.emplace(key, *seg).first;
      a.distinct.push_back(*seg);
    }
    a.seg.push_back(it->second);
    a.offset.push_back(a.sysv ? sysv.offset : pmm_block_offset(block));
  }
  return a;
}

examples::Result<void> run(const Options& opt, examples::StreamStats& stats) {
  examples::Captures captures;
  if (auto ok = captures.parse(opt.capture, opt.capture_dir); !ok) return ok;
  auto conn = examples::connect_pmm(opt.device.c_str());
  if (!conn) return std::unexpected(conn.error());
  auto x = examples::XDisplay::connect(opt.display.empty() ? nullptr : opt.display.c_str());
  if (!x) return std::unexpected(x.error());
  auto up = examples::Link::connect(opt.in, 30s);
  if (!up) return std::unexpected(up.error());
  auto ring = examples::InputRing::import(conn->get(), *up);
  if (!ring) return std::unexpected(ring.error());
  const examples::Frame& frame = ring->frame();
  const examples::Size screen = (*x)->screen_size();
  if (frame.width > screen.width || frame.height > screen.height) {
    return std::unexpected(fmt::format("a {}x{} frame does not fit the {}x{} screen", frame.width,
                                       frame.height, screen.width, screen.height));
  }
  auto window = (*x)->create_window(frame.width, frame.height);
  if (!window) return std::unexpected(window.error());
  auto attached = attach(**x, *ring);
  if (!attached) return std::unexpected(attached.error());
  stats.begin();

  for (;;) {
    auto notice = ring->next(*up);
    if (!notice) return std::unexpected(notice.error());
    if (notice->end) break;
    auto drawn = stats.work([&]() -> examples::Result<void> {
      if (auto ok = (*x)->put_shm(*window, attached->seg[notice->slot],
                                  attached->offset[notice->slot], frame);
          !ok) {
        return ok;
      }
      return (*x)->sync();  // the server has read the slot: it may be reused
    });
    if (!drawn)
      return std::unexpected(fmt::format("drawing frame {}: {}", notice->seq, drawn.error()));
    if (captures.wants(notice->seq)) {
      if (auto ok = captures.save(**x, *window, frame, notice->seq); !ok) return ok;
    }
    if (auto ok = examples::InputRing::release(*up, notice->slot); !ok) return ok;
    stats.frame_done();
    if (opt.progress) {
      fmt::print("frame seq={}\n", notice->seq);
      std::fflush(stdout);
    }
  }
  for (xcb_shm_seg_t seg : attached->distinct) (*x)->detach(seg);
  if (auto ok = (*x)->sync(); !ok) return ok;
  if (attached->sysv) {
    for (uint32_t i = 0; i < ring->slots(); ++i) {
      if (pmm_status st = pmm_sysv_unexport(ring->block(i)); st != PMM_OK) {
        return std::unexpected(examples::pmm_failure("pmm_sysv_unexport", st));
      }
    }
  }
  fmt::print("shown frames={} width={} height={} via={}\n", stats.frames(), frame.width,
             frame.height, attached->sysv ? "sysv" : "fd");
  std::fflush(stdout);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Show every frame of a pmm ring in an X window through MIT-SHM."};
  app.add_option("--in", opt.in, "socket path of the producer")->required();
  app.add_option("--display", opt.display, "X display (default: $DISPLAY)");
  app.add_option("--capture", opt.capture,
                 "frame numbers to read back from the server, e.g. 0,59,119");
  app.add_option("--capture-dir", opt.capture_dir, "where captures go (frame-NNNNNN.bgrx)");
  app.add_flag("--progress", opt.progress, "print 'frame seq=K' as each frame is drawn");
  app.add_option("--device", opt.device, "device name pmmd applies limits to")
      ->capture_default_str();
  app.add_flag("--stats", opt.stats, "print 'stream stage=show ...' on stderr");
  CLI11_PARSE(app, argc, argv);

  examples::StreamStats stats("show");
  if (auto ok = run(opt, stats); !ok) {
    fmt::print(stderr, "pmm-stream-show: {}\n", ok.error());
    return 1;
  }
  stats.print_if(opt.stats);
  return 0;
}
