// See views.h. Every view is built from the daemon's own records (proto
// structs), so pmmctl never computes a number the daemon did not report.
#include "views.h"

#include <fmt/format.h>

#include <limits>

#include "base/units.h"
#include "table.h"

namespace pmmctl {
namespace {

using nlohmann::json;
namespace proto = pmm::proto;

constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

std::string phys_text(uint64_t phys) { return phys ? fmt::format("{:#x}", phys) : "-"; }
std::string phys_text(const proto::BlockEntry& b) {
  return b.phys_hidden ? "hidden" : phys_text(b.phys);
}
json phys_json(uint64_t phys) { return phys ? json(phys) : json(nullptr); }

std::string finish(const json& j) { return j.dump(2) + "\n"; }

std::string pool_name(const std::vector<proto::PoolInfo>& pools, uint32_t index) {
  for (const auto& p : pools)
    if (p.index == index) return p.name;
  return fmt::format("#{}", index);
}

std::string holder_text(const proto::Holder& h) {
  std::string who =
      h.device.empty() ? fmt::format("pid {}", h.pid) : fmt::format("{}, pid {}", h.device, h.pid);
  switch (h.kind) {
    case proto::HolderKind::kSession:
      return fmt::format("session {} ({}) x{}", h.id, who, h.references);
    case proto::HolderKind::kExport:
      // Only the exporter's uid is shown token bits (docs/protocol.md).
      if (h.token_shown) return fmt::format("export {:016x}... ({})", h.id, who);
      return fmt::format("export, token hidden ({}, uid {}, {} import(s) left, {} ms left)", who,
                         h.uid, h.imports_left, h.expires_ms);
    case proto::HolderKind::kSysvExport:
      return fmt::format("sysv export by session {} ({})", h.id, who);
  }
  return "?";
}

}  // namespace

json pool_json(const proto::PoolInfo& p) {
  return json{{"index", p.index},
              {"name", p.name},
              {"type", std::string(proto::pool_type_name(p.type))},
              {"size", p.size},
              {"page_size", p.page_size},
              {"used", p.bytes_used},
              {"free", p.bytes_free},
              {"largest_free", p.largest_free},
              {"free_extents", p.free_extents},
              {"blocks", p.live_blocks},
              {"physical", p.has_physical},
              {"strategy", p.strategy},
              {"accessible", p.accessible},
              {"state", p.state}};
}

std::string render_status(const StatusView& s, Format f) {
  const proto::StatsReply& st = s.stats;
  if (f == Format::kJson) {
    json pools = json::array();
    for (const auto& p : st.pools) pools.push_back(pool_json(p));
    json refused = json::object();
    for (const auto& r : st.refused) refused[r.cause] = r.count;
    return finish(json{{"socket", s.socket},
                       {"daemon", s.daemon_version},
                       {"sessions", st.sessions},
                       {"blocks", st.blocks},
                       {"bytes", st.bytes},
                       {"exports", st.exports},
                       {"pools", pools},
                       {"refused", refused}});
  }
  std::string out = fmt::format("{} at {}\n", s.daemon_version, s.socket);
  out += fmt::format("sessions  {}\n", st.sessions);
  out += fmt::format("blocks    {} ({})\n", st.blocks, pmm::format_size(st.bytes));
  out += fmt::format("exports   {}\n", st.exports);
  out += fmt::format("pools     {}\n", st.pools.size());
  for (const auto& p : st.pools) {
    double pct =
        p.size ? 100.0 * static_cast<double>(p.bytes_used) / static_cast<double>(p.size) : 0.0;
    out += fmt::format("  {} ({}): {} of {} used ({:.1f}%), {} blocks\n", p.name,
                       proto::pool_type_name(p.type), pmm::format_size(p.bytes_used),
                       pmm::format_size(p.size), pct, p.live_blocks);
  }
  // Connections and requests refused since the daemon started, by cause.
  if (!st.refused.empty()) {
    std::string causes;
    for (const auto& r : st.refused)
      causes += fmt::format("{}{} {}", causes.empty() ? "" : ", ", r.cause, r.count);
    out += fmt::format("refused   {}\n", causes);
  }
  return out;
}

std::string render_pools(const std::vector<proto::PoolInfo>& pools, Format f) {
  if (f == Format::kJson) {
    json a = json::array();
    for (const auto& p : pools) a.push_back(pool_json(p));
    return finish(a);
  }
  if (pools.empty()) return "no pools\n";
  Table t({{"NAME"},
           {"TYPE"},
           {"SIZE", Table::kRight},
           {"USED", Table::kRight},
           {"FREE", Table::kRight},
           {"LARGEST FREE", Table::kRight},
           {"BLOCKS", Table::kRight},
           {"PAGE", Table::kRight},
           {"STRATEGY"},
           {"PHYS"},
           {"ACCESS"},
           {"STATE"}});
  for (const auto& p : pools)
    t.add({p.name, std::string(proto::pool_type_name(p.type)), pmm::format_size(p.size),
           pmm::format_size(p.bytes_used), pmm::format_size(p.bytes_free),
           pmm::format_size(p.largest_free), std::to_string(p.live_blocks),
           pmm::format_size(p.page_size), p.strategy, p.has_physical ? "yes" : "no",
           p.accessible ? "yes" : "no", p.state});
  return t.render();
}

std::string render_blocks(const std::vector<proto::BlockEntry>& blocks,
                          const std::vector<proto::PoolInfo>& pools, Format f) {
  if (f == Format::kJson) {
    json a = json::array();
    for (const auto& b : blocks) {
      json holders = json::array();
      for (const auto& h : b.holders) {
        json holder = {{"kind", std::string(proto::holder_kind_name(h.kind))},
                       {"id", h.id},
                       {"pid", h.pid},
                       {"uid", h.uid},
                       {"device", h.device},
                       {"references", h.references}};
        if (h.kind == proto::HolderKind::kExport) {
          // What a script can match against the token it holds; null when
          // the token is not the asker's uid's to see.
          holder["token_prefix"] =
              h.token_shown ? json(fmt::format("{:016x}", h.id)) : json(nullptr);
          holder["imports_left"] = h.imports_left;
          holder["expires_ms"] = h.expires_ms;
        }
        holders.push_back(std::move(holder));
      }
      a.push_back({{"id", b.id},
                   {"pool", pool_name(pools, b.pool_index)},
                   {"pool_index", b.pool_index},
                   {"offset", b.offset},
                   {"size", b.size},
                   {"phys", phys_json(b.phys)},
                   {"phys_hidden", b.phys_hidden},
                   {"refcount", b.refcount},
                   {"holders", holders},
                   {"holders_omitted", b.holders_omitted}});
    }
    return finish(a);
  }
  if (blocks.empty()) return "no blocks\n";
  Table t({{"ID", Table::kRight},
           {"POOL"},
           {"OFFSET", Table::kRight},
           {"SIZE", Table::kRight},
           {"PHYS", Table::kRight},
           {"REFS", Table::kRight},
           {"HOLDERS"}});
  for (const auto& b : blocks) {
    std::string holders;
    for (const auto& h : b.holders) holders += (holders.empty() ? "" : "; ") + holder_text(h);
    if (b.holders_omitted)
      holders += fmt::format("{}{} more not shown", holders.empty() ? "" : "; ", b.holders_omitted);
    t.add({std::to_string(b.id), pool_name(pools, b.pool_index), fmt::format("{:#x}", b.offset),
           pmm::format_size(b.size), phys_text(b), std::to_string(b.refcount), holders});
  }
  return t.render();
}

std::string render_sessions(const std::vector<proto::SessionEntry>& sessions, Format f) {
  if (f == Format::kJson) {
    json a = json::array();
    for (const auto& s : sessions)
      a.push_back({{"id", s.id},
                   {"pid", s.pid},
                   {"uid", s.uid},
                   {"gid", s.gid},
                   {"device", s.device},
                   {"blocks", s.blocks_held},
                   {"references", s.references},
                   {"bytes", s.bytes_held}});
    return finish(a);
  }
  if (sessions.empty()) return "no sessions\n";
  Table t({{"ID", Table::kRight},
           {"PID", Table::kRight},
           {"UID", Table::kRight},
           {"GID", Table::kRight},
           {"DEVICE"},
           {"BLOCKS", Table::kRight},
           {"REFS", Table::kRight},
           {"HELD", Table::kRight}});
  for (const auto& s : sessions)
    t.add({std::to_string(s.id), std::to_string(s.pid), std::to_string(s.uid),
           std::to_string(s.gid), s.device, std::to_string(s.blocks_held),
           std::to_string(s.references), pmm::format_size(s.bytes_held)});
  return t.render();
}

std::string render_devices(const std::vector<proto::DeviceEntry>& devices, Format f) {
  if (f == Format::kJson) {
    json a = json::array();
    for (const auto& d : devices)
      a.push_back({{"id", d.id},
                   {"name", d.name},
                   {"max", d.max == kNoLimit ? json(nullptr) : json(d.max)},
                   {"min", d.min},
                   {"used", d.used},
                   {"headroom", d.headroom == kNoLimit ? json(nullptr) : json(d.headroom)},
                   {"sessions", d.sessions}});
    return finish(a);
  }
  if (devices.empty()) return "no devices\n";
  Table t({{"NAME"},
           {"MAX", Table::kRight},
           {"MIN", Table::kRight},
           {"USED", Table::kRight},
           {"HEADROOM", Table::kRight},
           {"SESSIONS", Table::kRight}});
  for (const auto& d : devices)
    t.add({d.name, d.max == kNoLimit ? "none" : pmm::format_size(d.max),
           d.min == 0 ? "none" : pmm::format_size(d.min), pmm::format_size(d.used),
           d.headroom == kNoLimit ? "unlimited" : pmm::format_size(d.headroom),
           std::to_string(d.sessions)});
  return t.render();
}

}  // namespace pmmctl
