// Scaling a BGRX frame into another with libyuv (ARGBScale; libyuv's "ARGB"
// is B, G, R, A in memory, the same bytes as our BGRX).
//
//   examples::scale_bgrx(src, src_frame, dst, dst_frame);   // bilinear
//
// Pure function over caller-owned memory: any thread, no allocation by us.
#ifndef EXAMPLES_COMMON_SCALE_H_
#define EXAMPLES_COMMON_SCALE_H_

#include <cstdint>

#include "common/frame.h"

namespace examples {

// Bilinear when enlarging or shrinking by less than 2x; libyuv picks box
// filtering for larger reductions under kFilterBox, which we use then.
[[nodiscard]] Result<void> scale_bgrx(const uint8_t* src, const Frame& src_frame, uint8_t* dst,
                                      const Frame& dst_frame);

}  // namespace examples

#endif  // EXAMPLES_COMMON_SCALE_H_
