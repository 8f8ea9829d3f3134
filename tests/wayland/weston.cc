// Weston: a private headless compositor per test; see weston.h.
#include "weston.h"

#include <png.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace tests {

namespace {

using namespace std::chrono_literals;

// No fade-in at start, no zoom when a window maps, no panel: the first
// repaint with a window already shows it as it is.
constexpr const char* kConfig =
    "[shell]\n"
    "startup-animation=none\n"
    "animation=none\n"
    "close-animation=none\n"
    "focus-animation=none\n"
    "panel-position=none\n";

bool accepts(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

Weston::Weston(uint32_t width, uint32_t height) {
  char tmpl[] = "/tmp/pmm-weston-XXXXXX";  // mkdtemp: mode 0700, as Weston wants
  if (::mkdtemp(tmpl) == nullptr) {
    error_ = std::string("mkdtemp: ") + std::strerror(errno);
    return;
  }
  dir_ = tmpl;
  std::ofstream(dir_ + "/weston.ini") << kConfig;
  server_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/weston", "--backend=headless-backend.so", "--use-pixman",
                               "--socket=" + socket_, "--width=" + std::to_string(width),
                               "--height=" + std::to_string(height), "--idle-time=0", "--debug",
                               "--config=" + dir_ + "/weston.ini", "--log=" + dir_ + "/weston.log"},
      ChildProcess::Env{{"XDG_RUNTIME_DIR", dir_}});
  // The socket file appears at bind(); connecting proves listen() too.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!accepts(dir_ + "/" + socket_)) {
    if (server_->wait(0ms)) {
      error_ =
          "weston exited at start (is weston installed? scripts/install-deps). Its log:\n" + log();
      return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      error_ = "weston did not accept connections within 20 s. Its log:\n" + log();
      return;
    }
    std::this_thread::sleep_for(20ms);
  }
}

Weston::~Weston() {
  server_.reset();  // SIGTERM: Weston removes its socket and lock file
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

pid_t Weston::pid() const { return server_ ? server_->pid() : -1; }

ChildProcess::Env Weston::env() const {
  return {{"XDG_RUNTIME_DIR", dir_}, {"WAYLAND_DISPLAY", socket_}};
}

std::string Weston::log() const {
  std::ifstream in(dir_ + "/weston.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::expected<Screenshot, std::string> Weston::screenshot() {
  // weston-screenshooter writes wayland-screenshot-<time>.png into its
  // working directory: one fresh directory per shot.
  const std::string shots = dir_ + "/shot-" + std::to_string(++shots_);
  std::filesystem::create_directory(shots);
  auto [status, out] =
      run_to_end({"/bin/sh", "-c", "cd '" + shots + "' && exec /usr/bin/weston-screenshooter"},
                 env(), "", 30s, /*merge_stderr=*/true);
  std::string png;
  for (const auto& entry : std::filesystem::directory_iterator(shots)) png = entry.path();
  if (status != 0 || png.empty()) {
    return std::unexpected("weston-screenshooter failed (status " + std::to_string(status) +
                           "): " + out + "\nweston's log:\n" + log());
  }
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, png.c_str())) {
    return std::unexpected("cannot read " + png + ": " + image.message);
  }
  image.format = PNG_FORMAT_BGRA;
  Screenshot shot{image.width, image.height, std::vector<uint8_t>(PNG_IMAGE_SIZE(image))};
  if (!png_image_finish_read(&image, nullptr, shot.bgra.data(), 0, nullptr)) {
    return std::unexpected("cannot decode " + png + ": " + image.message);
  }
  std::filesystem::remove_all(shots);
  return shot;
}

}  // namespace tests
