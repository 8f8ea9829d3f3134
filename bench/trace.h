// Operation traces for the allocation benchmark, generated from a seed so
// that every allocator sees exactly the same operations.
//
// LatencyTrace: pre-fill N blocks, then a list of (new size, victim slot)
// pairs: allocate the new size, release the block in the victim slot, put
// the new block there. Sizes are log-uniform in [64 B, 4 KiB] rounded up to
// a multiple of 64, alignment 64;
// small, so that Boost's in-band headers for 1M live blocks fit in RAM (our
// strategies and the multimaps only do offset arithmetic: their cost depends
// on how many blocks and extents there are, not on their sizes).
//
// Workload: the utilisation scenarios, an endless deterministic stream of
// allocate / release events that runs until the first allocation fails.
//
// Usage:
//   LatencyTrace t = make_latency_trace(100'000, 2'000'000, /*seed=*/1);
//   Workload w(Scenario::kVideoFrames, /*seed=*/1);
//   for (;;) { Event e = w.next(); ... }
//
// Thread safety: plain values; a Workload belongs to one thread.
#pragma once

#include <cstdint>
#include <queue>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace pmm::bench {

inline constexpr uint64_t kLatencyMinSize = 64;
inline constexpr uint64_t kLatencyMaxSize = 4096;
inline constexpr uint64_t kLatencyAlignment = 64;

struct PairOp {
  uint32_t size;    // bytes to allocate
  uint32_t victim;  // slot whose block is released afterwards
};

struct LatencyTrace {
  std::vector<uint32_t> prefill;  // one size per slot
  std::vector<PairOp> pairs;      // warm-up first, then the timed pairs
  uint64_t live_bytes = 0;        // sum of `prefill`
};

// `live` slots and `pairs` pairs.
[[nodiscard]] LatencyTrace make_latency_trace(uint64_t live, uint64_t pairs, uint64_t seed);

enum class Scenario {
  kRandomSizes,  // log-uniform 64 B - 4 MiB, alignment 64, random releases
  kFixedOdd,     // always kFixedOddSize bytes, alignment 64, random releases
  kVideoFrames,  // 1080p / 4K, NV12 / RGBA, page aligned, short and long lifetimes
};

inline constexpr Scenario kAllScenarios[] = {Scenario::kRandomSizes, Scenario::kFixedOdd,
                                             Scenario::kVideoFrames};

inline constexpr uint64_t kFixedOddSize = 1'000'003;  // a prime: aligns with nothing

[[nodiscard]] std::string_view scenario_name(Scenario s);
[[nodiscard]] std::string_view scenario_description(Scenario s);
// The region each scenario runs in.
[[nodiscard]] uint64_t scenario_region(Scenario s);

struct Event {
  bool allocate;       // else release
  uint64_t size;       // allocate: bytes
  uint64_t alignment;  // allocate: power of two
  uint64_t id;         // allocate: the new block's id (0, 1, 2...); release: which block
};

// The stream of one scenario. Ids count allocations from 0; a release names
// an id allocated earlier and not yet released. The stream never depends on
// where blocks landed, so it is the same for every allocator.
class Workload {
 public:
  Workload(Scenario s, uint64_t seed);
  [[nodiscard]] Event next();

 private:
  [[nodiscard]] Event allocate_next(uint64_t size, uint64_t alignment);
  [[nodiscard]] Event release_random();

  Scenario scenario_;
  std::mt19937_64 rng_;
  uint64_t next_id_ = 0;
  uint64_t tick_ = 0;
  std::vector<uint64_t> live_;  // random-release scenarios: ids not yet released
  // video frames: (expiry tick, id), earliest first
  using Expiry = std::pair<uint64_t, uint64_t>;
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<>> expiries_;
};

// Log-uniform in [lo, hi]: every power-of-two band equally likely.
[[nodiscard]] uint64_t log_uniform(std::mt19937_64& rng, uint64_t lo, uint64_t hi);
// Uniform in [0, n).
[[nodiscard]] uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);

}  // namespace pmm::bench
