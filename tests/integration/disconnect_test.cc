// A disconnect that drops half a million blocks does not stall everyone
// else: pmmd returns a closed session's blocks in slices between other
// requests (Ledger::begin_close / reap), so another client's allocate+put
// is answered within 50 ms (the bound issue 13 names) the whole time the
// blocks go back. Debug and sanitizer builds print the figures but skip the
// bound (they check the whole ledger as they go). Before, the daemon freed them in one go: 575-698
// ms in which nobody was served. A real pmmd; the blocks are made through the protocol by a client
// that keeps a window of requests in flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "client/connection.h"
#include "daemon_process.h"
#include "os/socket.h"
#include "proto/channel.h"

namespace pmm::testing {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Allocates `n` blocks of `size` bytes in `pool` on a raw connection,
// `window` requests in flight at a time (a reply for each is read before
// the next window goes out, so the daemon's send buffer never fills).
// Returns how many were allocated.
uint64_t allocate_many(int fd, const std::string& pool, uint64_t n, uint64_t size) {
  constexpr uint64_t kWindow = 256;
  uint32_t id = 2;
  uint64_t made = 0;
  for (uint64_t sent = 0; sent < n;) {
    const uint64_t k = std::min(kWindow, n - sent);
    for (uint64_t i = 0; i < k; ++i) {
      auto s = proto::send(
          fd, {.request_id = id++, .body = proto::Allocate{.pools = {pool}, .size = size}});
      if (!s) return made;
    }
    sent += k;
    for (uint64_t i = 0; i < k; ++i) {
      auto r = proto::receive_reply(fd);
      if (!r || !*r) return made;
      if (std::holds_alternative<proto::BlockInfo>((*r)->message.body)) ++made;
    }
  }
  return made;
}

TEST(Disconnect, DroppingHalfAMillionBlocksDoesNotStallOtherSessions) {
  const char* env = std::getenv("PMM_DISCONNECT_BLOCKS");
  // 150k by default keeps `make test` quick (making them takes a few
  // seconds); the figure is PMM_DISCONNECT_BLOCKS=500000. Even 150k
  // freed in one go stalled the old daemon past the bound.
  const uint64_t kBlocks = env ? std::strtoull(env, nullptr, 10) : 150'000;
  DaemonProcess d(
      "[pools.big]\ntype = \"shmem\"\nsize = \"4GiB\"\n"
      "[limits]\nblocks_per_session = 1000000\nblocks_per_uid = 1000000\n");
  ASSERT_TRUE(d.ok()) << d.log();

  auto sock = os::connect_unix(d.socket());
  ASSERT_TRUE(sock) << sock.error().describe();
  ASSERT_TRUE(proto::send(sock->get(), {.request_id = 1, .body = proto::Hello{.device = "bulk"}}));
  auto w = proto::receive_reply(sock->get());
  ASSERT_TRUE(w && *w && std::holds_alternative<proto::Welcome>((*w)->message.body));
  auto t0 = Clock::now();
  ASSERT_EQ(allocate_many(sock->get(), "big", kBlocks, 4096), kBlocks);
  const double make_ms = ms_since(t0);

  auto other = client::Connection::connect(d.socket(), "other");
  ASSERT_TRUE(other) << other.error().describe();
  auto st = (*other)->stats();
  ASSERT_TRUE(st) << st.error().describe();
  ASSERT_EQ(st->blocks, kBlocks);

  // Close the bulk session and time the other client until every block is
  // back (or 30 s: a daemon that never finished would fail below).
  sock->reset();
  t0 = Clock::now();
  double worst = 0;
  uint64_t requests = 0;
  uint64_t left = kBlocks;
  while (left > 0 && ms_since(t0) < 30'000) {
    auto t = Clock::now();
    auto b = (*other)->allocate({"big"}, 4096, 0, 0);
    ASSERT_TRUE(b) << b.error().describe();
    ASSERT_TRUE((*other)->put(b->id));
    worst = std::max(worst, ms_since(t));
    auto s = (*other)->stats();
    ASSERT_TRUE(s) << s.error().describe();
    left = s->blocks;
    requests += 3;
  }
  const double drain_ms = ms_since(t0);
  std::printf(
      "%llu blocks made through the protocol in %.0f ms; after the disconnect they were all "
      "back in %.0f ms, while another client's allocate+put took at most %.2f ms (%llu "
      "requests served meanwhile)\n",
      static_cast<unsigned long long>(kBlocks), make_ms, drain_ms, worst,
      static_cast<unsigned long long>(requests));
  EXPECT_EQ(left, 0u) << "the closed session's blocks were not all returned";
#ifdef NDEBUG
  if (!kSanitized) {
    EXPECT_LT(worst, 50.0) << "another session was stalled by the disconnect";
  }
#endif
  EXPECT_GT(requests, 3u) << "the drop finished before anyone could be served: nothing measured";
}

}  // namespace
}  // namespace pmm::testing
