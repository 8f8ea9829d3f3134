// pmm.connect() and pmm.Connection.
#include <fmt/format.h>

#include "args.h"
#include "block.h"
#include "bufpool.h"
#include "errors.h"
#include "handles.h"

namespace py = pybind11;

namespace pmm::python {
namespace {

// What the Python object holds; blocks made through it share the state.
struct Connection {
  std::shared_ptr<ConnState> state;
};

Connection connect(py::handle socket_arg, py::handle device_arg, py::handle timeout_arg,
                   py::handle populate_arg) {
  std::optional<std::string> socket = to_optional_str(socket_arg, "socket");
  std::optional<std::string> device = to_optional_str(device_arg, "device");
  uint32_t timeout_ms = to_ms(timeout_arg, "timeout");
  bool populate = to_bool(populate_arg, "populate");
  auto state = std::make_shared<ConnState>();
  state->socket = socket.value_or("");
  state->device = device.value_or("default");
  pmm_connect_options options{};
  options.size = sizeof options;
  options.socket_path = socket ? socket->c_str() : nullptr;
  options.device = device ? device->c_str() : nullptr;
  options.timeout_ms = timeout_ms;
  options.flags = populate ? PMM_CONNECT_POPULATE : 0u;
  pmm_conn* conn = nullptr;
  pmm_status status = PMM_OK;
  std::string message;
  {
    py::gil_scoped_release released;
    status = pmm_connect_opts(&options, &conn);
    if (status != PMM_OK) message = pmm_last_error();
  }
  if (status != PMM_OK) {
    state->gone = true;  // nothing to disconnect
    throw_status(status, message);
  }
  state->conn = conn;
  return Connection{std::move(state)};
}

std::unique_ptr<BlockState> alloc(Connection& self, py::handle pools_arg, py::handle size_arg,
                                  py::handle alignment_arg, bool zero, bool contiguous,
                                  py::handle wait_arg) {
  ConnState& c = *self.state;
  require_open(c, "alloc");
  std::optional<std::string> pools = to_pools(pools_arg);
  uint64_t size = to_uint(size_arg, "size", 1, UINT64_MAX);
  uint64_t alignment = to_uint(alignment_arg, "alignment", 0, UINT64_MAX);
  if (alignment != 0 && (alignment & (alignment - 1)) != 0) {
    throw_invalid(
        fmt::format("alignment must be 0 (the default) or a power of two (got {})", alignment));
  }
  uint32_t flags = (zero ? PMM_ALLOC_ZERO : 0u) | (contiguous ? PMM_ALLOC_CONTIGUOUS : 0u);
  pmm_alloc_options options{};
  options.size = sizeof options;
  options.pools = pools ? pools->c_str() : nullptr;
  options.alignment = alignment;
  options.flags = flags;
  options.wait_ms = to_wait_ms(wait_arg, "wait", PMM_ALLOC_MAX_WAIT_MS, "PMM_ALLOC_MAX_WAIT_MS");
  pmm_block* block = nullptr;
  call_released(c, nullptr, [&] { return pmm_alloc_opts(c.conn, size, &options, &block); });
  return adopt_block(self.state, block, "alloc");
}

std::unique_ptr<BlockState> import_token(Connection& self, py::handle token_arg) {
  ConnState& c = *self.state;
  require_open(c, "import_");
  pmm_token token = to_token(token_arg);
  pmm_block* block = nullptr;
  call_released(c, nullptr, [&] { return pmm_import(c.conn, &token, &block); });
  return adopt_block(self.state, block, "import_");
}

}  // namespace

void register_connection(py::module_& m) {
  py::class_<Connection>(m, "Connection", R"(A session with pmmd (see pmm.connect).

Closing it (close(), the end of a `with` block, or its last reference
going) drops every reference its blocks hold, unless a buffer view of one
of them is alive: then the session stays open until the last view goes.)")
      .def("alloc", &alloc, py::arg("pools"), py::arg("size"), py::arg("alignment") = 0,
           py::arg("zero") = false, py::arg("contiguous") = false, py::arg("wait") = py::none(),
           // The block keeps its Connection object alive (and so the session).
           py::keep_alive<0, 1>(),
           "Allocates `size` bytes from the first of `pools` (a name, \"a,b\", a list of\n"
           "names, or None for the device's defaults) that can give them. `alignment`: 0\n"
           "or a power of two. `zero`: zero the memory. `contiguous`: physically\n"
           "contiguous (hugetlb pools with known addresses). `wait`: seconds (at most 60)\n"
           "the daemon may queue the request when the pools are full or a limit refuses\n"
           "it for now, serving it first come, first served as memory is freed (None or\n"
           "0: refuse at once). The GIL is released while it waits.")
      .def(
          "bufpool",
          [](Connection& self, py::handle pools, py::handle count, py::handle size,
             py::handle alignment, py::handle max_count, py::handle zero, py::handle contiguous) {
            return make_bufpool(self.state, pools, count, size, alignment, max_count, zero,
                                contiguous);
          },
          py::arg("pools"), py::arg("count"), py::arg("size"), py::arg("alignment") = 0,
          py::arg("max_count") = py::none(), py::arg("zero") = false, py::arg("contiguous") = false,
          // The pool keeps its Connection object alive.
          py::keep_alive<0, 1>(),
          "A BufPool of `count` buffers of `size` bytes from `pools` (as alloc), all\n"
          "allocated now. It grows by one buffer when acquire() finds none free, up to\n"
          "`max_count` (None: no growth; at most 256). `zero`: zero each buffer when it\n"
          "is allocated (not when it is reused).")
      .def("import_", &import_token, py::arg("token"), py::keep_alive<0, 1>(),
           "Imports a token from Block.export(): returns a Block holding a reference of its own.")
      .def(
          "unexport",
          [](Connection& self, py::handle token_arg) {
            ConnState& c = *self.state;
            require_open(c, "unexport");
            pmm_token token = to_token(token_arg);
            call_released(c, nullptr, [&] { return pmm_unexport(c.conn, &token); });
          },
          py::arg("token"), "Withdraws an export this process made and drops its reference.")
      .def(
          "close", [](Connection& self) { request_close(*self.state); },
          "Ends the session (deferred while a view of one of its blocks is alive).")
      .def_property_readonly(
          "closed",
          [](const Connection& self) { return self.state->close_requested || self.state->gone; },
          "True once close() was called.")
      .def_property_readonly(
          "device", [](const Connection& self) { return self.state->device; },
          "The device name this connection claimed.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](Connection& self, py::handle, py::handle, py::handle) {
             request_close(*self.state);
             return false;
           })
      .def("__repr__", [](const Connection& self) {
        const ConnState& c = *self.state;
        return fmt::format("<pmm.Connection device={} socket={}{}>", c.device,
                           c.socket.empty() ? "default" : c.socket,
                           c.close_requested || c.gone ? " closed" : "");
      });

  m.def("connect", &connect, py::arg("socket") = py::none(), py::arg("device") = py::none(),
        py::arg("timeout") = py::none(), py::arg("populate") = false,
        "Connects to pmmd. socket: None means $PMM_SOCKET, else\n"
        "$XDG_RUNTIME_DIR/pmm/pmm.sock, else /run/pmm/pmm.sock. device: the name the\n"
        "daemon's limits know this client by (None: \"default\"). timeout: seconds every\n"
        "wait for the daemon may take (None: 5). populate: fill the page tables of each\n"
        "pool's whole mapping when it is first mapped, so that no access to its blocks\n"
        "page-faults afterwards (for pools sized to the frames in them; see pmm.h).");
}

}  // namespace pmm::python
