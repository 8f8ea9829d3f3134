// pmm_bench_alloc: our allocation strategies beside Boost.Interprocess and
// two std::multimap best fits, on the same operation traces, in one run.
//
//   pmm_bench_alloc           the full run behind BENCHMARKS.md (~2 minutes)
//   pmm_bench_alloc --quick   a smaller run to check that it all works
//   pmm_bench_alloc --only tlsf --live 100000 --no-utilisation   (e.g. under perf)
//   pmm_bench_alloc --peer /tmp/offset_allocator_peer.so   an outside allocator too
//                                                          (adapter.h, bench/README.md)
//
// Prints fixed-width tables to stdout (bench/run copies them into
// BENCHMARKS.md) and progress to stderr. Targets are printed as met or
// missed, never asserted: a benchmark is not a pass/fail test.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "adapter.h"
#include "measure.h"
#include "report.h"
#include "trace.h"

namespace pmm::bench {
namespace {

// How many pairs each allocator runs at each live count. Our strategies run
// 5M pairs (10M operations) at 1M live: the max-steps run. The peers run
// 1M pairs there, which is plenty for p99.99; multimap-scan, whose releases
// cost O(free extents), runs far fewer (the table marks them with *).
struct Plan {
  std::vector<uint64_t> lives;
  uint64_t seeds = 3;
  bool quick = false;
  std::vector<Kind> kinds{std::begin(kAllKinds), std::end(kAllKinds)};

  uint64_t timed_pairs(uint64_t live, Kind k) const {
    const bool ours = k == Kind::kBestFit || k == Kind::kTlsf;
    if (k == Kind::kMultimapScan)
      return live >= 1'000'000 ? 1'000 : live >= 100'000 ? 5'000 : 200'000;
    if (quick) return 100'000;
    return live >= 1'000'000 && ours ? 5'000'000 : 1'000'000;
  }
  uint64_t warmup_pairs(uint64_t live, Kind k) const {
    if (k == Kind::kMultimapScan) return live >= 1'000'000 ? 1'000 : live >= 100'000 ? 5'000 : live;
    return live;
  }
};

Plan full_plan() { return Plan{{1'000, 100'000, 1'000'000}, 3, false}; }

Plan quick_plan() { return Plan{{1'000, 10'000}, 1, true}; }

// Twice the live bytes: room for fragmentation at steady state, so that no
// allocation of the latency runs fails.
uint64_t latency_region(const LatencyTrace& t) {
  const uint64_t mib = 1ULL << 20;
  return (2 * t.live_bytes + mib - 1) / mib * mib + mib;
}

std::vector<LatencyRow> run_latency_tables(const Plan& plan, const Timer& timer) {
  std::vector<LatencyRow> rows;
  for (uint64_t live : plan.lives) {
    uint64_t pairs = 0;
    for (Kind k : plan.kinds) {
      pairs = std::max(pairs, plan.warmup_pairs(live, k) + plan.timed_pairs(live, k));
    }
    fmt::print(stderr, "latency: {} live blocks, trace of {} pairs\n", live, pairs);
    const LatencyTrace trace = make_latency_trace(live, pairs, /*seed=*/live);
    const uint64_t region = latency_region(trace);
    for (Kind k : plan.kinds) {
      LatencyRow row{k, region, {}};
      auto a = make_bench_allocator(k, region);
      if (!a) {
        row.result.error = a.error().describe();
      } else {
        const uint64_t warmup = plan.warmup_pairs(live, k);
        const uint64_t timed = plan.timed_pairs(live, k);
        row.result = run_latency(**a, trace, warmup, timed, timer);
        row.result.live = live;
      }
      fmt::print(stderr, "  {:<14} {}\n", kind_name(k),
                 row.result.error.empty() ? fmt::format("{:.1f} s", row.result.seconds)
                                          : row.result.error);
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

std::vector<UtilisationRow> run_utilisation_tables(const Plan& plan) {
  std::vector<UtilisationRow> rows;
  for (Kind k : plan.kinds) {
    UtilisationRow row{k, {}};
    for (Scenario s : kAllScenarios) {
      fmt::print(stderr, "utilisation: {} {}\n", kind_name(k), scenario_name(s));
      for (uint64_t seed = 1; seed <= plan.seeds; ++seed) {
        auto a = make_bench_allocator(k, scenario_region(s));
        UtilisationResult r;
        if (!a) {
          r.error = a.error().describe();
        } else {
          r = run_utilisation(**a, s, seed);
        }
        row.runs[static_cast<size_t>(s)].push_back(std::move(r));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// "best_fit,tlsf" -> those kinds; empty on an unknown name.
std::vector<Kind> parse_kinds(std::string_view list) {
  std::vector<Kind> kinds;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    const Kind* k = std::find_if(std::begin(kAllKinds), std::end(kAllKinds),
                                 [&](Kind c) { return kind_name(c) == name; });
    if (k == std::end(kAllKinds)) return {};
    kinds.push_back(*k);
  }
  return kinds;
}

constexpr const char* kUsage =
    "usage: pmm_bench_alloc [--quick] [--only best_fit,tlsf,boost-rbtree,multimap+map,"
    "multimap-scan] [--live N] [--no-utilisation] [--peer PATH.so]\n";

int run(int argc, char** argv) {
  Plan plan = full_plan();
  std::vector<Kind> only;
  bool utilisation_runs = true;
  uint64_t live_override = 0;
  bool peer = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      plan = quick_plan();
    } else if (std::strcmp(argv[i], "--no-utilisation") == 0) {
      utilisation_runs = false;
    } else if (std::strcmp(argv[i], "--live") == 0 && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0' || n == 0 || n > UINT32_MAX) {
        fmt::print(stderr, "pmm_bench_alloc: --live '{}': want a block count in 1..{}; {}", argv[i],
                   UINT32_MAX, kUsage);
        return 2;
      }
      live_override = n;
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = parse_kinds(argv[++i]);
      if (only.empty()) {
        fmt::print(stderr, "pmm_bench_alloc: --only '{}': unknown allocator; {}", argv[i], kUsage);
        return 2;
      }
    } else if (std::strcmp(argv[i], "--peer") == 0 && i + 1 < argc) {
      if (Status s = load_peer(argv[++i]); !s) {
        fmt::print(stderr, "pmm_bench_alloc: --peer: {}\n", s.error().describe());
        return 2;
      }
      peer = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      fmt::print("{}", kUsage);
      return 0;
    } else {
      fmt::print(stderr, "pmm_bench_alloc: unknown argument '{}'; {}", argv[i], kUsage);
      return 2;
    }
  }
  if (!only.empty()) plan.kinds = only;
  if (peer) plan.kinds.push_back(Kind::kPeer);
  if (live_override != 0) plan.lives = {live_override};
  const Timer timer = Timer::calibrate();
  const std::vector<LatencyRow> latency = run_latency_tables(plan, timer);
  const std::vector<UtilisationRow> utilisation =
      utilisation_runs ? run_utilisation_tables(plan) : std::vector<UtilisationRow>{};
  print_report(stdout, timer, plan.quick, latency, utilisation);
  return 0;
}

}  // namespace
}  // namespace pmm::bench

int main(int argc, char** argv) { return pmm::bench::run(argc, argv); }
