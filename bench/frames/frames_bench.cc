// pmm_bench_frames — the frame-rate paths of issue 10, side by side, in one
// run, against a real pmmd started here on a private socket.
//
//   1. get+put of a block the process holds: counted in libpmm (pmm_block_get
//      / pmm_block_put) beside the daemon round trip every call used to make
//      (Connection::get + put: two round trips).
//   2. A 4 KiB and an 8 MiB shareable buffer: pmm_bufpool acquire+release
//      beside pmm_alloc + pmm_block_put.
//   3. How soon a waiting allocation (pmm_alloc_opts with wait_ms) resumes
//      after another process frees the memory it waits for: from just before
//      the freeing put to the waiter's return.
//   4. Round trips per second with 1, 2 and 8 threads on ONE connection
//      beside a connection per thread.
//
// Usage: pmm_bench_frames [--quick] [PMMD]
// Prints tables; asserts nothing (numbers depend on the machine and load).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "client/connection.h"
#include "pmm/pmm.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ns_since(Clock::time_point t0, uint64_t n) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
         static_cast<double>(n);
}

void die(const std::string& what) {
  std::fprintf(stderr, "pmm_bench_frames: %s: %s\n", what.c_str(), pmm_last_error());
  std::exit(1);
}

// pmmd on a private socket with a 64 MiB general pool and a pool of
// exactly 4 frames for the waiting benchmark.
class Daemon {
 public:
  explicit Daemon(const std::string& pmmd) {
    char tmpl[] = "/tmp/pmm-bench-frames-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
    dir_ = tmpl;
    socket_ = dir_ + "/pmm.sock";
    std::ofstream(dir_ + "/pmmd.toml") << R"(
[pools.general]
type = "shmem"
size = "256MiB"

[pools.frames]
type = "shmem"
size = "1MiB"
)";
    pid_ = ::fork();
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 2);
      std::string config = dir_ + "/pmmd.toml";
      ::execl(pmmd.c_str(), pmmd.c_str(), "--socket", socket_.c_str(), "--config", config.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      pmm_conn* c = nullptr;
      if (pmm_connect(socket_.c_str(), "probe", &c) == PMM_OK) {
        pmm_disconnect(c);
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    die("pmmd did not start (" + pmmd + ")");
  }
  ~Daemon() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    std::filesystem::remove_all(dir_);
  }
  const std::string& socket() const { return socket_; }

 private:
  std::string dir_, socket_;
  pid_t pid_ = -1;
};

pmm_conn* connect(const Daemon& d, const char* device = "bench") {
  pmm_conn* c = nullptr;
  if (pmm_connect(d.socket().c_str(), device, &c) != PMM_OK) die("connect");
  return c;
}

void get_put(const Daemon& d, uint64_t n) {
  pmm_conn* c = connect(d);
  pmm_block* b = nullptr;
  if (pmm_alloc(c, "general", 4096, 0, 0, &b) != PMM_OK) die("alloc");
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    (void)pmm_block_get(b);
    (void)pmm_block_put(b);
  }
  const double local = ns_since(t0, n);
  auto rt = pmm::client::Connection::connect(d.socket(), "bench-rt");
  if (!rt) die("connect");
  auto v = (*rt)->allocate({"general"}, 4096, 0, 0);
  if (!v) die("allocate");
  const uint64_t m = std::max<uint64_t>(n / 100, 2000);
  t0 = Clock::now();
  for (uint64_t i = 0; i < m; ++i) {
    (void)(*rt)->get(v->id);
    (void)(*rt)->put(v->id);
  }
  const double daemon = ns_since(t0, m);
  fmt::print("\n## get + put of a held block (one pair)\n\n");
  fmt::print("| path | ns per pair | pairs |\n|---|---:|---:|\n");
  fmt::print("| libpmm, local (pmm_block_get + pmm_block_put) | {:.1f} | {} |\n", local, n);
  fmt::print("| daemon round trips (Get + Put, as before issue 10) | {:.1f} | {} |\n", daemon, m);
  fmt::print("\nlocal is {:.0f}x faster\n", daemon / local);
  pmm_block_put(b);
  pmm_disconnect(c);
}

void bufpool(const Daemon& d, uint64_t n) {
  pmm_conn* c = connect(d);
  fmt::print("\n## a shareable buffer: get one, give it back\n\n");
  fmt::print("| size | pmm_bufpool acquire + release (ns) | pmm_alloc + pmm_block_put (ns) |\n");
  fmt::print("|---|---:|---:|\n");
  for (uint64_t size : {uint64_t{4096}, uint64_t{8} << 20}) {
    pmm_bufpool_options o{};
    o.size = sizeof o;
    o.pools = "general";
    o.buffer_size = size;
    o.count = 4;
    pmm_bufpool* pool = nullptr;
    if (pmm_bufpool_create(c, &o, &pool) != PMM_OK) die("bufpool_create");
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < n; ++i) {
      pmm_block* b = nullptr;
      (void)pmm_bufpool_acquire(pool, 0, &b);
      (void)pmm_bufpool_release(pool, b);
    }
    const double pooled = ns_since(t0, n);
    pmm_bufpool_destroy(pool);
    const uint64_t m = std::max<uint64_t>(n / 200, 1000);
    t0 = Clock::now();
    for (uint64_t i = 0; i < m; ++i) {
      pmm_block* b = nullptr;
      if (pmm_alloc(c, "general", size, 0, 0, &b) != PMM_OK) die("alloc");
      (void)pmm_block_put(b);
    }
    const double alloc = ns_since(t0, m);
    fmt::print(
        "| {} | {:.1f} | {:.1f} |\n",
        size >= (1 << 20) ? fmt::format("{} MiB", size >> 20) : fmt::format("{} KiB", size >> 10),
        pooled, alloc);
  }
  pmm_disconnect(c);
}

