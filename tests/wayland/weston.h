// A private headless Weston for one test: Debian's weston 10 with the
// headless backend and the pixman renderer (no GPU, no seat, no tty), the
// desktop shell without animations or panel, in a runtime directory of its
// own (XDG_RUNTIME_DIR need not exist for the test), killed when the object
// goes. Screenshots come from weston-screenshooter, which Weston serves only
// with --debug (the weston_screenshooter protocol is otherwise reserved for
// clients Weston starts itself).
//
//   tests::Weston weston(1280, 720);
//   ASSERT_TRUE(weston.ok()) << weston.error();
//   ChildProcess show({"pmm-show-wayland", ...}, weston.env());
//   auto shot = weston.screenshot();               // BGRA, 1280x720
//   ASSERT_TRUE(shot) << shot.error();
//
// One thread uses a Weston.
#ifndef TESTS_WAYLAND_WESTON_H_
#define TESTS_WAYLAND_WESTON_H_

#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "child_process.h"

namespace tests {

struct Screenshot {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint8_t> bgra;  // width * height * 4, row by row
};

class Weston {
 public:
  // Starts Weston with one output of width x height and waits (up to 20 s)
  // until its socket accepts connections.
  Weston(uint32_t width, uint32_t height);
  ~Weston();
  Weston(const Weston&) = delete;
  Weston& operator=(const Weston&) = delete;

  [[nodiscard]] bool ok() const { return error_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] pid_t pid() const;
  // The socket's name inside runtime_dir(), for WAYLAND_DISPLAY / --display.
  [[nodiscard]] const std::string& socket() const { return socket_; }
  [[nodiscard]] const std::string& runtime_dir() const { return dir_; }
  // XDG_RUNTIME_DIR and WAYLAND_DISPLAY for a client of this Weston.
  [[nodiscard]] ChildProcess::Env env() const;
  // Weston's log so far (for failure messages).
  [[nodiscard]] std::string log() const;

  // What the output shows now, read back by weston-screenshooter.
  [[nodiscard]] std::expected<Screenshot, std::string> screenshot();

 private:
  std::string dir_;
  std::string socket_ = "wayland-pmm-test";
  std::unique_ptr<ChildProcess> server_;
  std::string error_;
  int shots_ = 0;
};

}  // namespace tests

#endif  // TESTS_WAYLAND_WESTON_H_
