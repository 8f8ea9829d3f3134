// TOML config parsing with positions in every error; see config.h.
#include "daemon/config.h"

#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include <unistd.h>

#include <toml++/toml.h>

#include "alloc/strategy.h"
#include "base/units.h"
#include "mem/sysv_region.h"

namespace pmm::daemon {

namespace {

// A block record costs pmmd a few hundred bytes (docs/config.md); a smaller
// granule would let a client make it hold more than it lends.
constexpr uint64_t kMinBlockGranule = 1024;

constexpr std::string_view kDefaultText =
    R"(# pmmd's built-in configuration, used when no --config is given.
# Both pools are for pmmd's own user (and root) only: a pool's users can
# read and write each other's blocks, so opening one to other users is a
# decision written in a config file (everyone = true, or uids/gids).
# The display pool's SysV segment gets its owner, group and mode from the
# pool's access, so that exactly its users (and an X server acting for
# them) can attach it.

[pools.general]
type = "shmem"
size = "256MiB"

[pools.display]
type = "sysv"
size = "64MiB"
)";

constexpr std::array<std::string_view, 13> kPoolKeys{
    "type",     "size", "strategy", "huge_page_size", "huge_pages", "numa_node",  "lock",
    "populate", "zero", "uids",     "gids",           "everyone",   "description"};
// Keys that used to set a SysV segment's owner, group and mode by hand; they
// could only repeat or contradict uids/gids/everyone, so they were removed.
constexpr std::array<std::string_view, 3> kRemovedSysvKeys{"sysv_uid", "sysv_gid", "sysv_mode"};
constexpr std::array<std::string_view, 9> kDeviceKeys{
    "pools", "max", "min", "alignment", "contiguous", "uids", "gids", "everyone", "description"};
constexpr std::array<std::string_view, 2> kExportKeys{"default_lifetime", "max_lifetime"};
constexpr std::array<std::string_view, 2> kAdminKeys{"uids", "gids"};
constexpr std::array<std::string_view, 5> kTopKeys{"pools", "devices", "exports", "limits",
                                                   "admin"};
// [limits] keys: those the ledger enforces (core::Quotas), then those the
// loop enforces when it accepts (SessionLimits).
constexpr std::array<std::string_view, 10> kLimitKeys{
    "blocks_per_session",       "blocks_per_uid",       "exports_per_session", "exports_per_uid",
    "sysv_exports_per_session", "sysv_exports_per_uid", "block_granule",       "sessions",
    "sessions_per_uid",         "hello_timeout"};

template <size_t N>
std::string list(const std::array<std::string_view, N>& keys) {
  std::string s;
  for (auto k : keys) s += fmt::format("{}{}", s.empty() ? "" : ", ", k);
  return s;
}

// Reads one config text; every error carries its position.
class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  std::unexpected<Error> err(const toml::source_region& at, std::string message) const {
    return fail(Errc::kInvalidArgument, "{}:{}:{}: {}", source_, at.begin.line, at.begin.column,
                message);
  }
  template <typename... Args>
  std::unexpected<Error> err(const toml::node& at, fmt::format_string<Args...> f,
                             Args&&... args) const {
    return err(at.source(), fmt::format(f, std::forward<Args>(args)...));
  }

  template <size_t N>
  Status known_keys(const toml::table& t, std::string_view where,
                    const std::array<std::string_view, N>& keys) const {
    for (auto&& [k, v] : t) {
      if (std::find(keys.begin(), keys.end(), k.str()) == keys.end()) {
        return err(k.source(), fmt::format("unknown key '{}' in {}; the keys there are: {}",
                                           k.str(), where, list(keys)));
      }
    }
    return {};
  }

  Result<uint64_t> size(const toml::node& n, std::string_view what) const {
    if (auto i = n.as_integer()) {
      if (i->get() < 0) return err(n, "{} is negative ({}); sizes are >= 0", what, i->get());
      return static_cast<uint64_t>(i->get());
    }
    if (auto s = n.as_string()) {
      auto v = parse_size(s->get());
      if (!v) return err(n, "{}: {}", what, v.error().message);
      return *v;
    }
    return err(n, "{} must be a size: a number of bytes or a string such as \"64MiB\"", what);
  }

