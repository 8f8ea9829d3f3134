// Frame captures from the X server; see capture.h.
#include "stream/capture.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>

namespace examples {

Result<void> Captures::parse(const std::string& list, const std::string& dir) {
  std::string_view rest = list;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    uint64_t seq = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), seq);
    if (item.empty() || ec != std::errc{} || ptr != item.data() + item.size()) {
      return std::unexpected(
          fmt::format("--capture '{}': '{}' is not a frame number (e.g. 0,59,119)", list, item));
    }
    seqs_.insert(seq);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  if (!seqs_.empty() && dir.empty()) {
    return std::unexpected(std::string("--capture needs --capture-dir"));
  }
  dir_ = dir;
  return {};
}

Result<void> Captures::save(XDisplay& x, xcb_window_t window, const Frame& frame,
                            uint64_t seq) const {
  auto pixels = x.get_image(window, 0, 0, frame.width, frame.height);
  if (!pixels) return std::unexpected(fmt::format("capturing frame {}: {}", seq, pixels.error()));
  const std::string path = fmt::format("{}/frame-{:06}.bgrx", dir_, seq);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return std::unexpected(fmt::format("cannot create {}", path));
  const bool written = std::fwrite(pixels->data(), 1, pixels->size(), f) == pixels->size();
  if (std::fclose(f) != 0 || !written) return std::unexpected(fmt::format("cannot write {}", path));
  return {};
}

}  // namespace examples
