// DaemonProcess — a real pmmd, started as a child process on a private socket.
//
// Integration tests run the daemon the way a user does: the built `pmmd`
// binary, a TOML config written to a temporary directory, a socket there too.
// The destructor sends SIGTERM and waits, so each test leaves nothing behind
// (the daemon removes its SysV segments and its socket on SIGTERM).
//
// Usage:
//   DaemonProcess d(R"([pools.general]
//   type = "shmem"
//   size = "16MiB")");
//   ASSERT_TRUE(d.ok()) << d.log();
//   pmm_connect(d.socket().c_str(), "dev", &conn);
//
// Not thread-safe; one test thread owns it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace pmm::testing {

// Whether this build runs under AddressSanitizer. pmmd's memory (RSS per
// record, what malloc_trim gives back) is measured in the release build:
// under ASan its heap is ASan's, with a quarantine for what was freed.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

class DaemonProcess {
 public:
  // `config` is TOML text; empty means "no --config": the embedded default.
  explicit DaemonProcess(const std::string& config = "") : DaemonProcess(config, {}, {}) {}
  // pmmd run under `wrapper` (e.g. {"prlimit", "--nofile=64", "--"}) with
  // `extra_args` after the socket and config (e.g. {"--verbose"}).
  DaemonProcess(const std::string& config, const std::vector<std::string>& wrapper,
                const std::vector<std::string>& extra_args);
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  [[nodiscard]] bool ok() const { return pid_ > 0 && ready_; }
  [[nodiscard]] const std::string& socket() const { return socket_; }
  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  // Everything the daemon wrote to stderr so far.
  [[nodiscard]] std::string log() const;
  // SIGTERM and wait; returns the exit status (as from waitpid), or -1.
  int stop();

 private:
  std::string dir_;
  std::string socket_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

// Runs `argv` to completion with stdin closed; returns exit status and the
// output of stdout (stderr appended after a "\n--stderr--\n" marker when
// `with_stderr`).
struct Run {
  int status = -1;  // exit code, or 128 + signal
  std::string out;
  std::string err;
};
Run run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});

// A child that keeps running until it is killed or its stdin closes:
// stdout is readable line by line.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // The next line of its stdout, without "\n"; empty on EOF or after timeout_ms.
  std::string read_line(int timeout_ms = 10000);
  void write_line(const std::string& line);
  void close_stdin();
  int kill_and_wait(int sig);
  int wait();
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string buffered_;
};

}  // namespace pmm::testing