  // Only strings with a unit: a bare number is refused here as everywhere in
  // pmm (base/units.h), since "60" read as milliseconds by one reader and as
  // seconds by another is how a lifetime ends up 1000 times off.
  Result<std::chrono::milliseconds> duration(const toml::node& n, std::string_view what) const {
    if (auto i = n.as_integer()) {
      if (i->get() <= 0) return err(n, "{} must be above 0 ms", what);
      return err(n,
                 "{} = {} has no unit; write a string with a unit: \"500ms\", \"60s\", "
                 "\"5min\", \"1h\"",
                 what, i->get());
    }
    if (auto s = n.as_string()) {
      auto v = parse_duration(s->get());
      if (!v) return err(n, "{}: {}", what, v.error().message);
      if (v->count() <= 0) return err(n, "{} must be above 0 ms", what);
      return *v;
    }
    return err(n, "{} must be a duration in quotes with a unit, such as \"60s\"", what);
  }

  Result<bool> boolean(const toml::node& n, std::string_view what) const {
    if (auto b = n.as_boolean()) return b->get();
    return err(n, "{} must be true or false", what);
  }

  Result<std::string> string(const toml::node& n, std::string_view what) const {
    if (auto s = n.as_string()) return s->get();
    return err(n, "{} must be a string in quotes", what);
  }

  Result<uint32_t> id(const toml::node& n, std::string_view what) const {
    auto i = n.as_integer();
    if (!i || i->get() < 0 || i->get() > UINT32_MAX - 1) {
      return err(n, "{} must be a numeric id from 0 to 4294967294 (names are not looked up)", what);
    }
    return static_cast<uint32_t>(i->get());
  }

  Result<std::vector<uint32_t>> ids(const toml::node& n, std::string_view what) const {
    auto a = n.as_array();
    if (!a) return err(n, "{} must be a list of numeric ids, e.g. [0, 1000]", what);
    std::vector<uint32_t> out;
    for (const auto& e : *a) {
      auto v = id(e, what);
      if (!v) return std::unexpected(v.error());
      out.push_back(*v);
    }
    return out;
  }

  // Pool and device names travel in the protocol (64 bytes at most) and pool
  // lists are written "dma,general": no commas, no spaces.
  Status name(const toml::key& k, std::string_view kind) const {
    std::string_view s = k.str();
    bool ok = !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-' || c == '.';
    });
    if (ok) return {};
    return err(k.source(), fmt::format("{} name '{}' is not allowed; use 1 to 64 letters, digits, "
                                       "'_', '-' or '.'",
                                       kind, s));
  }

  std::string_view source_;
};

template <typename T>
std::vector<std::pair<const toml::key*, const T*>> in_file_order(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const T*>> out;
  for (auto&& [k, v] : t) out.emplace_back(&k, v.template as<T>());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.first->source().begin < b.first->source().begin;
  });
  return out;
}

// `uids`, `gids` and `everyone` of a pool or a device. Closed unless
// opened: with none of them only root and pmmd's own uid get in, so opening
// to every user is always written down (`everyone = true`); saying both
// "everyone" and a list, or an id twice, is a contradiction and refused.
Status parse_access(const Parser& p, const toml::table& t, std::string_view where,
                    core::Access& a) {
  a.owner = static_cast<uint32_t>(::geteuid());
  for (auto [k, field] : {std::pair{"uids", &a.uids}, std::pair{"gids", &a.gids}}) {
    const toml::node* n = t.get(k);
    if (!n) continue;
    auto v = p.ids(*n, k);
    if (!v) return std::unexpected(v.error());
    for (size_t i = 0; i < v->size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if ((*v)[i] == (*v)[j]) {
          return p.err(*n, "{} lists {} twice; name each id once", k, (*v)[i]);
        }
      }
    }
    *field = std::move(*v);
  }
  if (const toml::node* n = t.get("everyone")) {
    auto b = p.boolean(*n, "everyone");
    if (!b) return std::unexpected(b.error());
    if (*b && (!a.uids.empty() || !a.gids.empty())) {
      return p.err(*n,
                   "{}: everyone = true contradicts uids/gids (everyone would make them "
                   "meaningless); keep one or the other",
                   where);
    }
    a.everyone = *b;
  }
  return {};
}

