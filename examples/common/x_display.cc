// XDisplay: xcb and MIT-SHM behind x_display.h, and PNG output.
#include "common/x_display.h"

#include <fmt/format.h>
#include <png.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>

namespace examples {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint8_t kDepth = 24;

std::string x_error_text(const xcb_generic_error_t& err) {
  return fmt::format("X error {} (request {}.{}, resource 0x{:x})", err.error_code, err.major_code,
                     err.minor_code, err.resource_id);
}

// Rows per request so that one request of `row_bytes`-long rows stays under
// the server's maximum request length (in bytes), leaving room for the
// header. At least one row: a 3840-pixel row is 15 KiB, far below any limit.
uint32_t rows_per_band(xcb_connection_t* conn, uint32_t row_bytes) {
  const uint64_t max_bytes = uint64_t{xcb_get_maximum_request_length(conn)} * 4;
  const uint64_t budget = std::min<uint64_t>(max_bytes - 64, 4u << 20);
  return static_cast<uint32_t>(std::max<uint64_t>(1, budget / row_bytes));
}

}  // namespace

Result<std::unique_ptr<XDisplay>> XDisplay::connect(const char* name) {
  int screen_number = 0;
  xcb_connection_t* conn = xcb_connect(name, &screen_number);
  if (int err = xcb_connection_has_error(conn); err != 0) {
    xcb_disconnect(conn);
    const char* shown = name != nullptr ? name : std::getenv("DISPLAY");
    return std::unexpected(
        fmt::format("cannot connect to X display '{}' (xcb error {}): is an X server running "
                    "there? (set DISPLAY, or start Xvfb)",
                    shown != nullptr ? shown : "", err));
  }
  const xcb_setup_t* setup = xcb_get_setup(conn);
  xcb_screen_iterator_t it = xcb_setup_roots_iterator(setup);
  for (int i = 0; i < screen_number && it.rem > 0; ++i) xcb_screen_next(&it);
  xcb_screen_t* screen = it.data;
  auto display = std::unique_ptr<XDisplay>(new XDisplay(conn, screen));

  uint8_t bpp = 0;
  for (auto f = xcb_setup_pixmap_formats_iterator(setup); f.rem > 0; xcb_format_next(&f)) {
    if (f.data->depth == kDepth) bpp = f.data->bits_per_pixel;
  }
  if (screen == nullptr || screen->root_depth != kDepth || bpp != 32 ||
      setup->image_byte_order != XCB_IMAGE_ORDER_LSB_FIRST) {
    return std::unexpected(fmt::format(
        "the X screen takes depth {} at {} bits per pixel, {} byte first; the pipeline shows "
        "BGRX and needs depth 24, 32 bits per pixel, LSB first (Xvfb -screen 0 WxHx24)",
        screen != nullptr ? screen->root_depth : 0, bpp,
        setup->image_byte_order == XCB_IMAGE_ORDER_LSB_FIRST ? "least significant"
                                                             : "most "
                                                               "significant"));
  }
  display->gc_ = xcb_generate_id(conn);
  const uint32_t gc_values[] = {0};  // graphics_exposures off: no NoExpose events
  xcb_create_gc(conn, display->gc_, screen->root, XCB_GC_GRAPHICS_EXPOSURES, gc_values);
  return display;
}

XDisplay::~XDisplay() { xcb_disconnect(conn_); }

Size XDisplay::screen_size() const { return {screen_->width_in_pixels, screen_->height_in_pixels}; }

xcb_window_t XDisplay::root() const { return screen_->root; }

Result<xcb_window_t> XDisplay::create_window(uint32_t width, uint32_t height) {
  const xcb_window_t window = xcb_generate_id(conn_);
  // Value order follows the CW bit order: BACK_PIXEL, OVERRIDE_REDIRECT, EVENT_MASK.
  const uint32_t values[] = {screen_->black_pixel, 1,
                             XCB_EVENT_MASK_EXPOSURE | XCB_EVENT_MASK_STRUCTURE_NOTIFY};
  pending_.push_back(xcb_create_window_checked(
      conn_, kDepth, window, screen_->root, 0, 0, static_cast<uint16_t>(width),
      static_cast<uint16_t>(height), 0, XCB_WINDOW_CLASS_INPUT_OUTPUT, screen_->root_visual,
      XCB_CW_BACK_PIXEL | XCB_CW_OVERRIDE_REDIRECT | XCB_CW_EVENT_MASK, values));
  pending_.push_back(xcb_map_window_checked(conn_, window));
  if (auto ok = sync(); !ok) return std::unexpected("creating the window: " + ok.error());
  // Drawing before the first Expose may land before the window is viewable.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto event = next_event(deadline);
    if (!event) return std::unexpected(event.error());
    if (*event == nullptr) {
      return std::unexpected(std::string("the X server did not expose the window in 10 s"));
    }
    const uint8_t type = (*event)->response_type & 0x7f;
    std::free(*event);
    if (type == XCB_EXPOSE) return window;
  }
}

