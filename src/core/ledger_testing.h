// Test helpers for the ledger: real pools on real memory, and a fake clock.
//
// For tests only (header-only; pmm_add_layer builds only *.cc into the
// library). The pools are real: shmem regions are memfds, sysv regions real
// SysV segments, so what the tests check is what the daemon runs.
//
// Usage:
//   auto l = make_ledger({{"general", 16 << 20}}, {});
//   FakeClock clock; clock.advance(std::chrono::seconds(1)); clock.now();
//
// Thread safety: one test thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/ledger.h"

namespace pmm::core::testing {

struct PoolSpec {
  std::string name;
  uint64_t size = 0;
  mem::MemoryType type = mem::MemoryType::kShmem;
  PoolAccess access{.everyone = true};  // tests open pools unless they test access
  std::string strategy = "best_fit";
};

inline std::unique_ptr<Ledger> make_ledger(const std::vector<PoolSpec>& specs,
                                           std::vector<DeviceConfig> devices,
                                           LedgerOptions options = {}) {
  std::vector<LedgerPool> pools;
  for (const auto& s : specs) {
    auto p = Pool::create(PoolOptions{
        .name = s.name, .region = {.type = s.type, .size = s.size}, .strategy = s.strategy});
    if (!p) {
      ADD_FAILURE() << "pool " << s.name << ": " << p.error().describe();
      return nullptr;
    }
    pools.push_back(LedgerPool{.pool = std::move(*p), .access = s.access});
  }
  auto l = Ledger::create(std::move(pools), std::move(devices), options);
  if (!l) {
    ADD_FAILURE() << l.error().describe();
    return nullptr;
  }
  return std::move(*l);
}

// Time that moves only when told to: tests of expiry never sleep.
class FakeClock {
 public:
  [[nodiscard]] SteadyTime now() const { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  SteadyTime now_ = SteadyTime{} + std::chrono::hours(1);
};

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * 1024;

// Sum of references held on block `b`, from the admin view; 0 if gone.
inline uint64_t references(const Ledger& l, BlockId b) {
  for (const auto& v : l.blocks()) {
    if (v.info.id == b) return v.references;
  }
  return 0;
}

}  // namespace pmm::core::testing
