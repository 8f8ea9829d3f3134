// Trace and workload generation; see trace.h. Random numbers come from
// std::mt19937_64 through our own conversions (not std::*_distribution,
// whose output differs between standard libraries), so a seed means the same
// trace everywhere.
#include "trace.h"

#include <cmath>

namespace pmm::bench {

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  // The modulo bias is below n / 2^64: nothing for the n used here.
  return rng() % n;
}

uint64_t log_uniform(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  const double l = std::log(static_cast<double>(lo));
  const double h = std::log(static_cast<double>(hi));
  const auto v = static_cast<uint64_t>(std::llround(std::exp(l + u * (h - l))));
  return v < lo ? lo : (v > hi ? hi : v);
}

LatencyTrace make_latency_trace(uint64_t live, uint64_t pairs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  LatencyTrace t;
  t.prefill.reserve(live);
  // Multiples of the alignment, so every extent stays aligned and the trace
  // measures the indexes, not how each allocator handles misaligned extents
  // (the utilisation scenarios cover that).
  auto draw = [&rng] {
    const uint64_t v = log_uniform(rng, kLatencyMinSize, kLatencyMaxSize);
    return static_cast<uint32_t>((v + kLatencyAlignment - 1) / kLatencyAlignment *
                                 kLatencyAlignment);
  };
  for (uint64_t i = 0; i < live; ++i) {
    const uint64_t size = draw();
    t.prefill.push_back(static_cast<uint32_t>(size));
    t.live_bytes += size;
  }
  t.pairs.reserve(pairs);
  for (uint64_t i = 0; i < pairs; ++i) {
    const uint32_t size = draw();
    t.pairs.push_back({size, static_cast<uint32_t>(uniform_below(rng, live))});
  }
  return t;
}

std::string_view scenario_name(Scenario s) {
  switch (s) {
    case Scenario::kRandomSizes:
      return "(a) random";
    case Scenario::kFixedOdd:
      return "(b) fixed";
    case Scenario::kVideoFrames:
      return "(c) video";
  }
  return "?";
}

std::string_view scenario_description(Scenario s) {
  switch (s) {
    case Scenario::kRandomSizes:
      return "(a) random: 4 GiB region; sizes log-uniform 64 B - 4 MiB, alignment 64; each step\n"
             "  allocates (p=0.6) or releases a uniformly chosen live block (p=0.4)";
    case Scenario::kFixedOdd:
      return "(b) fixed: 1 GiB region; every block 1,000,003 B (prime), alignment 64; the same\n"
             "  0.6 / 0.4 allocate / random-release steps";
    case Scenario::kVideoFrames:
      return "(c) video: 2 GiB region, alignment 4096; one frame per tick: 1080p NV12 3,110,400 B\n"
             "  (40%), 1080p RGBA 8,294,400 B (20%), 4K NV12 12,441,600 B (30%), 4K RGBA\n"
             "  33,177,600 B (10%); 75% live 1-8 ticks, 25% live 300-3000 ticks, released in\n"
             "  expiry order before the next frame";
  }
  return "?";
}

uint64_t scenario_region(Scenario s) {
  switch (s) {
    case Scenario::kRandomSizes:
      return 4ULL << 30;
    case Scenario::kFixedOdd:
      return 1ULL << 30;
    case Scenario::kVideoFrames:
      return 2ULL << 30;
  }
  return 0;
}

Workload::Workload(Scenario s, uint64_t seed) : scenario_(s), rng_(seed) {}

Event Workload::allocate_next(uint64_t size, uint64_t alignment) {
  const uint64_t id = next_id_++;
  if (scenario_ != Scenario::kVideoFrames) live_.push_back(id);
  return {true, size, alignment, id};
}

Event Workload::release_random() {
  const uint64_t i = uniform_below(rng_, live_.size());
  const uint64_t id = live_[i];
  live_[i] = live_.back();
  live_.pop_back();
  return {false, 0, 0, id};
}

Event Workload::next() {
  switch (scenario_) {
    case Scenario::kRandomSizes:
      if (live_.empty() || uniform_below(rng_, 10) < 6) {
        return allocate_next(log_uniform(rng_, 64, 4ULL << 20), 64);
      }
      return release_random();
    case Scenario::kFixedOdd:
      if (live_.empty() || uniform_below(rng_, 10) < 6) return allocate_next(kFixedOddSize, 64);
      return release_random();
    case Scenario::kVideoFrames: {
      if (!expiries_.empty() && expiries_.top().first <= tick_) {
        const uint64_t id = expiries_.top().second;
        expiries_.pop();
        return {false, 0, 0, id};
      }
      static constexpr uint64_t kFrames[] = {1920 * 1080 * 3 / 2, 1920 * 1080 * 4,
                                             3840 * 2160 * 3 / 2, 3840 * 2160 * 4};
      const uint64_t pick = uniform_below(rng_, 10);
      const uint64_t size = kFrames[pick < 4 ? 0 : pick < 6 ? 1 : pick < 9 ? 2 : 3];
      const bool long_lived = uniform_below(rng_, 4) == 0;
      const uint64_t life =
          long_lived ? 300 + uniform_below(rng_, 2701) : 1 + uniform_below(rng_, 8);
      Event e = allocate_next(size, 4096);
      expiries_.emplace(tick_ + life, e.id);
      ++tick_;
      return e;
    }
  }
  return {false, 0, 0, 0};
}

}  // namespace pmm::bench