// A sysv pool's segment owner, group and mode, from its access
// (mem::sysv_permissions): exactly the pool's users can attach it, by hand
// or through an X server. An access list SysV cannot express is refused
// here, so --check-config and the start say so before anything is made.
Status apply_sysv_access(const Parser& p, const toml::key& key, const toml::table& t,
                         PoolConfig& pc) {
  auto perm = mem::sysv_permissions(pc.options.name, mem::SysvAccess{.uids = pc.access.uids,
                                                                     .gids = pc.access.gids,
                                                                     .everyone = pc.access.everyone,
                                                                     .daemon_uid = ::geteuid(),
                                                                     .daemon_gid = ::getegid()});
  if (!perm) {
    const toml::node* at = t.get("uids");
    if (at == nullptr || perm.error().message.find(": gids ") != std::string::npos)
      at = t.get("gids");
    return at != nullptr ? p.err(*at, "{}", perm.error().message)
                         : p.err(key.source(), perm.error().message);
  }
  pc.options.region.sysv_uid = perm->uid;
  pc.options.region.sysv_gid = perm->gid;
  pc.options.region.sysv_mode = perm->mode;
  return {};
}

Result<PoolConfig> parse_pool(const Parser& p, const toml::key& key, const toml::table& t) {
  std::string where = fmt::format("[pools.{}]", key.str());
  if (auto s = p.name(key, "pool"); !s) return std::unexpected(s.error());
  for (std::string_view k : kRemovedSysvKeys) {
    if (const toml::node* n = t.get(k))
      return p.err(*n,
                   "{} is no longer a key: a sysv pool's segment gets its owner, group and mode "
                   "from the pool's uids and gids (docs/config.md, \"sysv\"); remove it and "
                   "list who may use the pool in uids/gids",
                   k);
  }
  if (auto s = p.known_keys(t, where, kPoolKeys); !s) return std::unexpected(s.error());
  PoolConfig pc;
  pc.line = static_cast<uint32_t>(key.source().begin.line);
  core::PoolOptions& o = pc.options;
  o.name = std::string(key.str());

  const toml::node* type = t.get("type");
  if (!type)
    return p.err(
        key.source(),
        fmt::format("{} has no type; add type = \"shmem\", \"hugetlb\" or \"sysv\"", where));
  auto type_name = p.string(*type, "type");
  if (!type_name) return std::unexpected(type_name.error());
  auto mt = mem::parse_memory_type(*type_name);
  if (!mt) return p.err(*type, "{}", mt.error().message);
  o.region.type = *mt;
  bool sysv = *mt == mem::MemoryType::kSysv;

  const toml::node* size = t.get("size");
  if (!size)
    return p.err(key.source(), fmt::format("{} has no size; add e.g. size = \"64MiB\"", where));
  auto bytes = p.size(*size, "size");
  if (!bytes) return std::unexpected(bytes.error());
  if (*bytes == 0) return p.err(*size, "size 0: a pool needs at least one page");
  o.region.size = *bytes;

  if (const toml::node* n = t.get("strategy")) {
    auto s = p.string(*n, "strategy");
    if (!s) return std::unexpected(s.error());
    if (auto check = alloc::make_strategy(*s, 4096); !check) {
      return p.err(*n, "{}", check.error().message);
    }
    o.strategy = *s;
  }
  auto only_for = [&](const toml::node& n, std::string_view k, bool ok,
                      std::string_view types) -> Status {
    if (ok) return {};
    return p.err(n, "{} applies to {} pools only; pool {} is {}", k, types, o.name,
                 mem::memory_type_name(*mt));
  };
  if (const toml::node* n = t.get("huge_pages")) {
    if (auto s = only_for(*n, "huge_pages", sysv, "sysv"); !s) return std::unexpected(s.error());
    auto b = p.boolean(*n, "huge_pages");
    if (!b) return std::unexpected(b.error());
    o.region.sysv_huge_pages = *b;
  }
  if (const toml::node* n = t.get("huge_page_size")) {
    bool ok = *mt == mem::MemoryType::kHugetlb || (sysv && o.region.sysv_huge_pages);
    if (auto s = only_for(*n, "huge_page_size", ok, "hugetlb and huge_pages = true sysv"); !s) {
      return std::unexpected(s.error());
    }
    auto v = p.size(*n, "huge_page_size");
    if (!v) return std::unexpected(v.error());
    if (*v != (2ull << 20) && *v != (1ull << 30)) {
      return p.err(*n, "huge_page_size {} is not a huge page size; use \"2MiB\" or \"1GiB\"",
                   format_size(*v));
    }
    o.region.huge_page_size = *v;
  }
  if (const toml::node* n = t.get("numa_node")) {
    auto i = n->as_integer();
    if (!i || i->get() < 0 || i->get() > 1023) {
      return p.err(*n, "numa_node must be a node number from 0 to 1023");
    }
    o.region.numa_node = static_cast<int>(i->get());
  }
  for (auto [k, field] :
       {std::pair{"lock", &o.region.lock}, std::pair{"populate", &o.region.populate},
        std::pair{"zero", &o.zero_on_alloc}}) {
    if (const toml::node* n = t.get(k)) {
      auto b = p.boolean(*n, k);
      if (!b) return std::unexpected(b.error());
      *field = *b;
    }
  }
  if (auto s = parse_access(p, t, where, pc.access); !s) return std::unexpected(s.error());
  if (sysv) {
    if (auto s = apply_sysv_access(p, key, t, pc); !s) return std::unexpected(s.error());
  }
  if (const toml::node* n = t.get("description")) {
    if (auto s = p.string(*n, "description"); !s) return std::unexpected(s.error());
  }
  return pc;
}