Result<void> XDisplay::check_shm(bool need_fd) {
  if (shm_version_ < 0) {
    const xcb_query_extension_reply_t* ext = xcb_get_extension_data(conn_, &xcb_shm_id);
    if (ext == nullptr || !ext->present) {
      return std::unexpected(std::string(
          "the X server has no MIT-SHM extension (start Xvfb with +extension MIT-SHM)"));
    }
    xcb_shm_query_version_reply_t* reply =
        xcb_shm_query_version_reply(conn_, xcb_shm_query_version(conn_), nullptr);
    if (reply == nullptr) return std::unexpected(std::string("MIT-SHM QueryVersion failed"));
    shm_version_ = reply->major_version > 1 ? 99 : reply->minor_version;
    std::free(reply);
  }
  if (need_fd && shm_version_ < 2) {
    return std::unexpected(fmt::format(
        "the X server speaks MIT-SHM 1.{}; attaching a file descriptor needs 1.2 (use a "
        "sysv pool instead)",
        shm_version_));
  }
  return {};
}

Result<xcb_shm_seg_t> XDisplay::attach_sysv(int32_t shmid) {
  if (auto ok = check_shm(false); !ok) return std::unexpected(ok.error());
  const xcb_shm_seg_t seg = xcb_generate_id(conn_);
  xcb_void_cookie_t cookie =
      xcb_shm_attach_checked(conn_, seg, static_cast<uint32_t>(shmid), /*read_only=*/1);
  if (xcb_generic_error_t* err = xcb_request_check(conn_, cookie)) {
    std::string text = x_error_text(*err);
    std::free(err);
    return std::unexpected(fmt::format(
        "the X server could not attach SysV segment {}: {} (is the server on this machine, "
        "and may it read the segment?)",
        shmid, text));
  }
  return seg;
}

Result<xcb_shm_seg_t> XDisplay::attach_fd(int fd) {
  if (auto ok = check_shm(true); !ok) {
    ::close(fd);
    return std::unexpected(ok.error());
  }
  const xcb_shm_seg_t seg = xcb_generate_id(conn_);
  // xcb sends the fd with the request and closes our copy.
  xcb_void_cookie_t cookie = xcb_shm_attach_fd_checked(conn_, seg, fd, /*read_only=*/1);
  if (xcb_generic_error_t* err = xcb_request_check(conn_, cookie)) {
    std::string text = x_error_text(*err);
    std::free(err);
    return std::unexpected(
        fmt::format("the X server could not map the pool's file descriptor: {}", text));
  }
  return seg;
}

void XDisplay::detach(xcb_shm_seg_t seg) {
  xcb_shm_detach(conn_, seg);
  xcb_flush(conn_);
}

Result<void> XDisplay::put_shm(xcb_window_t window, xcb_shm_seg_t seg, uint64_t offset,
                               const Frame& frame) {
  if (offset > UINT32_MAX) {
    return std::unexpected(fmt::format(
        "the block lies {} bytes into its segment; MIT-SHM offsets stop at 4 GiB", offset));
  }
  // total_width is the source's row length in pixels, so a padded stride
  // is expressed as a wider source image of which we draw `width` columns.
  pending_.push_back(xcb_shm_put_image_checked(
      conn_, window, gc_, static_cast<uint16_t>(frame.stride / kBytesPerPixel),
      static_cast<uint16_t>(frame.height), 0, 0, static_cast<uint16_t>(frame.width),
      static_cast<uint16_t>(frame.height), 0, 0, kDepth, XCB_IMAGE_FORMAT_Z_PIXMAP,
      /*send_event=*/0, seg, static_cast<uint32_t>(offset)));
  return {};
}

Result<void> XDisplay::put_image(xcb_window_t window, const uint8_t* pixels, const Frame& frame) {
  const uint32_t row_bytes = frame.width * kBytesPerPixel;
  const uint32_t band = rows_per_band(conn_, row_bytes);
  std::vector<uint8_t> packed;  // only when rows carry padding
  for (uint32_t y = 0; y < frame.height; y += band) {
    const uint32_t rows = std::min(band, frame.height - y);
    const uint8_t* data = pixels + size_t{y} * frame.stride;
    if (frame.stride != row_bytes) {
      packed.resize(size_t{rows} * row_bytes);
      for (uint32_t r = 0; r < rows; ++r) {
        std::memcpy(packed.data() + size_t{r} * row_bytes, data + size_t{r} * frame.stride,
                    row_bytes);
      }
      data = packed.data();
    }
    pending_.push_back(
        xcb_put_image_checked(conn_, XCB_IMAGE_FORMAT_Z_PIXMAP, window, gc_,
                              static_cast<uint16_t>(frame.width), static_cast<uint16_t>(rows), 0,
                              static_cast<int16_t>(y), 0, kDepth, rows * row_bytes, data));
  }
  return {};
}

