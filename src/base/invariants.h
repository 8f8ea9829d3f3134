// Invariant checks at run time: mimalloc's mi_assert_internal habit.
//
// Builds with the CMake option PMM_CHECK_INVARIANTS (on by default in Debug
// builds, so in the `debug` and `asan` presets) re-check the allocator after every
// Pool::allocate/release and the whole ledger after every mutating Ledger
// call, and abort with the first violation: a broken count is caught at
// the operation that broke it, not three requests later in a crash. Other
// builds compile every check away (kCheckInvariants is false).
//
// Cost: a full check is O(records). So that the sanitizer test suite stays
// quick even when a test holds 100k blocks, InvariantCadence runs it after
// every operation while the object holds at most kEveryOperation records,
// and beyond that once every records / kEveryOperation operations: the
// cost per operation stays O(kEveryOperation) amortised, and a violation
// is still reported within a bounded number of operations.
//
// Usage (inside a mutating member function):
//   PMM_CHECK_ON_EXIT("Ledger::put", checks_, blocks_.size(), check_invariants());
//
// Thread safety: an InvariantCadence belongs to the object it paces (one
// owner thread, like the object).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "base/error.h"
#include "base/invariants_config.h"  // kCheckInvariants, from the CMake option

namespace pmm {

// Prints "pmm: invariant violated after OP: MESSAGE" to stderr and aborts.
[[noreturn]] void invariant_violated(std::string_view op, const Error& e);

class InvariantCadence {
 public:
  static constexpr size_t kEveryOperation = 64;

  // One more operation over an object of `records` records: is a full
  // check due now?
  [[nodiscard]] bool due(size_t records) {
    ++ops_;
    if (records <= kEveryOperation) return true;
    return ops_ % (records / kEveryOperation + 1) == 0;
  }
  [[nodiscard]] uint64_t operations() const { return ops_; }

 private:
  uint64_t ops_ = 0;
};

// Runs `check` (returning Status) when the scope ends, when the cadence
// says a check is due for `records` (a callable returning size_t, read at
// that time). Covers every return path, failed operations included: a
// refusal must leave the books as consistent as a success does.
template <typename Records, typename Check>
class CheckOnExit {
 public:
  CheckOnExit(std::string_view op, InvariantCadence& cadence, Records records, Check check)
      : op_(op), cadence_(cadence), records_(std::move(records)), check_(std::move(check)) {}
  ~CheckOnExit() {
    if constexpr (kCheckInvariants) {
      if (cadence_.due(records_())) {
        if (auto s = check_(); !s) invariant_violated(op_, s.error());
      }
    }
  }
  CheckOnExit(const CheckOnExit&) = delete;
  CheckOnExit& operator=(const CheckOnExit&) = delete;

 private:
  std::string_view op_;
  InvariantCadence& cadence_;
  Records records_;
  Check check_;
};

}  // namespace pmm

// Declares a CheckOnExit for the rest of the enclosing scope. `records` and
// `check` are expressions evaluated at scope exit (captured by reference).
#define PMM_CHECK_ON_EXIT(op, cadence, records, check)                                         \
  ::pmm::CheckOnExit pmm_check_on_exit_ {                                                      \
    op, cadence, [&]() -> size_t { return records; }, [&]() -> ::pmm::Status { return check; } \
  }
