// pmm_bench_daemon — the request path side by side with its floor.
//
// Each pmm operation through libpmm against a real pmmd (the built binary,
// its embedded default config, a private socket) beside a raw
// SOCK_SEQPACKET ping-pong (floor.h) exchanging messages of exactly the
// sizes that operation's requests and replies have (proto::encode of the
// same messages), in the same run, rounds interleaved so that a busy
// machine slows both alike; "raw+poll" is the floor with a poll() before
// each recv, as libpmm waits, to tell the client's share of pmm's excess
// from pmmd's. Then requests/s with 1, 8 and 64 client
// processes doing pmm_alloc + pmm_block_put in a loop, against the same
// processes ping-ponging the same sizes with the echo server.
//
// Usage: pmm_bench_daemon [--quick] [--pmmd PATH]
//        pmm_bench_daemon --profile OP [--count N] [--pmmd PATH]
// Prints tables; never fails on a number (a benchmark, not a test).
// --profile runs only OP ("alloc+put", "get+put", ...) through libpmm N
// times (default 20000) and prints pmmd's pid first, for perf or strace to
// attach to: `perf stat -e 'syscalls:sys_enter_recv*' -p PID`.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "floor.h"
#include "pmm/pmm.h"
#include "proto/codec.h"

#ifndef PMM_PMMD_PATH
#define PMM_PMMD_PATH "pmmd"
#endif

namespace pmm::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kBlockSize = 4096;
constexpr const char* kPool = "general";  // the embedded default config's shmem pool

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "pmm_bench_daemon: %s\n", what.c_str());
  std::_Exit(1);
}

void check(pmm_status s, const char* what) {
  if (s != PMM_OK) die(std::string(what) + ": " + pmm_last_error());
}

size_t wire_size(proto::Body body) {
  auto bytes = proto::encode({.request_id = 1, .body = std::move(body)});
  if (!bytes) die("encode: " + bytes.error().message);
  return bytes->size();
}

// The messages each operation puts on the wire, as libpmm and pmmd send them.
struct Op {
  std::string_view name;
  std::vector<Exchange> floor;
};

proto::BlockInfo block_info() {
  return proto::BlockInfo{.block_id = 1000,
                          .pool_index = 0,
                          .pool_name = kPool,
                          .offset = 1 << 20,
                          .size = kBlockSize,
                          .memory = {.pool_size = 256 << 20, .page_size = 4096}};
}

Exchange alloc_exchange() {
  return {wire_size(proto::Allocate{.pools = {kPool}, .size = kBlockSize}),
          wire_size(block_info())};
}
Exchange put_exchange() {
  return {wire_size(proto::Put{.block_id = 1000}), wire_size(proto::Ok{})};
}

std::vector<Op> ops() {
  const Exchange put = put_exchange();
  return {
      {"alloc+put", {alloc_exchange(), put}},
      {"get+put", {{wire_size(proto::Get{.block_id = 1000}), wire_size(proto::Ok{})}, put}},
      {"export+import+put",
       {{wire_size(proto::Export{.block_id = 1000, .max_imports = 1}),
         wire_size(proto::TokenReply{})},
        {wire_size(proto::Import{}), wire_size(block_info())},
        put}},
      {"connect+disconnect",
       {{wire_size(proto::Hello{.device = "bench", .pid = 1}),
         wire_size(proto::Welcome{.session_id = 1, .daemon_version = "pmmd 0.1.0"})}}},
  };
}

// ns per call of `fn`, over `iters` calls.
double time_per(int iters, const std::function<void()>& fn) {
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) fn();
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

pmm_conn* connect_pmm(const std::string& socket) {
  pmm_connect_options o{};
  o.size = sizeof o;
  o.socket_path = socket.c_str();
  o.device = "bench";
  pmm_conn* c = nullptr;
  check(pmm_connect_opts(&o, &c), "pmm_connect");
  return c;
}

// One operation through libpmm on `conn` (nullptr for connect+disconnect).
std::function<void()> pmm_op(std::string_view name, const std::string& socket, pmm_conn* conn,
                             pmm_block* held) {
  if (name == "alloc+put") {
    return [conn] {
      pmm_block* b = nullptr;
      check(pmm_alloc(conn, kPool, kBlockSize, 0, 0, &b), "pmm_alloc");
      check(pmm_block_put(b), "pmm_block_put");
    };
  }
  if (name == "get+put") {
    return [held] {
      check(pmm_block_get(held), "pmm_block_get");
      check(pmm_block_put(held), "pmm_block_put");
    };
  }
  if (name == "export+import+put") {
    return [conn, held] {
      pmm_token t;
      check(pmm_export(held, 1, 0, &t), "pmm_export");
      pmm_block* b = nullptr;
      check(pmm_import(conn, &t, &b), "pmm_import");
      check(pmm_block_put(b), "pmm_block_put");
    };
  }
  return [socket] { pmm_disconnect(connect_pmm(socket)); };
}

