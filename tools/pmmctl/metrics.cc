// See metrics.h. Metric names follow Prometheus' conventions: a pmm_ prefix,
// base units (bytes, seconds), _total on counters.
#include "metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>

#include "base/units.h"
#include "table.h"

namespace pmmctl {
namespace {

namespace proto = pmm::proto;
constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

// "ListPools" -> "list_pools": the request's label value.
std::string snake(std::string_view camel) {
  std::string out;
  for (char c : camel) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (!out.empty()) out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

std::string type_label(uint16_t type) {
  std::string_view name = proto::message_type_name(static_cast<proto::MessageType>(type));
  return name == "unknown" ? fmt::format("type_{}", type) : snake(name);
}

// HELP text: only \ and newline are escaped.
std::string help_text(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help_text(help), name, type);
  }
  // labels: {name, value} pairs, values escaped here.
  void sample(std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              std::string_view value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        out_ += fmt::format("{}{}=\"{}\"", first ? "" : ",", k, prometheus_label(v));
        first = false;
      }
      out_ += '}';
    }
    out_ += fmt::format(" {}\n", value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string num(uint64_t v) { return v == kNoLimit ? "+Inf" : std::to_string(v); }
std::string seconds(double s) { return fmt::format("{}", s); }

}  // namespace

std::string prometheus_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

pmm::Result<DaemonSample> take_sample(pmm::client::Connection& c) {
  DaemonSample s;
  s.socket = c.socket_path();
  s.daemon_version = c.daemon_version();
  auto st = c.stats();
  if (!st) return std::unexpected(st.error());
  s.stats = std::move(*st);
  auto d = c.list_devices();
  if (!d) return std::unexpected(d.error());
  s.devices = std::move(*d);
  auto ss = c.list_sessions();
  if (!ss) return std::unexpected(ss.error());
  s.sessions = std::move(*ss);
  auto m = c.metrics();
  if (m) {
    s.metrics = std::move(*m);
  } else if (m.error().code == pmm::Errc::kPermission) {
    s.metrics_refused = m.error().message;
  } else {
    return std::unexpected(m.error());
  }
  s.at = std::chrono::steady_clock::now();
  return s;
}

std::string render_prometheus(const DaemonSample& s) {
  Exposition e;
  const proto::MetricsReply& m = *s.metrics;
  const proto::StatsReply& st = s.stats;

  e.family("pmm_uptime_seconds", "gauge", "Seconds since pmmd started.");
  e.sample("pmm_uptime_seconds", {}, seconds(double(m.uptime_ms) / 1000.0));
  e.family("pmm_sessions", "gauge", "Client sessions connected now.");
  e.sample("pmm_sessions", {}, num(st.sessions));
  e.family("pmm_blocks", "gauge", "Live blocks, all pools.");
  e.sample("pmm_blocks", {}, num(st.blocks));
  e.family("pmm_block_bytes", "gauge", "Bytes in live blocks, all pools.");
  e.sample("pmm_block_bytes", {}, num(st.bytes));
  e.family("pmm_exports", "gauge", "Live export tokens and SysV exports.");
  e.sample("pmm_exports", {}, num(st.exports));

  struct PoolFigure {
    const char* name;
    const char* help;
    uint64_t proto::PoolInfo::*field;
  };
  const PoolFigure figures[] = {
      {"pmm_pool_size_bytes", "Size of the pool.", &proto::PoolInfo::size},
      {"pmm_pool_used_bytes", "Bytes of the pool in live blocks.", &proto::PoolInfo::bytes_used},
      {"pmm_pool_free_bytes", "Free bytes of the pool.", &proto::PoolInfo::bytes_free},
      {"pmm_pool_largest_free_bytes",
       "Largest free extent: the largest block the pool can give now.",
       &proto::PoolInfo::largest_free},
      {"pmm_pool_free_extents", "Free extents (pieces of free space) in the pool.",
       &proto::PoolInfo::free_extents},
      {"pmm_pool_blocks", "Live blocks in the pool.", &proto::PoolInfo::live_blocks},
  };
  for (const PoolFigure& f : figures) {
    e.family(f.name, "gauge", f.help);
    for (const proto::PoolInfo& p : st.pools) {
      e.sample(f.name, {{"pool", p.name}, {"type", proto::pool_type_name(p.type)}},
               num(p.*f.field));
    }
  }
  e.family("pmm_pool_degraded", "gauge",
           "1 when clients punched the pool's memory (pmmctl pools shows the state).");
  for (const proto::PoolInfo& p : st.pools)
    e.sample("pmm_pool_degraded", {{"pool", p.name}, {"type", proto::pool_type_name(p.type)}},
             p.state == "ok" ? "0" : "1");

  struct DeviceFigure {
    const char* name;
    const char* help;
    uint64_t (*value)(const proto::DeviceEntry&);
  };
  const DeviceFigure devs[] = {
      {"pmm_device_used_bytes", "Bytes charged to the device.",
       [](const proto::DeviceEntry& d) { return d.used; }},
      {"pmm_device_max_bytes", "The device's limit (max); +Inf when it has none.",
       [](const proto::DeviceEntry& d) { return d.max; }},
      {"pmm_device_min_bytes", "The device's guarantee (min); 0 when it has none.",
       [](const proto::DeviceEntry& d) { return d.min; }},
      {"pmm_device_headroom_bytes", "What the device may still take now; +Inf without a limit.",
       [](const proto::DeviceEntry& d) { return d.headroom; }},
      {"pmm_device_sessions", "Sessions connected as the device.",
       [](const proto::DeviceEntry& d) { return uint64_t{d.sessions}; }},
  };
  for (const DeviceFigure& f : devs) {
    e.family(f.name, "gauge", f.help);
    for (const proto::DeviceEntry& d : s.devices)
      e.sample(f.name, {{"device", d.name}}, num(f.value(d)));
  }

  e.family("pmm_refusals_total", "counter",
           "Connections and requests pmmd refused, by cause (the rule or error that refused).");
  for (const proto::RefusalCount& r : st.refused)
    e.sample("pmm_refusals_total", {{"cause", r.cause}}, num(r.count));

  e.family("pmm_requests_total", "counter", "Requests served, by message type.");
  for (const proto::RequestCount& r : m.requests)
    e.sample("pmm_requests_total", {{"type", type_label(r.type)}}, num(r.count));
  e.family("pmm_request_errors_total", "counter",
           "Requests answered with an error, by message type.");
  for (const proto::RequestCount& r : m.requests)
    e.sample("pmm_request_errors_total", {{"type", type_label(r.type)}}, num(r.errors));

  e.family("pmm_request_duration_seconds", "histogram",
           "Time pmmd spent handling a request, from the decoded request to its reply.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < m.latency_bounds_ns.size(); ++i) {
    cumulative += m.latency_counts[i];
    const std::string le = seconds(double(m.latency_bounds_ns[i]) / 1e9);
    e.sample("pmm_request_duration_seconds_bucket", {{"le", le}}, num(cumulative));
  }
  e.sample("pmm_request_duration_seconds_bucket", {{"le", "+Inf"}}, num(m.latency_count));
  e.sample("pmm_request_duration_seconds_sum", {}, seconds(double(m.latency_sum_ns) / 1e9));
  e.sample("pmm_request_duration_seconds_count", {}, num(m.latency_count));
  return e.take();
}

// ---- top -------------------------------------------------------------------------

namespace {

// The bound below which `q` of the requests in `counts` fall ("<= 25 us").
std::string quantile(const proto::MetricsReply& m, const std::vector<uint64_t>& counts, double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return "-";
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (double(seen) >= q * double(total)) {
      if (i == m.latency_bounds_ns.size()) return "> 1 s";
      const uint64_t ns = m.latency_bounds_ns[i];
      if (ns < 1'000'000) return fmt::format("<= {} us", double(ns) / 1e3);
      return fmt::format("<= {} ms", double(ns) / 1e6);
    }
  }
  return "-";
}

}  // namespace

