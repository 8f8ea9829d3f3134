// The pipeline test's own idea of what the screen should show: the JPEG
// decoded to RGB with libjpeg directly (not through examples/common) and
// shrunk by exact area averaging in floating point (not libyuv), so the
// comparison checks the pipeline against an independent computation.
//
//   auto ref = tests::reference_image("card.jpg", 1280, 720);   // RGB
//   auto diff = tests::compare_bgrx(shown_bgrx, ref);
//   EXPECT_LT(diff.mean, 1.5);
//
// Pure functions; any thread.
#ifndef TESTS_PIPELINE_REFERENCE_H_
#define TESTS_PIPELINE_REFERENCE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace tests {

struct RgbImage {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<float> rgb;  // width * height * 3, row by row
};

// Decodes `path` to RGB and scales it to width x height by area averaging.
// An empty image (width 0) if the file is not a readable JPEG.
RgbImage reference_image(const std::string& path, uint32_t width, uint32_t height);

// The decoded JPEG, 8-bit RGB, for scaling several ways.
struct RgbSource {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint8_t> rgb;
};
// Empty (width 0) if the file is not a readable JPEG.
RgbSource decode_reference(const std::string& path);

// `src` panned by (dx, dy) — pixel (x, y) is src((x + dx) mod W, (y + dy) mod H),
// the streaming pipeline's frame sequence — scaled to width x height by area
// averaging.
RgbImage scale_reference(const RgbSource& src, uint32_t width, uint32_t height, uint32_t dx = 0,
                         uint32_t dy = 0);

struct Difference {
  double mean = 0;     // mean absolute difference per channel, 0..255
  int max = 0;         // largest absolute difference of any channel
  double over_24 = 0;  // fraction of channel values off by more than 24
};

// Compares BGRX pixels (stride width * 4) with the reference.
Difference compare_bgrx(const std::vector<uint8_t>& bgrx, const RgbImage& ref);

}  // namespace tests

#endif  // TESTS_PIPELINE_REFERENCE_H_
