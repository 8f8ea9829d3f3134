// Implementation of os/fault.h: one plan per call behind a mutex, and one
// atomic flag so that a process with nothing armed pays a relaxed load.
#include "os/fault.h"

#include <array>
#include <atomic>
#include <mutex>

namespace pmm::os {

std::atomic<int> detail::g_faults_armed{0};

namespace {

struct Plan {
  bool armed = false;
  Fault fault{};
  uint64_t seen = 0;   // calls since armed
  uint64_t first = 0;  // the first call (1-based) that fails
  uint64_t last = 0;   // the last one
  uint64_t hits = 0;
};

std::mutex g_mutex;
std::array<Plan, kCallCount> g_plans;

Plan& plan(Call call) { return g_plans[static_cast<size_t>(call)]; }

void disarm_locked(Plan& p) {
  if (p.armed) detail::g_faults_armed.fetch_sub(1, std::memory_order_relaxed);
  p.armed = false;
}

}  // namespace

void inject_fault(Call call, Fault fault, uint64_t nth, uint64_t times) {
  std::lock_guard lock(g_mutex);
  Plan& p = plan(call);
  disarm_locked(p);
  if (nth == 0) nth = 1;
  p = Plan{.armed = true, .fault = fault, .first = nth, .last = nth + times - 1};
  if (times == 0) {
    p.armed = false;
    return;
  }
  detail::g_faults_armed.fetch_add(1, std::memory_order_relaxed);
}

void clear_faults() {
  std::lock_guard lock(g_mutex);
  for (Plan& p : g_plans) disarm_locked(p);
}

uint64_t fault_hits(Call call) {
  std::lock_guard lock(g_mutex);
  return plan(call).hits;
}

std::optional<Fault> detail::take_armed_fault(Call call) {
  std::lock_guard lock(g_mutex);
  Plan& p = plan(call);
  if (!p.armed) return std::nullopt;
  const uint64_t n = ++p.seen;
  if (n < p.first || n > p.last) return std::nullopt;
  ++p.hits;
  if (n == p.last) {
    // Keep the hit count readable; stop counting.
    detail::g_faults_armed.fetch_sub(1, std::memory_order_relaxed);
    p.armed = false;
  }
  return p.fault;
}

ScopedFault::~ScopedFault() {
  std::lock_guard lock(g_mutex);
  disarm_locked(plan(call_));
}

}  // namespace pmm::os
