// best_fit: SegmentStrategy over the exact-fit index (best_fit_index.h).
#include "alloc/best_fit.h"

#include "alloc/best_fit_index.h"
#include "alloc/segment_strategy.h"

namespace pmm::alloc {

std::unique_ptr<Strategy> make_best_fit(uint64_t size) {
  return std::make_unique<detail::SegmentStrategy<detail::BestFitIndex>>("best_fit", size);
}

}  // namespace pmm::alloc
