// The report of pmm_bench_alloc: the latency table, the utilisation table,
// the targets of issue 2 marked met or missed, and notes saying exactly what
// each allocator and each trace is.
//
// Usage:
//   print_report(stdout, timer, /*quick=*/false, latency_rows, utilisation_rows);
//
// Thread safety: none needed; plain functions over values.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "adapter.h"
#include "measure.h"
#include "trace.h"

namespace pmm::bench {

struct LatencyRow {
  Kind kind;
  uint64_t region = 0;  // bytes the latency run's region had
  LatencyResult result;
};

struct UtilisationRow {
  Kind kind;
  std::array<std::vector<UtilisationResult>, 3> runs;  // by Scenario, one per seed
};

void print_report(std::FILE* out, const Timer& timer, bool quick,
                  const std::vector<LatencyRow>& latency,
                  const std::vector<UtilisationRow>& utilisation);

}  // namespace pmm::bench
