// pmm::daemon::Config — pmmd's configuration: pools, devices, export rules.
//
// Read from a TOML file (--config FILE) or, with no file, from the embedded
// default: a 256 MiB `shmem` pool "general" and a 64 MiB `sysv` pool
// "display", open to every local user. docs/config.md ("The config file")
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
//   uids = [1000]  gids = [44]     # who may use it; both absent: everyone
//   ...memory options: huge_page_size, huge_pages, numa_node, lock, populate,
//      zero (a sysv segment's owner, group and mode follow uids/gids)
//
//   [devices.decoder]              # one table per device
//   pools = ["dma", "general"]     # allowed, in the order tried
//   max = "64MiB"  min = "16MiB"  alignment = "64KiB"  contiguous = false
//
// Every refusal is Errc::kInvalidArgument with a message that starts
// "FILE:LINE:COLUMN: " and says what was wrong and what is accepted, for
// syntax (from toml++) and for meaning alike: unknown keys, wrong types,
// bad sizes, a device naming an unknown pool, mins that do not fit.
//
// Usage:
//   auto c = pmm::daemon::load_config("/etc/pmm/pmmd.toml");
//   if (!c) { fmt::print(stderr, "pmmd: {}\n", c.error().message); return 2; }
//
// Thread safety: pure functions; a Config is a plain value.
#pragma once

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

struct Config {
  std::string source{};  // the file, or "(built-in default)"
  std::vector<PoolConfig> pools{};
  std::vector<core::DeviceConfig> devices{};
  core::LedgerOptions ledger{};
};

// The embedded default, as TOML text (it is parsed like any file).
[[nodiscard]] std::string_view default_config_text();
[[nodiscard]] Config default_config();

// Parses `text`; `source` names it in messages (a path, or a label).
[[nodiscard]] Result<Config> parse_config(std::string_view text, std::string_view source);
// Reads and parses a file. A file that cannot be read is kNotFound/kSystem
// naming the path.
[[nodiscard]] Result<Config> load_config(const std::string& path);

// A summary for the log: "pool general: shmem 256 MiB best_fit, every user".
[[nodiscard]] std::vector<std::string> describe(const Config& c);

}  // namespace pmm::daemon
