// pmm-testpattern: draws the test card the demo and the pipeline test decode
// and encodes it as a JPEG (libjpeg-turbo). examples/data/ ships its output:
//
//   pmm-testpattern examples/data/testcard-3840x2160.jpg --size 3840x2160
//
// The card mixes what shows a scaler's and a display path's faults: smooth
// gradients in all three channels (a swapped channel or a wrong offset is
// obvious), colour bars, a fine grid and a checkerboard (aliasing), circles
// (interpolation), and a corner marker per corner (orientation, cropping).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

#include "common/jpeg.h"

namespace {

struct Bgr {
  uint8_t b, g, r;
};

uint8_t clamp8(double v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0))); }

Bgr pixel_at(uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
  const double fx = (x + 0.5) / w, fy = (y + 0.5) / h;
  // Background: red across, green down, blue along the diagonal.
  Bgr c{clamp8(255 * (1 - (fx + fy) / 2)), clamp8(255 * fy), clamp8(255 * fx)};
  const uint32_t unit = std::max<uint32_t>(1, h / 36);  // 60 px at 2160 lines
  // Colour bars along the top eighth: white, yellow, cyan, green, magenta, red, blue, black.
  if (y < h / 8) {
    static constexpr Bgr kBars[] = {{255, 255, 255}, {0, 255, 255}, {255, 255, 0}, {0, 255, 0},
                                    {255, 0, 255},   {0, 0, 255},   {255, 0, 0},   {0, 0, 0}};
    return kBars[std::min<uint32_t>(7, x * 8 / w)];
  }
  // A grey ramp along the bottom eighth.
  if (y >= h - h / 8) {
    const uint8_t v = clamp8(255 * fx);
    return {v, v, v};
  }
  // Checkerboard in the left quarter of the middle band.
  if (x < w / 4 && y >= h * 3 / 8 && y < h * 5 / 8) {
    const bool dark = ((x / unit) + (y / unit)) % 2 == 0;
    return dark ? Bgr{32, 32, 32} : Bgr{224, 224, 224};
  }
  // Concentric circles in the middle.
  const double dx = x - w / 2.0, dy = y - h / 2.0;
  const double r = std::sqrt(dx * dx + dy * dy);
  if (r < h / 4.0) {
    const double ring = std::cos(r / (unit / 2.0)) * 0.5 + 0.5;
    const uint8_t v = clamp8(40 + 180 * ring);
    return {v, clamp8(v * 0.8), clamp8(255 - v)};
  }
  // A grid of 2-pixel lines every 4 units.
  if (x % (unit * 4) < 2 || y % (unit * 4) < 2) return {16, 16, 16};
  // Corner markers: solid squares of distinct colours.
  const uint32_t m = unit * 2;
  const bool top = y < h / 8 + m, bottom = y >= h - h / 8 - m;
  if (top && x < m) return {0, 0, 255};
  if (top && x >= w - m) return {0, 255, 0};
  if (bottom && x < m) return {255, 0, 0};
  if (bottom && x >= w - m) return {255, 255, 255};
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  std::string size_text = "3840x2160";
  int quality = 90;
  CLI::App app{"Draw the pipeline's test card and write it as a JPEG."};
  app.add_option("out", out, "JPEG file to write")->required();
  app.add_option("--size", size_text, "WIDTHxHEIGHT")->capture_default_str();
  app.add_option("--quality", quality, "JPEG quality")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto size = examples::parse_size(size_text);
  if (!size) {
    fmt::print(stderr, "pmm-testpattern: --size: {}\n", size.error());
    return 2;
  }
  const uint32_t w = size->width, h = size->height, stride = w * 4;
  std::vector<uint8_t> bgrx(size_t{stride} * h);
  for (uint32_t y = 0; y < h; ++y) {
    for (uint32_t x = 0; x < w; ++x) {
      const Bgr c = pixel_at(x, y, w, h);
      uint8_t* p = &bgrx[size_t{y} * stride + size_t{x} * 4];
      p[0] = c.b, p[1] = c.g, p[2] = c.r, p[3] = 255;
    }
  }
  auto jpeg = examples::encode_jpeg(bgrx.data(), w, h, stride, quality);
  if (!jpeg) {
    fmt::print(stderr, "pmm-testpattern: {}\n", jpeg.error());
    return 1;
  }
  std::FILE* f = std::fopen(out.c_str(), "wb");
  if (f == nullptr || std::fwrite(jpeg->data(), 1, jpeg->size(), f) != jpeg->size() ||
      std::fclose(f) != 0) {
    fmt::print(stderr, "pmm-testpattern: cannot write '{}'\n", out);
    return 1;
  }
  fmt::print("{}: {}x{}, {} bytes\n", out, w, h, jpeg->size());
  return 0;
}
