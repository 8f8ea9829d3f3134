// pmmctl run as a user runs it: a subprocess against a real pmmd on a
// private socket. Checks output formats, exit statuses, and that what
// pmmctl does (alloc, free, export, sysv-export) is what the daemon then
// shows and what another client sees.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/shm.h>

#include <cstring>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "daemon_process.h"
#include "pmm/pmm.h"

namespace {

using nlohmann::json;
using pmm::testing::DaemonProcess;
using Out = pmm::testing::Run;

constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"

[pools.display]
type = "sysv"
size = "4MiB"

[devices.decoder]
pools = ["general"]
max = "8MiB"
)";

Out pmmctl(const DaemonProcess& d, std::vector<std::string> args) {
  std::vector<std::string> argv = {PMM_PMMCTL_PATH, "--socket", d.socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return pmm::testing::run_command(argv);
}

// No <regex> here: GCC 12 warns (-Wmaybe-uninitialized, falsely) inside its
// regex compiler under the sanitizer build, and CI builds with -Werror.
bool is_token_line(const std::string& s) {
  return s.size() == 33 && s.back() == '\n' && s.find_first_not_of("0123456789abcdef") == 32;
}

json blocks_json(const DaemonProcess& d) {
  Out r = pmmctl(d, {"blocks", "--json"});
  EXPECT_EQ(r.status, 0) << r.err;
  return json::parse(r.out);
}

TEST(Pmmctl, NoDaemonExits3AndSaysSo) {
  Out r = pmm::testing::run_command(
      {PMM_PMMCTL_PATH, "--socket", "/tmp/pmmctl-test-nowhere/pmm.sock", "pools"});
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.err.find("is pmmd running?"), std::string::npos) << r.err;
  // $PMM_SOCKET is the default socket.
  r = pmm::testing::run_command({PMM_PMMCTL_PATH, "status"},
                                {"PMM_SOCKET=/tmp/pmmctl-test-elsewhere/pmm.sock"});
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.err.find("/tmp/pmmctl-test-elsewhere/pmm.sock"), std::string::npos) << r.err;
}