// A device whose claimers can use none of its pools is a contradiction:
// every allocation it makes would be refused. Only what is certain without
// looking up group membership is refused: a listed uid that no pool lets in
// by uid while none of them has gids, a listed gid that no pool lists while
// none of them has uids, `everyone` on pools that are all closed lists.
Status check_device_reaches_its_pools(const Parser& p, const toml::key& key,
                                      const core::DeviceConfig& d, const Config& c) {
  std::vector<const core::Access*> pools;
  for (const auto& pc : c.pools) {
    if (d.pools.empty() ||
        std::find(d.pools.begin(), d.pools.end(), pc.options.name) != d.pools.end()) {
      pools.push_back(&pc.access);
    }
  }
  auto any = [&](auto pred) { return std::any_of(pools.begin(), pools.end(), pred); };
  auto pool_list = [&] {
    std::string s;
    for (const auto& pc : c.pools) {
      if (d.pools.empty() ||
          std::find(d.pools.begin(), d.pools.end(), pc.options.name) != d.pools.end()) {
        s += fmt::format("{}{} ({})", s.empty() ? "" : ", ", pc.options.name, pc.access.describe());
      }
    }
    return s;
  };
  bool some_gids = any([](const core::Access* a) { return !a->gids.empty(); });
  bool some_uids = any([](const core::Access* a) { return !a->uids.empty(); });
  for (uint32_t uid : d.access.uids) {
    if (!some_gids && !any([&](const core::Access* a) { return a->allows_uid(uid); })) {
      return p.err(key.source(),
                   fmt::format("device {}: uid {} may claim it but may use none of its pools: {}; "
                               "add the uid to a pool or remove it here",
                               d.name, uid, pool_list()));
    }
  }
  for (uint32_t gid : d.access.gids) {
    if (!some_uids && !any([&](const core::Access* a) {
          return a->everyone || std::find(a->gids.begin(), a->gids.end(), gid) != a->gids.end();
        })) {
      return p.err(key.source(),
                   fmt::format("device {}: gid {} may claim it but may use none of its pools: {}; "
                               "add the gid to a pool or remove it here",
                               d.name, gid, pool_list()));
    }
  }
  if (d.access.everyone && d.name != core::kDefaultDevice && !any([](const core::Access* a) {
        return a->everyone || !a->uids.empty() || !a->gids.empty();
      })) {
    return p.err(key.source(),
                 fmt::format("device {}: everyone may claim it but its pools are for root and "
                             "pmmd's own uid only: {}; open a pool or list who may claim it",
                             d.name, pool_list()));
  }
  return {};
}

