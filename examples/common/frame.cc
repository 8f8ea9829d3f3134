// Frame lines: see frame.h for the format.
#include "common/frame.h"

#include <fmt/format.h>

#include <charconv>
#include <string>
#include <vector>

namespace examples {
namespace {

constexpr size_t kMaxLine = 4096;

Result<uint32_t> parse_u32(std::string_view key, std::string_view text) {
  uint32_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || text.empty()) {
    return std::unexpected(fmt::format("{}='{}' is not a decimal number below 2^32", key, text));
  }
  return value;
}

}  // namespace

uint32_t stride_for_width(uint32_t width) { return (width * kBytesPerPixel + 63u) & ~63u; }

Result<Size> parse_size(std::string_view text) {
  const size_t x = text.find('x');
  if (x == std::string_view::npos) {
    return std::unexpected(fmt::format("size '{}' is not WIDTHxHEIGHT (e.g. 1920x1080)", text));
  }
  auto w = parse_u32("width", text.substr(0, x));
  if (!w) return std::unexpected(fmt::format("size '{}': {}", text, w.error()));
  auto h = parse_u32("height", text.substr(x + 1));
  if (!h) return std::unexpected(fmt::format("size '{}': {}", text, h.error()));
  if (*w == 0 || *h == 0 || *w > kMaxDimension || *h > kMaxDimension ||
      uint64_t{*w} * *h > kMaxPixels) {
    return std::unexpected(
        fmt::format("size {}x{} is out of range: each side 1..{} and at most {} pixels (3840x2160)",
                    *w, *h, kMaxDimension, kMaxPixels));
  }
  return Size{*w, *h};
}

Result<Frame> validate_frame(Frame frame) {
  if (frame.width == 0 || frame.height == 0 || frame.width > kMaxDimension ||
      frame.height > kMaxDimension || uint64_t{frame.width} * frame.height > kMaxPixels) {
    return std::unexpected(
        fmt::format("frame {}x{} is out of range: each side 1..{}, at most 3840x2160 pixels",
                    frame.width, frame.height, kMaxDimension));
  }
  if (frame.stride % kBytesPerPixel != 0 || frame.stride < frame.width * kBytesPerPixel ||
      frame.stride > kMaxDimension * kBytesPerPixel * 2) {
    return std::unexpected(fmt::format(
        "stride {} does not fit width {}: it must be a multiple of 4 from {} to {}", frame.stride,
        frame.width, frame.width * kBytesPerPixel, kMaxDimension * kBytesPerPixel * 2));
  }
  if (frame.format != kFormatBgrx) {
    return std::unexpected(fmt::format("format '{}' is not supported; the pipeline speaks {}",
                                       frame.format, kFormatBgrx));
  }
  return frame;
}

std::string format_frame_line(std::string_view tag, const Frame& frame) {
  std::string line(tag);
  if (!frame.token.empty()) line += fmt::format(" token={}", frame.token);
  line += fmt::format(" width={} height={} stride={} format={}", frame.width, frame.height,
                      frame.stride, frame.format);
  return line;
}

Result<Frame> parse_frame_line(std::string_view line, std::string_view tag) {
  if (!line.starts_with(tag) || (line.size() > tag.size() && line[tag.size()] != ' ')) {
    return std::unexpected(fmt::format(
        "expected a line starting with '{}' (the output of the previous stage), got '{}'", tag,
        line.substr(0, 80)));
  }
  Frame frame;
  frame.format.clear();
  bool have_width = false, have_height = false, have_stride = false;
  std::string_view rest = line.substr(tag.size());
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = std::min(rest.find(' '), rest.size());
    const std::string_view field = rest.substr(0, end);
    rest.remove_prefix(end);
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) {
      return std::unexpected(fmt::format("field '{}' of the frame line is not key=value", field));
    }
    const std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
    if (key == "token") {
      frame.token = value;
    } else if (key == "format") {
      frame.format = value;
    } else if (key == "width" || key == "height" || key == "stride") {
      auto number = parse_u32(key, value);
      if (!number) return std::unexpected(number.error());
      if (key == "width") frame.width = *number, have_width = true;
      if (key == "height") frame.height = *number, have_height = true;
      if (key == "stride") frame.stride = *number, have_stride = true;
    }
  }
  if (!have_width || !have_height || !have_stride || frame.format.empty()) {
    return std::unexpected(fmt::format(
        "frame line '{}' lacks one of width=, height=, stride=, format=", line.substr(0, 120)));
  }
  return validate_frame(std::move(frame));
}

Result<std::string> read_line(std::FILE* stream) {
  std::string line;
  for (;;) {
    const int c = std::fgetc(stream);
    if (c == EOF) {
      if (line.empty()) {
        return std::unexpected(std::string(
            "no frame line on the input: the previous stage wrote nothing (did it fail?)"));
      }
      return line;
    }
    if (c == '\n') return line;
    if (line.size() >= kMaxLine) {
      return std::unexpected(fmt::format("input line is longer than {} bytes", kMaxLine));
    }
    line.push_back(static_cast<char>(c));
  }
}

}  // namespace examples
