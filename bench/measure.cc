// Latency and utilisation runs; see measure.h.
#include "measure.h"

#include <malloc.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <map>
#include <vector>

#include <fmt/format.h>

namespace pmm::bench {

uint64_t Timer::now() {
  _mm_lfence();
  const uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

Timer Timer::calibrate() {
  Timer t;
  const auto c0 = std::chrono::steady_clock::now();
  const uint64_t r0 = now();
  while (std::chrono::steady_clock::now() - c0 < std::chrono::milliseconds(100)) {
  }
  const auto c1 = std::chrono::steady_clock::now();
  const uint64_t r1 = now();
  const double ns = std::chrono::duration<double, std::nano>(c1 - c0).count();
  t.ns_per_tick_ = ns / static_cast<double>(r1 - r0);
  std::vector<uint64_t> empty(100'000);
  for (auto& e : empty) {
    const uint64_t a = now();
    e = now() - a;
  }
  std::nth_element(empty.begin(), empty.begin() + static_cast<long>(empty.size() / 2), empty.end());
  t.overhead_ = empty[empty.size() / 2];
  return t;
}

namespace {

// Bytes malloc has handed out and not had back (small and mmap'ed chunks).
uint64_t heap_bytes() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

}  // namespace

LatencyResult run_latency(BenchAllocator& a, const LatencyTrace& trace, uint64_t warmup,
                          uint64_t timed, const Timer& timer) {
  LatencyResult r;
  r.live = trace.prefill.size();
  warmup = std::min<uint64_t>(warmup, trace.pairs.size());
  timed = std::min<uint64_t>(timed, trace.pairs.size() - warmup);
  r.warmup_pairs = warmup;
  r.timed_pairs = timed;
  const auto start = std::chrono::steady_clock::now();
  std::vector<uint64_t> slots;
  slots.reserve(trace.prefill.size());
  const uint64_t heap_before = heap_bytes();
  for (uint32_t size : trace.prefill) {
    std::optional<Placed> off = a.allocate(size, kLatencyAlignment);
    if (!off) {
      r.error = fmt::format("pre-fill failed at block {} of {}: region of {} bytes too small",
                            slots.size(), trace.prefill.size(), a.region_size());
      for (uint64_t o : slots) a.release(o);
      return r;
    }
    slots.push_back(off->ref);
  }
  r.heap_bytes_per_block = static_cast<double>(heap_bytes() - heap_before) /
                           static_cast<double>(std::max<size_t>(slots.size(), 1));
  for (uint64_t i = 0; i < warmup; ++i) {
    const PairOp& op = trace.pairs[i];
    std::optional<Placed> off = a.allocate(op.size, kLatencyAlignment);
    if (!off) continue;
    a.release(slots[op.victim]);
    slots[op.victim] = off->ref;
  }
  std::vector<uint64_t> ticks;
  ticks.reserve(r.timed_pairs);
  const uint64_t overhead = timer.overhead_ticks();
  auto net = [overhead](uint64_t d) { return d > overhead ? d - overhead : 0; };
  bool counts_steps = false;
  uint64_t max_steps = 0;
  for (uint64_t i = warmup; i < warmup + timed; ++i) {
    // Both loads happen before the clock starts: the victim's slot is a
    // random access into an array of `live` entries, a cache miss that is
    // the harness's, not the allocator's.
    const uint32_t size = trace.pairs[i].size;
    const uint32_t victim = trace.pairs[i].victim;
    const uint64_t victim_ref = slots[victim];
    const uint64_t t0 = Timer::now();
    std::optional<Placed> off = a.allocate(size, kLatencyAlignment);
    const uint64_t t1 = Timer::now();
    std::optional<uint64_t> steps = a.last_op_steps();
    if (steps) {
      counts_steps = true;
      max_steps = std::max(max_steps, *steps);
    }
    if (!off) {
      ++r.failures;
      ticks.push_back(net(t1 - t0));
      continue;
    }
    const uint64_t t2 = Timer::now();
    a.release(victim_ref);
    const uint64_t t3 = Timer::now();
    steps = a.last_op_steps();
    if (steps) max_steps = std::max(max_steps, *steps);
    slots[victim] = off->ref;
    ticks.push_back(net(t1 - t0) + net(t3 - t2));
  }
  for (uint64_t o : slots) a.release(o);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (counts_steps) r.max_steps = max_steps;
  if (ticks.empty()) return r;
  auto at = [&](double q) {
    auto k = static_cast<size_t>(q * static_cast<double>(ticks.size() - 1));
    std::nth_element(ticks.begin(), ticks.begin() + static_cast<long>(k), ticks.end());
    return timer.ns(ticks[k]);
  };
  r.p50_ns = at(0.5);
  r.p99_ns = at(0.99);
  r.p9999_ns = at(0.9999);
  r.max_ns = timer.ns(*std::max_element(ticks.begin(), ticks.end()));
  return r;
}

namespace {

// Empty when [off, off + size) is aligned, inside the region and clear of
// every live block; else what is wrong with it.
std::string check_block(const std::map<uint64_t, uint64_t>& live, uint64_t off, uint64_t size,
                        uint64_t alignment, uint64_t region) {
  if (off % alignment != 0) return fmt::format("offset {} is not a multiple of {}", off, alignment);
  if (off > region || region - off < size) {
    return fmt::format("block [{}, {}) ends past the region ({})", off, off + size, region);
  }
  auto next = live.lower_bound(off);
  if (next != live.end() && next->first < off + size) {
    return fmt::format("block [{}, {}) overlaps live [{}, {})", off, off + size, next->first,
                       next->second);
  }
  if (next != live.begin() && std::prev(next)->second > off) {
    return fmt::format("block [{}, {}) overlaps live [{}, {})", off, off + size,
                       std::prev(next)->first, std::prev(next)->second);
  }
  return {};
}

}  // namespace

UtilisationResult run_utilisation(BenchAllocator& a, Scenario s, uint64_t seed,
                                  uint64_t max_events) {
  UtilisationResult r;
  Workload w(s, seed);
  std::vector<uint64_t> offset;       // by id
  std::vector<uint64_t> ref;          // by id
  std::vector<uint64_t> size;         // by id
  std::map<uint64_t, uint64_t> live;  // offset -> end, to catch overlaps
  uint64_t live_bytes = 0;
  for (uint64_t i = 0; i < max_events; ++i) {
    const Event e = w.next();
    if (!e.allocate) {
      a.release(ref[e.id]);
      live.erase(offset[e.id]);
      live_bytes -= size[e.id];
      continue;
    }
    std::optional<Placed> got = a.allocate(e.size, e.alignment);
    if (!got) {
      r.failed = true;
      r.failed_size = e.size;
      break;
    }
    const uint64_t* off = &got->offset;
    if (std::string bad = check_block(live, *off, e.size, e.alignment, a.region_size());
        !bad.empty()) {
      r.error = fmt::format("allocate({}, {}) #{}: {}", e.size, e.alignment, e.id, bad);
      break;
    }
    live.emplace(*off, *off + e.size);
    offset.push_back(*off);
    ref.push_back(got->ref);
    size.push_back(e.size);
    live_bytes += e.size;
    ++r.allocations;
  }
  r.utilisation = static_cast<double>(live_bytes) / static_cast<double>(a.region_size());
  return r;
}

}  // namespace pmm::bench
