// libjpeg-turbo behind the small interface of jpeg.h.
//
// libjpeg reports fatal errors through error_exit, which must not return;
// the classic answer is setjmp/longjmp. Everything between setjmp and the
// libjpeg calls is plain C data, so no destructor is skipped by the jump.
#include "common/jpeg.h"

#include <fmt/format.h>
#include <jpeglib.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>

namespace examples {
namespace {

struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_error(j_common_ptr info) {
  auto* err = reinterpret_cast<ErrorManager*>(info->err);
  (*info->err->format_message)(info, err->message);
  std::longjmp(err->jump, 1);
}

void on_warning(j_common_ptr /*info*/, int /*level*/) {
  // Corrupt-data warnings are not fatal to libjpeg; a test pattern with a
  // bad marker still shows as much as decoded, like every image viewer.
}

}  // namespace

Result<std::vector<uint8_t>> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return std::unexpected(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  }
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) {
    bytes.insert(bytes.end(), chunk, chunk + n);
    if (bytes.size() > (256u << 20)) {
      std::fclose(f);
      return std::unexpected(fmt::format("'{}' is over 256 MiB: not a JPEG we decode", path));
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return std::unexpected(fmt::format("cannot read '{}'", path));
  return bytes;
}

struct JpegDecoder::State {
  jpeg_decompress_struct info{};
  ErrorManager err{};
  bool created = false;
  bool started = false;
};

JpegDecoder::JpegDecoder() : state_(std::make_unique<State>()) {}

JpegDecoder::~JpegDecoder() {
  if (state_->created) jpeg_destroy_decompress(&state_->info);
}

Result<Size> JpegDecoder::open(std::span<const uint8_t> jpeg) {
  State& s = *state_;
  if (s.created) return std::unexpected(std::string("JpegDecoder::open called twice"));
  s.info.err = jpeg_std_error(&s.err.base);
  s.err.base.error_exit = on_error;
  s.err.base.emit_message = on_warning;
  if (setjmp(s.err.jump)) {
    return std::unexpected(fmt::format("not a JPEG we can decode: {}", s.err.message));
  }
  jpeg_create_decompress(&s.info);
  s.created = true;
  jpeg_mem_src(&s.info, jpeg.data(), static_cast<unsigned long>(jpeg.size()));
  jpeg_read_header(&s.info, TRUE);
  const Size size{s.info.image_width, s.info.image_height};
  if (size.width > kMaxDimension || size.height > kMaxDimension ||
      uint64_t{size.width} * size.height > kMaxPixels) {
    return std::unexpected(fmt::format("image is {}x{}; the pipeline takes up to 3840x2160 pixels",
                                       size.width, size.height));
  }
  return size;
}

Result<void> JpegDecoder::decode_into(uint8_t* dst, uint32_t stride) {
  State& s = *state_;
  if (!s.created || s.started) {
    return std::unexpected(std::string("decode_into needs one successful open() first"));
  }
  s.started = true;
  if (setjmp(s.err.jump)) {
    return std::unexpected(fmt::format("JPEG decoding failed: {}", s.err.message));
  }
  s.info.out_color_space = JCS_EXT_BGRX;
  s.info.dct_method = JDCT_ISLOW;
  jpeg_start_decompress(&s.info);
  // Hand libjpeg the destination rows themselves: it writes each decoded
  // scanline in place, so the pixels never exist anywhere else.
  JSAMPROW rows[16];
  while (s.info.output_scanline < s.info.output_height) {
    const JDIMENSION first = s.info.output_scanline;
    const JDIMENSION count = std::min<JDIMENSION>(16, s.info.output_height - first);
    for (JDIMENSION i = 0; i < count; ++i) rows[i] = dst + size_t{first + i} * stride;
    jpeg_read_scanlines(&s.info, rows, count);
  }
  jpeg_finish_decompress(&s.info);
  return {};
}

Result<std::vector<uint8_t>> encode_jpeg(const uint8_t* bgrx, uint32_t width, uint32_t height,
                                         uint32_t stride, int quality) {
  jpeg_compress_struct info{};
  ErrorManager err{};
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  info.err = jpeg_std_error(&err.base);
  err.base.error_exit = on_error;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&info);
    std::free(out);
    return std::unexpected(fmt::format("JPEG encoding failed: {}", err.message));
  }
  jpeg_create_compress(&info);
  jpeg_mem_dest(&info, &out, &out_size);
  info.image_width = width;
  info.image_height = height;
  info.input_components = 4;
  info.in_color_space = JCS_EXT_BGRX;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  info.optimize_coding = TRUE;
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    // libjpeg's API takes non-const rows but only reads them when compressing.
    JSAMPROW row = const_cast<uint8_t*>(bgrx + size_t{info.next_scanline} * stride);
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  std::vector<uint8_t> bytes(out, out + out_size);
  jpeg_destroy_compress(&info);
  std::free(out);
  return bytes;
}

}  // namespace examples
