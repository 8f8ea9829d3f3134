// pmm::daemon::Log — pmmd's log: readable lines on stderr, safe to flood.
//
// One line per event, prefixed "pmmd: ", written whole with one fwrite so
// lines from the daemon and from a test sharing the terminal do not
// interleave mid-line. Under systemd stderr goes to the journal.
//   pmmd: session 3 (pid 1234, uid 1000, device decoder) allocated block 17:
//         1 MiB in general at 0x100000
// info(): sessions opening and closing, limits reached, expiry, start and
// stop. detail() (debug): every block operation and every refused request;
// only with --verbose, so a busy daemon does not spend its time writing logs.
//
// Two defences, because a local user decides much of what gets logged:
// - Escaping. Device and pool names come from clients. Every byte below
//   0x20, DEL, and the UTF-8 forms of the C1 controls (U+0080..U+009F) are
//   written as \xNN, so a name cannot start a forged line ("\n[fake] ...")
//   or drive the terminal reading the log ("\x1b[31m").
// - Rate limiting per cause. A cause is one log statement (its format
//   string). Each may write kBurst lines per second (kDetailBurst for
//   detail lines, which --verbose asks for); the rest are counted
//   and, when that statement next writes, one line says how many were
//   suppressed. A client that makes pmmd refuse it in a loop costs a few
//   lines a second, not megabytes.
//
// Nothing is formatted for a line that is not written: info() and detail()
// look at quiet, verbose and the rate limit before fmt runs. An argument
// that costs something to build (a string from a helper) is passed as
// lazy(...), or as a type with its own fmt::formatter (Service::who's
// SessionLabel), so that a detail line that --verbose did not ask for costs
// one branch on the request path.
//
// Usage:
//   Log log{.verbose = true};
//   log.info("listening on {}", path);
//   log.detail("{} in {}", lazy([&] { return format_size(n); }), pool);
//
// Thread safety: one thread (the loop); stderr writes are atomic per line.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "daemon/steady_now.h"

namespace pmm::daemon {

// A log argument made only when its line is written (see above).
template <typename F>
struct Lazy {
  F make;
};
template <typename F>
[[nodiscard]] Lazy<F> lazy(F make) {
  return Lazy<F>{std::move(make)};
}

// `line` with control characters written as \xNN (see above).
inline std::string escape_log_text(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size(); ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    bool c1 = c == 0xc2 && i + 1 < line.size() && static_cast<unsigned char>(line[i + 1]) >= 0x80 &&
              static_cast<unsigned char>(line[i + 1]) <= 0x9f;
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c1) {
      out += fmt::format("\\xc2\\x{:02x}", static_cast<unsigned char>(line[++i]));
    } else {
      out += line[i];
    }
  }
  return out;
}

struct Log {
  bool verbose = false;
  bool quiet = false;  // tests: nothing at all

  // Lines one log statement may write per second before it is suppressed:
  // info, and detail (asked for with --verbose, to follow every operation).
  static constexpr int kBurst = 20;
  static constexpr int kDetailBurst = 1000;

  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) const {
    if (quiet || !admit(fmt::string_view(f), kBurst)) return;
    write(fmt::format(f, std::forward<Args>(args)...));
  }
  // Debug: --verbose only.
  template <typename... Args>
  void detail(fmt::format_string<Args...> f, Args&&... args) const {
    if (!verbose || quiet || !admit(fmt::string_view(f), kDetailBurst)) return;
    write(fmt::format(f, std::forward<Args>(args)...));
  }

 private:
  struct Window {
    std::chrono::steady_clock::time_point start{};
    int written = 0;
    uint64_t suppressed = 0;
  };

  // Whether the statement `cause` may write now; reports what a closed
  // window suppressed.
  bool admit(fmt::string_view cause, int burst) const {
    // steady_now(): the same clock, read inline (a connection's Hello and
    // close each ask once, mostly to be told they are suppressed).
    const auto now = steady_now();
    Window& w = windows_[cause.data()];
    if (now - w.start >= std::chrono::seconds(1)) {
      if (w.suppressed > 0) {
        write(fmt::format(
            "({} more lines like \"{}\" suppressed in the last {} ms)", w.suppressed,
            std::string_view(cause.data(), cause.size()),
            std::chrono::duration_cast<std::chrono::milliseconds>(now - w.start).count()));
      }
      w = Window{.start = now};
    }
    if (w.written >= burst) {
      ++w.suppressed;
      return false;
    }
    ++w.written;
    return true;
  }

  static void write(std::string_view line) {
    std::string out = "pmmd: " + escape_log_text(line) + "\n";
    std::fwrite(out.data(), 1, out.size(), stderr);
  }

 public:
  // The rate limiter's state (public only so that Log stays an aggregate
  // for designated initializers). Keyed by the format string's address: one
  // entry per log statement in the program, so it is bounded by the code,
  // not by clients.
  mutable std::unordered_map<const char*, Window> windows_{};
};

}  // namespace pmm::daemon

template <typename F, typename Char>
struct fmt::formatter<pmm::daemon::Lazy<F>, Char>
    : fmt::formatter<std::decay_t<std::invoke_result_t<const F&>>, Char> {
  template <typename Context>
  auto format(const pmm::daemon::Lazy<F>& l, Context& ctx) const {
    return fmt::formatter<std::decay_t<std::invoke_result_t<const F&>>, Char>::format(l.make(),
                                                                                      ctx);
  }
};
