// What each stage of a streaming pipeline measures, printed as one line on
// stderr at the end so that demo.sh can put pmm and the copying baseline side
// by side:
//
//   stream stage=scale frames=120 cpu_ms=… work_cpu_ms=… work_ms=… span_ms=… setup_ms=… minflt=…
//
// cpu_ms       the process's user + system CPU (getrusage) from the first
//              frame's wait to the end: everything the stage spent, copies
//              through a pipe (system time) and page faults included, and
//              nothing for waiting (a blocked process uses no CPU)
// work_cpu_ms  this thread's CPU inside work(): making the frame, scaling,
//              drawing (for the display stage the X server draws; the
//              client's share is sending the request and waiting)
// work_ms      wall time inside work()
// span_ms      wall time from the first frame finished to the last: the
//              steady-state rate is (frames - 1) / span
// setup_ms     once per process: connecting, decoding the card, the ring
// minflt       minor page faults during the frames
//
// overhead = cpu_ms - work_cpu_ms: the CPU a stage spends on anything but its
// work — receiving and handing on frames, notifications, faults.
//
//   examples::StreamStats stats("scale");
//   ... setup ...; stats.begin();
//   for (...) { ...; stats.work([&] { scale(...); }); ...; stats.frame_done(); }
//   stats.print_if(enabled);
//
// One StreamStats per process, used from its main thread.
#ifndef EXAMPLES_STREAM_STATS_H_
#define EXAMPLES_STREAM_STATS_H_

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace examples {

class StreamStats {
 public:
  explicit StreamStats(std::string stage);

  // Ends setup and starts counting the frames' CPU.
  void begin();

  template <typename F>
  decltype(auto) work(F&& f) {
    const double cpu0 = thread_cpu_ms();
    const auto t0 = Clock::now();
    struct Account {
      StreamStats* s;
      double cpu0;
      Clock::time_point t0;
      ~Account() {
        s->work_cpu_ms_ += thread_cpu_ms() - cpu0;
        s->work_ms_ += std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      }
    } account{this, cpu0, t0};
    return f();
  }

  void frame_done();

  [[nodiscard]] uint64_t frames() const { return frames_; }

  // Stops the clocks (once) and prints the line if `enabled`.
  void print_if(bool enabled);

 private:
  using Clock = std::chrono::steady_clock;
  static double thread_cpu_ms();

  std::string stage_;
  Clock::time_point created_ = Clock::now();
  double setup_ms_ = 0;
  rusage begin_usage_{};
  double work_cpu_ms_ = 0;
  double work_ms_ = 0;
  uint64_t frames_ = 0;
  Clock::time_point first_done_{};
  Clock::time_point last_done_{};
};

}  // namespace examples

#endif  // EXAMPLES_STREAM_STATS_H_
