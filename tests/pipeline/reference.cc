// Independent decode + area-average scaling for the pipeline test.
#include "reference.h"

#include <jpeglib.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>

namespace tests {
namespace {

struct JumpError {
  jpeg_error_mgr base;
  std::jmp_buf jump;
};

[[noreturn]] void jump_out(j_common_ptr info) {
  std::longjmp(reinterpret_cast<JumpError*>(info->err)->jump, 1);
}

// Decodes to 8-bit RGB rows; false on any libjpeg error.
bool decode_rgb(std::FILE* f, std::vector<uint8_t>& rgb, uint32_t& w, uint32_t& h) {
  jpeg_decompress_struct info{};
  JumpError err{};
  info.err = jpeg_std_error(&err.base);
  err.base.error_exit = jump_out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, f);
  jpeg_read_header(&info, TRUE);
  info.out_color_space = JCS_RGB;
  jpeg_start_decompress(&info);
  w = info.output_width;
  h = info.output_height;
  rgb.resize(size_t{w} * h * 3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = rgb.data() + size_t{info.output_scanline} * w * 3;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
}

// Weights of source samples [0, src) for each of `dst` output samples when
// every output sample averages the source interval it covers.
struct Tap {
  uint32_t index;
  float weight;
};
std::vector<std::vector<Tap>> area_taps(uint32_t src, uint32_t dst) {
  std::vector<std::vector<Tap>> taps(dst);
  const double scale = static_cast<double>(src) / dst;
  for (uint32_t o = 0; o < dst; ++o) {
    const double begin = o * scale, end = (o + 1) * scale;
    for (auto i = static_cast<uint32_t>(std::floor(begin)); i < src && i < end; ++i) {
      const double cover = std::min<double>(end, i + 1) - std::max<double>(begin, i);
      if (cover > 0) taps[o].push_back({i, static_cast<float>(cover / scale)});
    }
  }
  return taps;
}

}  // namespace

RgbSource decode_reference(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return {};
  RgbSource src;
  const bool ok = decode_rgb(f, src.rgb, src.width, src.height);
  std::fclose(f);
  if (!ok) return {};
  return src;
}

RgbImage reference_image(const std::string& path, uint32_t width, uint32_t height) {
  const RgbSource src = decode_reference(path);
  if (src.width == 0) return {};
  return scale_reference(src, width, height);
}

RgbImage scale_reference(const RgbSource& source, uint32_t width, uint32_t height, uint32_t dx,
                         uint32_t dy) {
  const uint32_t sw = source.width, sh = source.height;
  if (sw == 0 || sh == 0) return {};
  std::vector<uint8_t> src(source.rgb.size());
  for (uint32_t y = 0; y < sh; ++y) {
    for (uint32_t x = 0; x < sw; ++x) {
      const uint8_t* from = &source.rgb[(size_t{(y + dy) % sh} * sw + (x + dx) % sw) * 3];
      std::copy(from, from + 3, &src[(size_t{y} * sw + x) * 3]);
    }
  }
  // Separable: columns first into a float buffer, then rows.
  const auto xt = area_taps(sw, width), yt = area_taps(sh, height);
  std::vector<float> horizontal(size_t{width} * sh * 3);
  for (uint32_t y = 0; y < sh; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        float sum = 0;
        for (const Tap& t : xt[x]) sum += t.weight * src[(size_t{y} * sw + t.index) * 3 + c];
        horizontal[(size_t{y} * width + x) * 3 + c] = sum;
      }
    }
  }
  RgbImage out{width, height, std::vector<float>(size_t{width} * height * 3)};
  for (uint32_t y = 0; y < height; ++y) {
    for (const Tap& t : yt[y]) {
      const float* row = &horizontal[size_t{t.index} * width * 3];
      float* dst = &out.rgb[size_t{y} * width * 3];
      for (size_t i = 0; i < size_t{width} * 3; ++i) dst[i] += t.weight * row[i];
    }
  }
  return out;
}

Difference compare_bgrx(const std::vector<uint8_t>& bgrx, const RgbImage& ref) {
  Difference d;
  const size_t pixels = size_t{ref.width} * ref.height;
  if (bgrx.size() < pixels * 4 || pixels == 0) return {255, 255, 1};
  double sum = 0;
  size_t over = 0;
  for (size_t p = 0; p < pixels; ++p) {
    for (int c = 0; c < 3; ++c) {
      const float want = ref.rgb[p * 3 + static_cast<size_t>(c)];
      const uint8_t got = bgrx[p * 4 + 2 - static_cast<size_t>(c)];  // B G R X
      const double diff = std::fabs(got - want);
      sum += diff;
      d.max = std::max(d.max, static_cast<int>(std::lround(diff)));
      over += diff > 24;
    }
  }
  d.mean = sum / static_cast<double>(pixels * 3);
  d.over_24 = static_cast<double>(over) / static_cast<double>(pixels * 3);
  return d;
}

}  // namespace tests
