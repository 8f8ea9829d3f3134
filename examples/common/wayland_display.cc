// WaylandDisplay: wayland-client with bounded waits. Events are dispatched
// from one loop (dispatch_until) that polls the display's fd with a
// deadline; listeners only record what arrived, and the callers check it.
#include "common/wayland_display.h"

#include <fmt/format.h>
#include <poll.h>
#include <wayland-client.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "xdg-shell-client-protocol.h"

namespace examples {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

struct WaylandDisplay::State {
  std::string name;
  wl_display* display = nullptr;
  wl_registry* registry = nullptr;
  wl_compositor* compositor = nullptr;
  wl_shm* shm = nullptr;
  xdg_wm_base* wm_base = nullptr;
  bool has_xrgb8888 = false;

  wl_surface* surface = nullptr;
  xdg_surface* xsurface = nullptr;
  xdg_toplevel* toplevel = nullptr;
  wl_buffer* buffer = nullptr;
  wl_callback* frame_done = nullptr;
  bool configured = false;
  bool repainted = false;
  bool closed = false;

  ~State() {
    if (frame_done) wl_callback_destroy(frame_done);
    if (toplevel) xdg_toplevel_destroy(toplevel);
    if (xsurface) xdg_surface_destroy(xsurface);
    if (surface) wl_surface_destroy(surface);
    if (buffer) {
      wl_buffer_destroy(buffer);
      // Once the compositor has handled the destroys it no longer reads the
      // memory, so the caller may give it back (a bounded wait: a stuck
      // compositor only delays this).
      (void)sync(std::chrono::seconds(2), "take the window down");
    }
    if (wm_base) xdg_wm_base_destroy(wm_base);
    if (shm) wl_shm_destroy(shm);
    if (compositor) wl_compositor_destroy(compositor);
    if (registry) wl_registry_destroy(registry);
    if (display) wl_display_disconnect(display);
  }

  // What went wrong on the connection: the compositor's protocol error
  // (interface, code), or the errno that broke it.
  [[nodiscard]] std::string connection_error() const {
    const int err = wl_display_get_error(display);
    if (err == EPROTO) {
      const wl_interface* iface = nullptr;
      uint32_t id = 0;
      const uint32_t code = wl_display_get_protocol_error(display, &iface, &id);
      return fmt::format("the compositor raised protocol error {} on {}@{} (its log says why)",
                         code, iface ? iface->name : "?", id);
    }
    return fmt::format("the connection to the compositor {} broke: {}", name, std::strerror(err));
  }

  // Dispatches events until `done()` holds (true) or `deadline` passes
  // (false); an error only when the connection fails.
  [[nodiscard]] Result<bool> dispatch_until(const std::function<bool()>& done,
                                            Clock::time_point deadline) {
    for (;;) {
      if (wl_display_dispatch_pending(display) < 0) return std::unexpected(connection_error());
      if (done()) return true;
      while (wl_display_prepare_read(display) != 0) {
        if (wl_display_dispatch_pending(display) < 0) return std::unexpected(connection_error());
      }
      pollfd p{.fd = wl_display_get_fd(display), .events = POLLIN, .revents = 0};
      // Requests not yet sent go first; a full socket waits for POLLOUT.
      if (wl_display_flush(display) < 0) {
        if (errno != EAGAIN) {
          wl_display_cancel_read(display);
          return std::unexpected(connection_error());
        }
        p.events |= POLLOUT;
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        wl_display_cancel_read(display);
        return false;
      }
      const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
      if (n < 0 && errno != EINTR) {
        wl_display_cancel_read(display);
        return std::unexpected(fmt::format("poll on the Wayland socket: {}", std::strerror(errno)));
      }
      if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        if (wl_display_read_events(display) < 0) return std::unexpected(connection_error());
      } else {
        wl_display_cancel_read(display);
      }
    }
  }

  // dispatch_until, where running out of time is a failure: "the compositor
  // NAME did not WHAT within N ms".
  [[nodiscard]] Result<void> await(const std::function<bool()>& done,
                                   std::chrono::milliseconds timeout, const char* what) {
    auto ok = dispatch_until(done, Clock::now() + timeout);
    if (!ok) return std::unexpected(ok.error());
    if (!*ok) {
      return std::unexpected(
          fmt::format("the compositor {} did not {} within {} ms", name, what, timeout.count()));
    }
    return {};
  }

