// pmm.BufPool. Lifetime: handles.h (a buffer's views pin its pool, the pool
// pins its connection).
#include "bufpool.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "args.h"
#include "errors.h"

namespace py = pybind11;

namespace pmm::python {
namespace {

// An acquire waits in slices this long, with the GIL released, and between
// slices runs Python's signal handlers: Ctrl-C interrupts a long or
// unbounded wait, which one long libpmm call could not.
constexpr uint32_t kSliceMs = 100;

std::string pools_text(const PoolState& p) { return p.pools.empty() ? "default" : p.pools; }

pmm_bufpool_stats stats_of(PoolState& p) {
  pmm_bufpool_stats s{};
  s.size = sizeof s;
  // Local: the pool's mutex only, never the daemon.
  if (pmm_bufpool_get_stats(p.pool, &s) != PMM_OK) throw_status(PMM_E_INVALID, pmm_last_error());
  return s;
}

py::object stats_type() {
  // Leaked on purpose, as Block's SysvSegment type.
  static auto* type =
      new py::object(py::module_::import("collections")
                         .attr("namedtuple")("BufPoolStats", "buffers free acquired shared"));
  return *type;
}

// Wraps a buffer acquire just took. If the pool or its connection was
// closed while the call was in flight, the buffer goes straight back (the
// BlockState's destructor releases it) and this raises.
std::unique_ptr<BlockState> adopt_buffer(const std::shared_ptr<PoolState>& p, pmm_block* block) {
  auto b = std::make_unique<BlockState>();
  b->conn = p->conn;
  b->bufpool = p;
  b->block = block;
  b->id = pmm_block_id(block);
  b->size = pmm_block_size(block);
  b->pool = pmm_block_pool(block);
  require_open(*p, "acquire");
  return b;
}

std::unique_ptr<BlockState> acquire(const std::shared_ptr<PoolState>& self, py::handle timeout) {
  PoolState& p = *self;
  require_open(p, "acquire");
  const bool forever = timeout.is_none();
  const uint32_t total_ms =
      forever ? 0 : to_wait_ms(timeout, "timeout", UINT32_MAX, "the most one wait may take");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(total_ms);
  for (;;) {
    uint32_t slice = kSliceMs;
    if (!forever) {
      auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      slice = static_cast<uint32_t>(std::clamp<int64_t>(left.count(), 0, kSliceMs));
    }
    pmm_block* block = nullptr;
    std::string message;
    pmm_status status =
        call_pinned(p, message, [&] { return pmm_bufpool_acquire(p.pool, slice, &block); });
    if (status == PMM_OK) return adopt_buffer(self, block);
    if (status != PMM_E_TIMEOUT) throw_status(status, message);
    require_open(p, "acquire");  // another thread may have closed it meanwhile
    if (!forever && std::chrono::steady_clock::now() >= deadline) {
      pmm_bufpool_stats s = stats_of(p);
      throw_status(PMM_E_TIMEOUT,
                   fmt::format("acquire: no buffer came free within {:g} s: the pool has {} "
                               "buffers (at most {}); {} are acquired here and {} are held by "
                               "importers that have not put them yet",
                               total_ms / 1000.0, s.buffers, p.max_count, s.acquired, s.shared));
    }
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

}  // namespace

std::shared_ptr<PoolState> make_bufpool(const std::shared_ptr<ConnState>& conn,
                                        py::handle pools_arg, py::handle count_arg,
                                        py::handle size_arg, py::handle alignment_arg,
                                        py::handle max_count_arg, py::handle zero_arg,
                                        py::handle contiguous_arg) {
  ConnState& c = *conn;
  require_open(c, "bufpool");
  std::optional<std::string> pools = to_pools(pools_arg);
  auto count = static_cast<uint32_t>(to_uint(
      count_arg, "count (buffers, PMM_BUFPOOL_MAX_BUFFERS at most)", 1, PMM_BUFPOOL_MAX_BUFFERS));
  uint64_t size = to_uint(size_arg, "size (bytes per buffer)", 1, UINT64_MAX);
  uint64_t alignment = to_uint(alignment_arg, "alignment", 0, UINT64_MAX);
  if (alignment != 0 && (alignment & (alignment - 1)) != 0) {
    throw_invalid(
        fmt::format("alignment must be 0 (the default) or a power of two (got {})", alignment));
  }
  uint32_t max_count = count;
  if (!max_count_arg.is_none()) {
    max_count = static_cast<uint32_t>(to_uint(max_count_arg, "max_count", 1, UINT32_MAX));
    if (max_count < count || max_count > PMM_BUFPOOL_MAX_BUFFERS) {
      throw_invalid(
          fmt::format("max_count must be None (no growth) or from count ({}) to {} "
                      "(PMM_BUFPOOL_MAX_BUFFERS) (got {})",
                      count, PMM_BUFPOOL_MAX_BUFFERS, max_count));
    }
  }
  uint32_t flags = (to_bool(zero_arg, "zero") ? PMM_ALLOC_ZERO : 0u) |
                   (to_bool(contiguous_arg, "contiguous") ? PMM_ALLOC_CONTIGUOUS : 0u);

  auto state = std::make_shared<PoolState>();
  state->conn = conn;
  state->pools = pools.value_or("");
  state->buffer_size = size;
  state->count = count;
  state->max_count = max_count;
  pmm_bufpool_options options{};
  options.size = sizeof options;
  options.pools = pools ? pools->c_str() : nullptr;
  options.buffer_size = size;
  options.alignment = alignment;
  options.flags = flags;
  options.count = count;
  options.max_count = max_count;
  pmm_bufpool* pool = nullptr;
  // The connection stays pinned until the pool is on its list, so that a
  // close() during the call destroys the pool before it disconnects.
  pin(c);
  std::string message;
  pmm_status status =
      call_pinned(c, message, [&] { return pmm_bufpool_create(c.conn, &options, &pool); });
  if (status == PMM_OK) {
    state->pool = pool;
    std::erase_if(c.pools, [](const std::weak_ptr<PoolState>& w) { return w.expired(); });
    c.pools.push_back(state);
  }
  const bool closed = c.close_requested || c.gone;
  unpin(c);  // may disconnect now, destroying the pool first
  if (status != PMM_OK) throw_status(status, message);
  if (closed) {
    request_close(*state);
    throw_invalid("bufpool: the connection was closed during the call");
  }
  return state;
}

void register_bufpool(py::module_& m) {
  py::class_<PoolState, std::shared_ptr<PoolState>>(m, "BufPool",
                                                    R"(Buffers of one size recycled in this process.

Made by Connection.bufpool(). acquire() takes a free buffer (a pmm.Block)
and its put() (or the end of its `with` block) gives it back, both without
a call to the daemon. A buffer exported to another process comes back only
once every importer has let go of it (put, exit, or death). A buffer put
while a view of it (numpy array, memoryview) lives goes back when the last
view goes. close() (or the end of a `with` block) frees every buffer
(importers keep theirs), deferred while a view of a buffer lives.)")
      .def("acquire", &acquire, py::arg("timeout") = py::none(),
           // The buffer keeps its BufPool object alive (and so the pool).
           py::keep_alive<0, 1>(),
           "Takes a free buffer; grows the pool (one allocation) when none is free and\n"
           "max_count allows, else waits up to `timeout` seconds (0: do not wait; None:\n"
           "until one comes free) for a buffer to be put or to come back from its\n"
           "importers. Raises pmm.Timeout when none came. The GIL is released while\n"
           "waiting, and signals (Ctrl-C) are handled every 0.1 s.")
      .def(
          "stats",
          [](PoolState& p) {
            require_open(p, "stats");
            pmm_bufpool_stats s = stats_of(p);
            return stats_type()(s.buffers, s.free, s.acquired, s.shared);
          },
          "BufPoolStats(buffers, free, acquired, shared): buffers allocated, ready for\n"
          "acquire, acquired and not put, put but still held by importers.")
      .def(
          "close", [](PoolState& p) { request_close(p); },
          "Frees the pool and its buffers now, or when the last view of a buffer goes.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](PoolState& p, py::handle, py::handle, py::handle) {
             request_close(p);
             return false;
           })
      .def_property_readonly(
          "closed",
          [](const PoolState& p) {
            return p.close_requested || p.gone || p.conn->close_requested || p.conn->gone;
          },
          "True once close() was called (or its connection closed).")
      .def_property_readonly(
          "size", [](const PoolState& p) { return p.buffer_size; }, "Bytes per buffer.")
      .def_property_readonly(
          "count", [](const PoolState& p) { return p.count; }, "Buffers allocated at creation.")
      .def_property_readonly(
          "max_count", [](const PoolState& p) { return p.max_count; },
          "The most buffers the pool may grow to.")
      .def_property_readonly(
          "pools", [](const PoolState& p) { return pools_text(p); },
          "The pools its buffers come from (\"default\": the device's default pools).")
      .def("__repr__", [](const PoolState& p) {
        return fmt::format("<pmm.BufPool pools={} size={} count={} max_count={}{}>", pools_text(p),
                           p.buffer_size, p.count, p.max_count,
                           p.close_requested || p.gone || p.conn->close_requested ? " closed" : "");
      });
}

}  // namespace pmm::python
