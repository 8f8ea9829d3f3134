// Log: client-supplied text cannot forge lines or drive a terminal, and one
// statement in a loop writes a bounded number of lines.
#include "daemon/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "daemon/service.h"

namespace pmm::daemon {
namespace {

// Runs `f` with stderr sent to a temporary file; returns what was written.
template <typename F>
std::string captured_stderr(F&& f) {
  std::fflush(stderr);
  std::FILE* tmp = std::tmpfile();
  int saved = ::dup(2);
  ::dup2(::fileno(tmp), 2);
  f();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string out;
  std::rewind(tmp);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, tmp)) > 0;) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(Log, ControlCharactersInNamesAreEscaped) {
  EXPECT_EQ(escape_log_text("cam\n[fake] line\x1b[31m\r\x7f"),
            "cam\\x0a[fake] line\\x1b[31m\\x0d\\x7f");
  // U+009B (CSI as a C1 control, UTF-8 c2 9b) too; other UTF-8 stays.
  EXPECT_EQ(escape_log_text("a\xc2\x9b"
                            "b caf\xc3\xa9"),
            "a\\xc2\\x9bb caf\xc3\xa9");
  Log log;
  std::string out = captured_stderr([&] { log.info("device '{}' connected", "x\n[fake] y"); });
  EXPECT_EQ(out, "pmmd: device 'x\\x0a[fake] y' connected\n");
}

TEST(Log, OneStatementInALoopIsRateLimitedThenSaysHowManyItSuppressed) {
  Log log;
  auto say = [&](int i) { log.info("accept failed: attempt {}", i); };
  std::string burst = captured_stderr([&] {
    for (int i = 0; i < 1000; ++i) say(i);
    log.info("another cause still writes");
  });
  EXPECT_EQ(lines(burst), static_cast<size_t>(Log::kBurst) + 1) << burst;
  EXPECT_NE(burst.find("another cause still writes"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(1050));
  std::string later = captured_stderr([&] { say(1000); });
  EXPECT_NE(later.find("(980 more lines like \"accept failed: attempt {}\" suppressed"),
            std::string::npos)
      << later;
  EXPECT_NE(later.find("accept failed: attempt 1000\n"), std::string::npos) << later;
}

// A detail line that --verbose did not ask for, or one the rate limit
// holds back, costs no formatting: a lazy argument is not even built. A
// line that is written builds it once.
TEST(Log, ALazyArgumentIsBuiltOnlyWhenItsLineIsWritten) {
  int built = 0;
  auto costly = [&] {
    ++built;
    return std::string("1 MiB");
  };
  Log quiet_detail;  // not verbose
  std::string none = captured_stderr([&] {
    for (int i = 0; i < 100; ++i) quiet_detail.detail("allocated {}", lazy(costly));
  });
  EXPECT_EQ(none, "");
  EXPECT_EQ(built, 0);

  Log verbose{.verbose = true};
  std::string one = captured_stderr([&] { verbose.detail("allocated {}", lazy(costly)); });
  EXPECT_EQ(one, "pmmd: allocated 1 MiB\n");
  EXPECT_EQ(built, 1);

  built = 0;
  Log log;
  std::string limited = captured_stderr([&] {
    for (int i = 0; i < 100; ++i) log.info("refused: {}", lazy(costly));
  });
  EXPECT_EQ(lines(limited), static_cast<size_t>(Log::kBurst));
  EXPECT_EQ(built, Log::kBurst);  // the 80 held back were never formatted
}

// Service::who names a session in log lines without building a string
// until a line is written; what it writes is unchanged.
TEST(Log, ASessionIsNamedByIdPidUidAndDevice) {
  SessionState s;
  s.id = 3;
  s.peer = {.pid = 1234, .uid = 1000, .gid = 1000};
  EXPECT_EQ(fmt::format("{}", Service::who(s)), "session 3 (pid 1234, uid 1000, device ?)");
  s.device = "decoder";
  Log log;
  std::string out = captured_stderr([&] { log.info("{} connected", Service::who(s)); });
  EXPECT_EQ(out, "pmmd: session 3 (pid 1234, uid 1000, device decoder) connected\n");
}

}  // namespace
}  // namespace pmm::daemon