Result<core::DeviceConfig> parse_device(const Parser& p, const toml::key& key, const toml::table& t,
                                        const Config& c, std::vector<uint64_t>& min_in_pool) {
  std::string where = fmt::format("[devices.{}]", key.str());
  if (auto s = p.name(key, "device"); !s) return std::unexpected(s.error());
  if (auto s = p.known_keys(t, where, kDeviceKeys); !s) return std::unexpected(s.error());
  core::DeviceConfig d;
  d.name = std::string(key.str());
  auto pool_index = [&](std::string_view name) -> std::optional<size_t> {
    for (size_t i = 0; i < c.pools.size(); ++i) {
      if (c.pools[i].options.name == name) return i;
    }
    return std::nullopt;
  };
  if (const toml::node* n = t.get("pools")) {
    auto a = n->as_array();
    if (!a) return p.err(*n, "pools must be a list of pool names, e.g. [\"dma\", \"general\"]");
    for (const auto& e : *a) {
      auto s = p.string(e, "each entry of pools");
      if (!s) return std::unexpected(s.error());
      if (!pool_index(*s)) {
        std::string all;
        for (const auto& pc : c.pools) all += (all.empty() ? "" : ", ") + pc.options.name;
        return p.err(e, "device {}: unknown pool '{}'; the pools are: {}", d.name, *s, all);
      }
      if (std::find(d.pools.begin(), d.pools.end(), *s) != d.pools.end()) {
        return p.err(e, "device {}: pools lists '{}' twice; name each pool once", d.name, *s);
      }
      d.pools.push_back(*s);
    }
  }
  if (const toml::node* n = t.get("max")) {
    auto v = p.size(*n, "max");
    if (!v) return std::unexpected(v.error());
    if (*v == 0)
      return p.err(*n, "max 0 would refuse every allocation; leave max out for no limit");
    d.max_bytes = *v;
  }
  if (const toml::node* n = t.get("alignment")) {
    auto v = p.size(*n, "alignment");
    if (!v) return std::unexpected(v.error());
    if (*v == 0 || (*v & (*v - 1)) != 0) {
      return p.err(*n, "alignment {} is not a power of two; use e.g. \"4KiB\", \"64KiB\", \"2MiB\"",
                   format_size(*v));
    }
    d.default_alignment = *v;
  }
  if (const toml::node* n = t.get("contiguous")) {
    auto b = p.boolean(*n, "contiguous");
    if (!b) return std::unexpected(b.error());
    d.contiguous = *b;
  }
  if (const toml::node* n = t.get("min")) {
    auto v = p.size(*n, "min");
    if (!v) return std::unexpected(v.error());
    d.min_bytes = *v;
    if (*v > 0 && d.pools.empty()) {
      return p.err(*n,
                   "device {}: min needs a home pool to keep it in; add pools = [\"...\"] "
                   "(the first is the home pool)",
                   d.name);
    }
    if (d.max_bytes && *v > *d.max_bytes) {
      return p.err(*n, "device {}: min {} is above its max {}; min <= max", d.name, format_size(*v),
                   format_size(*d.max_bytes));
    }
    if (*v > 0) {
      size_t home = *pool_index(d.pools.front());
      min_in_pool[home] += *v;
      uint64_t pool_size = c.pools[home].options.region.size;
      if (min_in_pool[home] > pool_size) {
        return p.err(*n,
                     "device {}: the mins kept in pool {} add up to {}, more than its size {}; "
                     "lower a min or enlarge the pool",
                     d.name, d.pools.front(), format_size(min_in_pool[home]),
                     format_size(pool_size));
      }
    }
  }
  if (auto s = parse_access(p, t, where, d.access); !s) return std::unexpected(s.error());
  if (d.name == core::kDefaultDevice) {
    for (const char* k : {"uids", "gids", "everyone", "min"}) {
      if (const toml::node* n = t.get(k)) {
        return p.err(*n,
                     "[devices.default] cannot have {}: every client that names no declared "
                     "device gets it, charged per uid, so it is open to all and a guarantee "
                     "would be kept once per uid; declare a named device for that",
                     k);
      }
    }
    d.access.everyone = true;
  }
  if (auto s = check_device_reaches_its_pools(p, key, d, c); !s) return std::unexpected(s.error());
  if (const toml::node* n = t.get("description")) {
    if (auto s = p.string(*n, "description"); !s) return std::unexpected(s.error());
  }
  return d;
}

