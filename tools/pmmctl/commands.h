// pmmctl's commands: each connects to pmmd through libpmm's internal
// client, does one thing, and returns the text to print on stdout.
//
// Arguments arrive already parsed and checked (main.cc turns bad input into
// exit status 2 before anything connects); whatever fails here was refused
// by the daemon or could not reach it, and main.cc picks the exit status
// from the Error's code (kNoDaemon: 3, anything else: 1).
//
// Usage:
//   pmmctl::Target t{.socket = "", .device = "pmmctl", .format = Format::kHuman};
//   auto out = pmmctl::alloc(t, {.pools = {"general"}, .size = 1 << 20});
//   if (out) fmt::print("{}", *out);
//
// Thread safety: each call uses its own connection.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "map.h"
#include "proto/messages.h"
#include "views.h"

namespace pmmctl {

struct Target {
  std::string socket;  // "" = the default path
  std::string device;  // the device pmmctl connects as
  Format format = Format::kHuman;
};

struct AllocArgs {
  std::vector<std::string> pools;
  uint64_t size = 0;
  uint64_t alignment = 0;  // 0 = the pool's page size
  uint32_t flags = 0;      // proto::kAlloc*
  uint32_t imports = 1;
  uint32_t lifetime_ms = 0;  // 0 = the daemon's default (60 s)
};

struct ExportArgs {
  pmm::proto::Token token{};
  uint32_t imports = 1;
  uint32_t lifetime_ms = 0;
};

[[nodiscard]] pmm::Result<std::string> status(const Target& t);
[[nodiscard]] pmm::Result<std::string> pools(const Target& t);
[[nodiscard]] pmm::Result<std::string> blocks(const Target& t);
[[nodiscard]] pmm::Result<std::string> sessions(const Target& t);
[[nodiscard]] pmm::Result<std::string> devices(const Target& t);

// `pmmctl check`: the daemon walks every pool's allocator and its ledger.
// `clean` false means it found a violation (the text names it); main.cc
// exits with kExitViolation then.
struct CheckOutcome {
  std::string text;
  bool clean = false;
};
[[nodiscard]] pmm::Result<CheckOutcome> check(const Target& t);

// `pmmctl map POOL`: the pool as SVG (or a terminal strip when `term`),
// returned, or written to `output` (then the result is empty).
struct MapArgs {
  std::string pool;
  std::string output;  // "" = stdout
  bool term = false;
  MapStyle style{};
};
[[nodiscard]] pmm::Result<std::string> map(const Target& t, const MapArgs& a);

// `pmmctl metrics`: Prometheus text (admins; kPermission otherwise).
[[nodiscard]] pmm::Result<std::string> metrics(const Target& t);

// `pmmctl top`: one screen per interval, handed to `emit` (which clears the
// terminal first when `live`). once: two samples `interval` apart, one
// screen with rates, then return.
struct TopArgs {
  uint32_t interval_ms = 1000;
  bool once = false;
  bool live = false;  // stdout is a terminal: clear and redraw
};
[[nodiscard]] pmm::Result<std::string> top(const Target& t, const TopArgs& a,
                                           const std::function<void(const std::string&)>& emit);

// Allocates, exports, prints the token: the export holds the block.
[[nodiscard]] pmm::Result<std::string> alloc(const Target& t, const AllocArgs& a);
// Withdraws the export `token`.
[[nodiscard]] pmm::Result<std::string> free_export(const Target& t, const pmm::proto::Token& token);
// Imports `a.token` (using one of its imports) and exports the block anew.
[[nodiscard]] pmm::Result<std::string> reexport(const Target& t, const ExportArgs& a);
// Imports `token`, SysV-exports the block and hands "SHMID OFFSET SIZE" to
// `emit`; then HOLDS: the daemon ends a SysV export when the session that
// made it closes, so this returns (withdrawing the export) only on SIGINT,
// SIGTERM or SIGHUP, or when the daemon goes away (an error).
[[nodiscard]] pmm::Result<std::string> sysv_export(
    const Target& t, const pmm::proto::Token& token,
    const std::function<void(const std::string&)>& emit);

// "general,dma" -> {"general", "dma"}; kInvalidArgument for an empty name.
[[nodiscard]] pmm::Result<std::vector<std::string>> split_pools(const std::string& text);
// The 32-hex-digit text form; kInvalidArgument says what a token looks like.
[[nodiscard]] pmm::Result<pmm::proto::Token> parse_token(const std::string& text);
[[nodiscard]] std::string format_token(const pmm::proto::Token& token);

}  // namespace pmmctl
