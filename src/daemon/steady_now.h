// pmm::daemon::steady_now — std::chrono::steady_clock::now(), read inline
// with one call to clock_gettime(CLOCK_MONOTONIC) (the vDSO) rather than
// through libstdc++'s out-of-line now(), which makes that same call. pmmd
// reads the clock twice per request (its start and end, for the latency
// histogram: request_metrics.h); elsewhere steady_clock::now() is fine.
//
// The same clock and epoch as steady_clock (libstdc++ reads CLOCK_MONOTONIC
// for it), so the two mix freely (steady_now_test.cc).
//
// Usage:
//   const std::chrono::steady_clock::time_point start = steady_now();
//
// Thread safety: any thread.
#pragma once

#include <time.h>

#include <chrono>

namespace pmm::daemon {

[[nodiscard]] inline std::chrono::steady_clock::time_point steady_now() {
  timespec ts;
  // CLOCK_MONOTONIC always exists on Linux, and &ts is valid: it cannot fail.
  (void)::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(
      static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<int64_t>(ts.tv_nsec)));
}

}  // namespace pmm::daemon