  // A roundtrip with a deadline: everything sent so far has been handled.
  [[nodiscard]] Result<void> sync(std::chrono::milliseconds timeout, const char* what) {
    bool done = false;
    static const wl_callback_listener kListener{.done = [](void* data, wl_callback* cb, uint32_t) {
      *static_cast<bool*>(data) = true;
      wl_callback_destroy(cb);
    }};
    wl_callback* cb = wl_display_sync(display);
    wl_callback_add_listener(cb, &kListener, &done);
    auto ok = await([&] { return done; }, timeout, what);
    // On failure the callback may still come: it must not write `done`.
    if (!ok && !done) wl_callback_destroy(cb);
    return ok;
  }
};

namespace {

using State = WaylandDisplay::State;

const wl_shm_listener kShmListener{.format = [](void* data, wl_shm*, uint32_t format) {
  if (format == WL_SHM_FORMAT_XRGB8888) static_cast<State*>(data)->has_xrgb8888 = true;
}};

const xdg_wm_base_listener kWmBaseListener{
    .ping = [](void*, xdg_wm_base* base, uint32_t serial) { xdg_wm_base_pong(base, serial); }};

const wl_registry_listener kRegistryListener{
    .global =
        [](void* data, wl_registry* registry, uint32_t id, const char* iface, uint32_t version) {
          auto* s = static_cast<State*>(data);
          const std::string_view name(iface);
          if (name == wl_compositor_interface.name && version >= 4 && !s->compositor) {
            s->compositor = static_cast<wl_compositor*>(
                wl_registry_bind(registry, id, &wl_compositor_interface, 4));
          } else if (name == wl_shm_interface.name && !s->shm) {
            s->shm = static_cast<wl_shm*>(wl_registry_bind(registry, id, &wl_shm_interface, 1));
            wl_shm_add_listener(s->shm, &kShmListener, s);
          } else if (name == xdg_wm_base_interface.name && !s->wm_base) {
            s->wm_base = static_cast<xdg_wm_base*>(
                wl_registry_bind(registry, id, &xdg_wm_base_interface, 1));
            xdg_wm_base_add_listener(s->wm_base, &kWmBaseListener, s);
          }
        },
    .global_remove = [](void*, wl_registry*, uint32_t) {}};

// A configure takes effect with the next commit: once a buffer is attached,
// the same buffer is committed again (the frame keeps its size).
const xdg_surface_listener kXdgSurfaceListener{
    .configure = [](void* data, xdg_surface* xs, uint32_t serial) {
      auto* s = static_cast<State*>(data);
      xdg_surface_ack_configure(xs, serial);
      if (s->configured && s->buffer) wl_surface_commit(s->surface);
      s->configured = true;
    }};

// The size the compositor suggests is not ours to follow: the window is
// the frame's size (a fullscreen or maximized shell centers or crops it).
const xdg_toplevel_listener kToplevelListener{
    .configure = [](void*, xdg_toplevel*, int32_t, int32_t, wl_array*) {},
    .close = [](void* data, xdg_toplevel*) { static_cast<State*>(data)->closed = true; },
    // Events of xdg_toplevel versions 4 and 5; we bind version 1.
    .configure_bounds = [](void*, xdg_toplevel*, int32_t, int32_t) {},
    .wm_capabilities = [](void*, xdg_toplevel*, wl_array*) {}};

const wl_callback_listener kFrameListener{.done = [](void* data, wl_callback* cb, uint32_t) {
  auto* s = static_cast<State*>(data);
  wl_callback_destroy(cb);
  s->frame_done = nullptr;
  s->repainted = true;
}};

constexpr auto kConnectWait = std::chrono::seconds(10);

}  // namespace

WaylandDisplay::WaylandDisplay(std::unique_ptr<State> state) : state_(std::move(state)) {}
WaylandDisplay::~WaylandDisplay() = default;

