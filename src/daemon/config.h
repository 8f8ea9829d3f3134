// pmm::daemon::Config — pmmd's configuration: pools, devices, export rules.
//
// Read from a TOML file (--config FILE) or, with no file, from the embedded
// default: a 256 MiB `shmem` pool "general" and a 64 MiB `sysv` pool
// "display", for pmmd's own uid and root only. docs/config.md ("The config file")
// lists every key; in short:
//
//   [exports]                      # optional
//   default_lifetime = "60s"       # an export that asks for no lifetime
//   max_lifetime = "1h"            # the longest one may ask for
//
//   [pools.general]                # one table per pool; file order = pool order
//   type = "shmem"                 # shmem | hugetlb | sysv
//   size = "256MiB"
//   strategy = "best_fit"          # or "tlsf"
//   uids = [1000]  gids = [44]     # who may use it besides root and pmmd's uid
//   everyone = true                # or: every local user (not with uids/gids)
//   ...memory options: huge_page_size, huge_pages, numa_node, lock, populate,
//      zero (a sysv segment's owner, group and mode follow uids/gids)
//
//   [admin]                        # optional: who sees every user's views
//   uids = [1000]  gids = [4]      # besides root
//
//   [devices.decoder]              # one table per device
//   pools = ["dma", "general"]     # allowed, in the order tried
//   max = "64MiB"  min = "16MiB"  alignment = "64KiB"  contiguous = false
//   uids = [1000]  gids = [44]     # who may claim it; or everyone = true
//
//   [limits]                       # quotas per session and per uid
//   blocks_per_session = 16384  blocks_per_uid = 65536
//   exports_per_session = 4096  exports_per_uid = 16384
//   sessions = 1024                # open sessions, all users but root
//   sessions_per_uid = 64          # per uid but root
//   hello_timeout = "2s"           # a connection must say Hello by then
//   sysv_exports_per_session = 4096  sysv_exports_per_uid = 16384
//   block_granule = "4KiB"
//
// Every refusal is Errc::kInvalidArgument with a message that starts
// "FILE:LINE:COLUMN: " and says what was wrong and what is accepted, for
// syntax (from toml++) and for meaning alike: unknown keys, wrong types,
// bad sizes, a device naming an unknown pool, mins that do not fit, and
// contradictions (everyone with uids/gids, an id or pool named twice, a
// device whose claimers may use none of its pools, a per-session limit
// above its per-uid one).
//
// Usage:
//   auto c = pmm::daemon::load_config("/etc/pmm/pmmd.toml");
//   if (!c) { fmt::print(stderr, "pmmd: {}\n", c.error().message); return 2; }
//
// Thread safety: pure functions; a Config is a plain value.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "core/devices.h"
#include "core/ledger.h"
#include "core/pool.h"

namespace pmm::daemon {

struct PoolConfig {
  core::PoolOptions options{};
  core::PoolAccess access{};
  uint32_t line = 0;  // where the pool's table starts, for later messages
};

// Who sees every user's sessions, blocks and exports ([admin]): root
// always, these uids, and members of these gids (as primary or
// supplementary group). Everyone else sees their own uid's only.
struct AdminAccess {
  std::vector<uint32_t> uids{};
  std::vector<uint32_t> gids{};
  [[nodiscard]] bool includes(uint32_t uid, uint32_t gid, std::span<const uint32_t> groups) const;
  // "root; uids 1000; gids 4"
  [[nodiscard]] std::string describe() const;
};

// [limits] keys about connections, enforced by the loop (daemon.h) when it
// accepts, before any request is read.
struct SessionLimits {
  // Sessions open at once, of all users but root. Unset: 1024, lowered at
  // start to what the fd limit allows (the log says so). Set: as written;
  // past the fd limit, accept fails with EMFILE and the loop refuses then.
  std::optional<size_t> sessions{};
  static constexpr size_t kDefaultSessions = 1024;
  // Sessions open at once per uid. Root (uid 0) is exempt from both limits:
  // no number of other users' connections may lock the administrator out.
  size_t sessions_per_uid = 64;
  // A connection that has not sent Hello by then is closed.
  std::chrono::milliseconds hello_timeout{2000};
};

struct Config {
  std::string source{};  // the file, or "(built-in default)"
  std::vector<PoolConfig> pools{};
  std::vector<core::DeviceConfig> devices{};
  core::LedgerOptions ledger{};
  AdminAccess admin{};
  SessionLimits session_limits{};
};

// The embedded default, as TOML text (it is parsed like any file).
[[nodiscard]] std::string_view default_config_text();
[[nodiscard]] Config default_config();

// Parses `text`; `source` names it in messages (a path, or a label).
[[nodiscard]] Result<Config> parse_config(std::string_view text, std::string_view source);
// Reads and parses a file. A file that cannot be read is kNotFound/kSystem
// naming the path.
[[nodiscard]] Result<Config> load_config(const std::string& path);

// A summary for the log: "pool general: shmem 256 MiB best_fit, for root".
[[nodiscard]] std::vector<std::string> describe(const Config& c);

}  // namespace pmm::daemon
