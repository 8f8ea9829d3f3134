// ChildProcess: fork/exec with pipes, poll-bounded reads and waits.
#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace tests {

using Clock = std::chrono::steady_clock;

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const Env& env, int keep_fd,
                           bool merge_stderr) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    std::perror("pipe2");
    std::abort();
  }
  // Build everything the child needs before fork: after fork only
  // async-signal-safe calls are allowed in a threaded parent.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    bool overridden = false;
    for (const auto& [key, value] : env) overridden |= entry.starts_with(key + "=");
    if (!overridden) env_strings.push_back(std::move(entry));
  }
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ < 0) {
    std::perror("fork");
    std::abort();
  }
  if (pid_ == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    if (merge_stderr) ::dup2(out[1], STDERR_FILENO);
    if (keep_fd >= 0) {
      const int flags = ::fcntl(keep_fd, F_GETFD);
      ::fcntl(keep_fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    ::execve(args[0], args.data(), envp.data());
    const char msg[] = "ChildProcess: execve failed\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    kill(SIGTERM);
    if (!wait(std::chrono::seconds(5))) {
      kill(SIGKILL);
      (void)wait(std::chrono::seconds(10));
    }
  }
  close_stdin();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

bool ChildProcess::write_stdin(const std::string& text) {
  // A reader that exited must not kill the test with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(stdin_fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void ChildProcess::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

std::optional<std::string> ChildProcess::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (const size_t nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{stdout_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(stdout_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;  // EOF: the child closed stdout
    buffered_.append(chunk, static_cast<size_t>(n));
  }
}

void ChildProcess::kill(int signal) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, signal);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return status;
    }
    if (r < 0) {
      reaped_ = true;
      return std::nullopt;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::pair<int, std::string> run_to_end(const std::vector<std::string>& argv,
                                       const ChildProcess::Env& env, const std::string& stdin_text,
                                       std::chrono::milliseconds timeout, bool merge_stderr) {
  ChildProcess child(argv, env, -1, merge_stderr);
  child.write_stdin(stdin_text);
  child.close_stdin();
  const auto deadline = Clock::now() + timeout;
  std::string out;
  while (auto line = child.read_line(
             std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()))) {
    out += *line + "\n";
  }
  auto status = child.wait(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max(deadline - Clock::now(), Clock::duration(std::chrono::milliseconds(1)))));
  return {status.value_or(-1), out};
}

}  // namespace tests
