// Xvfb: a private X server per test; see xvfb.h.
#include "xvfb.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <string>

namespace tests {

Xvfb::Xvfb(uint32_t width, uint32_t height) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    error_ = "pipe2 failed";
    return;
  }
  // Xvfb writes the display number it chose, then a newline, to this fd
  // once it accepts connections — the race-free way to wait for it.
  const std::string geometry = std::to_string(width) + "x" + std::to_string(height) + "x24";
  server_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/Xvfb", "-displayfd", std::to_string(fds[1]), "-screen",
                               "0", geometry, "+extension", "MIT-SHM", "-nolisten", "tcp",
                               "-noreset"},
      ChildProcess::Env{}, fds[1]);
  ::close(fds[1]);
  std::string number;
  for (int waited = 0; waited < 200; ++waited) {
    pollfd pfd{fds[0], POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    char c;
    const ssize_t n = ::read(fds[0], &c, 1);
    if (n <= 0 || c == '\n') break;
    number.push_back(c);
  }
  ::close(fds[0]);
  if (number.empty()) {
    error_ = "Xvfb did not report a display number within 20 s (is xvfb installed?)";
    return;
  }
  display_ = ":" + number;
}

}  // namespace tests