void waiting(const Daemon& d, int rounds) {
  pmm_conn* hog = connect(d, "hog");
  pmm_conn* waiter = connect(d, "waiter");
  constexpr uint64_t kFrame = 256 * 1024;
  std::vector<double> us;
  for (int r = 0; r < rounds; ++r) {
    pmm_block* f[4];
    // The last round's puts went without waiting, the waiter's on another
    // connection: wait for them to land.
    pmm_alloc_options fill{};
    fill.size = sizeof fill;
    fill.pools = "frames";
    fill.wait_ms = 2000;
    for (auto& b : f)
      if (pmm_alloc_opts(hog, kFrame, &fill, &b) != PMM_OK) die("alloc frames");
    std::atomic<bool> started{false};
    Clock::time_point freed{};
    Clock::time_point got{};
    pmm_block* served = nullptr;
    std::thread w([&] {
      pmm_alloc_options o{};
      o.size = sizeof o;
      o.pools = "frames";
      o.wait_ms = 5000;
      started = true;
      if (pmm_alloc_opts(waiter, kFrame, &o, &served) != PMM_OK) die("alloc_opts");
      got = Clock::now();
    });
    while (!started) std::this_thread::yield();
    std::this_thread::sleep_for(2ms);  // the request is queued by now
    freed = Clock::now();
    (void)pmm_block_put(f[0]);
    w.join();
    us.push_back(std::chrono::duration<double, std::micro>(got - freed).count());
    (void)pmm_block_put(served);
    for (int i = 1; i < 4; ++i) (void)pmm_block_put(f[i]);
  }
  std::sort(us.begin(), us.end());
  fmt::print("\n## a waiting allocation resumes after the free it waits for\n\n");
  fmt::print("| rounds | median (us) | p90 (us) | max (us) |\n|---:|---:|---:|---:|\n");
  fmt::print("| {} | {:.1f} | {:.1f} | {:.1f} |\n", us.size(), us[us.size() / 2],
             us[us.size() * 9 / 10], us.back());
  pmm_disconnect(hog);
  pmm_disconnect(waiter);
}

// Round trips (Get, then Put: two per iteration) per second.
double round_trips(const Daemon& d, int threads, bool shared, std::chrono::milliseconds run) {
  std::vector<std::unique_ptr<pmm::client::Connection>> conns;
  for (int i = 0; i < (shared ? 1 : threads); ++i) {
    auto c = pmm::client::Connection::connect(d.socket(), "bench");
    if (!c) die("connect");
    conns.push_back(std::move(*c));
  }
  std::vector<uint64_t> ids;
  for (int t = 0; t < threads; ++t) {
    auto& c = conns[shared ? 0 : static_cast<size_t>(t)];
    auto v = c->allocate({"general"}, 4096, 0, 0);
    if (!v) die("allocate");
    ids.push_back(v->id);
  }
  std::atomic<bool> go{false}, stop{false};
  std::atomic<uint64_t> done{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      auto& c = conns[shared ? 0 : static_cast<size_t>(t)];
      while (!go) std::this_thread::yield();
      uint64_t n = 0;
      while (!stop) {
        (void)c->get(ids[static_cast<size_t>(t)]);
        (void)c->put(ids[static_cast<size_t>(t)]);
        n += 2;
      }
      done += n;
    });
  auto t0 = Clock::now();
  go = true;
  std::this_thread::sleep_for(run);
  stop = true;
  for (auto& t : ts) t.join();
  return static_cast<double>(done) / std::chrono::duration<double>(Clock::now() - t0).count();
}

void threads(const Daemon& d, std::chrono::milliseconds run) {
  fmt::print("\n## round trips per second: threads on one connection vs a connection each\n\n");
  fmt::print("| threads | one shared connection | a connection per thread |\n|---:|---:|---:|\n");
  for (int t : {1, 2, 8})
    fmt::print("| {} | {:.0f} | {:.0f} |\n", t, round_trips(d, t, true, run),
               round_trips(d, t, false, run));
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string pmmd = PMM_PMMD_PATH;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0)
      quick = true;
    else
      pmmd = argv[i];
  }
  Daemon d(pmmd);
  fmt::print("# pmm_bench_frames{}: {} CPUs, load {}\n", quick ? " --quick" : "",
             std::thread::hardware_concurrency(), [] {
               std::ifstream f("/proc/loadavg");
               std::string a, b, c;
               f >> a >> b >> c;
               return a + " " + b + " " + c;
             }());
  get_put(d, quick ? 200'000 : 5'000'000);
  bufpool(d, quick ? 200'000 : 5'000'000);
  waiting(d, quick ? 30 : 300);
  threads(d, quick ? 200ms : 1000ms);
  return 0;
}
