// pmmctl — look at and drive pmmd from a shell. See README.md here.
//
// Exit status: 0 done; 1 the daemon refused (or broke off); 2 usage error
// (nothing was sent); 3 no daemon listens on the socket; 4 `check` found a
// violated invariant.
#include <fmt/format.h>

#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include "base/units.h"
#include "commands.h"

namespace {

constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoDaemon = 3;
constexpr int kExitViolation = 4;

int usage_error(const std::string& message) {
  fmt::print(stderr, "pmmctl: {}\nRun 'pmmctl --help' for the commands and options.\n", message);
  return kExitUsage;
}

int report(const pmm::Result<std::string>& r) {
  if (r) {
    std::fputs(r->c_str(), stdout);
    return 0;
  }
  fmt::print(stderr, "pmmctl: {}\n", r.error().describe());
  return r.error().code == pmm::Errc::kNoDaemon ? kExitNoDaemon : kExitRefused;
}

// `check`: the report goes to stdout either way; a violation exits 4.
int report_check(const pmm::Result<pmmctl::CheckOutcome>& r) {
  if (!r) return report(std::unexpected(r.error()));
  std::fputs(r->text.c_str(), stdout);
  return r->clean ? 0 : kExitViolation;
}

// --lifetime text -> milliseconds for the protocol (u32, > 0).
std::optional<std::string> lifetime_ms(const std::string& text, uint32_t& out) {
  if (text.empty()) {
    out = 0;  // the daemon's default
    return std::nullopt;
  }
  auto d = pmm::parse_duration(text);
  if (!d) return d.error().message;
  const int64_t ms = d->count();
  if (ms == 0 || ms > int64_t{std::numeric_limits<uint32_t>::max()})
    return fmt::format("lifetime '{}' must be at least 1ms and at most {}ms (about 49 days)", text,
                       std::numeric_limits<uint32_t>::max());
  out = static_cast<uint32_t>(ms);
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pmmctl: inspect and drive pmmd, the pmm physical memory manager.\n"
      "Exit status: 0 ok, 1 refused by the daemon, 2 usage error, 3 daemon not running,\n"
      "4 check found a violated invariant."};
  app.fallthrough();  // global options may follow the command: pmmctl pools --json
  app.require_subcommand(1);

  pmmctl::Target target{.socket = "", .device = "pmmctl", .format = pmmctl::Format::kHuman};
  bool json = false;
  app.add_option("--socket", target.socket,
                 "daemon socket (default: $PMM_SOCKET, else $XDG_RUNTIME_DIR/pmm/pmm.sock, "
                 "else /run/pmm/pmm.sock)");
  app.add_option("--device", target.device, "device name to connect as (default: pmmctl)");
  app.add_flag("--json", json, "print JSON for scripts instead of tables");

  app.add_subcommand("status", "daemon, sessions, blocks, exports and pool usage");
  app.add_subcommand("pools", "every pool: type, size, usage, largest free extent");
  app.add_subcommand("blocks", "every live block and who holds it");
  app.add_subcommand("sessions", "every connected client");
  app.add_subcommand("devices", "per-device limits (max), guarantees (min) and usage");
  app.add_subcommand("check",
                     "walk every pool's allocator and the daemon's books and report the first "
                     "violated invariant (exit 4); root or pmmd's own uid only");

  std::string map_pool, map_output, map_request;
  bool map_term = false;
  unsigned map_columns = 0, map_rows = 4;
  auto* map_cmd = app.add_subcommand(
      "map",
      "draw a pool to scale as SVG (or a coloured terminal strip with --term): blocks by "
      "device, free extents, physical-run edges, the largest free extent and the "
      "fragmentation figures");
  map_cmd->add_option("pool", map_pool, "the pool to draw")->required();
  map_cmd->add_option("-o,--output", map_output, "write the SVG (or strip) to FILE, not stdout");
  map_cmd->add_flag("--term", map_term, "draw a coloured strip for the terminal instead of SVG");
  map_cmd->add_option("--width", map_columns, "--term: cells per row (default: the terminal's)")
      ->check(CLI::Range(8u, 1000u));
  map_cmd->add_option("--rows", map_rows, "--term: rows of cells (default 4)")
      ->check(CLI::Range(1u, 200u));
  map_cmd->add_option("--request", map_request,
                      "a size to explain: does it fit the largest free extent? (4M, 1GiB, ...)");

  app.add_subcommand("metrics",
                     "every counter in Prometheus text format (for node_exporter's textfile "
                     "collector or a scraper); admins only");

  std::string top_interval = "1s";
  bool top_once = false;
  auto* top_cmd = app.add_subcommand(
      "top", "a live view of pools, devices, sessions and request rates (Ctrl-C ends it)");
  top_cmd->add_option("-i,--interval", top_interval, "time between screens (default 1s)");
  top_cmd->add_flag("--once", top_once,
                    "print one screen (rates over one interval) and exit; the default when "
                    "stdout is not a terminal");

