// Per-stage CPU accounting of the streaming pipeline; see stats.h.
#include "stream/stats.h"

#include <fmt/format.h>

#include <cstdio>
#include <ctime>

namespace examples {
namespace {

double ms(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) * 1e3 + static_cast<double>(tv.tv_usec) / 1e3;
}

}  // namespace

StreamStats::StreamStats(std::string stage) : stage_(std::move(stage)) {}

double StreamStats::thread_cpu_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

void StreamStats::begin() {
  setup_ms_ = std::chrono::duration<double, std::milli>(Clock::now() - created_).count();
  ::getrusage(RUSAGE_SELF, &begin_usage_);
}

void StreamStats::frame_done() {
  last_done_ = Clock::now();
  if (frames_++ == 0) first_done_ = last_done_;
}

void StreamStats::print_if(bool enabled) {
  if (!enabled) return;
  rusage end{};
  ::getrusage(RUSAGE_SELF, &end);
  const double cpu =
      ms(end.ru_utime) + ms(end.ru_stime) - ms(begin_usage_.ru_utime) - ms(begin_usage_.ru_stime);
  const double span = std::chrono::duration<double, std::milli>(last_done_ - first_done_).count();
  fmt::print(stderr,
             "stream stage={} frames={} cpu_ms={:.3f} work_cpu_ms={:.3f} work_ms={:.3f} "
             "span_ms={:.3f} setup_ms={:.3f} minflt={}\n",
             stage_, frames_, cpu, work_cpu_ms_, work_ms_, span, setup_ms_,
             end.ru_minflt - begin_usage_.ru_minflt);
  std::fflush(stderr);
}

}  // namespace examples