Result<std::unique_ptr<WaylandDisplay>> WaylandDisplay::connect(const char* name) {
  auto s = std::make_unique<State>();
  const char* env = std::getenv("WAYLAND_DISPLAY");
  s->name = name ? name : env ? env : "wayland-0";
  s->display = wl_display_connect(name);
  if (s->display == nullptr) {
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    return std::unexpected(fmt::format(
        "cannot connect to the Wayland compositor {} in {} ({}): is one running there? "
        "(weston --backend=headless-backend.so for one without a screen; --display NAME or "
        "$WAYLAND_DISPLAY name its socket)",
        s->name, runtime ? runtime : "$XDG_RUNTIME_DIR, which is not set", std::strerror(errno)));
  }
  s->registry = wl_display_get_registry(s->display);
  wl_registry_add_listener(s->registry, &kRegistryListener, s.get());
  // Two roundtrips: the globals, then the events of what was bound (formats).
  if (auto ok = s->sync(kConnectWait, "list its globals"); !ok) return std::unexpected(ok.error());
  if (auto ok = s->sync(kConnectWait, "list its wl_shm formats"); !ok) {
    return std::unexpected(ok.error());
  }
  std::string missing;
  if (!s->compositor) missing += " wl_compositor (version 4 or later)";
  if (!s->shm) missing += " wl_shm";
  if (!s->wm_base) missing += " xdg_wm_base (xdg-shell)";
  if (!missing.empty()) {
    return std::unexpected(fmt::format(
        "the compositor {} does not offer{}; Weston's desktop shell does", s->name, missing));
  }
  if (!s->has_xrgb8888) {
    return std::unexpected(fmt::format(
        "the compositor {} does not take XRGB8888 shared memory buffers (BGRX)", s->name));
  }
  return std::unique_ptr<WaylandDisplay>(new WaylandDisplay(std::move(s)));
}

Result<void> WaylandDisplay::create_window(const char* title, bool fullscreen,
                                           std::chrono::milliseconds timeout) {
  State& s = *state_;
  if (s.surface) return std::unexpected(std::string("this display already has its window"));
  s.surface = wl_compositor_create_surface(s.compositor);
  s.xsurface = xdg_wm_base_get_xdg_surface(s.wm_base, s.surface);
  xdg_surface_add_listener(s.xsurface, &kXdgSurfaceListener, &s);
  s.toplevel = xdg_surface_get_toplevel(s.xsurface);
  xdg_toplevel_add_listener(s.toplevel, &kToplevelListener, &s);
  xdg_toplevel_set_title(s.toplevel, title);
  xdg_toplevel_set_app_id(s.toplevel, "pmm-show");
  if (fullscreen) xdg_toplevel_set_fullscreen(s.toplevel, nullptr);  // the shell picks the output
  wl_surface_commit(s.surface);  // no buffer: asks for the first configure
  return s.await([&] { return s.configured; }, timeout, "configure the window");
}

Result<void> WaylandDisplay::show_shm(int fd, uint64_t offset, const Frame& frame,
                                      std::chrono::milliseconds timeout) {
  State& s = *state_;
  if (!s.configured) return std::unexpected(std::string("create_window first"));
  const uint64_t end = offset + frame.bytes();
  if (end > INT32_MAX) {
    return std::unexpected(fmt::format(
        "the frame ends {} bytes into its memory; wl_shm addresses only the first 2 GiB of a "
        "pool (32-bit sizes): show it from a pool of at most 2 GiB",
        end));
  }
  // The compositor maps [0, end) of the fd: libwayland sends it a dup.
  wl_shm_pool* pool = wl_shm_create_pool(s.shm, fd, static_cast<int32_t>(end));
  wl_buffer* buffer = wl_shm_pool_create_buffer(
      pool, static_cast<int32_t>(offset), static_cast<int32_t>(frame.width),
      static_cast<int32_t>(frame.height), static_cast<int32_t>(frame.stride),
      WL_SHM_FORMAT_XRGB8888);
  wl_shm_pool_destroy(pool);  // the buffer keeps the compositor's mapping

  wl_surface_attach(s.surface, buffer, 0, 0);
  wl_surface_damage_buffer(s.surface, 0, 0, INT32_MAX, INT32_MAX);
  s.repainted = false;
  if (s.frame_done) wl_callback_destroy(s.frame_done);  // a previous frame's
  s.frame_done = wl_surface_frame(s.surface);
  wl_callback_add_listener(s.frame_done, &kFrameListener, &s);
  wl_surface_commit(s.surface);
  if (s.buffer) wl_buffer_destroy(s.buffer);  // replaced by the commit above
  s.buffer = buffer;
  if (auto ok = s.await([&] { return s.repainted || s.closed; }, timeout, "repaint with the frame");
      !ok) {
    return ok;
  }
  if (!s.repainted) return std::unexpected(std::string("the compositor closed the window"));
  return {};
}

Result<bool> WaylandDisplay::wait_events(Clock::time_point deadline) {
  State& s = *state_;
  auto closed = s.dispatch_until([&] { return s.closed; }, deadline);
  if (!closed) return std::unexpected(closed.error());
  return *closed;
}

}  // namespace examples
