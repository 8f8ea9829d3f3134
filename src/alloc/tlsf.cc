// tlsf: SegmentStrategy over the two-level segregated lists.
#include "alloc/tlsf.h"

#include "alloc/segment_strategy.h"
#include "alloc/tlsf_index.h"

namespace pmm::alloc {

std::unique_ptr<Strategy> make_tlsf(uint64_t size) {
  return std::make_unique<detail::SegmentStrategy<detail::TlsfIndex>>("tlsf", size);
}

}  // namespace pmm::alloc
