// The two measurements of the allocation benchmark: per-operation latency in
// steady state, and utilisation at the first failed allocation.
//
// Usage:
//   Timer timer = Timer::calibrate();
//   LatencyResult r = run_latency(*allocator, trace, timer);
//   UtilisationResult u = run_utilisation(*allocator, Scenario::kFixedOdd, /*seed=*/1);
//
// Thread safety: none; call from one thread, with nothing else running if
// the latencies are to mean anything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "adapter.h"
#include "trace.h"

namespace pmm::bench {

// Reads the time-stamp counter (fenced, so the measured call cannot drift
// across it); calibrated against std::chrono::steady_clock.
class Timer {
 public:
  [[nodiscard]] static Timer calibrate();
  [[nodiscard]] static uint64_t now();
  [[nodiscard]] double ns(uint64_t ticks) const {
    return static_cast<double>(ticks) * ns_per_tick_;
  }
  // Median cost of an empty now()-now() interval, subtracted from each one.
  [[nodiscard]] uint64_t overhead_ticks() const { return overhead_; }
  [[nodiscard]] double ghz() const { return 1.0 / ns_per_tick_; }

 private:
  double ns_per_tick_ = 1.0;
  uint64_t overhead_ = 0;
};

struct LatencyResult {
  uint64_t live = 0;
  uint64_t timed_pairs = 0;
  uint64_t warmup_pairs = 0;
  double p50_ns = 0, p99_ns = 0, p9999_ns = 0, max_ns = 0;  // per allocate+release pair
  std::optional<uint64_t> max_steps;                        // over every timed operation
  uint64_t failures = 0;                                    // allocations that did not fit
  // The allocator's heap (malloc'ed bytes) per live block after the
  // pre-fill: its metadata per block, as the daemon would pay it.
  double heap_bytes_per_block = 0;
  double seconds = 0;  // wall time of the whole run
  std::string error;   // set when the run could not start
};

// Pre-fills trace.prefill, runs the first `warmup` pairs untimed, then times
// each of the next `timed` pairs: allocate (timed), read the step count
// (untimed), release (timed). A failed allocation is counted and its victim
// kept. Every allocator gets a prefix of the same pairs.
[[nodiscard]] LatencyResult run_latency(BenchAllocator& a, const LatencyTrace& trace,
                                        uint64_t warmup, uint64_t timed, const Timer& timer);

struct UtilisationResult {
  double utilisation = 0;    // live bytes / region size when the first allocation failed
  uint64_t allocations = 0;  // successful allocations before it
  uint64_t failed_size = 0;  // the size that did not fit
  bool failed = false;       // false: the stream ran out of steps first
  std::string error;         // a block out of the region, misaligned or overlapping another
};

// Runs `s` until its first failed allocation (at most `max_events` events).
// Untimed, so it also checks every block it gets: inside the region, aligned,
// overlapping no live block.
[[nodiscard]] UtilisationResult run_utilisation(BenchAllocator& a, Scenario s, uint64_t seed,
                                                uint64_t max_events = 50'000'000);

}  // namespace pmm::bench
