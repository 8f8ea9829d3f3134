/* Coverage for libFuzzer from GCC's instrumentation.
 *
 * GCC 12 instruments with -fsanitize-coverage=trace-pc (a call to
 * __sanitizer_cov_trace_pc at every basic block) and trace-cmp, but not with
 * clang's trace-pc-guard or inline 8-bit counters, and libFuzzer 14 refuses
 * trace-pc ("no longer supported"). So this file gives libFuzzer what it
 * does read: a table of 8-bit counters (__sanitizer_cov_8bit_counters_init),
 * bumped here at the slot the caller's PC hashes to. Collisions only merge
 * edges, as in AFL's map. The libFuzzer archive's own
 * __sanitizer_cov_trace_pc is weakened when it is copied into the build
 * (tests/fuzz/CMakeLists.txt), so this one is linked.
 *
 * Never instrumented itself (the flags are given to C++ sources only, and
 * no_sanitize_coverage besides): an instrumented hook would recurse.
 */
#include <stdint.h>

#define PMM_COVERAGE_SLOTS (1u << 16)

/* Weak: tools of the fuzz build that link instrumented code without
 * libFuzzer (pmm_fuzz_seeds) link this file too, and count for nobody. */
__attribute__((weak)) void __sanitizer_cov_8bit_counters_init(uint8_t* begin, uint8_t* end);

static uint8_t pmm_counters[PMM_COVERAGE_SLOTS];

__attribute__((constructor, no_sanitize_coverage)) static void pmm_coverage_init(void) {
  if (__sanitizer_cov_8bit_counters_init)
    __sanitizer_cov_8bit_counters_init(pmm_counters, pmm_counters + PMM_COVERAGE_SLOTS);
}

__attribute__((no_sanitize_address, no_sanitize_coverage)) void __sanitizer_cov_trace_pc(void) {
  uint64_t pc = (uint64_t)(uintptr_t)__builtin_return_address(0);
  pmm_counters[(pc * 0x9E3779B97F4A7C15ull) >> 48]++;
}

/* GCC's trace-cmp also reports float and double comparisons, which
 * libFuzzer has no hook for. */
void __sanitizer_cov_trace_cmpf(float a, float b) {
  (void)a;
  (void)b;
}
void __sanitizer_cov_trace_cmpd(double a, double b) {
  (void)a;
  (void)b;
}
