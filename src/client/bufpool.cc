// pmm_bufpool (pmm.h): N blocks of one size recycled in this process.
//
// The pool holds one reference to each of its buffers for its whole life
// (one local reference of the buffer's pmm_block, so the daemon holds one
// for the session). Acquire and release only move an index between the
// free list and the acquired state under the pool's mutex: no round trip.
//
// Sharing. pmm_export of a buffer calls buffer_exported(), which counts one
// more pending release watch and posts a WatchRelease (no wait). The daemon
// answers each watch once, when no one but this session holds the block
// (core: Ledger::references_of), with a Released event naming how many
// watches it answers; the connection's release handler (installed with the
// first pool) counts them down. A released buffer whose watches are all
// answered goes back on the free list; one still watched waits, "shared".
// So a buffer is reused only after every importer let go, by put or by
// dying (the daemon drops a dead session's references, which fires the
// watch as any put does).
//
// Waiting. An acquire that finds nothing free first reads what the daemon
// has sent (release events), then grows the pool by one allocation if it
// may, then waits: it reads the connection (Connection::pump) in slices of
// at most kSlice, so that a buffer released locally by another thread (no
// socket traffic) is seen within a slice even while this thread is the
// one blocked reading the socket; threads that wait on the connection's
// condition are woken at once (notify_waiters).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "client/c_handles.h"

namespace {

constexpr auto kSlice = std::chrono::milliseconds(1);

struct Buffer {
  enum class State { kFree, kAcquired, kShared };
  pmm_block* block = nullptr;
  State state = State::kFree;
  uint32_t watches = 0;  // release watches posted and not answered yet
};

}  // namespace

struct pmm_bufpool {
  pmm_conn* conn = nullptr;
  std::vector<std::string> pools;
  uint64_t buffer_size = 0;
  uint64_t alignment = 0;
  uint32_t flags = 0;
  uint32_t max_count = 0;

  std::mutex mu;  // everything below
  std::vector<Buffer> buffers;
  std::unordered_map<pmm_block*, size_t> index;
  std::vector<size_t> free;  // LIFO: the most recently used buffer is the warmest
  uint32_t growing = 0;      // allocations in progress
  uint32_t waiting = 0;      // threads in acquire's wait
};

namespace pmm::capi {
namespace {

// Counts `watches` answered for `block`'s buffer; frees it if released.
void on_released(pmm_conn* conn, uint64_t block_id, uint32_t watches) {
  std::lock_guard plock(conn->pools_mu);
  auto p = conn->pool_of_block.find(block_id);
  if (p == conn->pool_of_block.end()) return;  // its pool is gone
  pmm_bufpool* pool = p->second;
  std::lock_guard lock(pool->mu);
  for (auto& [b, i] : pool->index) {
    if (b->view.id != block_id) continue;
    Buffer& buf = pool->buffers[i];
    buf.watches -= std::min(buf.watches, watches);
    if (buf.watches == 0 && buf.state == Buffer::State::kShared) {
      buf.state = Buffer::State::kFree;
      pool->free.push_back(i);
    }
    return;
  }
}

// Adds `block` (one reference of which is now the pool's) to the pool.
// Under pool->mu. Returns its index.
size_t add_buffer(pmm_bufpool* pool, pmm_block* block, Buffer::State state) {
  block->pool.store(pool, std::memory_order_release);
  pool->buffers.push_back(Buffer{.block = block, .state = state});
  const size_t i = pool->buffers.size() - 1;
  pool->index.emplace(block, i);
  if (state == Buffer::State::kFree) pool->free.push_back(i);
  return i;
}

void register_block(pmm_bufpool* pool, uint64_t id) {
  std::lock_guard plock(pool->conn->pools_mu);
  pool->conn->pool_of_block[id] = pool;
}

Result<pmm_block*> allocate_one(pmm_bufpool* pool) {
  auto view =
      pool->conn->rep->allocate(pool->pools, pool->buffer_size, pool->alignment, pool->flags);
  if (!view) return std::unexpected(view.error());
  return adopt(pool->conn, std::move(*view));
}

}  // namespace

void buffer_exported(pmm_block* block) {
  pmm_bufpool* pool = block->pool.load(std::memory_order_acquire);
  if (pool == nullptr) return;
  {
    std::lock_guard lock(pool->mu);
    auto it = pool->index.find(block);
    if (it == pool->index.end()) return;
    ++pool->buffers[it->second].watches;
  }
  if (auto s = block->conn->rep->post_watch_release(block->view.id); !s) {
    // Not sent: nothing will answer it.
    std::lock_guard lock(pool->mu);
    auto it = pool->index.find(block);
    if (it != pool->index.end() && pool->buffers[it->second].watches > 0)
      --pool->buffers[it->second].watches;
  }
}

}  // namespace pmm::capi

