// pmm_bench_daemon — the request path side by side with its floor.
//
// Each pmm operation through libpmm against a real pmmd (the built binary,
// its embedded default config, a private socket) beside a raw
// SOCK_SEQPACKET ping-pong (floor.h) that puts the same messages on the
// wire (proto::encode of the same messages: the same sizes) and waits where
// libpmm waits: alloc+put's last put is sent without waiting, its answer
// read before the next reply, in both columns.
//
// Where the two processes run decides much of a round trip's cost on a
// small VM (a wake-up of an idle vCPU from another costs tens of µs; on
// one CPU a round trip is two context switches), so each table is run
// under a stated placement, the client and the server (pmmd or the echo
// server) pinned alike in both columns with sched_setaffinity: "same" (one
// CPU), "cross" (client on one CPU, server on another), "any" (unpinned,
// what an application gets). Rounds alternate raw and pmm (raw, pmm, pmm,
// raw, ...) and each cell is the median with the spread (min–max) over
// rounds, so a reader sees whether the figure is stable; pmm/raw is the
// median of the per-round ratios.
//
// Then requests/s with 1, 8 and 64 client processes doing pmm_alloc +
// pmm_block_put in a loop, against the same processes sending the same
// messages to the echo server, unpinned, rounds interleaved.
//
// Usage: pmm_bench_daemon [--quick] [--placement same|cross|any] [--bounded-floor]
//                         [--pmmd PATH]
//        pmm_bench_daemon --profile OP [--count N] [--placement P] [--bounded-floor]
//                         [--pmmd PATH]
// Prints tables; never fails on a number (a benchmark, not a test).
// --bounded-floor gives the floor's client libpmm's SO_RCVTIMEO, so that
// pmm/raw leaves out what bounding every wait costs (floor.h).
// --placement runs only that placement's latency table (default: all three,
// "cross" only where there are two CPUs).
// --profile runs only OP ("alloc+put", "get+put", ...) through libpmm N
// times (default 20000), or with "raw:OP" that operation's floor against
// the echo server, and prints the server's pid first, for perf or strace to
// attach to: `perf stat -e 'syscalls:sys_enter_recv*' -p PID`.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
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

// ---- placement ---------------------------------------------------------

// The CPUs this process may use, as it started.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) die("sched_getaffinity");
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// Pins every thread of `pid` (0: this process) to `cpu`, or lets it run
// on all of `cpus` when cpu < 0.
void pin(pid_t pid, int cpu, const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= 0) {
    CPU_SET(cpu, &set);
  } else {
    for (int c : cpus) CPU_SET(c, &set);
  }
  const std::string dir = fmt::format("/proc/{}/task", pid == 0 ? getpid() : pid);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) die("opendir " + dir);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const pid_t tid = std::atoi(e->d_name);
    if (sched_setaffinity(tid, sizeof set, &set) != 0 && errno != ESRCH)
      die(fmt::format("sched_setaffinity({}, cpu {}): {}", tid, cpu, std::strerror(errno)));
  }
  closedir(d);
}

struct Placement {
  std::string name;
  int client = -1;  // CPU; -1 = any of the allowed ones
  int server = -1;
  std::string describe() const {
    if (client < 0 && server < 0) return "any: unpinned";
    if (client == server) return fmt::format("same: client and server on CPU {}", client);
    return fmt::format("cross: client on CPU {}, server on CPU {}", client, server);
  }
};

std::vector<Placement> placements(const std::vector<int>& cpus) {
  std::vector<Placement> out{{"same", cpus.front(), cpus.front()}};
  if (cpus.size() > 1) out.push_back({"cross", cpus[0], cpus[1]});
  out.push_back({"any", -1, -1});
  return out;
}

// ---- the operations ----------------------------------------------------

