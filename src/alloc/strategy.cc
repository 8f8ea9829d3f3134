// make_strategy: the one place that maps a strategy's name to its maker.
#include "alloc/strategy.h"

#include "alloc/best_fit.h"
#include "alloc/tlsf.h"

namespace pmm::alloc {

Result<std::unique_ptr<Strategy>> make_strategy(std::string_view name, uint64_t size) {
  if (name != "best_fit" && name != "tlsf")
    return fail(Errc::kInvalidArgument, "unknown allocation strategy \"{}\"; use best_fit or tlsf",
                name);
  if (size == 0)
    return fail(Errc::kInvalidArgument,
                "{} over a region of 0 bytes: the region needs at least 1 byte", name);
  if (name == "tlsf") return make_tlsf(size);
  return make_best_fit(size);
}

}  // namespace pmm::alloc