Result<void> XDisplay::sync() {
  std::string first_error;
  for (xcb_void_cookie_t cookie : pending_) {
    if (xcb_generic_error_t* err = xcb_request_check(conn_, cookie)) {
      if (first_error.empty()) first_error = x_error_text(*err);
      std::free(err);
    }
  }
  pending_.clear();
  xcb_get_input_focus_reply_t* reply =
      xcb_get_input_focus_reply(conn_, xcb_get_input_focus(conn_), nullptr);
  std::free(reply);
  if (xcb_connection_has_error(conn_) != 0) {
    return std::unexpected(std::string("the connection to the X server broke"));
  }
  if (!first_error.empty()) return std::unexpected(first_error);
  return {};
}

Result<std::vector<uint8_t>> XDisplay::get_image(xcb_drawable_t drawable, int16_t x, int16_t y,
                                                 uint32_t width, uint32_t height) {
  const uint32_t row_bytes = width * kBytesPerPixel;
  std::vector<uint8_t> pixels(size_t{row_bytes} * height);
  const uint32_t band = rows_per_band(conn_, row_bytes);
  for (uint32_t row = 0; row < height; row += band) {
    const uint32_t rows = std::min(band, height - row);
    xcb_generic_error_t* err = nullptr;
    xcb_get_image_reply_t* reply = xcb_get_image_reply(
        conn_,
        xcb_get_image(conn_, XCB_IMAGE_FORMAT_Z_PIXMAP, drawable, x,
                      static_cast<int16_t>(y + static_cast<int32_t>(row)),
                      static_cast<uint16_t>(width), static_cast<uint16_t>(rows), ~0u),
        &err);
    if (reply == nullptr) {
      std::string text = err != nullptr ? x_error_text(*err) : "no reply";
      std::free(err);
      return std::unexpected(fmt::format("GetImage of {}x{} at ({}, {}) failed: {}", width, rows, x,
                                         y + static_cast<int32_t>(row), text));
    }
    const auto length = static_cast<size_t>(xcb_get_image_data_length(reply));
    if (length != size_t{rows} * row_bytes) {
      std::free(reply);
      return std::unexpected(
          fmt::format("GetImage returned {} bytes, expected {}", length, rows * row_bytes));
    }
    std::memcpy(pixels.data() + size_t{row} * row_bytes, xcb_get_image_data(reply), length);
    std::free(reply);
  }
  return pixels;
}

Result<xcb_generic_event_t*> XDisplay::next_event(Clock::time_point deadline) {
  for (;;) {
    if (xcb_generic_event_t* event = xcb_poll_for_event(conn_)) return event;
    if (xcb_connection_has_error(conn_) != 0) {
      return std::unexpected(std::string("the connection to the X server broke"));
    }
    const auto now = Clock::now();
    if (now >= deadline) return nullptr;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    pollfd pfd{xcb_get_file_descriptor(conn_), POLLIN, 0};
    const int timeout =
        static_cast<int>(std::min<std::chrono::milliseconds::rep>(left.count() + 1, 1000));
    ::poll(&pfd, 1, timeout);
  }
}

Result<void> write_png(const char* path, const uint8_t* bgrx, uint32_t width, uint32_t height,
                       uint32_t stride) {
  std::FILE* f = std::fopen(path, "wb");
  if (f == nullptr) {
    return std::unexpected(fmt::format("cannot create '{}': {}", path, std::strerror(errno)));
  }
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  if (png == nullptr || info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    return std::unexpected(fmt::format("libpng failed writing '{}'", path));
  }
  png_init_io(png, f);
  png_set_compression_level(png, 3);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_set_bgr(png);                          // our bytes are B, G, R ...
  png_set_filler(png, 0, PNG_FILLER_AFTER);  // ... and X, which PNG drops
  for (uint32_t y = 0; y < height; ++y) {
    png_write_row(png, bgrx + size_t{y} * stride);
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  const bool failed = std::fclose(f) != 0;
  if (failed) return std::unexpected(fmt::format("cannot write '{}'", path));
  return {};
}

}  // namespace examples
