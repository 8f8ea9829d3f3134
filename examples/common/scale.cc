// libyuv ARGBScale behind scale.h.
#include "common/scale.h"

#include <fmt/format.h>
#include <libyuv/scale_argb.h>

namespace examples {

Result<void> scale_bgrx(const uint8_t* src, const Frame& src_frame, uint8_t* dst,
                        const Frame& dst_frame) {
  // Reductions of 2x or more with a bilinear kernel skip source pixels and
  // alias; box filtering averages all of them. libyuv's kFilterBox falls
  // back to bilinear for smaller factors by itself.
  const bool big_reduction =
      dst_frame.width * 2 <= src_frame.width || dst_frame.height * 2 <= src_frame.height;
  const auto filter = big_reduction ? libyuv::kFilterBox : libyuv::kFilterBilinear;
  const int rc = libyuv::ARGBScale(
      src, static_cast<int>(src_frame.stride), static_cast<int>(src_frame.width),
      static_cast<int>(src_frame.height), dst, static_cast<int>(dst_frame.stride),
      static_cast<int>(dst_frame.width), static_cast<int>(dst_frame.height), filter);
  if (rc != 0) {
    return std::unexpected(fmt::format("libyuv::ARGBScale {}x{} -> {}x{} failed ({})",
                                       src_frame.width, src_frame.height, dst_frame.width,
                                       dst_frame.height, rc));
  }
  return {};
}

}  // namespace examples