  std::string pools_text, size_text, align_text, lifetime_text;
  bool contiguous = false, zero = false;
  uint32_t imports = 1;
  auto* alloc = app.add_subcommand(
      "alloc",
      "allocate a block, export it and print the token; the export holds the block after "
      "pmmctl exits (until imported --imports times, withdrawn with 'free', or --lifetime)");
  alloc->add_option("pools", pools_text, "pool, or pools to try in order: general or dma,general")
      ->required();
  alloc
      ->add_option("size", size_text,
                   "bytes: 4096, 4k, 4KiB, 4M, 1.5MiB, 1G, 1GiB, ... (powers of 1024)")
      ->required();
  alloc->add_option("--align", align_text, "alignment, a power of two (default: page size)");
  alloc->add_flag("--contiguous", contiguous, "physically contiguous (hugetlb pools)");
  alloc->add_flag("--zero", zero, "zero the block");
  alloc->add_option("--imports", imports, "how many imports the token allows (default 1)")
      ->check(CLI::Range(1u, std::numeric_limits<uint32_t>::max()));
  alloc->add_option(
      "--lifetime", lifetime_text,
      "how long the export lives: 500ms, 60s, 10min, 1h (default: the daemon's, 60s)");

  std::string token_text;
  auto* free_cmd = app.add_subcommand("free",
                                      "withdraw an export; the block is released "
                                      "if nothing else holds it");
  free_cmd->add_option("token", token_text, "the token 'alloc' or 'export' printed")->required();

  auto* export_cmd = app.add_subcommand(
      "export",
      "import TOKEN (using one of its imports) and export the block anew: print a token "
      "with other --imports/--lifetime");
  export_cmd->add_option("token", token_text, "an export token")->required();
  export_cmd->add_option("--imports", imports, "imports the new token allows (default 1)")
      ->check(CLI::Range(1u, std::numeric_limits<uint32_t>::max()));
  export_cmd->add_option("--lifetime", lifetime_text, "lifetime of the new export (default 60s)");

  auto* sysv_cmd = app.add_subcommand(
      "sysv-export",
      "import TOKEN and export its block (of a sysv pool) as SysV shared memory; prints "
      "'SHMID OFFSET SIZE' and keeps running: the SysV export holds the block until pmmctl "
      "gets SIGINT/SIGTERM/SIGHUP (Ctrl-C), then it is withdrawn");
  sysv_cmd->add_option("token", token_text, "an export token")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }
  if (json) target.format = pmmctl::Format::kJson;

  const std::string cmd = app.get_subcommands().front()->get_name();
  if (cmd == "status") return report(pmmctl::status(target));
  if (cmd == "pools") return report(pmmctl::pools(target));
  if (cmd == "blocks") return report(pmmctl::blocks(target));
  if (cmd == "sessions") return report(pmmctl::sessions(target));
  if (cmd == "devices") return report(pmmctl::devices(target));
  if (cmd == "check") return report_check(pmmctl::check(target));
  if (cmd == "metrics") return report(pmmctl::metrics(target));
  if (cmd == "map") {
    pmmctl::MapArgs a{.pool = map_pool, .output = map_output, .term = map_term, .style = {}};
    if (!map_request.empty()) {
      auto size = pmm::parse_size(map_request);
      if (!size) return usage_error("--request: " + size.error().message);
      a.style.request = *size;
    }
    winsize ws{};
    a.style.columns = map_columns != 0 ? map_columns
                      : ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20
                          ? ws.ws_col - 13u  // the offset column
                          : 80u;
    a.style.rows = map_rows;
    a.style.color = std::getenv("NO_COLOR") == nullptr;
    return report(pmmctl::map(target, a));
  }
  if (cmd == "top") {
    auto d = pmm::parse_duration(top_interval);
    if (!d) return usage_error("--interval: " + d.error().message);
    if (d->count() < 100 || d->count() > 3'600'000)
      return usage_error(fmt::format("--interval '{}' must be from 100ms to 1h", top_interval));
    pmmctl::TopArgs a{.interval_ms = static_cast<uint32_t>(d->count()),
                      .once = top_once || ::isatty(STDOUT_FILENO) == 0,
                      .live = false};
    a.live = !a.once;
    return report(pmmctl::top(target, a, [](const std::string& screen) {
      std::fputs(screen.c_str(), stdout);
      std::fflush(stdout);
    }));
  }

  if (cmd == "alloc") {
    pmmctl::AllocArgs a;
    auto pools = pmmctl::split_pools(pools_text);
    if (!pools) return usage_error(pools.error().message);
    a.pools = std::move(*pools);
    auto size = pmm::parse_size(size_text);
    if (!size) return usage_error(size.error().message);
    if (*size == 0) return usage_error("size 0: a block needs at least 1 byte");
    a.size = *size;
    if (!align_text.empty()) {
      auto align = pmm::parse_size(align_text);
      if (!align) return usage_error("--align: " + align.error().message);
      a.alignment = *align;
    }
    a.flags =
        (contiguous ? pmm::proto::kAllocContiguous : 0u) | (zero ? pmm::proto::kAllocZero : 0u);
    a.imports = imports;
    if (auto bad = lifetime_ms(lifetime_text, a.lifetime_ms)) return usage_error(*bad);
    return report(pmmctl::alloc(target, a));
  }

  auto token = pmmctl::parse_token(token_text);
  if (!token) return usage_error(token.error().message);
  if (cmd == "free") return report(pmmctl::free_export(target, *token));
  if (cmd == "sysv-export")
    return report(pmmctl::sysv_export(target, *token, [](const std::string& text) {
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);  // a script reads it while we hold the export
    }));
  if (cmd == "export") {
    pmmctl::ExportArgs a{.token = *token, .imports = imports, .lifetime_ms = 0};
    if (auto bad = lifetime_ms(lifetime_text, a.lifetime_ms)) return usage_error(*bad);
    return report(pmmctl::reexport(target, a));
  }
  return usage_error("unknown command " + cmd);
}
