// Per-stage timings of the pipeline, printed as one machine-readable line on
// stderr so that demo.sh can put the pmm and the copying pipelines side by
// side:
//
//   timing stage=scale setup_ms=0.4 in_ms=0.210 work_ms=3.870 out_ms=0.095
//
// setup  what a process pays once, not per frame: connecting to pmmd, to the
//        X server, creating the window
// in     getting the input frame and the output's memory (import a token /
//        read the pixels from a pipe; allocate / malloc the output)
// work   decoding, scaling or drawing it
// out    handing the output on (export + print a token / write the pixels)
//
//   examples::StageTimer timer("scale");
//   ... timer.lap(examples::Phase::kIn); ... timer.lap(examples::Phase::kWork);
//   timer.print_if(enabled);
//
// One StageTimer per thread.
#ifndef EXAMPLES_COMMON_TIMING_H_
#define EXAMPLES_COMMON_TIMING_H_

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

namespace examples {

enum class Phase { kSetup = 0, kIn = 1, kWork = 2, kOut = 3 };

class StageTimer {
 public:
  explicit StageTimer(std::string stage) : stage_(std::move(stage)) {}

  // Starts (or restarts) the clock: what happened before is not counted,
  // e.g. a consumer waiting for its producer to write the frame line.
  void start() { last_ = Clock::now(); }

  // Adds the time since the previous lap (or start) to `phase`.
  void lap(Phase phase) {
    const auto now = Clock::now();
    ms_[static_cast<size_t>(phase)] +=
        std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
  }

  void print_if(bool enabled) const {
    if (!enabled) return;
    fmt::print(stderr,
               "timing stage={} setup_ms={:.3f} in_ms={:.3f} work_ms={:.3f} out_ms={:.3f}\n",
               stage_, ms_[0], ms_[1], ms_[2], ms_[3]);
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string stage_;
  Clock::time_point last_ = Clock::now();
  std::array<double, 4> ms_{};
};

}  // namespace examples

#endif  // EXAMPLES_COMMON_TIMING_H_
