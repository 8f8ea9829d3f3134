// The C API's opaque handles (pmm.h), shared by c_api.cc and bufpool.cc.
//
// pmm_conn owns the Connection and a table of block handles keyed by block
// id: a process has ONE pmm_block per block per connection, which counts
// this process's references to it in `refs` (atomics: pmm_block_get and
// pmm_block_put of a held block never lock or talk to the daemon). The
// daemon holds ONE reference for the whole handle, taken by the allocate or
// import that made it and dropped by the put that takes `refs` to zero
// (sent without waiting). An import of a block the handle exists for adds a
// local reference and gives the daemon's extra one back (a round trip).
//
// Locks, in the order they may be taken: the Connection's own (it calls the
// release handler under it) -> pmm_conn::pools_mu -> pmm_bufpool::mu ->
// pmm_conn::mu. None is held across a round trip.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/block_table.h"
#include "client/connection.h"
#include "client/futex_lock.h"
#include "pmm/pmm.h"

struct pmm_block {
  pmm_conn* conn = nullptr;
  pmm::client::BlockView view;
  std::atomic<uint64_t> refs{0};  // this process's references through this connection
  // Set while the block is a buffer of that pool (bufpool.cc); the pool
  // holds one of `refs`.
  std::atomic<pmm_bufpool*> pool{nullptr};
};

struct pmm_conn {
  std::unique_ptr<pmm::client::Connection> rep;
  pmm::client::FutexLock mu;  // the block table
  pmm::client::IdTable<pmm_block> blocks;
  // Handles freed by their last put, for the next adopt (no heap
  // allocation per block in steady state): spare_blocks[0, spare_count),
  // owned here (raw pointers, so that a connection that never used them
  // neither clears nor destroys a whole array). Under mu.
  static constexpr size_t kSpareBlocks = 8;
  std::array<pmm_block*, kSpareBlocks> spare_blocks;  // set below spare_count only
  size_t spare_count = 0;
  void free_spare_blocks() {
    for (size_t i = 0; i < spare_count; ++i) delete spare_blocks[i];
    spare_count = 0;
  }
  ~pmm_conn() { free_spare_blocks(); }
  // Buffer pools by the block ids of their buffers, for release events.
  std::mutex pools_mu;
  std::unordered_map<uint64_t, pmm_bufpool*> pool_of_block;
  bool release_handler_set = false;  // under pools_mu
};

namespace pmm::capi {

// Sets the thread's last error; returns its status.
pmm_status fail_with(const pmm::Error& e);
pmm_status fail_with(pmm::Errc code, std::string message);
namespace detail {
// Whether the thread's last error may be non-empty: a plain flag (no
// thread_local initialisation check) for ok(), which every successful call
// runs.
extern constinit thread_local bool t_error_set;
}  // namespace detail
// Clears the thread's last error (ok()'s rare case).
[[gnu::noinline]] void clear_error();
// PMM_OK, the thread's last error cleared. Inline: every successful call
// ends here.
inline pmm_status ok() {
  if (detail::t_error_set) [[unlikely]]
    clear_error();
  return PMM_OK;
}
// "dma, general" -> {"dma", "general"}; NULL or "" -> {}.
pmm::Result<std::vector<std::string>> split_pools(const char* pools);
// Adds the reference `view` stands for to this connection's handle of that
// block (made now if there is none).
pmm_block* adopt(pmm_conn* conn, const pmm::client::BlockView& view);
// pmm_export's hook: a buffer of a pool was exported (bufpool.cc).
void buffer_exported(pmm_block* block);

}  // namespace pmm::capi
