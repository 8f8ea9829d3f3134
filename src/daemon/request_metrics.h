// pmm::daemon::RequestMetrics — what pmmd counts about the requests it
// serves, for `pmmctl metrics` and `pmmctl top`: requests and error replies
// per message type, and a histogram of the time spent handling each one.
//
// The time is from the decoded request to the built reply (Service::handle
// and handle_hot: two clock reads per request), the daemon's own cost;
// socket time is not in it. Buckets are fixed and cumulative sums are left
// to the reader (MetricsReply sends per-bucket counts). Recording is two
// array increments and a bucket search over 16 bounds: nothing a client can
// make grow.
//
// Usage:
//   RequestMetrics m(std::chrono::steady_clock::now());
//   m.record(proto::MessageType::kAllocate, /*error=*/false, 1800ns);
//   proto::MetricsReply r = m.snapshot(now);
//
// Thread safety: none; the loop's thread owns it.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>

#include "proto/messages.h"

namespace pmm::daemon {

class RequestMetrics {
 public:
  // Upper bounds in nanoseconds: 1 us to 1 s, about 1-2.5-5 per decade.
  static constexpr std::array<uint64_t, 16> kBoundsNs = {
      1'000,      2'500,       5'000,       10'000,       25'000,    50'000,
      100'000,    250'000,     500'000,     1'000'000,    2'500'000, 10'000'000,
      25'000'000, 100'000'000, 250'000'000, 1'000'000'000};

  explicit RequestMetrics(std::chrono::steady_clock::time_point start) : start_(start) {}

  void record(proto::MessageType type, bool error, std::chrono::nanoseconds took) {
    const auto t = static_cast<size_t>(type);
    if (t < kTypes) {
      ++count_[t];
      if (error) ++errors_[t];
    }
    const auto ns = static_cast<uint64_t>(std::max<int64_t>(took.count(), 0));
    // The first bound >= ns, from the smallest: most requests take a few
    // microseconds, so this stops after a compare or two where a binary
    // search always took four.
    size_t b = 0;
    while (b < kBoundsNs.size() && kBoundsNs[b] < ns) ++b;
    ++buckets_[b];
    sum_ns_ += ns;
    ++total_;
  }

  [[nodiscard]] proto::MetricsReply snapshot(std::chrono::steady_clock::time_point now) const {
    proto::MetricsReply r;
    r.uptime_ms = static_cast<uint64_t>(std::max<int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - start_).count(), 0));
    for (size_t t = 0; t < kTypes && r.requests.size() < proto::kMaxRequestTypes; ++t) {
      if (count_[t] == 0) continue;
      r.requests.push_back(proto::RequestCount{
          .type = static_cast<uint16_t>(t), .count = count_[t], .errors = errors_[t]});
    }
    r.latency_bounds_ns.assign(kBoundsNs.begin(), kBoundsNs.end());
    r.latency_counts.assign(buckets_.begin(), buckets_.end());
    r.latency_sum_ns = sum_ns_;
    r.latency_count = total_;
    return r;
  }

 private:
  // Request type numbers are below 64 (docs/protocol.md); a larger one is
  // refused by the codec before it gets here, and would only go uncounted.
  static constexpr size_t kTypes = proto::kMaxRequestTypes;

  std::chrono::steady_clock::time_point start_;
  std::array<uint64_t, kTypes> count_{};
  std::array<uint64_t, kTypes> errors_{};
  std::array<uint64_t, kBoundsNs.size() + 1> buckets_{};
  uint64_t sum_ns_ = 0;
  uint64_t total_ = 0;
};

}  // namespace pmm::daemon
