// pmm_stress — many client processes against one pmmd, SIGKILLed at random.
//
//   pmm_stress SOCKET CLIENTS SECONDS
//
// The parent forks CLIENTS workers and, until SECONDS have passed, SIGKILLs
// a random one every 20-200 ms and starts a replacement. Each worker talks
// to pmmd only through libpmm's public C API and loops over random
// operations: allocate in one of the pools (some zeroed, checked zero) and
// fill with a pattern only its seed reproduces; get and put; export a block
// to a mailbox that all workers share (an anonymous shared mapping), import
// what others exported and check every byte against the exporter's seed;
// SysV-export blocks of sysv pools and withdraw them; disconnect and
// reconnect; verify a held block at random. Nobody writes a block after it
// was filled, so every holder can check it at any time.
//
// At the end the parent tells the survivors to stop: each checks every
// block it still holds, puts them all and exits 0 only if all were intact.
// Then it waits past the exports' lifetime, so the daemon's books must be
// empty; tests/stress/run checks that with pmmctl, and pmmd's stderr.
//
// Prints one summary line per counter; exit status 0 when no worker found
// a corrupted block or failed unexpectedly, 1 otherwise, 2 on bad usage.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "pmm/pmm.h"

namespace {

constexpr int kSlots = 64;
constexpr uint32_t kExportLifetimeMs = 1500;
constexpr size_t kMaxHeld = 24;
const char* const kPools[] = {"general", "fast", "display"};
const char* const kDevices[] = {"cam", "gpu", "stress"};

// A token on offer. `state` is (pid << 2) | phase, one word so that who
// holds the slot and in which phase change together: phase 0 empty, 1 being
// written by pid, 2 full, 3 being taken by pid.
enum Phase : uint64_t { kEmpty = 0, kWriting = 1, kFull = 2, kTaking = 3 };
struct Slot {
  std::atomic<uint64_t> state;
  pmm_token token;
  uint64_t seed;
  uint64_t size;
};

enum Counter {
  kAllocs,
  kAllocRefused,
  kGets,
  kPuts,
  kExports,
  kImports,
  kImportRefused,
  kSysv,
  kReconnects,
  kVerified,
  kBytesVerified,
  kCounters
};
const char* const kCounterNames[kCounters] = {"allocations",
                                              "allocations refused",
                                              "gets",
                                              "puts",
                                              "exports",
                                              "imports",
                                              "imports refused (expired, used up)",
                                              "sysv exports",
                                              "reconnects",
                                              "blocks verified",
                                              "bytes verified"};

struct Shared {
  std::atomic<bool> stop;
  std::atomic<uint64_t> counters[kCounters];
  Slot slots[kSlots];
};

Shared* g_shared = nullptr;

void count(Counter c, uint64_t n = 1) { g_shared->counters[c].fetch_add(n); }

uint64_t mine(Phase p) { return static_cast<uint64_t>(getpid()) << 2 | p; }

// The pattern of a block: only the seed reproduces it.
uint64_t pattern_word(uint64_t seed, uint64_t i) {
  uint64_t x = seed ^ (i * 0x9E3779B97F4A7C15ull);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

void fill(pmm_block* b, uint64_t seed) {
  auto* p = static_cast<unsigned char*>(pmm_block_ptr(b));
  const uint64_t n = pmm_block_size(b);
  for (uint64_t i = 0; i < n; i += 8) {
    uint64_t w = pattern_word(seed, i);
    std::memcpy(p + i, &w, std::min<uint64_t>(8, n - i));
  }
}

// Returns the first differing offset, or UINT64_MAX when intact.
uint64_t first_bad(pmm_block* b, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(pmm_block_ptr(b));
  const uint64_t n = pmm_block_size(b);
  for (uint64_t i = 0; i < n; i += 8) {
    uint64_t w = pattern_word(seed, i);
    if (std::memcmp(p + i, &w, std::min<uint64_t>(8, n - i)) != 0) return i;
  }
  count(kVerified);
  count(kBytesVerified, n);
  return UINT64_MAX;
}

struct Held {
  pmm_block* block;
  uint64_t seed;
  int refs;  // this process's references
  bool sysv;
};

[[noreturn]] void corrupted(pmm_block* b, uint64_t seed, uint64_t at, const char* when) {
  std::fprintf(stderr,
               "pmm_stress: worker %d: block %llu (%s, %llu bytes, seed %llx) differs at byte "
               "%llu %s\n",
               getpid(), static_cast<unsigned long long>(pmm_block_id(b)), pmm_block_pool(b),
               static_cast<unsigned long long>(pmm_block_size(b)),
               static_cast<unsigned long long>(seed), static_cast<unsigned long long>(at), when);
  std::_Exit(1);
}

[[noreturn]] void failed(const char* what, pmm_status s) {
  std::fprintf(stderr, "pmm_stress: worker %d: %s failed unexpectedly (%d): %s\n", getpid(), what,
               static_cast<int>(s), pmm_last_error());
  std::_Exit(1);
}

void verify(const Held& h, const char* when) {
  uint64_t at = first_bad(h.block, h.seed);
  if (at != UINT64_MAX) corrupted(h.block, h.seed, at, when);
}

// Drops all of this process's references to held[i].
void release(std::vector<Held>& held, size_t i) {
  Held h = held[i];
  verify(h, "before its last put");
  if (h.sysv) {
    if (pmm_status s = pmm_sysv_unexport(h.block); s != PMM_OK) failed("sysv_unexport", s);
  }
  for (int r = 0; r < h.refs; ++r) {
    if (pmm_status s = pmm_block_put(h.block); s != PMM_OK) failed("put", s);
    count(kPuts);
  }
  held[i] = held.back();
  held.pop_back();
}

pmm_conn* connect_as(const char* socket, std::mt19937_64& rng) {
  pmm_conn* c = nullptr;
  pmm_status s = pmm_connect(socket, kDevices[rng() % 3], &c);
  if (s != PMM_OK) failed("connect", s);
  return c;
}

int worker(const char* socket, uint64_t seed) {
  std::mt19937_64 rng(seed);
  pmm_conn* conn = connect_as(socket, rng);
  std::vector<Held> held;
  uint64_t next_seed = seed * 1000003;
  while (!g_shared->stop.load()) {
    const unsigned op = static_cast<unsigned>(rng() % 100);
    if (op < 25 && held.size() < kMaxHeld) {
      const char* pool = kPools[rng() % 3];
      const uint64_t size = 1 + rng() % (256 << 10);
      const bool zero = rng() % 4 == 0;
      pmm_block* b = nullptr;
      pmm_status s = pmm_alloc(conn, pool, size, 0, zero ? PMM_ALLOC_ZERO : 0, &b);
      if (s == PMM_E_NO_MEMORY || s == PMM_E_LIMIT) {
        count(kAllocRefused);
        continue;
      }
      if (s != PMM_OK) failed("alloc", s);
      count(kAllocs);
      if (zero) {
        const auto* p = static_cast<const unsigned char*>(pmm_block_ptr(b));
        for (uint64_t i = 0; i < pmm_block_size(b); ++i) {
          if (p[i] != 0) corrupted(b, 0, i, "after an allocation asked to zero it");
        }
      }
      const uint64_t bs = ++next_seed;
      fill(b, bs);
      held.push_back({b, bs, 1, false});
    } else if (op < 35 && !held.empty()) {
      Held& h = held[rng() % held.size()];
      if (pmm_status s = pmm_block_get(h.block); s != PMM_OK) failed("get", s);
      ++h.refs;
      count(kGets);
    } else if (op < 50 && !held.empty()) {
      release(held, rng() % held.size());
    } else if (op < 62 && !held.empty()) {
      // Offer a block to whoever takes it first.
      Slot& slot = g_shared->slots[rng() % kSlots];
      uint64_t empty = kEmpty;
      if (!slot.state.compare_exchange_strong(empty, mine(kWriting))) continue;
      const Held& h = held[rng() % held.size()];
      pmm_status s = pmm_export(h.block, 1, kExportLifetimeMs, &slot.token);
      if (s != PMM_OK) failed("export", s);
      slot.seed = h.seed;
      slot.size = pmm_block_size(h.block);
      slot.state.store(mine(kFull));
      count(kExports);
    } else if (op < 76 && held.size() < kMaxHeld) {
      Slot& slot = g_shared->slots[rng() % kSlots];
      uint64_t full = slot.state.load();
      if ((full & 3) != kFull || !slot.state.compare_exchange_strong(full, mine(kTaking))) continue;
      const pmm_token token = slot.token;
      const uint64_t bseed = slot.seed, bsize = slot.size;
      slot.state.store(kEmpty);
      pmm_block* b = nullptr;
      pmm_status s = pmm_import(conn, &token, &b);
      if (s == PMM_E_EXPIRED || s == PMM_E_NOT_FOUND) {
        count(kImportRefused);  // its lifetime ran out first
        continue;
      }
      if (s != PMM_OK) failed("import", s);
      count(kImports);
      if (pmm_block_size(b) != bsize) corrupted(b, bseed, 0, "(its size changed on import)");
      Held h{b, bseed, 1, false};
      verify(h, "when imported");
      // Its own export coming back: libpmm hands out the handle it has.
      bool merged = false;
      for (Held& other : held) {
        if (other.block == b) {
          ++other.refs;
          merged = true;
        }
      }
      if (!merged) held.push_back(h);
    } else if (op < 82 && !held.empty()) {
      Held& h = held[rng() % held.size()];
      if (std::strcmp(pmm_block_pool(h.block), "display") != 0) continue;
      pmm_sysv_segment seg;
      pmm_status s = h.sysv ? pmm_sysv_unexport(h.block) : pmm_sysv_export(h.block, &seg);
      if (s != PMM_OK) failed(h.sysv ? "sysv_unexport" : "sysv_export", s);
      h.sysv = !h.sysv;
      count(kSysv);
    } else if (op < 84) {
      // Leave without a put: the daemon drops it all, as for a crash.
      pmm_disconnect(conn);
      held.clear();
      conn = connect_as(socket, rng);
      count(kReconnects);
    } else if (!held.empty()) {
      verify(held[rng() % held.size()], "while held");
    }
  }
  while (!held.empty()) release(held, held.size() - 1);
  pmm_disconnect(conn);
  return 0;
}

pid_t spawn(const char* socket, uint64_t seed) {
  pid_t pid = fork();
  if (pid == 0) std::_Exit(worker(socket, seed));
  return pid;
}

// A killed worker may have left a slot half-written or half-taken.
void free_slots_of(pid_t pid) {
  for (Slot& s : g_shared->slots) {
    uint64_t st = s.state.load();
    const uint64_t phase = st & 3;
    if ((phase == kWriting || phase == kTaking) && (st >> 2) == static_cast<uint64_t>(pid)) {
      s.state.compare_exchange_strong(st, kEmpty);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: pmm_stress SOCKET CLIENTS SECONDS\n");
    return 2;
  }
  const char* socket = argv[1];
  const int clients = std::atoi(argv[2]);
  const int seconds = std::atoi(argv[3]);
  if (clients < 1 || seconds < 1) {
    std::fprintf(stderr, "pmm_stress: CLIENTS and SECONDS must be at least 1\n");
    return 2;
  }
  void* mem =
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 2;
  g_shared = new (mem) Shared{};

  std::mt19937_64 rng(static_cast<uint64_t>(getpid()) * 7919);
  std::vector<pid_t> live;
  uint64_t seeds = 1;
  for (int i = 0; i < clients; ++i) live.push_back(spawn(socket, seeds++));
  uint64_t kills = 0, failures = 0;
  auto reap = [&](pid_t pid, int status, bool killed) {
    free_slots_of(pid);
    if (killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    ++failures;
    std::fprintf(stderr, "pmm_stress: worker %d ended with status %#x\n", pid, status);
  };

  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 180));
    // Workers that ended on their own (a failure) are replaced too.
    for (size_t i = 0; i < live.size(); ++i) {
      int status = 0;
      if (waitpid(live[i], &status, WNOHANG) == live[i]) {
        reap(live[i], status, false);
        live[i] = spawn(socket, seeds++);
      }
    }
    size_t victim = rng() % live.size();
    kill(live[victim], SIGKILL);
    int status = 0;
    waitpid(live[victim], &status, 0);
    reap(live[victim], status, true);
    ++kills;
    live[victim] = spawn(socket, seeds++);
  }
  g_shared->stop.store(true);
  for (pid_t pid : live) {
    int status = 0;
    waitpid(pid, &status, 0);
    reap(pid, status, false);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Unimported tokens hold their blocks until their lifetime runs out.
  std::this_thread::sleep_for(std::chrono::milliseconds(kExportLifetimeMs + 500));

  uint64_t ops = 0;
  for (int c = 0; c < kCounters; ++c) {
    if (c != kVerified && c != kBytesVerified) ops += g_shared->counters[c].load();
  }
  std::printf(
      "pmm_stress: %d clients for %.1f s: %llu operations, %llu SIGKILLs, %llu workers "
      "started, %llu failures\n",
      clients, secs, static_cast<unsigned long long>(ops), static_cast<unsigned long long>(kills),
      static_cast<unsigned long long>(seeds - 1), static_cast<unsigned long long>(failures));
  for (int c = 0; c < kCounters; ++c) {
    std::printf("  %-36s %llu\n", kCounterNames[c],
                static_cast<unsigned long long>(g_shared->counters[c].load()));
  }
  return failures == 0 ? 0 : 1;
}
