// The argument checks every strategy shares, with messages that say what
// would have been accepted.
#include "alloc/segment_strategy.h"

#include <bit>

namespace pmm::alloc::detail {

std::string describe_bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30) && n % (uint64_t{1} << 30) == 0)
    return fmt::format("{} GiB", n >> 30);
  if (n >= (uint64_t{1} << 20) && n % (uint64_t{1} << 20) == 0)
    return fmt::format("{} MiB", n >> 20);
  if (n >= (uint64_t{1} << 10) && n % (uint64_t{1} << 10) == 0)
    return fmt::format("{} KiB", n >> 10);
  return fmt::format("{} bytes", n);
}

Status refuse_request(uint64_t region, uint64_t size, uint64_t alignment) {
  const uint64_t max_align = std::bit_floor(region);
  if (size == 0)
    return fail(Errc::kInvalidArgument,
                "size 0: a block needs at least 1 byte; ask for 1 to {} bytes", region);
  if (size > region)
    return fail(Errc::kInvalidArgument,
                "size {} is larger than the region ({} bytes); ask for 1 to {} bytes", size, region,
                region);
  if (!std::has_single_bit(alignment))
    return fail(Errc::kInvalidArgument,
                "alignment {} is not a power of two; use 1, 2, 4, ... up to {}", alignment,
                describe_bytes(max_align));
  if (alignment > region)
    return fail(Errc::kInvalidArgument,
                "alignment {} is larger than the region ({} bytes); use a power of two up to {}",
                alignment, region, describe_bytes(max_align));
  return {};  // not reached: check_request calls this only for an invalid request
}

}  // namespace pmm::alloc::detail
