// pmmd — the pmm daemon. Everything but the command line is pmm::daemon.
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/kernel_report.h"
#include "os/event_fds.h"
#include "os/socket.h"

int main(int argc, char** argv) {
  CLI::App app{
      "pmmd: the pmm physical memory manager daemon. Owns memory pools and lends blocks of "
      "them to processes over a Unix socket."};
  std::string config_path;
  std::string socket_path;
  bool foreground = false;
  bool verbose = false;
  bool check = false;
  bool print_default = false;
  bool kernel_info = false;
  app.add_option("-c,--config", config_path,
                 "TOML config file (default: built in: a 256 MiB shmem pool 'general' and a "
                 "64 MiB sysv pool 'display', for pmmd's own uid and root only)");
  app.add_option("-s,--socket", socket_path,
                 "listening socket (default: $PMM_SOCKET, else $XDG_RUNTIME_DIR/pmm/pmm.sock, "
                 "else /run/pmm/pmm.sock); ignored when socket activation (LISTEN_FDS, "
                 "pmmd.socket) passes one");
  app.add_flag("-f,--foreground", foreground,
               "stay in the foreground; pmmd always does (for systemd and scripts), so this "
               "is accepted for compatibility");
  app.add_flag("-v,--verbose", verbose, "log every block operation, not only sessions");
  app.add_flag("--check-config", check, "check the config, print what it declares and exit");
  app.add_flag("--print-default-config", print_default,
               "print the built-in config (a starting point for a file) and exit");
  app.add_flag("--kernel-info", kernel_info,
               "print what this kernel offers pmm (huge pages free, physical addresses, SysV "
               "limits, NUMA nodes) and exit");
  CLI11_PARSE(app, argc, argv);
  (void)foreground;

  if (kernel_info) {
    for (const auto& line : pmm::daemon::describe_kernel()) fmt::print("{}\n", line);
    return 0;
  }
  if (print_default) {
    fmt::print("{}", pmm::daemon::default_config_text());
    return 0;
  }
  pmm::Result<pmm::daemon::Config> config =
      config_path.empty() ? pmm::daemon::default_config() : pmm::daemon::load_config(config_path);
  if (!config) {
    fmt::print(stderr, "pmmd: config refused: {}\n", config.error().message);
    return 2;
  }
  if (check) {
    fmt::print("{}: ok\n", config->source);
    for (const auto& line : pmm::daemon::describe(*config)) fmt::print("  {}\n", line);
    return 0;
  }
  if (socket_path.empty()) socket_path = pmm::os::default_socket_path();
  // Whoever reads our stderr (a terminal, a logger, the journal) may go
  // away; a log line must then fail quietly, not kill the daemon.
  pmm::os::ignore_sigpipe();
  // The block table's vectors are megabytes at scale; see event_fds.h.
  pmm::os::map_large_allocations(size_t{256} << 10);

  pmm::daemon::DaemonOptions options;
  options.log.verbose = verbose;
  options.handle_signals = true;
  auto inherited = pmm::os::inherited_listener();
  if (!inherited) {
    fmt::print(stderr, "pmmd: cannot start: {}\n", inherited.error().describe());
    return 1;
  }
  if (*inherited) options.listen_fd = (*inherited)->release();
  auto daemon = pmm::daemon::Daemon::create(std::move(*config), socket_path, options);
  if (!daemon) {
    fmt::print(stderr, "pmmd: cannot start: {}\n", daemon.error().describe());
    return 1;
  }
  if (auto s = (*daemon)->run(); !s) {
    fmt::print(stderr, "pmmd: event loop failed: {}\n", s.error().describe());
    return 1;
  }
  return 0;
}
