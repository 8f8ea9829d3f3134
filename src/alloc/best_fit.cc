// best_fit: SegmentStrategy over the AVL free tree.
#include "alloc/best_fit.h"

#include "alloc/free_tree.h"
#include "alloc/segment_strategy.h"

namespace pmm::alloc {

std::unique_ptr<Strategy> make_best_fit(uint64_t size) {
  return std::make_unique<detail::SegmentStrategy<detail::FreeTree>>("best_fit", size);
}

}  // namespace pmm::alloc