std::function<void()> floor_op(const Op& op, const std::string& echo, RawClient& raw) {
  if (op.name != "connect+disconnect") {
    return [&raw, &op] { raw.exchange(op.floor); };
  }
  return [echo, &op] {
    // As pmm_connect + pmm_disconnect: connect, one exchange, then a
    // half-close and wait until the server has closed its side.
    int fd = connect_seqpacket(echo);
    if (fd < 0) die("connect to the echo server");
    std::vector<std::byte> buf(128 * 1024, std::byte{0});
    auto reply = static_cast<uint32_t>(op.floor[0].reply);
    std::memcpy(buf.data(), &reply, sizeof reply);
    if (send(fd, buf.data(), op.floor[0].request, MSG_NOSIGNAL) < 0) die("send");
    if (recv(fd, buf.data(), buf.size(), 0) < 0) die("recv");
    shutdown(fd, SHUT_WR);
    while (recv(fd, buf.data(), buf.size(), 0) > 0) {
    }
    close(fd);
  };
}

void latency_table(const std::string& socket, const std::string& echo, bool quick) {
  const int rounds = quick ? 3 : 7;
  const int iters = quick ? 300 : 2000;
  pmm_conn* conn = connect_pmm(socket);
  pmm_block* held = nullptr;
  check(pmm_alloc(conn, kPool, kBlockSize, 0, 0, &held), "pmm_alloc");
  RawClient raw(echo);
  RawClient raw_poll(echo, /*poll_first=*/true);
  std::printf("Request path: one operation through libpmm and pmmd beside a raw SOCK_SEQPACKET\n");
  std::printf("ping-pong of the same message sizes (us per operation; median of %d interleaved\n",
              rounds);
  std::printf("rounds of %d operations each)\n\n", iters);
  std::printf(
      "| operation | round trips | bytes (request/reply each) | raw us | raw+poll us | pmm us | "
      "pmm/raw |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const Op& op : ops()) {
    auto p = pmm_op(op.name, socket, conn, held);
    auto f = floor_op(op, echo, raw);
    auto fp = floor_op(op, echo, raw_poll);
    const bool polled = op.name != "connect+disconnect";
    // Warm both (the pool fd and mapping arrive with the first BlockInfo).
    time_per(iters / 10 + 1, p);
    time_per(iters / 10 + 1, f);
    std::vector<double> raw_ns, poll_ns, pmm_ns;
    for (int r = 0; r < rounds; ++r) {
      raw_ns.push_back(time_per(iters, f));
      if (polled) poll_ns.push_back(time_per(iters, fp));
      pmm_ns.push_back(time_per(iters, p));
    }
    std::string sizes;
    for (const Exchange& e : op.floor) {
      sizes +=
          (sizes.empty() ? "" : ", ") + std::to_string(e.request) + "/" + std::to_string(e.reply);
    }
    double rm = median(raw_ns), pm = median(pmm_ns);
    std::string polled_us = polled ? fmt::format("{:.1f}", median(poll_ns) / 1000) : "-";
    std::printf("| %s | %zu | %s | %.1f | %s | %.1f | %.2f |\n", std::string(op.name).c_str(),
                op.floor.size(), sizes.c_str(), rm / 1000, polled_us.c_str(), pm / 1000, pm / rm);
    std::fflush(stdout);
  }
  check(pmm_block_put(held), "pmm_block_put");
  pmm_disconnect(conn);
}

// Requests answered per second with `clients` processes each running
// alloc+put (pmm) or its two exchanges (raw) for `seconds`.
double requests_per_second(int clients, bool pmm, const std::string& target, double seconds) {
  int ready[2], go[2], result[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0 || pipe2(result, O_CLOEXEC) != 0)
    die("pipe");
  const std::vector<Exchange> exchanges{alloc_exchange(), put_exchange()};
  std::vector<pid_t> children;
  for (int i = 0; i < clients; ++i) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid > 0) {
      children.push_back(pid);
      continue;
    }
    close(go[1]);
    pmm_conn* conn = nullptr;
    std::unique_ptr<RawClient> raw;
    if (pmm)
      conn = connect_pmm(target);
    else
      raw = std::make_unique<RawClient>(target);
    char byte = 1;
    if (write(ready[1], &byte, 1) != 1) std::_Exit(1);
    (void)read(go[0], &byte, 1);  // EOF: everyone starts
    uint64_t requests = 0;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      for (int k = 0; k < 16; ++k) {
        if (pmm) {
          pmm_block* b = nullptr;
          check(pmm_alloc(conn, kPool, kBlockSize, 0, 0, &b), "pmm_alloc");
          check(pmm_block_put(b), "pmm_block_put");
        } else {
          raw->exchange(exchanges);
        }
        requests += 2;
      }
    }
    if (write(result[1], &requests, sizeof requests) != sizeof requests) std::_Exit(1);
    if (conn != nullptr) pmm_disconnect(conn);
    std::_Exit(0);
  }
  close(ready[1]);
  close(result[1]);
  close(go[0]);
  for (int i = 0; i < clients; ++i) {
    char byte;
    if (read(ready[0], &byte, 1) != 1) die("a client failed to start");
  }
  close(go[1]);
  uint64_t total = 0;
  for (int i = 0; i < clients; ++i) {
    uint64_t n = 0;
    if (read(result[0], &n, sizeof n) != sizeof n) die("a client failed");
    total += n;
  }
  for (pid_t p : children) waitpid(p, nullptr, 0);
  close(ready[0]);
  close(result[0]);
  return static_cast<double>(total) / seconds;
}