using pmm::capi::fail_with;
using pmm::capi::ok;

extern "C" {

pmm_status pmm_bufpool_create(pmm_conn* conn, const pmm_bufpool_options* options,
                              pmm_bufpool** out) {
  if (conn == nullptr || options == nullptr || out == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument,
                     "pmm_bufpool_create: conn, options and out must not be NULL");
  if (options->size < sizeof(pmm_bufpool_options))
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("pmm_bufpool_create: options->size is {}; set it to "
                                 "sizeof(pmm_bufpool_options) ({})",
                                 options->size, sizeof(pmm_bufpool_options)));
  if (auto e = conn->rep->inherited()) return fail_with(*e);
  const uint32_t max = std::max(options->count, options->max_count);
  if (options->buffer_size == 0 || options->count == 0 || max > PMM_BUFPOOL_MAX_BUFFERS)
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("pmm_bufpool_create: buffer_size {}, count {}, max_count {}: "
                                 "buffer_size and count must be at least 1, and the pool holds "
                                 "at most {} buffers (PMM_BUFPOOL_MAX_BUFFERS)",
                                 options->buffer_size, options->count, options->max_count,
                                 PMM_BUFPOOL_MAX_BUFFERS));
  if ((options->flags & ~pmm::proto::kAllocKnownFlags) != 0)
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("pmm_bufpool_create: unknown flags {:#x}; known: "
                                 "PMM_ALLOC_CONTIGUOUS (0x1), PMM_ALLOC_ZERO (0x2)",
                                 options->flags & ~pmm::proto::kAllocKnownFlags));
  auto list = pmm::capi::split_pools(options->pools);
  if (!list) return fail_with(list.error());
  {
    std::lock_guard plock(conn->pools_mu);
    if (!conn->release_handler_set) {
      conn->rep->set_release_handler(
          [conn](uint64_t id, uint32_t watches) { pmm::capi::on_released(conn, id, watches); });
      conn->release_handler_set = true;
    }
  }
  auto pool = std::make_unique<pmm_bufpool>();
  pool->conn = conn;
  pool->pools = std::move(*list);
  pool->buffer_size = options->buffer_size;
  pool->alignment = options->alignment;
  pool->flags = options->flags;
  pool->max_count = max;
  pool->buffers.reserve(max);
  for (uint32_t i = 0; i < options->count; ++i) {
    auto b = pmm::capi::allocate_one(pool.get());
    if (!b) {
      pmm_bufpool_destroy(pool.release());  // all or none
      return fail_with(b.error());
    }
    {
      std::lock_guard lock(pool->mu);
      pmm::capi::add_buffer(pool.get(), *b, Buffer::State::kFree);
    }
    pmm::capi::register_block(pool.get(), (*b)->view.id);
  }
  *out = pool.release();
  return ok();
}