// The messages each operation puts on the wire, as libpmm and pmmd send
// them in a loop of that operation, and where libpmm waits.
struct Op {
  std::string_view name;
  std::vector<Exchange> floor;  // empty: nothing goes to the daemon
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
// The last put of a block: libpmm sends it and does not wait (pmm.h).
Exchange posted_put_exchange() {
  return {wire_size(proto::Put{.block_id = 1000}), wire_size(proto::Ok{}), /*wait=*/false};
}

std::vector<Op> ops() {
  const Exchange put{wire_size(proto::Put{.block_id = 1000}), wire_size(proto::Ok{})};
  return {
      {"alloc+put", {alloc_exchange(), posted_put_exchange()}},
      // Local references: a handle's get and put (not its last) never
      // reach the daemon.
      {"get+put", {}},
      // Importing a block this process holds: Export, Import and the Put
      // that gives back the Import's extra daemon reference, each awaited
      // (c_api.cc adopt); the handle's put is then local.
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

double cpu_ns(clockid_t clock) {
  timespec t{};
  if (clock_gettime(clock, &t) != 0) die("clock_gettime");
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

// Per call of `fn` over `iters` calls: wall time, and the CPU time this
// process (the client) and `server` spent, which a busy machine inflates
// far less than the wall time.
struct Sample {
  double wall = 0, client_cpu = 0, server_cpu = 0;
};

Sample sample(int iters, const std::function<void()>& fn, pid_t server) {
  clockid_t sc;
  if (clock_getcpuclockid(server, &sc) != 0) die("clock_getcpuclockid");
  const double c0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID), s0 = cpu_ns(sc);
  Sample out;
  out.wall = time_per(iters, fn);
  out.client_cpu = (cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / iters;
  out.server_cpu = (cpu_ns(sc) - s0) / iters;
  return out;
}

struct Spread {
  double median = 0, min = 0, max = 0;
};

Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double mid = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {mid, v.front(), v.back()};
}

// "12.3 (11.9–13.0)", values scaled by `scale`.
std::string cell(const Spread& s, double scale, const char* f = "{:.1f}") {
  return fmt::format(fmt::runtime(std::string(f) + " (" + f + "–" + f + ")"), s.median / scale,
                     s.min / scale, s.max / scale);
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
    std::vector<std::byte> buf(op.floor[0].request + op.floor[0].reply, std::byte{0});
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

std::string wire(const Op& op) {
  if (op.floor.empty()) return "none (local)";
  std::string out;
  for (const Exchange& e : op.floor)
    out += fmt::format("{}{}/{}{}", out.empty() ? "" : ", ", e.request, e.reply, e.wait ? "" : "*");
  return out;
}

struct Servers {
  std::string socket;  // pmmd's
  pid_t pmmd = -1;
  std::string echo;
  pid_t echo_pid = -1;
};

void latency_table(const Servers& sv, const Placement& at, const std::vector<int>& cpus,
                   bool quick) {
  const int rounds = quick ? 5 : 11;
  const int iters = quick ? 300 : 2000;
  pin(0, at.client, cpus);
  pin(sv.pmmd, at.server, cpus);
  pin(sv.echo_pid, at.server, cpus);
  pmm_conn* conn = connect_pmm(sv.socket);
  pmm_block* held = nullptr;
  check(pmm_alloc(conn, kPool, kBlockSize, 0, 0, &held), "pmm_alloc");
  RawClient raw(sv.echo);
  std::printf("Placement %s. us per operation, median (min-max) of %d rounds of %d, raw and pmm\n",
              at.describe().c_str(), rounds, iters);
  std::printf("rounds alternating; pmm/raw: median (min-max) of the per-round ratios; CPU: the\n");
  std::printf("client's + the server's CPU time per operation, medians\n\n");
  std::printf(
      "| operation | messages (request/reply bytes; * not awaited) | raw us | pmm us | "
      "pmm/raw | raw CPU us | pmm CPU us |\n|---|---|---|---|---|---|---|\n");
  for (const Op& op : ops()) {
    auto p = pmm_op(op.name, sv.socket, conn, held);
    auto f = floor_op(op, sv.echo, raw);
    const bool local = op.floor.empty();
    // Warm both (the pool fd and mapping arrive with the first BlockInfo).
    time_per(iters / 10 + 1, p);
    if (!local) time_per(iters / 10 + 1, f);
    std::vector<Sample> raw_s, pmm_s;
    for (int r = 0; r < rounds; ++r) {
      if (local) {
        pmm_s.push_back(sample(iters, p, sv.pmmd));
      } else if (r % 2 == 0) {
        raw_s.push_back(sample(iters, f, sv.echo_pid));
        pmm_s.push_back(sample(iters, p, sv.pmmd));
      } else {
        pmm_s.push_back(sample(iters, p, sv.pmmd));
        raw_s.push_back(sample(iters, f, sv.echo_pid));
      }
    }
    auto column = [](const std::vector<Sample>& v, double Sample::*m) {
      std::vector<double> out;
      for (const Sample& x : v) out.push_back(x.*m);
      return spread(out);
    };
    auto cpu = [&](const std::vector<Sample>& v) {
      return fmt::format("{:.1f} + {:.1f}", column(v, &Sample::client_cpu).median / 1000,
                         column(v, &Sample::server_cpu).median / 1000);
    };
    const std::string name(op.name);
    if (local) {
      std::printf("| %s | %s | - | %s ns | - | - | %s |\n", name.c_str(), wire(op).c_str(),
                  cell(column(pmm_s, &Sample::wall), 1, "{:.0f}").c_str(), cpu(pmm_s).c_str());
    } else {
      std::vector<double> ratio;
      for (size_t i = 0; i < raw_s.size(); ++i) ratio.push_back(pmm_s[i].wall / raw_s[i].wall);
      std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", name.c_str(), wire(op).c_str(),
                  cell(column(raw_s, &Sample::wall), 1000).c_str(),
                  cell(column(pmm_s, &Sample::wall), 1000).c_str(),
                  cell(spread(ratio), 1, "{:.2f}").c_str(), cpu(raw_s).c_str(), cpu(pmm_s).c_str());
    }
    std::fflush(stdout);
  }
  std::printf("\n");
  check(pmm_block_put(held), "pmm_block_put");
  pmm_disconnect(conn);
}

// Requests answered per second with `clients` processes each running
// alloc+put (pmm) or its messages (raw) for `seconds`.
double requests_per_second(int clients, bool pmm, const std::string& target, double seconds) {
  int ready[2], go[2], result[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0 || pipe2(result, O_CLOEXEC) != 0)
    die("pipe");
  const std::vector<Exchange> exchanges{alloc_exchange(), posted_put_exchange()};
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

void throughput_table(const Servers& sv, const std::vector<int>& cpus, bool quick) {
  // Nine rounds: with five, the many-client medians moved by ~0.05 between runs.
  const int rounds = quick ? 3 : 9;
  const double seconds = quick ? 0.3 : 0.5;
  pin(0, -1, cpus);  // the clients inherit it
  pin(sv.pmmd, -1, cpus);
  pin(sv.echo_pid, -1, cpus);
  std::printf("Requests/s: N client processes, each looping pmm_alloc + pmm_block_put (two\n");
  std::printf(
      "requests, the put not awaited) against pmmd, beside the same processes sending the\n");
  std::printf("same messages to the echo server; unpinned; median (min-max) of %d alternating\n",
              rounds);
  std::printf("runs of %.1f s each\n\n", seconds);
  std::printf("| clients | raw req/s | pmm req/s | pmm/raw |\n|---|---|---|---|\n");
  for (int clients : {1, 8, 64}) {
    std::vector<double> raw, pmm, ratio;
    for (int r = 0; r < rounds; ++r) {
      double rr = 0, pr = 0;
      if (r % 2 == 0) {
        rr = requests_per_second(clients, false, sv.echo, seconds);
        pr = requests_per_second(clients, true, sv.socket, seconds);
      } else {
        pr = requests_per_second(clients, true, sv.socket, seconds);
        rr = requests_per_second(clients, false, sv.echo, seconds);
      }
      raw.push_back(rr);
      pmm.push_back(pr);
      ratio.push_back(pr / rr);
    }
    std::printf("| %d | %s | %s | %s |\n", clients, cell(spread(raw), 1, "{:.0f}").c_str(),
                cell(spread(pmm), 1, "{:.0f}").c_str(), cell(spread(ratio), 1, "{:.2f}").c_str());
    std::fflush(stdout);
  }
}

// One operation, `count` times, for a profiler attached to the server
// (pid on stdout, then a line on stdin starts the loop) or to this process:
// "OP" through libpmm and pmmd, "raw:OP" its floor against the echo server.
void run_profile(const std::string& op, const Servers& sv, const Placement& at,
                 const std::vector<int>& cpus, int count) {
  const bool floor = op.starts_with("raw:");
  const std::string name = floor ? op.substr(4) : op;
  const pid_t server = floor ? sv.echo_pid : sv.pmmd;
  pin(0, at.client, cpus);
  pin(server, at.server, cpus);
  pmm_conn* conn = connect_pmm(sv.socket);
  pmm_block* held = nullptr;
  check(pmm_alloc(conn, kPool, kBlockSize, 0, 0, &held), "pmm_alloc");
  std::function<void()> fn;
  std::unique_ptr<RawClient> raw;
  std::vector<Op> all = ops();
  if (floor) {
    auto it = std::find_if(all.begin(), all.end(), [&](const Op& o) { return o.name == name; });
    if (it == all.end() || it->floor.empty()) die("--profile " + op + ": no such floor");
    raw = std::make_unique<RawClient>(sv.echo);
    fn = floor_op(*it, sv.echo, *raw);
  } else {
    fn = pmm_op(name, sv.socket, conn, held);
  }
  std::printf("%s pid %d; press Enter to run %d x %s (placement %s)\n",
              floor ? "echo server" : "pmmd", static_cast<int>(server), count, op.c_str(),
              at.describe().c_str());
  std::fflush(stdout);
  (void)std::getchar();
  double ns = time_per(count, fn);
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
  std::string only;
  int count = 20000;
  bool bounded = false;
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
    } else if (a == "--placement" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--bounded-floor") {
      bounded = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--placement same|cross|any] [--bounded-floor] "
                   "[--pmmd PATH]\n"
                   "       %s --profile OP [--count N] [--placement P] [--bounded-floor] "
                   "[--pmmd PATH]\n",
                   argv[0], argv[0]);
      return 2;
    }
  }
  set_bounded_reads(bounded);
  const std::vector<int> cpus = allowed_cpus();
  std::vector<Placement> chosen;
  for (const Placement& p : placements(cpus))
    if (only.empty() || p.name == only) chosen.push_back(p);
  if (chosen.empty()) die("--placement " + only + ": not one of same, cross (2 CPUs or more), any");
  char tmpl[] = "/tmp/pmm-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) die("mkdtemp");
  const std::string dir = tmpl;
  Servers sv;
  sv.socket = dir + "/pmm.sock";
  const std::string log = dir + "/pmmd.log";
  sv.pmmd = start_pmmd(pmmd, sv.socket, log);
  EchoServer echo = EchoServer::start(dir + "/echo.sock");
  sv.echo = echo.path();
  sv.echo_pid = echo.pid();
  if (!profile.empty()) {
    run_profile(profile, sv, only.empty() ? placements(cpus).back() : chosen.front(), cpus, count);
  } else {
    std::printf(
        "Request path: one operation through libpmm and pmmd beside a raw SOCK_SEQPACKET\n");
    std::printf(
        "exchange of the same messages, awaited alike (CPUs %s)%s\n\n",
        fmt::format("{}", fmt::join(cpus, ",")).c_str(),
        bounded ? "; the raw client's reads are bounded by SO_RCVTIMEO, as libpmm's are" : "");
    for (const Placement& p : chosen) latency_table(sv, p, cpus, quick);
    throughput_table(sv, cpus, quick);
  }
  kill(sv.pmmd, SIGTERM);
  waitpid(sv.pmmd, nullptr, 0);
  unlink(log.c_str());
  rmdir(dir.c_str());
  return 0;
}
