// Integration: `pmmctl check` against a real pmmd. A daemon that has served
// allocations, exports, imports and SysV exports from other processes
// reports clean with what it walked; an unprivileged uid (65534, through
// setpriv) is refused with a reason and exit status 1, and the daemon goes
// on serving.
#include <gtest/gtest.h>

#include <csignal>

#include <string>
#include <vector>

#include "daemon_process.h"

namespace pmm::testing {
namespace {

constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"

[pools.display]
type = "sysv"
size = "4MiB"
)";

Run pmmctl(const DaemonProcess& d, const std::vector<std::string>& args, bool as_nobody = false) {
  std::vector<std::string> argv;
  if (as_nobody) argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  argv.insert(argv.end(), {PMM_PMMCTL_PATH, "--socket", d.socket()});
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string ok_reply(Child& agent, const std::string& command) {
  agent.write_line(command);
  std::string line = agent.read_line();
  EXPECT_EQ(line.rfind("ok", 0), 0u) << command << " -> " << line;
  return line.size() > 3 ? line.substr(3) : std::string();
}

TEST(Check, ADaemonThatServedTrafficReportsClean) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Child producer({PMM_AGENT_PATH, d.socket(), "decoder"});
  Child consumer({PMM_AGENT_PATH, d.socket(), "display"});
  ASSERT_EQ(producer.read_line(), "ready") << d.log();
  ASSERT_EQ(consumer.read_line(), "ready") << d.log();
  ok_reply(producer, "alloc general 65536");                   // handle 0
  ok_reply(producer, "alloc display 8192");                    // handle 1
  std::string token = ok_reply(producer, "export 0 2 60000");  // one import left after
  ok_reply(consumer, "import " + token);
  ok_reply(consumer, "get 0");
  ok_reply(producer, "sysv 1");

  pmm::testing::Run r = pmmctl(d, {"check"});
  EXPECT_EQ(r.status, 0) << r.out << r.err << d.log();
  EXPECT_EQ(r.out.rfind("clean: every invariant holds (2 pools, 2 blocks, ", 0), 0u) << r.out;

  r = pmmctl(d, {"check", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(has(r.out, "\"clean\": true")) << r.out;
  EXPECT_TRUE(has(r.out, "\"violation\": null")) << r.out;
  EXPECT_TRUE(has(r.out, "\"pools\": 2")) << r.out;
  EXPECT_TRUE(has(r.out, "\"blocks\": 2")) << r.out;
  EXPECT_TRUE(has(r.out, "\"sessions\": 3")) << "producer, consumer, this pmmctl: " << r.out;
  EXPECT_TRUE(has(r.out, "\"exports\": 2")) << "a token with an import left, a SysV export";

  // A producer killed mid-way is cleaned up, and the books still add up.
  producer.kill_and_wait(SIGKILL);
  r = pmmctl(d, {"check", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(has(r.out, "\"clean\": true")) << r.out;
  EXPECT_TRUE(has(r.out, "\"blocks\": 1")) << "the display block went with its only holder";
  EXPECT_TRUE(has(r.out, "\"exports\": 1")) << "the token outlives its exporter";
}

TEST(Check, Uid65534IsRefusedWithAReasonAndTheDaemonGoesOn) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm::testing::Run r = pmmctl(d, {"check"}, /*as_nobody=*/true);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("uid 65534 may not run the invariant check"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("only admins (root) or pmmd's own uid"), std::string::npos) << r.err;
  r = pmmctl(d, {"check"});
  EXPECT_EQ(r.status, 0) << r.err << d.log();
}

}  // namespace
}  // namespace pmm::testing
