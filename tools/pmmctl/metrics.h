// pmmctl's live views of the daemon: `pmmctl metrics` (Prometheus text
// exposition format 0.0.4, for node_exporter's textfile collector or a
// scraper) and `pmmctl top` (a refreshing table of pools, devices, sessions
// and request rates).
//
// Both are built from one DaemonSample: Stats, the device and session
// listings (filtered by who asks, docs/protocol.md "Who sees what") and,
// for admins, the daemon's request counters. Rates in `top` come from two
// samples: (count now - count before) / seconds between them.
//
// Usage:
//   auto a = pmmctl::take_sample(conn);  ... sleep ...  auto b = take_sample(conn);
//   fmt::print("{}", pmmctl::render_top(&*a, *b));
//   fmt::print("{}", pmmctl::render_prometheus(*b));
//
// Thread safety: pure functions (take_sample uses the connection it is given).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "client/connection.h"
#include "proto/messages.h"

namespace pmmctl {

struct DaemonSample {
  std::chrono::steady_clock::time_point at{};
  std::string socket;
  std::string daemon_version;
  pmm::proto::StatsReply stats{};
  std::vector<pmm::proto::DeviceEntry> devices{};
  std::vector<pmm::proto::SessionEntry> sessions{};
  // The request counters, or why not (a non-admin is refused them).
  std::optional<pmm::proto::MetricsReply> metrics{};
  std::string metrics_refused{};
};

// Stats, devices, sessions and (when allowed) metrics. An error from any
// but the metrics request fails the sample; a kPermission on the metrics
// is kept in metrics_refused.
[[nodiscard]] pmm::Result<DaemonSample> take_sample(pmm::client::Connection& c);

// Every counter as Prometheus text (format 0.0.4): HELP and TYPE before
// each family, labels escaped. Needs sample.metrics.
[[nodiscard]] std::string render_prometheus(const DaemonSample& sample);
// A label value as the format writes it: \ " and newline escaped.
[[nodiscard]] std::string prometheus_label(std::string_view value);

// One screen of `pmmctl top`; rates when `before` is given.
[[nodiscard]] std::string render_top(const DaemonSample* before, const DaemonSample& now);

}  // namespace pmmctl