TEST(Pmmctl, UsageErrorsExit2AndSayWhatIsAccepted) {
  // None of these reaches a daemon: the socket does not exist.
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), {PMM_PMMCTL_PATH, "--socket", "/tmp/pmmctl-test-nowhere/s"});
    return pmm::testing::run_command(args);
  };
  Out r = run({"alloc", "general", "4MB"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("ambiguous"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("write 4MiB"), std::string::npos) << r.err;
  r = run({"alloc", "general", "lots"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("4KiB"), std::string::npos) << r.err;
  r = run({"alloc", "general,,dma", "4k"});
  EXPECT_EQ(r.status, 2);
  r = run({"alloc", "general", "4k", "--lifetime", "1 day"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("500ms"), std::string::npos) << r.err;
  // A bare number once meant seconds here and milliseconds in pmmd.toml.
  r = run({"alloc", "general", "4k", "--lifetime", "60"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("has no unit; write a unit: 500ms, 60s"), std::string::npos) << r.err;
  r = run({"alloc", "general"});
  EXPECT_EQ(r.status, 2);
  r = run({"free", "abc"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("32 hex digits"), std::string::npos) << r.err;
  r = run({"frobnicate"});
  EXPECT_EQ(r.status, 2);
  r = run({});
  EXPECT_EQ(r.status, 2);
  r = run({"--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("sysv-export"), std::string::npos) << r.out;
}

TEST(Pmmctl, AllocHoldsTheBlockUntilFree) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Out r = pmmctl(d, {"alloc", "general", "1MiB", "--zero"});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(is_token_line(r.out)) << r.out;
  const std::string token = r.out.substr(0, 32);

  // pmmctl has exited; the export holds the block.
  json blocks = blocks_json(d);
  ASSERT_EQ(blocks.size(), 1u) << blocks.dump();
  EXPECT_EQ(blocks[0]["pool"], "general");
  EXPECT_EQ(blocks[0]["size"], 1 << 20);
  ASSERT_EQ(blocks[0]["holders"].size(), 1u);
  EXPECT_EQ(blocks[0]["holders"][0]["kind"], "export");
  r = pmmctl(d, {"blocks"});
  EXPECT_NE(r.out.find("0x0  1 MiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("export " + token.substr(0, 16)), std::string::npos) << r.out;

  r = pmmctl(d, {"free", token});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(blocks_json(d).size(), 0u);
  EXPECT_EQ(pmmctl(d, {"blocks"}).out, "no blocks\n");
  // Twice is refused by the daemon: exit 1 with its reason.
  r = pmmctl(d, {"free", token});
  EXPECT_EQ(r.status, 1);
  EXPECT_FALSE(r.err.empty());
}

TEST(Pmmctl, TokenFromPmmctlIsImportedByAProgram) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Out r = pmmctl(d, {"alloc", "general", "64k", "--imports", "2", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["size"], 65536);
  EXPECT_EQ(j["imports"], 2);
  pmm_token t;
  ASSERT_EQ(pmm_token_parse(j["token"].get<std::string>().c_str(), &t), PMM_OK);

  // export: one import of the old token buys a new token with more imports.
  r = pmmctl(d, {"export", j["token"], "--imports", "3"});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(is_token_line(r.out)) << r.out;
  pmm_token t2;
  ASSERT_EQ(pmm_token_parse(r.out.substr(0, 32).c_str(), &t2), PMM_OK);

  pmm_conn* c;
  // "decoder" is declared in the config (an undeclared name shows as "default").
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "decoder", &c), PMM_OK) << pmm_last_error();
  pmm_block *a, *b;
  ASSERT_EQ(pmm_import(c, &t, &a), PMM_OK) << pmm_last_error();  // the old token's 2nd
  EXPECT_NE(pmm_import(c, &t, &b), PMM_OK);                      // no 3rd
  ASSERT_EQ(pmm_import(c, &t2, &b), PMM_OK) << pmm_last_error();
  EXPECT_EQ(a, b);
  EXPECT_EQ(pmm_block_id(a), j["block"].get<uint64_t>());

  // sessions shows this client by its device name, with what it holds: one
  // reference for the process (libpmm counts its two imports itself).
  r = pmmctl(d, {"sessions"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("decoder       1     1  64 KiB"), std::string::npos) << r.out;
  json sessions = json::parse(pmmctl(d, {"sessions", "--json"}).out);
  bool found = false;
  for (const auto& s : sessions)
    if (s["device"] == "decoder") {
      found = true;
      EXPECT_EQ(s["references"], 1);
      EXPECT_EQ(s["bytes"], 65536);
    }
  EXPECT_TRUE(found) << sessions.dump();
  pmm_disconnect(c);
}

TEST(Pmmctl, SysvExportHoldsTheBlockWhileItRuns) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* c;
  pmm_block* b;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "writer", &c), PMM_OK) << pmm_last_error();
  ASSERT_EQ(pmm_alloc(c, "display", 8192, 0, 0, &b), PMM_OK) << pmm_last_error();
  std::memset(pmm_block_ptr(b), 0x42, 8192);
  const uint64_t block_offset = pmm_block_offset(b);
  pmm_token t;
  ASSERT_EQ(pmm_export(b, 1, 0, &t), PMM_OK);
  char text[PMM_TOKEN_STRLEN];
  pmm_token_format(&t, text);

  pmm::testing::Child holder({PMM_PMMCTL_PATH, "--socket", d.socket(), "sysv-export", text});
  std::string line = holder.read_line();
  std::istringstream fields(line);
  int shmid = -1;
  uint64_t offset = 0, size = 0;
  std::string rest;
  ASSERT_TRUE(fields >> shmid >> offset >> size && !(fields >> rest)) << line;
  EXPECT_EQ(size, 8192u);
  EXPECT_EQ(offset, block_offset);
  // The writer lets go; the SysV export alone holds the block.
  pmm_block_put(b);
  pmm_disconnect(c);
  auto* at = static_cast<uint8_t*>(shmat(shmid, nullptr, SHM_RDONLY));
  ASSERT_NE(at, reinterpret_cast<uint8_t*>(-1));
  EXPECT_EQ(at[offset + 8191], 0x42);
  shmdt(at);
  json blocks = blocks_json(d);
  ASSERT_EQ(blocks.size(), 1u) << blocks.dump();
  ASSERT_EQ(blocks[0]["holders"].size(), 1u) << blocks.dump();
  EXPECT_EQ(blocks[0]["holders"][0]["kind"], "sysv_export") << blocks.dump();

  // Ctrl-C (or SIGTERM) withdraws it: exit 0, and the block is free.
  EXPECT_EQ(holder.kill_and_wait(SIGINT), 0);
  EXPECT_EQ(blocks_json(d).size(), 0u);
}

TEST(Pmmctl, SysvExportOfAShmemBlockIsRefused) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Out r = pmmctl(d, {"alloc", "general", "4k"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = pmmctl(d, {"sysv-export", r.out.substr(0, 32)});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("unsupported"), std::string::npos) << r.err;
}

TEST(Pmmctl, RefusalsExit1WithTheDaemonsReason) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  Out r = pmmctl(d, {"alloc", "general", "64MiB"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("out of pool memory"), std::string::npos) << r.err;
  r = pmmctl(d, {"--device", "decoder", "alloc", "general", "9MiB"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("limit reached"), std::string::npos) << r.err;
  r = pmmctl(d, {"alloc", "nosuchpool", "4k"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("nosuchpool"), std::string::npos) << r.err;
}

TEST(Pmmctl, AdminViewsAsTablesAndJson) {
  DaemonProcess d(kConfig);
  ASSERT_TRUE(d.ok()) << d.log();
  ASSERT_EQ(pmmctl(d, {"alloc", "general", "1M"}).status, 0);

  Out r = pmmctl(d, {"pools"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("NAME"), std::string::npos);
  EXPECT_NE(r.out.find("general  shmem  16 MiB  1 MiB  15 MiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("display  sysv"), std::string::npos) << r.out;
  json pools = json::parse(pmmctl(d, {"pools", "--json"}).out);
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0]["used"], 1 << 20);

  r = pmmctl(d, {"status"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("blocks    1 (1 MiB)"), std::string::npos) << r.out;
  json st = json::parse(pmmctl(d, {"--json", "status"}).out);
  EXPECT_EQ(st["blocks"], 1);
  EXPECT_EQ(st["bytes"], 1 << 20);
  EXPECT_EQ(st["socket"], d.socket());

  r = pmmctl(d, {"devices"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("decoder"), std::string::npos) << r.out;
  {
    // Columns are as wide as the longest name ("default (uid 0)", the
    // default device's row for uid 0).
    size_t at = r.out.find("decoder");
    std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    EXPECT_NE(line.find(" 8 MiB"), std::string::npos) << r.out;
  }
  json devs = json::parse(pmmctl(d, {"devices", "--json"}).out);
  bool found = false;
  for (const auto& dev : devs)
    if (dev["name"] == "decoder") {
      found = true;
      EXPECT_EQ(dev["max"], 8 << 20);
    }
  EXPECT_TRUE(found) << devs.dump();
}

}  // namespace
