// Listings cost their page, not the whole table: a daemon with a million
// live blocks (put in its ledger in-process: a million round trips would
// take minutes) serves 32 pipelined ListBlocks pages from one client while
// another client's allocate/put and Stats are timed. Each of the latter must
// be answered within 50 ms (the bound issue 8 names); the numbers are
// printed. A second test times `pmmctl blocks` (the real binary, every page
// through the cursor) at 80,000 blocks.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "client/connection.h"
#include "daemon/daemon.h"
#include "daemon_process.h"
#include "os/socket.h"
#include "proto/channel.h"

namespace pmm::testing {
namespace {

using Clock = std::chrono::steady_clock;

// This process's resident memory in KiB (VmRSS), for the daemon's cost per block.
long rss_kib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long kib = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib;
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A daemon on a private socket with `blocks` live 4 KiB blocks held by one
// session of uid 0 and a handful held by uid 1000.
struct LoadedDaemon {
  std::string dir;
  std::unique_ptr<daemon::Daemon> d;
  std::thread loop;

  explicit LoadedDaemon(uint64_t blocks) {
    char tmpl[] = "/tmp/pmm-views-load-XXXXXX";
    dir = mkdtemp(tmpl);
    auto config = daemon::parse_config(fmt::format(R"(
[pools.big]
type = "shmem"
size = {}
uids = [0, 1000]

[limits]
blocks_per_session = {}
blocks_per_uid = {}
)",
                                                   (blocks + 4096) * 4096, blocks, blocks),
                                       "load test");
    if (!config) {
      ADD_FAILURE() << config.error().describe();
      return;
    }
    auto created =
        daemon::Daemon::create(std::move(*config), dir + "/pmm.sock", {.log = {.quiet = true}});
    if (!created) {
      ADD_FAILURE() << created.error().describe();
      return;
    }
    d = std::move(*created);
    core::Ledger& l = d->ledger();
    // Session ids the loop never hands out (it counts up from 1).
    constexpr core::SessionId kBulk = uint64_t{1} << 60;
    EXPECT_TRUE(l.open_session({.id = kBulk, .pid = 1, .uid = 0, .gid = 0, .device = "bulk"}));
    EXPECT_TRUE(
        l.open_session({.id = kBulk + 1, .pid = 2, .uid = 1000, .gid = 1000, .device = "user"}));
    const std::vector<std::string> pool{"big"};
    long rss0 = rss_kib();
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < blocks; ++i) {
      auto b = l.allocate(i % 100'000 == 50'000 ? kBulk + 1 : kBulk, pool, 4096, 4096, {});
      if (!b) {
        ADD_FAILURE() << "block " << i << ": " << b.error().describe();
        return;
      }
    }
    double ms = ms_since(t0);
    // (A second daemon in this process reuses the first one's freed heap.)
    std::printf(
        "built %lu live blocks in the ledger in %.0f ms; resident memory grew %.0f B/block\n",
        static_cast<unsigned long>(blocks), ms,
        static_cast<double>(rss_kib() - rss0) * 1024 / static_cast<double>(blocks));
    loop = std::thread([this] { (void)d->run(); });
  }
  ~LoadedDaemon() {
    if (d) d->stop();
    if (loop.joinable()) loop.join();
    d.reset();
    std::string rm = "rm -rf " + dir;
    (void)std::system(rm.c_str());
  }
  std::string socket() const { return dir + "/pmm.sock"; }
};

// A client that sends many requests before reading any reply (a reader
// thread drains them, as a pipelining client would). Pages of kPage blocks:
// the daemon drops a client whose replies fill its socket's send buffer
// (~208 KiB), so 32 replies must fit there even when the reader is late
// (a page of 64 of these blocks is ~6 KiB, ~10 KiB as the kernel counts
// it). The old daemon's cost per page did not depend on the page's size:
// it rebuilt the view of every block (500-800 ms at 1M).
constexpr uint32_t kPage = 16;
class Pipeliner {
 public:
  explicit Pipeliner(const std::string& socket) {
    auto s = os::connect_unix(socket);
    EXPECT_TRUE(s) << s.error().describe();
    if (!s) return;
    sock_ = std::move(*s);
    EXPECT_TRUE(
        proto::send(sock_.get(), {.request_id = 1, .body = proto::Hello{.device = "lister"}}));
    auto w = proto::receive_reply(sock_.get());
    EXPECT_TRUE(w && *w && std::holds_alternative<proto::Welcome>((*w)->message.body));
  }
  // Sends `n` ListBlocks at cursors spread over the first `blocks` blocks
  // (a block id is its allocation count above a 24-bit slot,
  // docs/protocol.md); returns the number of full pages that came back.
  size_t list(size_t n, uint64_t blocks, uint32_t first_request_id) {
    std::atomic<size_t> full{0};
    std::thread reader([&] {
      for (size_t i = 0; i < n; ++i) {
        auto r = proto::receive_reply(sock_.get());
        if (!r || !*r) return;
        const auto* list = std::get_if<proto::BlockList>(&(*r)->message.body);
        if (list && list->blocks.size() == kPage) ++full;
      }
    });
    for (size_t i = 0; i < n; ++i) {
      uint64_t after = (blocks / (n + 1) * (i + 1)) << 24;
      (void)proto::send(sock_.get(),
                        {.request_id = first_request_id + static_cast<uint32_t>(i),
                         .body = proto::ListBlocks{.after_id = after, .limit = kPage}});
    }
    reader.join();
    return full;
  }

