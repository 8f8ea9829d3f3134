// See invariants.h.
#include "base/invariants.h"

#include <cstdio>
#include <cstdlib>

namespace pmm {

void invariant_violated(std::string_view op, const Error& e) {
  // One write, so the line is whole even when stderr is shared.
  std::string line = fmt::format("pmm: invariant violated after {}: {}\n", op, e.describe());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace pmm
