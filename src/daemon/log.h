// pmm::daemon::Log — pmmd's log: readable lines on stderr.
//
// One line per event, prefixed "pmmd: ", written whole with one fwrite so
// lines from the daemon and from a test sharing the terminal do not
// interleave mid-line. Under systemd stderr goes to the journal.
//   pmmd: session 3 (pid 1234, uid 1000, device decoder) allocated block 17:
//         1 MiB in general at 0x100000
// info(): sessions opening and closing, refusals, expiry, start and stop.
// detail(): every block operation; only with --verbose, so a busy daemon
// does not spend its time writing logs.
//
// Usage:
//   Log log{.verbose = true};
//   log.info("listening on {}", path);
//
// Thread safety: one thread (the loop); stderr writes are atomic per line.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <string>

namespace pmm::daemon {

struct Log {
  bool verbose = false;
  bool quiet = false;  // tests: nothing at all

  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) const {
    if (!quiet) write(fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void detail(fmt::format_string<Args...> f, Args&&... args) const {
    if (verbose && !quiet) write(fmt::format(f, std::forward<Args>(args)...));
  }

 private:
  static void write(const std::string& line) {
    std::string out = "pmmd: " + line + "\n";
    std::fwrite(out.data(), 1, out.size(), stderr);
  }
};

}  // namespace pmm::daemon