void throughput_table(const std::string& socket, const std::string& echo, bool quick) {
  const int rounds = quick ? 1 : 3;
  const double seconds = quick ? 0.3 : 1.0;
  std::printf("\nRequests/s: N client processes, each looping pmm_alloc + pmm_block_put (two\n");
  std::printf("requests) against pmmd, beside the same processes ping-ponging the same sizes\n");
  std::printf("with the echo server (median of %d interleaved runs of %.1f s)\n\n", rounds,
              seconds);
  std::printf("| clients | raw req/s | pmm req/s | pmm/raw |\n|---|---|---|---|\n");
  for (int clients : {1, 8, 64}) {
    std::vector<double> raw, pmm;
    for (int r = 0; r < rounds; ++r) {
      raw.push_back(requests_per_second(clients, false, echo, seconds));
      pmm.push_back(requests_per_second(clients, true, socket, seconds));
    }
    double rm = median(raw), pm = median(pmm);
    std::printf("| %d | %.0f | %.0f | %.2f |\n", clients, rm, pm, pm / rm);
    std::fflush(stdout);
  }
}

// One operation, `count` times, for a profiler attached to pmmd (pid on
// stdout, then a line on stdin starts the loop) or to this process.
void run_profile(const std::string& op, const std::string& socket, pid_t daemon, int count) {
  pmm_conn* conn = connect_pmm(socket);
  pmm_block* held = nullptr;
  check(pmm_alloc(conn, kPool, kBlockSize, 0, 0, &held), "pmm_alloc");
  auto p = pmm_op(op, socket, conn, held);
  std::printf("pmmd pid %d; press Enter to run %d x %s\n", static_cast<int>(daemon), count,
              op.c_str());
  std::fflush(stdout);
  (void)std::getchar();
  double ns = time_per(count, p);
  std::printf("%s: %.1f us per operation\n", op.c_str(), ns / 1000);
  check(pmm_block_put(held), "pmm_block_put");
  pmm_disconnect(conn);
}

pid_t start_pmmd(const std::string& pmmd, const std::string& socket, const std::string& log) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 2);
      close(fd);
    }
    execl(pmmd.c_str(), pmmd.c_str(), "--socket", socket.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  for (int i = 0; i < 2000; ++i) {
    int fd = connect_seqpacket(socket);
    if (fd >= 0) {
      close(fd);
      return pid;
    }
    if (waitpid(pid, nullptr, WNOHANG) == pid) die(pmmd + " exited; see " + log);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  die(pmmd + " did not listen within 20 s");
}

}  // namespace
}  // namespace pmm::bench

int main(int argc, char** argv) {
  using namespace pmm::bench;
  bool quick = false;
  std::string pmmd = PMM_PMMD_PATH;
  std::string profile;
  int count = 20000;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--pmmd" && i + 1 < argc) {
      pmmd = argv[++i];
    } else if (a == "--profile" && i + 1 < argc) {
      profile = argv[++i];
    } else if (a == "--count" && i + 1 < argc) {
      count = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--pmmd PATH]\n"
                   "       %s --profile OP [--count N] [--pmmd PATH]\n",
                   argv[0], argv[0]);
      return 2;
    }
  }
  char tmpl[] = "/tmp/pmm-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) die("mkdtemp");
  const std::string dir = tmpl;
  const std::string socket = dir + "/pmm.sock";
  const std::string log = dir + "/pmmd.log";
  pid_t daemon = start_pmmd(pmmd, socket, log);
  if (!profile.empty()) {
    run_profile(profile, socket, daemon, count);
  } else {
    EchoServer echo = EchoServer::start(dir + "/echo.sock");
    latency_table(socket, echo.path(), quick);
    throughput_table(socket, echo.path(), quick);
  }
  kill(daemon, SIGTERM);
  waitpid(daemon, nullptr, 0);
  unlink(log.c_str());
  rmdir(dir.c_str());
  return 0;
}
