// A window on an X display that shows BGRX frames, by MIT-SHM or by plain
// PutImage, and reads pixels back (for screenshots and tests). xcb only.
//
//   auto x = examples::XDisplay::connect(nullptr);          // $DISPLAY
//   auto win = x->create_window(1920, 1080);                 // mapped, exposed
//   auto seg = x->attach_fd(dup(pool_fd));                   // MIT-SHM 1.2
//   x->put_shm(win, *seg, block_offset, frame);             // no copy
//   x->sync();                                               // server is done
//
// MIT-SHM is the zero-copy path: the X server maps the same memory (a SysV
// segment by shmid, or a file descriptor it receives) and reads the pixels
// from it at an offset. put_image is the copying path the baseline uses: the
// pixels travel through the X socket.
//
// Threading: one thread uses an XDisplay at a time (xcb itself is
// thread-safe, but the event handling here is not).
#ifndef EXAMPLES_COMMON_X_DISPLAY_H_
#define EXAMPLES_COMMON_X_DISPLAY_H_

#include <xcb/shm.h>
#include <xcb/xcb.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "common/frame.h"

namespace examples {

class XDisplay {
 public:
  // Connects to `name` (nullptr: $DISPLAY) and checks that the default
  // screen takes our BGRX pixels as they are: depth 24, 32 bits per pixel,
  // least significant byte first. Says which of these it lacks.
  [[nodiscard]] static Result<std::unique_ptr<XDisplay>> connect(const char* name);
  ~XDisplay();
  XDisplay(const XDisplay&) = delete;
  XDisplay& operator=(const XDisplay&) = delete;

  [[nodiscard]] Size screen_size() const;
  [[nodiscard]] xcb_window_t root() const;

  // A window of `width` x `height` at the top-left corner of the screen,
  // override-redirect (no window manager moves or decorates it), mapped;
  // returns after the server has exposed it, so drawing is visible.
  [[nodiscard]] Result<xcb_window_t> create_window(uint32_t width, uint32_t height);

  // MIT-SHM. attach_sysv attaches a SysV segment by id; attach_fd hands the
  // server `fd` (it takes ownership and closes it), which it maps whole.
  // Both need MIT-SHM (1.2 for fds) and fail with a message if it is absent.
  [[nodiscard]] Result<xcb_shm_seg_t> attach_sysv(int32_t shmid);
  [[nodiscard]] Result<xcb_shm_seg_t> attach_fd(int fd);
  void detach(xcb_shm_seg_t seg);
  // Draws the frame that starts `offset` bytes into the attached segment.
  // The offset is 32-bit in the protocol; larger ones are refused.
  [[nodiscard]] Result<void> put_shm(xcb_window_t window, xcb_shm_seg_t seg, uint64_t offset,
                                     const Frame& frame);

  // Copies the pixels to the server in PutImage requests, in bands of rows
  // that fit the server's maximum request length.
  [[nodiscard]] Result<void> put_image(xcb_window_t window, const uint8_t* pixels,
                                       const Frame& frame);

  // Round trip: returns once the server has processed every request sent
  // before, and reports the first X error among them.
  [[nodiscard]] Result<void> sync();

  // Reads `width` x `height` pixels at (x, y) of `drawable` as BGRX, with
  // stride width * 4.
  [[nodiscard]] Result<std::vector<uint8_t>> get_image(xcb_drawable_t drawable, int16_t x,
                                                       int16_t y, uint32_t width, uint32_t height);

  // Handles events until `deadline`; calls `on_expose` (returning
  // Result<void>) when part of a window needs redrawing. Returns an error if
  // the connection to the server broke.
  template <typename F>
  [[nodiscard]] Result<void> wait_events(std::chrono::steady_clock::time_point deadline,
                                         F&& on_expose);

  [[nodiscard]] xcb_connection_t* connection() const { return conn_; }

 private:
  XDisplay(xcb_connection_t* conn, xcb_screen_t* screen) : conn_(conn), screen_(screen) {}
  [[nodiscard]] Result<void> check_shm(bool need_fd);
  // The next event, or nullptr once `deadline` has passed without one.
  [[nodiscard]] Result<xcb_generic_event_t*> next_event(
      std::chrono::steady_clock::time_point deadline);

  xcb_connection_t* conn_;
  xcb_screen_t* screen_;
  int shm_version_ = -1;  // MIT-SHM minor version (major is 1); -1 not asked yet
  xcb_gcontext_t gc_ = 0;
  // Requests sent checked whose errors sync() collects.
  std::vector<xcb_void_cookie_t> pending_;
};

template <typename F>
Result<void> XDisplay::wait_events(std::chrono::steady_clock::time_point deadline, F&& on_expose) {
  for (;;) {
    auto event = next_event(deadline);
    if (!event) return std::unexpected(event.error());
    if (*event == nullptr) return {};
    const uint8_t type = (*event)->response_type & 0x7f;
    std::free(*event);
    if (type == XCB_EXPOSE) {
      auto redrawn = on_expose();
      if (!redrawn) return redrawn;
    }
  }
}

// Writes BGRX pixels to `path` as an 8-bit RGB PNG (libpng).
[[nodiscard]] Result<void> write_png(const char* path, const uint8_t* bgrx, uint32_t width,
                                     uint32_t height, uint32_t stride);

}  // namespace examples

#endif  // EXAMPLES_COMMON_X_DISPLAY_H_