pmm_status pmm_bufpool_acquire(pmm_bufpool* pool, uint32_t wait_ms, pmm_block** out) {
  if (pool == nullptr || out == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument,
                     "pmm_bufpool_acquire: pool and out must not be NULL");
  auto take = [&]() -> bool {  // under pool->mu
    if (pool->free.empty()) return false;
    const size_t i = pool->free.back();
    pool->free.pop_back();
    pool->buffers[i].state = Buffer::State::kAcquired;
    *out = pool->buffers[i].block;
    return true;
  };
  {
    std::lock_guard lock(pool->mu);
    if (take()) return ok();
  }
  pmm::client::Connection& c = *pool->conn->rep;
  if (auto e = c.inherited()) return fail_with(*e);
  bool got = false;
  auto try_take = [&] {  // under the connection's lock: pool->mu is taken after it
    std::lock_guard lock(pool->mu);
    got = got || take();
    return got;
  };
  // What came back from importers and was not read yet.
  if (auto r = c.pump(try_take, std::chrono::steady_clock::now()); !r) return fail_with(r.error());
  if (got) return ok();
  bool grow = false;
  {
    std::lock_guard lock(pool->mu);
    if (pool->buffers.size() + pool->growing < pool->max_count) {
      ++pool->growing;
      grow = true;
    }
  }
  if (grow) {
    auto b = pmm::capi::allocate_one(pool);
    {
      std::lock_guard lock(pool->mu);
      --pool->growing;
      if (b) pmm::capi::add_buffer(pool, *b, Buffer::State::kAcquired);
    }
    if (!b) return fail_with(b.error());
    pmm::capi::register_block(pool, (*b)->view.id);
    *out = *b;
    return ok();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  {
    std::lock_guard lock(pool->mu);
    ++pool->waiting;
  }
  pmm::Result<bool> r = false;
  while (!got && std::chrono::steady_clock::now() < deadline) {
    r = c.pump(try_take, std::min(deadline, std::chrono::steady_clock::now() + kSlice));
    if (!r) break;
    (void)try_take();
  }
  size_t held = 0;
  size_t shared = 0;
  {
    std::lock_guard lock(pool->mu);
    --pool->waiting;
    got = got || take();
    for (const Buffer& b : pool->buffers) {
      held += b.state == Buffer::State::kAcquired ? 1 : 0;
      shared += b.state == Buffer::State::kShared ? 1 : 0;
    }
  }
  if (got) return ok();
  if (!r) return fail_with(r.error());
  return fail_with(pmm::Errc::kTimeout,
                   fmt::format("pmm_bufpool_acquire: no buffer came free within {} ms: of its {} "
                               "buffers (the most it may have), {} are acquired here and {} are "
                               "held by importers that have not put them",
                               wait_ms, pool->max_count, held - (got ? 1 : 0), shared));
}

pmm_status pmm_bufpool_release(pmm_bufpool* pool, pmm_block* buffer) {
  if (pool == nullptr || buffer == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument,
                     "pmm_bufpool_release: pool and buffer must not be NULL");
  bool wake = false;
  {
    std::lock_guard lock(pool->mu);
    auto it = pool->index.find(buffer);
    if (it == pool->index.end() || pool->buffers[it->second].state != Buffer::State::kAcquired)
      return fail_with(
          pmm::Errc::kInvalidArgument,
          fmt::format("pmm_bufpool_release: block {} is not an acquired buffer of "
                      "this pool ({})",
                      buffer->view.id,
                      it == pool->index.end() ? "another pool's or none's" : "released already"));
    Buffer& b = pool->buffers[it->second];
    if (b.watches == 0) {
      b.state = Buffer::State::kFree;
      pool->free.push_back(it->second);
      wake = pool->waiting > 0;
    } else {
      b.state = Buffer::State::kShared;
    }
  }
  if (wake) pool->conn->rep->notify_waiters();
  return ok();
}

pmm_status pmm_bufpool_get_stats(pmm_bufpool* pool, pmm_bufpool_stats* out) {
  if (pool == nullptr || out == nullptr || out->size < sizeof(pmm_bufpool_stats))
    return fail_with(pmm::Errc::kInvalidArgument,
                     "pmm_bufpool_get_stats: pool and out must not be NULL, and out->size must "
                     "be sizeof(pmm_bufpool_stats)");
  std::lock_guard lock(pool->mu);
  out->buffers = static_cast<uint32_t>(pool->buffers.size());
  out->free = static_cast<uint32_t>(pool->free.size());
  out->acquired = 0;
  out->shared = 0;
  for (const Buffer& b : pool->buffers) {
    out->acquired += b.state == Buffer::State::kAcquired ? 1 : 0;
    out->shared += b.state == Buffer::State::kShared ? 1 : 0;
  }
  return ok();
}

void pmm_bufpool_destroy(pmm_bufpool* pool) {
  if (pool == nullptr) return;
  std::vector<pmm_block*> blocks;
  {
    std::lock_guard plock(pool->conn->pools_mu);
    std::lock_guard lock(pool->mu);
    for (Buffer& b : pool->buffers) {
      pool->conn->pool_of_block.erase(b.block->view.id);
      b.block->pool.store(nullptr, std::memory_order_release);
      blocks.push_back(b.block);
    }
  }
  // In a fork child these fail at once (inherited); the parent's session is
  // untouched, as for any block.
  for (pmm_block* b : blocks) (void)pmm_block_put(b);
  delete pool;
}

}  // extern "C"
