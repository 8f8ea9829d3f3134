// The state behind pmm.Connection and pmm.Block, and the rule that keeps
// Python from ever touching memory pmm has taken back.
//
// libpmm frees a block's handle on its last put, and every handle and pool
// mapping of a connection on pmm_disconnect. Python code, though, may hold a
// memoryview or a numpy array over a block long after it called put() or
// close(). So every buffer view of a block, and every libpmm call in flight
// with the GIL released, holds a *pin* on the block and on its connection:
//
//   - Block.put() with pins on the block only marks it put: the block is
//     unusable from then on (a new view, export, ... raises), and the real
//     pmm_block_put happens when the last pin goes (the last view released).
//   - Connection.close() with pins on any of its blocks marks it closed the
//     same way; pmm_disconnect (which drops every reference and unmaps the
//     pools) happens when the last pin goes. Until then the views read and
//     write real, still-held memory.
//   - A buffer pool (pmm.BufPool) sits between its buffers and the
//     connection: a pin on a buffer pins its pool, and a pin on the pool
//     pins the connection. BufPool.close() with pins marks it closed;
//     pmm_bufpool_destroy happens when the last pin goes. A buffer's put
//     gives it back with pmm_bufpool_release (never pmm_block_put: the
//     reference is the pool's). Buffers acquired and not viewed when the
//     pool is destroyed go with it (libpmm frees them), as blocks go with a
//     closed connection. pmm_disconnect destroys the connection's pools
//     first (libpmm requires it).
//
// Every member is read and written with the GIL held; libpmm is called with
// the GIL released only inside a pin, so no other thread can free what the
// call uses. Deferred puts and disconnects run from the release of the last
// view (bf_releasebuffer, a destructor) and never raise.
#ifndef PMM_PYTHON_HANDLES_H_
#define PMM_PYTHON_HANDLES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pmm/pmm.h"

namespace pmm::python {

struct PoolState;

struct ConnState {
  ConnState() = default;
  ConnState(const ConnState&) = delete;
  ConnState& operator=(const ConnState&) = delete;
  ~ConnState();  // disconnects if that has not happened yet

  pmm_conn* conn = nullptr;
  std::string socket;  // as given to connect() ("" for the default)
  std::string device;
  bool close_requested = false;  // close() called: no new use
  bool gone = false;             // pmm_disconnect done: every handle is freed
  long pins = 0;                 // views of its blocks + calls in flight
  // Its buffer pools not destroyed yet (expired entries are skipped).
  std::vector<std::weak_ptr<PoolState>> pools;
};

// pmm.BufPool's state: a pmm_bufpool of `conn`.
struct PoolState {
  PoolState() = default;
  PoolState(const PoolState&) = delete;
  PoolState& operator=(const PoolState&) = delete;
  ~PoolState();  // destroys the pool if that has not happened yet

  std::shared_ptr<ConnState> conn;
  pmm_bufpool* pool = nullptr;
  // As created: repr() and the properties stay true after close.
  std::string pools;  // "" for the device's defaults
  uint64_t buffer_size = 0;
  uint32_t count = 0;
  uint32_t max_count = 0;
  bool close_requested = false;  // close() called: no new acquire
  bool gone = false;             // pmm_bufpool_destroy done: every buffer is freed
  long pins = 0;                 // views of its buffers + calls in flight
};

struct BlockState {
  BlockState() = default;
  BlockState(const BlockState&) = delete;
  BlockState& operator=(const BlockState&) = delete;
  ~BlockState();  // puts if that has not happened yet

  std::shared_ptr<ConnState> conn;
  // Set for a buffer acquired from a pool: put() releases it there.
  std::shared_ptr<PoolState> bufpool;
  pmm_block* block = nullptr;
  // Copied when the handle is made: repr() and size stay true after put.
  uint64_t id = 0;
  uint64_t size = 0;
  std::string pool;
  bool put_requested = false;  // put() called: no new use
  bool gone = false;           // pmm_block_put done (or the connection gone)
  long pins = 0;               // live buffer views + calls in flight
};

// Raises pmm.InvalidArgument unless the connection is open.
void require_open(const ConnState& c, const char* what);
// Raises pmm.InvalidArgument unless the block and its connection (and its
// buffer pool, for a buffer) are usable.
void require_usable(const BlockState& b, const char* what);
// Raises pmm.InvalidArgument unless the pool and its connection are open.
void require_open(const PoolState& p, const char* what);

// Pins: see above. unpin may carry out a deferred put, destroy or
// disconnect.
void pin(ConnState& c);
void unpin(ConnState& c);
void pin(PoolState& p);
void unpin(PoolState& p);
void pin(BlockState& b);
void unpin(BlockState& b);

// Block.put(): marks the block put and drops its reference now if nothing
// pins it (raising what libpmm reports), else when the last pin goes.
void request_put(BlockState& b);
// Connection.close(): the same for the connection.
void request_close(ConnState& c);
// BufPool.close(): the same for a buffer pool.
void request_close(PoolState& p);

// Runs `call` (a libpmm call returning pmm_status) with the GIL released
// and `state` (a ConnState, PoolState or BlockState) pinned; returns its
// status, with pmm_last_error() in `message` on failure.
template <typename State, typename Call>
pmm_status call_pinned(State& state, std::string& message, Call&& call);

// The same, raising its failure; pins the block when given, else the
// connection.
template <typename Call>
void call_released(ConnState& c, BlockState* b, Call&& call);

}  // namespace pmm::python

#include "handles_inl.h"

#endif  // PMM_PYTHON_HANDLES_H_