 private:
  os::UniqueFd sock_;
};

TEST(ViewsLoad, PipelinedListingsAtAMillionBlocksDoNotStallOthers) {
#ifndef NDEBUG
  GTEST_SKIP() << "a debug or sanitizer build checks the whole ledger every n/64 operations "
                  "(PMM_CHECK_INVARIANTS), which at 1M blocks is the stall; release measures this";
#endif
  constexpr uint64_t kBlocks = 1'000'000;
  LoadedDaemon daemon(kBlocks);
  ASSERT_TRUE(daemon.d);

  // The ledger's own cost per page (no socket): an admin page anywhere in
  // the table, and a page of uid 1000's few blocks among a million.
  {
    core::Ledger& l = daemon.d->ledger();  // the loop is idle: nobody connected yet
    auto t0 = Clock::now();
    size_t n = 0;
    // A block id is its allocation count above a 24-bit slot
    // (docs/protocol.md): `after << 24` is a cursor `after` blocks in.
    for (uint64_t after = 0; after < kBlocks; after += kBlocks / 100)
      n += l.blocks({.uid = 0, .all = true, .phys = true}, after << 24, 64).items.size();
    double admin_us = ms_since(t0) * 1000 / 100;
    t0 = Clock::now();
    for (int i = 0; i < 100; ++i)
      n += l.blocks({.uid = 1000, .all = false, .phys = false}, 0, 64).items.size();
    double user_us = ms_since(t0) * 1000 / 100;
    std::printf("ledger page of 64 at 1M blocks: admin %.1f us, uid 1000 (10 blocks) %.1f us\n",
                admin_us, user_us);
    EXPECT_GT(n, 0u);
  }

  auto other = client::Connection::connect(daemon.socket(), "other");
  ASSERT_TRUE(other) << other.error().describe();
  auto time_alloc_put = [&] {
    auto t = Clock::now();
    auto b = (*other)->allocate({"big"}, 4096, 0, 0);
    EXPECT_TRUE(b) << b.error().describe();
    if (b) {
      EXPECT_TRUE((*other)->put(b->id));
    }
    return ms_since(t);
  };
  auto time_stats = [&] {
    auto t = Clock::now();
    auto st = (*other)->stats();
    EXPECT_TRUE(st) << st.error().describe();
    if (st) {
      EXPECT_GE(st->blocks, kBlocks);
    }
    return ms_since(t);
  };
  double idle = 0;
  for (int i = 0; i < 20; ++i) idle = std::max(idle, time_alloc_put());
  double stats_idle = time_stats();

  Pipeliner lister(daemon.socket());
  double worst = 0, worst_stats = 0;
  size_t pages = 0;
  auto t0 = Clock::now();
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> done{false};
    std::thread pipelined([&] {
      pages += lister.list(32, kBlocks, 100 + static_cast<uint32_t>(round) * 32);
      done = true;
    });
    // Requests of the other client while the 32 listings are in flight.
    while (!done) {
      worst = std::max(worst, time_alloc_put());
      worst_stats = std::max(worst_stats, time_stats());
    }
    pipelined.join();
  }
  double listing_ms = ms_since(t0);
  std::printf(
      "%d x 32 pipelined ListBlocks pages (of %u) at 1M blocks: %zu full pages in %.1f ms (%.0f us "
      "per page)\nanother client meanwhile: allocate+put worst %.2f ms (idle worst %.2f ms), Stats "
      "worst %.2f ms (idle %.2f ms)\n",
      kRounds, kPage, pages, listing_ms, listing_ms * 1000 / (kRounds * 32), worst, idle,
      worst_stats, stats_idle);
  EXPECT_EQ(pages, static_cast<size_t>(kRounds) * 32);
  EXPECT_LT(worst, 50.0) << "allocate+put waited behind the listings";
  EXPECT_LT(worst_stats, 50.0) << "Stats waited behind the listings";
}

#ifdef NDEBUG
constexpr bool kSanitizedOrDebug = false;
#else
constexpr bool kSanitizedOrDebug = true;  // ASan, or a debug build checking its books
#endif

