// A window on a Wayland compositor that shows a BGRX frame straight from
// shared memory the caller holds (wl_shm), with no copy. wayland-client and
// the xdg-shell protocol only.
//
//   auto wl = examples::WaylandDisplay::connect(nullptr);   // $WAYLAND_DISPLAY
//   auto ok = (*wl)->create_window("pmm-show", false, 10s);   // configured toplevel
//   ok = (*wl)->show_shm(pool_fd, block_offset, frame, 10s);  // on screen now
//   (*wl)->wait_events(deadline);                           // keep it there
//
// wl_shm is the zero-copy path: the compositor receives a descriptor of the
// memory (libwayland sends a dup of `fd`), maps it from byte 0 up to the end
// of the frame, and reads the pixels at `offset` whenever it repaints —
// Weston's pixman renderer composites from that mapping directly. The
// compositor can therefore read everything in the fd up to the end of the
// frame, and may map the rest of the fd itself: a frame should be shown from
// memory whose other contents the compositor may see.
//
// Every wait is bounded: a compositor that stops answering gives an error
// naming what was awaited, not a hang. Protocol errors the compositor raises
// (a bad fd, a stride it refuses) are reported with its message.
//
// Threading: one thread uses a WaylandDisplay.
#ifndef EXAMPLES_COMMON_WAYLAND_DISPLAY_H_
#define EXAMPLES_COMMON_WAYLAND_DISPLAY_H_

#include <chrono>
#include <cstdint>
#include <memory>

#include "common/frame.h"

namespace examples {

class WaylandDisplay {
 public:
  // Connects to the compositor's socket `name` (nullptr: $WAYLAND_DISPLAY,
  // else "wayland-0", in $XDG_RUNTIME_DIR) and binds wl_compositor (v4 or
  // later: damage in buffer coordinates), wl_shm (XRGB8888, our BGRX) and
  // xdg_wm_base. Says which of them the compositor lacks.
  [[nodiscard]] static Result<std::unique_ptr<WaylandDisplay>> connect(const char* name);
  ~WaylandDisplay();
  WaylandDisplay(const WaylandDisplay&) = delete;
  WaylandDisplay& operator=(const WaylandDisplay&) = delete;

  // An xdg_toplevel titled `title`, whose first configure has been received
  // and acknowledged (so a buffer may be attached). One window per display.
  // `fullscreen` asks the shell to show it alone on an output: Weston's
  // desktop shell then centers the frame on black (at the top-left corner
  // when the frame has the output's size); otherwise the shell places it.
  [[nodiscard]] Result<void> create_window(const char* title, bool fullscreen,
                                           std::chrono::milliseconds timeout);

  // Shows the frame that starts `offset` bytes into the memory of `fd`
  // (not consumed; the caller keeps the memory alive and unchanged in size
  // until the WaylandDisplay is destroyed: its destructor returns once the
  // compositor has taken the window down and stopped reading the memory) and returns once the
  // compositor has repainted with it (its frame callback), within `timeout`. wl_shm addresses a
  // pool with 32-bit signed sizes: offset + the frame's bytes must stay below 2 GiB, else the call
  // says so.
  [[nodiscard]] Result<void> show_shm(int fd, uint64_t offset, const Frame& frame,
                                      std::chrono::milliseconds timeout);

  // Answers the compositor (pings, configures) until `deadline`, or until
  // the compositor closes the window: then returns true.
  [[nodiscard]] Result<bool> wait_events(std::chrono::steady_clock::time_point deadline);

  struct State;  // wayland_display.cc's; opaque here

 private:
  explicit WaylandDisplay(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace examples

#endif  // EXAMPLES_COMMON_WAYLAND_DISPLAY_H_
