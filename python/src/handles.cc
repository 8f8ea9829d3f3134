#include "handles.h"

#include <fmt/format.h>

namespace py = pybind11;

namespace pmm::python {
namespace {

// Deferred work runs where Python cannot take an exception (releasing a
// buffer, a destructor). While the interpreter shuts down the GIL is not
// released: other threads may no longer take it back.
bool may_release_gil() { return _Py_IsFinalizing() == 0; }

void destroy_now(PoolState& p) {
  p.gone = true;
  pmm_bufpool* pool = p.pool;
  p.pool = nullptr;
  if (pool == nullptr) return;
  ConnState& c = *p.conn;
  ++c.pins;  // the destroy puts every buffer on the connection
  if (may_release_gil()) {
    py::gil_scoped_release released;
    pmm_bufpool_destroy(pool);
  } else {
    pmm_bufpool_destroy(pool);
  }
  unpin(c);
}

void disconnect_now(ConnState& c) {
  c.gone = true;  // before the GIL goes: nobody starts a call on it now
  // libpmm wants every pool destroyed before the disconnect. Nothing pins
  // them: a pin on a pool pins this connection too.
  for (const std::weak_ptr<PoolState>& weak : c.pools) {
    if (auto p = weak.lock(); p && !p->gone) destroy_now(*p);
  }
  c.pools.clear();
  pmm_conn* conn = c.conn;
  c.conn = nullptr;
  if (conn == nullptr) return;
  if (may_release_gil()) {
    py::gil_scoped_release released;
    pmm_disconnect(conn);
  } else {
    pmm_disconnect(conn);
  }
}

// Drops the block's reference. Returns libpmm's status and message so that
// put() can raise them; deferred puts ignore them (the only failures left
// are a dead or late daemon, and the session's end drops the reference).
pmm_status put_now(BlockState& b, std::string* message) {
  b.gone = true;
  pmm_block* block = b.block;
  b.block = nullptr;
  if (block == nullptr || b.conn->gone) return PMM_OK;  // disconnect freed it
  if (b.bufpool) {
    // Back to its pool: local, no daemon call.
    if (b.bufpool->gone) return PMM_OK;  // the destroy freed it
    pmm_status status = pmm_bufpool_release(b.bufpool->pool, block);
    if (status != PMM_OK && message != nullptr) *message = pmm_last_error();
    return status;
  }
  ConnState& c = *b.conn;
  pmm_status status = PMM_OK;
  ++c.pins;  // the call is in flight on the connection
  if (may_release_gil()) {
    py::gil_scoped_release released;
    status = pmm_block_put(block);
    if (status != PMM_OK && message != nullptr) *message = pmm_last_error();
  } else {
    status = pmm_block_put(block);
    if (status != PMM_OK && message != nullptr) *message = pmm_last_error();
  }
  unpin(c);
  return status;
}

}  // namespace

ConnState::~ConnState() {
  if (!gone) disconnect_now(*this);
}

PoolState::~PoolState() {
  if (!gone && conn) destroy_now(*this);
}

BlockState::~BlockState() {
  if (!gone && conn) put_now(*this, nullptr);
}

void require_open(const ConnState& c, const char* what) {
  if (c.close_requested || c.gone) {
    throw_invalid(fmt::format("{}: the connection is closed (connect anew)", what));
  }
}

void require_usable(const BlockState& b, const char* what) {
  if (b.put_requested || b.gone) {
    throw_invalid(fmt::format("{}: block {} was put; it may not be used any more", what, b.id));
  }
  if (b.conn->close_requested || b.conn->gone) {
    throw_invalid(
        fmt::format("{}: block {}: its connection is closed, which dropped the block", what, b.id));
  }
  if (b.bufpool && (b.bufpool->close_requested || b.bufpool->gone)) {
    throw_invalid(fmt::format("{}: buffer {}: its BufPool is closed, which takes its buffers back",
                              what, b.id));
  }
}

void require_open(const PoolState& p, const char* what) {
  if (p.close_requested || p.gone) {
    throw_invalid(fmt::format("{}: the BufPool is closed (create another)", what));
  }
  if (p.conn->close_requested || p.conn->gone) {
    throw_invalid(
        fmt::format("{}: the BufPool's connection is closed, which closed the pool", what));
  }
}

void pin(ConnState& c) { ++c.pins; }

void unpin(ConnState& c) {
  if (--c.pins == 0 && c.close_requested && !c.gone) disconnect_now(c);
}

void pin(PoolState& p) {
  ++p.pins;
  pin(*p.conn);
}

void unpin(PoolState& p) {
  // The pool first: its deferred destroy still needs the connection.
  if (--p.pins == 0 && p.close_requested && !p.gone) destroy_now(p);
  unpin(*p.conn);
}

void pin(BlockState& b) {
  ++b.pins;
  if (b.bufpool) {
    pin(*b.bufpool);
  } else {
    pin(*b.conn);
  }
}

void unpin(BlockState& b) {
  // The block first: its deferred put still needs the pool and connection.
  if (--b.pins == 0 && b.put_requested && !b.gone) put_now(b, nullptr);
  if (b.bufpool) {
    unpin(*b.bufpool);
  } else {
    unpin(*b.conn);
  }
}

void request_put(BlockState& b) {
  if (b.put_requested || b.gone) return;  // like file.close(): once is enough
  b.put_requested = true;
  if (b.pins > 0) return;  // the last view puts it
  std::string message;
  pmm_status status = put_now(b, &message);
  if (status != PMM_OK) throw_status(status, message);
}

void request_close(ConnState& c) {
  if (c.close_requested || c.gone) return;
  c.close_requested = true;
  if (c.pins == 0) disconnect_now(c);
}

void request_close(PoolState& p) {
  if (p.close_requested || p.gone) return;
  p.close_requested = true;
  if (p.pins == 0) destroy_now(p);
}

}  // namespace pmm::python
