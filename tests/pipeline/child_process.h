// A child process for the pipeline tests: argv, extra environment, its
// stdin/stdout as pipes the test holds, lines read with a timeout, and a
// bounded wait. The destructor stops a child still running — SIGTERM, and
// SIGKILL if it has not exited 5 s later — so a failing test leaves no
// process behind, and pmmd or Xvfb get the chance to remove their SysV
// segments and lock files.
//
//   tests::ChildProcess show({bin + "/pmm-show", "--hold", "30"}, {{"DISPLAY", ":5"}});
//   show.write_stdin(line + "\n");
//   auto shown = show.read_line(std::chrono::seconds(10));   // "shown window=..."
//   show.kill(SIGKILL);
//   int status = show.wait(std::chrono::seconds(5));
//
// One thread uses a ChildProcess.
#ifndef TESTS_PIPELINE_CHILD_PROCESS_H_
#define TESTS_PIPELINE_CHILD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tests {

class ChildProcess {
 public:
  using Env = std::vector<std::pair<std::string, std::string>>;

  // Starts argv[0] (a path) with the test's environment plus `env`.
  // `keep_fd`, when >= 0, is passed to the child as the same number (for
  // Xvfb's -displayfd). stderr is inherited, so the child's messages appear
  // in the test log, unless `merge_stderr` sends it to the stdout pipe.
  ChildProcess(const std::vector<std::string>& argv, const Env& env, int keep_fd = -1,
               bool merge_stderr = false);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }

  // Writes all of `text` to the child's stdin; false if it closed it.
  bool write_stdin(const std::string& text);
  void close_stdin();

  // The next line of the child's stdout (without '\n'), or nullopt on EOF or
  // after `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);

  void kill(int signal);

  // The wait status once it exits, or nullopt after `timeout` (still running).
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string buffered_;
  bool reaped_ = false;
};

// Runs argv to completion (with `stdin_text` on stdin) within `timeout` and
// returns {wait status, stdout (and stderr, when merged)}; a child still
// running then is stopped and the status is -1.
std::pair<int, std::string> run_to_end(const std::vector<std::string>& argv,
                                       const ChildProcess::Env& env, const std::string& stdin_text,
                                       std::chrono::milliseconds timeout,
                                       bool merge_stderr = false);

}  // namespace tests

#endif  // TESTS_PIPELINE_CHILD_PROCESS_H_
