// Frame descriptions that pass between the pipeline's stages as one text line.
//
// A stage of the pmm pipeline hands its output to the next stage as a block
// export token; the block holds raw pixels, so the geometry travels beside it
// on one line of text (stdout of the producer, stdin of the consumer):
//
//   pmm-frame token=0123...ef width=3840 height=2160 stride=15360 format=BGRX
//
// The copy-based baseline sends the same line with `copy-frame` in front and
// no token, followed by exactly stride*height bytes of pixels on the same
// stream. Keys may come in any order; unknown keys are ignored so that a
// later stage may add fields without breaking an older one.
//
//   auto frame = examples::parse_frame_line(line, "pmm-frame");
//   if (!frame) fmt::print(stderr, "{}\n", frame.error());
//
// Everything here is plain value code: safe from any thread.
#ifndef EXAMPLES_COMMON_FRAME_H_
#define EXAMPLES_COMMON_FRAME_H_

#include <cstdint>
#include <cstdio>
#include <expected>
#include <string>
#include <string_view>

namespace examples {

// Failures in the examples are messages for a person; the public pmm API
// reports through pmm_last_error(), which the stages copy into these.
template <typename T>
using Result = std::expected<T, std::string>;

// The largest frame the pipeline accepts: 4K UHD, both ways round.
inline constexpr uint32_t kMaxDimension = 3840;
inline constexpr uint32_t kMaxPixels = 3840u * 2160u;

// 32 bits per pixel, bytes B, G, R, X in memory: what an X server with a
// 24-bit TrueColor visual takes as ZPixmap on a little-endian machine, and
// what libyuv calls "ARGB". The only format the pipeline speaks.
inline constexpr std::string_view kFormatBgrx = "BGRX";
inline constexpr uint32_t kBytesPerPixel = 4;

struct Size {
  uint32_t width = 0;
  uint32_t height = 0;
};

struct Frame {
  std::string token;  // 32 hex digits; empty in the baseline
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t stride = 0;  // bytes from one row to the next, >= width * 4
  std::string format{kFormatBgrx};

  [[nodiscard]] uint64_t bytes() const { return uint64_t{stride} * height; }
};

// Row stride for a BGRX frame of `width` pixels: rounded up to 64 bytes so
// SIMD code (libjpeg-turbo, libyuv) works on aligned rows.
[[nodiscard]] uint32_t stride_for_width(uint32_t width);

// "1920x1080" -> {1920, 1080}; refuses 0, more than kMaxDimension a side or
// more than kMaxPixels in all, saying what it accepts.
[[nodiscard]] Result<Size> parse_size(std::string_view text);

// Checks a frame's geometry: sizes within the limits, stride a multiple of 4
// and wide enough, format BGRX.
[[nodiscard]] Result<Frame> validate_frame(Frame frame);

// Formats `frame` as one line (no newline) starting with `tag`.
[[nodiscard]] std::string format_frame_line(std::string_view tag, const Frame& frame);

// Parses a line made by format_frame_line with the same `tag`; validates it.
[[nodiscard]] Result<Frame> parse_frame_line(std::string_view line, std::string_view tag);

// Reads one line (up to '\n', which is consumed and not returned) from
// `stream`. Binary data after the line must be read from the same FILE*
// (stdio may have buffered some of it). Refuses lines over 4 KiB, and says
// the stream was empty when the producer wrote nothing (it failed).
[[nodiscard]] Result<std::string> read_line(std::FILE* stream);

}  // namespace examples

#endif  // EXAMPLES_COMMON_FRAME_H_