// The [limits] keys of core::Quotas. Each count is at least 1; a
// per-session limit above its per-uid one could never be reached (except by
// root, which per-uid limits do not hold) and is refused as a contradiction.
Status parse_quotas(const Parser& p, const toml::table& t, core::Quotas& q) {
  auto count = [&](std::string_view k, uint64_t& field) -> Status {
    const toml::node* n = t.get(k);
    if (!n) return {};
    auto i = n->as_integer();
    if (!i || i->get() < 1) return p.err(*n, "{} must be a whole number, at least 1", k);
    field = static_cast<uint64_t>(i->get());
    return {};
  };
  for (auto [k, field] : {std::pair{"blocks_per_session", &q.blocks_per_session},
                          std::pair{"blocks_per_uid", &q.blocks_per_uid},
                          std::pair{"exports_per_session", &q.exports_per_session},
                          std::pair{"exports_per_uid", &q.exports_per_uid},
                          std::pair{"sysv_exports_per_session", &q.sysv_exports_per_session},
                          std::pair{"sysv_exports_per_uid", &q.sysv_exports_per_uid}}) {
    if (auto s = count(k, *field); !s) return s;
  }
  if (const toml::node* n = t.get("block_granule")) {
    auto v = p.size(*n, "block_granule");
    if (!v) return std::unexpected(v.error());
    if (*v < kMinBlockGranule || *v > (1ull << 30) || (*v & (*v - 1)) != 0) {
      return p.err(*n,
                   "block_granule {} must be a power of two from {} to 1 GiB (below {} a block's "
                   "record in pmmd outweighs the memory it lends); e.g. \"4KiB\", \"64KiB\"",
                   format_size(*v), format_size(kMinBlockGranule), format_size(kMinBlockGranule));
    }
    q.block_granule = *v;
  }
  for (auto [per_session, per_uid, a, b] :
       {std::tuple{q.blocks_per_session, q.blocks_per_uid, "blocks_per_session", "blocks_per_uid"},
        std::tuple{q.exports_per_session, q.exports_per_uid, "exports_per_session",
                   "exports_per_uid"},
        std::tuple{q.sysv_exports_per_session, q.sysv_exports_per_uid, "sysv_exports_per_session",
                   "sysv_exports_per_uid"}}) {
    if (per_session > per_uid) {
      return p.err(t.source(),
                   fmt::format("[limits] {} = {} is above {} = {}: a session could never reach "
                               "it; make {} at most {}",
                               a, per_session, b, per_uid, a, b));
    }
  }
  return {};
}

// The [limits] keys about connections (SessionLimits).
Status parse_session_limits(const Parser& p, const toml::table& t, SessionLimits& out) {
  auto count = [&](std::string_view key, auto& field) -> Status {
    const toml::node* n = t.get(key);
    if (n == nullptr) return {};
    auto i = n->as_integer();
    if (!i || i->get() < 1 || i->get() > 1'000'000) {
      return p.err(*n, "[limits] {} must be a whole number from 1 to 1000000", key);
    }
    field = static_cast<size_t>(i->get());
    return {};
  };
  if (auto s = count("sessions", out.sessions); !s) return s;
  if (auto s = count("sessions_per_uid", out.sessions_per_uid); !s) return s;
  if (const toml::node* n = t.get("hello_timeout")) {
    auto v = p.duration(*n, "hello_timeout");
    if (!v) return std::unexpected(v.error());
    out.hello_timeout = *v;
  }
  return {};
}

}  // namespace

