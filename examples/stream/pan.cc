// The panned test-card sequence; see pan.h.
#include "stream/pan.h"

#include <fmt/format.h>

#include <charconv>
#include <cstring>

#include "common/jpeg.h"

namespace examples {

Result<void> PanSource::open(const std::string& path, PanStep step) {
  auto jpeg = read_file(path);
  if (!jpeg) return std::unexpected(jpeg.error());
  JpegDecoder decoder;
  auto size = decoder.open(*jpeg);
  if (!size) return std::unexpected(fmt::format("{}: {}", path, size.error()));
  if (step.dx >= size->width || step.dy >= size->height) {
    return std::unexpected(fmt::format("pan {}x{} per frame must be below the image's {}x{}",
                                       step.dx, step.dy, size->width, size->height));
  }
  frame_.width = size->width;
  frame_.height = size->height;
  frame_.stride = stride_for_width(size->width);
  card_.resize(frame_.bytes());
  if (auto ok = decoder.decode_into(card_.data(), frame_.stride); !ok) {
    return std::unexpected(fmt::format("{}: {}", path, ok.error()));
  }
  step_ = step;
  return {};
}

void PanSource::render(uint64_t k, uint8_t* dst, uint32_t stride) const {
  const uint32_t w = frame_.width, h = frame_.height;
  const auto x0 = static_cast<uint32_t>((k * step_.dx) % w);
  const auto y0 = static_cast<uint32_t>((k * step_.dy) % h);
  const size_t right = size_t{w - x0} * kBytesPerPixel, left = size_t{x0} * kBytesPerPixel;
  for (uint32_t y = 0; y < h; ++y) {
    const uint8_t* src = card_.data() + size_t{(y + y0) % h} * frame_.stride;
    uint8_t* row = dst + size_t{y} * stride;
    std::memcpy(row, src + left, right);
    std::memcpy(row + right, src, left);
  }
}

Result<void> PanSource::encode_sequence(uint32_t count) {
  if (count < 1 || count > 64) {
    return std::unexpected(fmt::format("--jpeg {}: 1 to 64 frames are encoded", count));
  }
  std::vector<uint8_t> frame(frame_.bytes());
  for (uint32_t k = 0; k < count; ++k) {
    render(k, frame.data(), frame_.stride);
    auto jpeg = encode_jpeg(frame.data(), frame_.width, frame_.height, frame_.stride, 90);
    if (!jpeg) return std::unexpected(jpeg.error());
    jpegs_.push_back(std::move(*jpeg));
  }
  return {};
}

Result<void> PanSource::make(uint64_t k, uint8_t* dst, uint32_t stride) const {
  if (jpegs_.empty()) {
    render(k, dst, stride);
    return {};
  }
  JpegDecoder decoder;
  if (auto size = decoder.open(jpegs_[k % jpegs_.size()]); !size) {
    return std::unexpected(size.error());
  }
  return decoder.decode_into(dst, stride);
}

Result<PanStep> parse_pan(std::string_view text) {
  const size_t x = text.find('x');
  PanStep step;
  auto number = [](std::string_view s, uint32_t& out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc{} && ptr == s.data() + s.size();
  };
  if (x == std::string_view::npos || !number(text.substr(0, x), step.dx) ||
      !number(text.substr(x + 1), step.dy)) {
    return std::unexpected(
        fmt::format("pan '{}' is not DXxDY, pixels per frame (e.g. 16x8)", text));
  }
  return step;
}

}  // namespace examples