TEST(ViewsLoad, PmmctlBlocksPagesThroughEightyThousandBlocks) {
  constexpr uint64_t kBlocks = 80'000;
  LoadedDaemon daemon(kBlocks);
  ASSERT_TRUE(daemon.d);
  for (const char* format : {"--json", ""}) {
    std::vector<std::string> argv{PMM_PMMCTL_PATH, "--socket", daemon.socket(), "blocks"};
    if (*format) argv.emplace_back(format);
    auto t = Clock::now();
    pmm::testing::Run r = run_command(argv);
    double ms = ms_since(t);
    ASSERT_EQ(r.status, 0) << r.err;
    size_t lines = static_cast<size_t>(std::count(r.out.begin(), r.out.end(), '\n'));
    std::printf("pmmctl blocks %s at %lu blocks: %.0f ms (%zu lines of output)\n", format,
                static_cast<unsigned long>(kBlocks), ms, lines);
    EXPECT_GT(lines, kBlocks) << "every block is listed, past every page";
    // Not a speed test: a bound that only a listing that rebuilds every
    // block per page (27 s in a release build before the cursor) misses.
    // Alone it takes under a second; 20 s leaves room for a machine busy
    // building (11 s was seen once at 10 s, with two builds running).
    EXPECT_LT(ms, kSanitizedOrDebug ? 60'000.0 : 20'000.0)
        << "issue 8 measured 27 s before listings were paged by cursor";
  }
}

// `pmmctl map` of a pool of a million blocks: pages of at most 32,768
// block records each (docs/protocol.md, PoolMap), so another client waits
// for one page, never for the whole map. Printed: the ledger's cost per
// page and for the whole map (admin, and uid 1000 whose 10 blocks are named
// among a million anonymous ones), and another client's allocate+put while
// `pmmctl map`'s requests run back to back. Bounded like the listings test
// above: 50 ms, the bound issue 8 names (a whole-table map took 100-250 ms
// on the 2-core test machine; a page is 1/30 of that).
TEST(ViewsLoad, PoolMapAtAMillionBlocksComesInPagesThatDoNotStallOthers) {
#ifndef NDEBUG
  GTEST_SKIP() << "a debug or sanitizer build checks the whole ledger as it fills; release "
                  "measures this";
#endif
  constexpr uint64_t kBlocks = 1'000'000;
  LoadedDaemon daemon(kBlocks);
  ASSERT_TRUE(daemon.d);
  {
    core::Ledger& l = daemon.d->ledger();  // the loop is idle: nobody connected yet
    for (const core::Viewer& v : {core::Viewer{.uid = 0, .all = true, .phys = true},
                                  core::Viewer{.uid = 1000, .all = false, .phys = false}}) {
      core::MapPageRequest r{.bucket_size = ((kBlocks + 4096) * 4096 + 2047) / 2048};
      double worst = 0, total = 0;
      size_t pages = 0, entries = 0;
      for (;;) {
        auto t = Clock::now();
        core::MapPage p = l.pool_map_page(v, 0, r);
        double ms = ms_since(t);
        worst = std::max(worst, ms);
        total += ms;
        ++pages;
        entries = std::max(entries, p.entries.size());
        if (!p.more) break;
        r.after = p.next_after;
      }
      std::printf(
          "ledger pool map at 1M blocks (%s): %zu pages, worst page %.2f ms, whole map "
          "%.1f ms, <= %zu entries a page\n",
          v.all ? "admin" : "uid 1000", pages, worst, total, entries);
      EXPECT_LE(entries, proto::kMaxMapEntries);
    }
  }
  auto other = client::Connection::connect(daemon.socket(), "other");
  ASSERT_TRUE(other) << other.error().describe();
  auto alloc_put = [&] {
    auto t = Clock::now();
    auto b = (*other)->allocate({"big"}, 4096, 0, 0);
    EXPECT_TRUE(b) << b.error().describe();
    if (b) {
      EXPECT_TRUE((*other)->put(b->id));
    }
    return ms_since(t);
  };
  double idle = 0;
  for (int i = 0; i < 20; ++i) idle = std::max(idle, alloc_put());  // the first maps the pool
  idle = 0;
  for (int i = 0; i < 20; ++i) idle = std::max(idle, alloc_put());
  std::atomic<bool> done{false};
  double map_ms = 0;
  // pmmctl map's requests, page after page, from this process: forking the
  // real pmmctl out of a process of 500 MB stalls every thread in it (the
  // daemon's too) while the page tables are copied, which is not pmmd's cost.
  auto mapper = client::Connection::connect(daemon.socket(), "mapper");
  ASSERT_TRUE(mapper) << mapper.error().describe();
  size_t pages = 0;
  std::thread maps([&] {
    for (int i = 0; i < 3; ++i) {
      auto t = Clock::now();
      proto::PoolMapRequest req{.pool = "big"};
      for (;;) {
        auto page = (*mapper)->pool_map(req);
        EXPECT_TRUE(page) << page.error().describe();
        if (!page) break;
        ++pages;
        if (!page->more) break;
        req.after_id = page->next_after_id;
        req.mode = proto::MapMode::kBuckets;
      }
      map_ms = std::max(map_ms, ms_since(t));
    }
    done = true;
  });
  double worst = 0;
  while (!done) worst = std::max(worst, alloc_put());
  maps.join();
  std::printf(
      "pmmctl map's requests at 1M blocks: 3 maps of %zu pages, worst %.0f ms for a "
      "whole map; another client's allocate+put meanwhile: worst %.1f ms (idle %.1f ms)\n",
      pages / 3, map_ms, worst, idle);
  EXPECT_LT(worst, 50.0) << "allocate+put waited behind a map page";
}

}  // namespace
}  // namespace pmm::testing
