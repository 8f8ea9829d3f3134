// JPEG decoding straight into memory the caller owns, and encoding, with
// libjpeg-turbo.
//
// The decoder is split in two so that the caller can size and allocate the
// destination (a pmm block, or a malloc'ed buffer in the baseline) between
// reading the header and decoding the rows:
//
//   auto bytes = examples::read_file("in.jpg");
//   examples::JpegDecoder dec;
//   auto size = dec.open(*bytes);                 // header only
//   std::vector<uint8_t> px(stride_for_width(size->width) * size->height);
//   auto ok = dec.decode_into(px.data(), stride_for_width(size->width));
//
// libjpeg-turbo writes BGRX rows (JCS_EXT_BGRX) directly into the
// destination: there is no intermediate buffer. A JpegDecoder is used by one
// thread at a time.
#ifndef EXAMPLES_COMMON_JPEG_H_
#define EXAMPLES_COMMON_JPEG_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/frame.h"

namespace examples {

// Whole file contents; the message names the file and the errno text.
[[nodiscard]] Result<std::vector<uint8_t>> read_file(const std::string& path);

class JpegDecoder {
 public:
  JpegDecoder();
  ~JpegDecoder();
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;

  // Reads the header of `jpeg` (which must outlive decode_into). Refuses
  // data that is not a JPEG, and images over 3840x2160.
  [[nodiscard]] Result<Size> open(std::span<const uint8_t> jpeg);

  // Decodes the opened image into `dst` as BGRX, `stride` bytes per row;
  // `dst` holds at least stride * height bytes.
  [[nodiscard]] Result<void> decode_into(uint8_t* dst, uint32_t stride);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Encodes BGRX pixels as a baseline JPEG of `quality` (1..100), 4:2:0.
[[nodiscard]] Result<std::vector<uint8_t>> encode_jpeg(const uint8_t* bgrx, uint32_t width,
                                                       uint32_t height, uint32_t stride,
                                                       int quality);

}  // namespace examples

#endif  // EXAMPLES_COMMON_JPEG_H_