Result<Config> parse_config(std::string_view text, std::string_view source) {
  Parser p(source);
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return p.err(e.source(), std::string(e.description()));
  }
  if (auto s = p.known_keys(root, "the top level", kTopKeys); !s) return std::unexpected(s.error());
  Config c;
  c.source = std::string(source);

  const toml::node* pools = root.get("pools");
  if (!pools || !pools->is_table() || pools->as_table()->empty()) {
    return p.err(pools ? pools->source() : root.source(),
                 "the config declares no pools; add a table such as [pools.general] with type "
                 "and size");
  }
  for (auto [k, t] : in_file_order<toml::table>(*pools->as_table())) {
    if (!t)
      return p.err(k->source(),
                   fmt::format("pools.{} must be a table: [pools.{}]", k->str(), k->str()));
    auto pc = parse_pool(p, *k, *t);
    if (!pc) return std::unexpected(pc.error());
    c.pools.push_back(std::move(*pc));
  }

  if (const toml::node* devices = root.get("devices")) {
    if (!devices->is_table()) return p.err(*devices, "devices must be tables: [devices.NAME]");
    std::vector<uint64_t> min_in_pool(c.pools.size(), 0);
    for (auto [k, t] : in_file_order<toml::table>(*devices->as_table())) {
      if (!t)
        return p.err(k->source(),
                     fmt::format("devices.{} must be a table: [devices.{}]", k->str(), k->str()));
      auto d = parse_device(p, *k, *t, c, min_in_pool);
      if (!d) return std::unexpected(d.error());
      c.devices.push_back(std::move(*d));
    }
  }

  if (const toml::node* e = root.get("exports")) {
    const toml::table* t = e->as_table();
    if (!t) return p.err(*e, "exports must be a table: [exports]");
    if (auto s = p.known_keys(*t, "[exports]", kExportKeys); !s) return std::unexpected(s.error());
    if (const toml::node* n = t->get("max_lifetime")) {
      auto v = p.duration(*n, "max_lifetime");
      if (!v) return std::unexpected(v.error());
      c.ledger.max_export_lifetime = *v;
    }
    if (const toml::node* n = t->get("default_lifetime")) {
      auto v = p.duration(*n, "default_lifetime");
      if (!v) return std::unexpected(v.error());
      c.ledger.default_export_lifetime = *v;
    }
    if (c.ledger.default_export_lifetime > c.ledger.max_export_lifetime) {
      return p.err(*e, "[exports] default_lifetime {} is longer than max_lifetime {}",
                   format_duration(c.ledger.default_export_lifetime),
                   format_duration(c.ledger.max_export_lifetime));
    }
  }

  if (const toml::node* l = root.get("limits")) {
    const toml::table* t = l->as_table();
    if (!t) return p.err(*l, "limits must be a table: [limits]");
    if (auto s = p.known_keys(*t, "[limits]", kLimitKeys); !s) return std::unexpected(s.error());
    if (auto s = parse_quotas(p, *t, c.ledger.quotas); !s) return std::unexpected(s.error());
    if (auto s = parse_session_limits(p, *t, c.session_limits); !s) {
      return std::unexpected(s.error());
    }
  }

  if (const toml::node* a = root.get("admin")) {
    const toml::table* t = a->as_table();
    if (!t) return p.err(*a, "admin must be a table: [admin] with uids and/or gids");
    if (auto s = p.known_keys(*t, "[admin]", kAdminKeys); !s) return std::unexpected(s.error());
    for (auto [k, field] : {std::pair{"uids", &c.admin.uids}, std::pair{"gids", &c.admin.gids}}) {
      if (const toml::node* n = t->get(k)) {
        auto v = p.ids(*n, k);
        if (!v) return std::unexpected(v.error());
        *field = std::move(*v);
      }
    }
  }

  // The same rules the ledger enforces, as a last check that nothing above
  // let through what the daemon would then refuse without a line number.
  std::vector<std::string> names;
  std::vector<uint64_t> sizes;
  for (const auto& pc : c.pools) {
    names.push_back(pc.options.name);
    sizes.push_back(pc.options.region.size);
  }
  if (auto t = core::DeviceTable::create(c.devices, names, sizes); !t) {
    return fail(Errc::kInvalidArgument, "{}: {}", source, t.error().message);
  }
  return c;
}

