// pmm::os faults — the seam through which tests make system calls fail.
//
// Every wrapper in src/os/ that can fail for reasons a test cannot arrange
// from outside (the Nth mmap running out of address space, accept meeting a
// full fd table, a recvmsg interrupted by a signal) asks take_fault() first.
// When a test has armed a fault for that call, the wrapper behaves as if the
// kernel had returned the armed errno (or a short count) and goes on through
// its normal error path, so what the test sees is what a user would see.
//
// Design note (issue 9): a link-time seam would need a second build of every
// layer, and an Env-style interface threaded through every caller would
// change every signature in src/mem, src/daemon and src/client. A process-
// wide plan checked in the wrappers costs one relaxed atomic load per call
// when nothing is armed and reaches every caller, the daemon's thread and
// libpmm's alike, in the same process as the test.
//
// Usage (a test):
//   os::ScopedFault f(os::Call::kMmap, ENOMEM, /*nth=*/2);  // the 2nd mmap from now fails
//   auto r = do_something();                                 // sees ENOMEM
//   EXPECT_EQ(f.hits(), 1);
//
// Thread safety: arm and clear from any thread; wrappers on any thread.
// Counting starts when a fault is armed; calls made by other threads of the
// process (a daemon running in-process) count too, which is what a test
// wants when it arms "the next accept".
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

namespace pmm::os {

enum class Call : uint8_t { kMmap, kMemfdCreate, kShmget, kShmat, kAccept, kRecvmsg, kSendmsg };
inline constexpr int kCallCount = 7;

struct Fault {
  // The errno the call fails with; 0 with short_count.
  int err = 0;
  // Succeed but move fewer bytes than asked (recvmsg, sendmsg only): half,
  // rounded down; a received message is reported truncated (MSG_TRUNC).
  bool short_count = false;
};

// Arms `fault` for the calls of `call` numbered [nth, nth + times) counted
// from now (nth 1: the very next call). Replaces any plan for that call.
void inject_fault(Call call, Fault fault, uint64_t nth = 1, uint64_t times = 1);
// Forgets every plan.
void clear_faults();
// How many armed faults of `call` have fired since it was last armed.
[[nodiscard]] uint64_t fault_hits(Call call);

namespace detail {
// Plans armed; 0: take_fault's fast path.
extern std::atomic<int> g_faults_armed;
[[nodiscard]] std::optional<Fault> take_armed_fault(Call call);
}  // namespace detail

// For the wrappers: the fault this call must take, if any. Inline, so a
// process with nothing armed pays one relaxed load and no call (the
// request path asks four times per alloc+put on each side).
[[nodiscard]] inline std::optional<Fault> take_fault(Call call) {
  if (detail::g_faults_armed.load(std::memory_order_relaxed) == 0) [[likely]]
    return std::nullopt;
  return detail::take_armed_fault(call);
}

// Arms on construction, clears that call's plan on destruction.
class ScopedFault {
 public:
  ScopedFault(Call call, int err, uint64_t nth = 1, uint64_t times = 1) : call_(call) {
    inject_fault(call, Fault{.err = err}, nth, times);
  }
  ScopedFault(Call call, Fault fault, uint64_t nth = 1, uint64_t times = 1) : call_(call) {
    inject_fault(call, fault, nth, times);
  }
  ~ScopedFault();
  ScopedFault(const ScopedFault&) = delete;
  ScopedFault& operator=(const ScopedFault&) = delete;
  [[nodiscard]] uint64_t hits() const { return fault_hits(call_); }

 private:
  Call call_;
};

}  // namespace pmm::os