std::string render_top(const DaemonSample* before, const DaemonSample& now) {
  const proto::StatsReply& st = now.stats;
  const double dt = before ? std::chrono::duration<double>(now.at - before->at).count() : 0.0;
  std::string o = fmt::format(
      "{} on {}: {} session(s), {} block(s) ({}), {} export(s){}\n\n", now.daemon_version,
      now.socket, st.sessions, st.blocks, pmm::format_size(st.bytes), st.exports,
      now.metrics ? fmt::format(", up {:.0f} s", double(now.metrics->uptime_ms) / 1000.0) : "");

  Table pools({{"POOL"},
               {"TYPE"},
               {"SIZE", Table::kRight},
               {"USED", Table::kRight},
               {"USED%", Table::kRight},
               {"FREE", Table::kRight},
               {"LARGEST FREE", Table::kRight},
               {"FREE EXTENTS", Table::kRight},
               {"FRAG", Table::kRight},
               {"BLOCKS", Table::kRight},
               {"STATE"}});
  for (const proto::PoolInfo& p : st.pools) {
    const double frag =
        p.bytes_free == 0 ? 0.0 : 1.0 - double(p.largest_free) / double(p.bytes_free);
    pools.add({p.name, std::string(proto::pool_type_name(p.type)), pmm::format_size(p.size),
               pmm::format_size(p.bytes_used),
               fmt::format("{:.1f}", p.size ? 100.0 * double(p.bytes_used) / double(p.size) : 0.0),
               pmm::format_size(p.bytes_free), pmm::format_size(p.largest_free),
               std::to_string(p.free_extents), fmt::format("{:.2f}", frag),
               std::to_string(p.live_blocks), p.state});
  }
  o += pools.render() + "\n";

  Table devs({{"DEVICE"},
              {"USED", Table::kRight},
              {"MAX", Table::kRight},
              {"MIN", Table::kRight},
              {"HEADROOM", Table::kRight},
              {"SESSIONS", Table::kRight}});
  for (const proto::DeviceEntry& d : now.devices) {
    devs.add({d.name, pmm::format_size(d.used),
              d.max == kNoLimit ? "none" : pmm::format_size(d.max),
              d.min == 0 ? "none" : pmm::format_size(d.min),
              d.headroom == kNoLimit ? "unlimited" : pmm::format_size(d.headroom),
              std::to_string(d.sessions)});
  }
  if (devs.rows() > 0) o += devs.render() + "\n";

  // The sessions holding most, at most ten: top is a glance, `pmmctl
  // sessions` the full list.
  std::vector<const proto::SessionEntry*> by_bytes;
  for (const auto& s : now.sessions) by_bytes.push_back(&s);
  std::stable_sort(by_bytes.begin(), by_bytes.end(),
                   [](auto* a, auto* b) { return a->bytes_held > b->bytes_held; });
  Table sess({{"SESSION", Table::kRight},
              {"PID", Table::kRight},
              {"UID", Table::kRight},
              {"DEVICE"},
              {"BLOCKS", Table::kRight},
              {"HELD", Table::kRight}});
  for (size_t i = 0; i < by_bytes.size() && i < 10; ++i) {
    const auto& s = *by_bytes[i];
    sess.add({std::to_string(s.id), std::to_string(s.pid), std::to_string(s.uid), s.device,
              std::to_string(s.blocks_held), pmm::format_size(s.bytes_held)});
  }
  o += fmt::format("sessions you may see: {}{}\n", now.sessions.size(),
                   now.sessions.size() > 10 ? " (the 10 holding most below)" : "");
  o += sess.render() + "\n";

  if (!st.refused.empty()) {
    o += "refused since start:";
    for (const auto& r : st.refused) o += fmt::format(" {}={}", r.cause, r.count);
    o += "\n\n";
  }
  if (!now.metrics) {
    o += "request rates: not shown; " + now.metrics_refused + "\n";
    return o;
  }
  const proto::MetricsReply& m = *now.metrics;
  if (before == nullptr || !before->metrics || dt <= 0) {
    o += "request rates: after the next sample\n";
    return o;
  }
  const proto::MetricsReply& b = *before->metrics;
  std::map<uint16_t, std::pair<uint64_t, uint64_t>> was;
  for (const auto& r : b.requests) was[r.type] = {r.count, r.errors};
  Table reqs({{"REQUEST"},
              {"PER SECOND", Table::kRight},
              {"ERRORS/S", Table::kRight},
              {"TOTAL", Table::kRight}});
  for (const auto& r : m.requests) {
    auto [count, errors] = was[r.type];
    reqs.add({type_label(r.type), fmt::format("{:.1f}", double(r.count - count) / dt),
              fmt::format("{:.1f}", double(r.errors - errors) / dt), std::to_string(r.count)});
  }
  std::vector<uint64_t> delta(m.latency_counts.size(), 0);
  for (size_t i = 0; i < delta.size() && i < b.latency_counts.size(); ++i)
    delta[i] = m.latency_counts[i] - b.latency_counts[i];
  o += fmt::format("requests over the last {:.1f} s (including top's own): p50 {}, p99 {}\n", dt,
                   quantile(m, delta, 0.5), quantile(m, delta, 0.99));
  o += reqs.render();
  return o;
}

}  // namespace pmmctl