std::vector<std::string> describe(const Config& c) {
  std::vector<std::string> out;
  for (const auto& pc : c.pools) {
    const auto& o = pc.options;
    std::string segment;
    if (o.region.type == mem::MemoryType::kSysv)
      segment = fmt::format("; segment owner uid {}, gid {}, mode {:04o}",
                            o.region.sysv_uid.value_or(::geteuid()),
                            o.region.sysv_gid.value_or(::getegid()), o.region.sysv_mode);
    out.push_back(fmt::format("pool {}: {} {}, {}, for {}{}", o.name,
                              mem::memory_type_name(o.region.type), format_size(o.region.size),
                              o.strategy, pc.access.describe(), segment));
  }
  for (const auto& d : c.devices) {
    std::string pools;
    for (const auto& p : d.pools) pools += (pools.empty() ? "" : ",") + p;
    out.push_back(fmt::format("device {}: pools {}, max {}{}, min {}, claimed by {}", d.name,
                              pools.empty() ? std::string("(all)") : pools,
                              d.max_bytes ? format_size(*d.max_bytes) : std::string("none"),
                              d.name == core::kDefaultDevice ? " per uid" : "",
                              format_size(d.min_bytes), d.access.describe()));
  }
  const core::Quotas& q = c.ledger.quotas;
  out.push_back(fmt::format(
      "limits: blocks {} per session, {} per uid; exports {} / {}; SysV exports {} / {}; block "
      "granule {}",
      q.blocks_per_session, q.blocks_per_uid, q.exports_per_session, q.exports_per_uid,
      q.sysv_exports_per_session, q.sysv_exports_per_uid, format_size(q.block_granule)));
  out.push_back(fmt::format("exports: default lifetime {}, at most {}",
                            format_duration(c.ledger.default_export_lifetime),
                            format_duration(c.ledger.max_export_lifetime)));
  const SessionLimits& l = c.session_limits;
  out.push_back(fmt::format(
      "sessions: at most {}, {} per uid (root exempt); Hello within {}",
      l.sessions ? fmt::to_string(*l.sessions)
                 : fmt::format("{} (or what the fd limit allows)", SessionLimits::kDefaultSessions),
      c.session_limits.sessions_per_uid, format_duration(c.session_limits.hello_timeout)));
  out.push_back(
      fmt::format("admins (see every user's sessions, blocks, exports): {}", c.admin.describe()));
  return out;
}

bool AdminAccess::includes(uint32_t uid, uint32_t gid, std::span<const uint32_t> groups) const {
  auto has = [](const std::vector<uint32_t>& v, uint32_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  if (uid == 0 || has(uids, uid) || has(gids, gid)) return true;
  return std::any_of(groups.begin(), groups.end(), [&](uint32_t g) { return has(gids, g); });
}

std::string AdminAccess::describe() const {
  std::string out = "root";
  auto add = [&](std::string_view what, const std::vector<uint32_t>& ids) {
    if (ids.empty()) return;
    out += fmt::format("; {} ", what);
    for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", ids[i]);
  };
  add("uids", uids);
  add("gids", gids);
  return out;
}

std::string_view default_config_text() { return kDefaultText; }

Config default_config() {
  auto c = parse_config(kDefaultText, "(built-in default)");
  // The text is part of the program and tested; it always parses.
  return std::move(*c);
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return fail(Errc::kNotFound, "cannot read config file {}: {}", path,
                std::string(std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace pmm::daemon
