// pmm.Block. The buffer protocol is written by hand (not pybind11's
// def_buffer) because the release of each view must unpin the block: that is
// what lets put() and close() wait for the last numpy array or memoryview
// (handles.h).
#include "block.h"

#include <fmt/format.h>
#include <pybind11/numpy.h>

#include "args.h"
#include "errors.h"

namespace py = pybind11;

namespace pmm::python {
namespace {

extern "C" int block_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  try {
    auto& b = py::handle(self).cast<BlockState&>();
    require_usable(b, "memoryview");
    if (b.size > static_cast<uint64_t>(PY_SSIZE_T_MAX)) {
      throw_invalid(fmt::format("block {} of {} bytes is too large for a buffer", b.id, b.size));
    }
    if (PyBuffer_FillInfo(view, self, pmm_block_ptr(b.block), static_cast<Py_ssize_t>(b.size),
                          /*readonly=*/0, flags) != 0) {
      return -1;
    }
    pin(b);
    return 0;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_BufferError, e.what());
  }
  if (view != nullptr) view->obj = nullptr;
  return -1;
}

extern "C" void block_releasebuffer(PyObject* self, Py_buffer* /*view*/) {
  try {
    unpin(py::handle(self).cast<BlockState&>());
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("pmm.Block: releasing a buffer view");
  } catch (...) {  // nothing may escape into CPython's release path
  }
}

py::object sysv_segment_type() {
  // Leaked on purpose: a static py::object would be released after the
  // interpreter is gone.
  static auto* type = new py::object(
      py::module_::import("collections").attr("namedtuple")("SysvSegment", "shmid offset size"));
  return *type;
}

// Block.ndarray(shape, dtype="uint8", offset=0): a C-ordered numpy array
// over the block's own memory, from `offset`. Its base is a memoryview of
// the block, so the array pins the block like any other view.
py::array make_ndarray(py::object self, py::handle shape_arg, py::handle dtype_arg,
                       py::handle offset_arg) {
  auto& b = self.cast<BlockState&>();
  require_usable(b, "ndarray");
  py::dtype dtype = py::dtype::from_args(py::reinterpret_borrow<py::object>(dtype_arg));
  if (dtype.itemsize() <= 0) {
    throw_invalid(
        fmt::format("ndarray: dtype {} has no fixed size", py::str(dtype).cast<std::string>()));
  }
  std::vector<py::ssize_t> shape;
  if (PyIndex_Check(shape_arg.ptr()) && !PyBool_Check(shape_arg.ptr())) {
    shape.push_back(static_cast<py::ssize_t>(to_uint(shape_arg, "shape", 0, PY_SSIZE_T_MAX)));
  } else if (py::isinstance<py::tuple>(shape_arg) || py::isinstance<py::list>(shape_arg)) {
    for (py::handle d : shape_arg) {
      shape.push_back(
          static_cast<py::ssize_t>(to_uint(d, "each shape dimension", 0, PY_SSIZE_T_MAX)));
    }
  } else {
    PyErr_SetString(PyExc_TypeError, "ndarray: shape must be an int or a tuple of ints");
    throw py::error_already_set();
  }
  uint64_t offset = to_uint(offset_arg, "offset", 0, b.size);
  // Bytes the array spans, with overflow checked: a shape may be hostile.
  uint64_t bytes = static_cast<uint64_t>(dtype.itemsize());
  bool too_many = false;
  for (py::ssize_t d : shape) {
    too_many = too_many || __builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes);
  }
  if (too_many || bytes > b.size - offset) {
    std::string dims;
    for (py::ssize_t d : shape) dims += fmt::format("{}{}", dims.empty() ? "" : ", ", d);
    throw_invalid(fmt::format(
        "ndarray: shape ({}) of {} needs {} bytes from offset {}, but block {} has {} bytes "
        "({} from that offset)",
        dims, py::str(dtype).cast<std::string>(),
        too_many ? std::string("more than 2^64") : std::to_string(bytes), offset, b.id, b.size,
        b.size - offset));
  }
  py::object view = py::reinterpret_steal<py::object>(PyMemoryView_FromObject(self.ptr()));
  if (!view) throw py::error_already_set();
  auto* data = static_cast<char*>(pmm_block_ptr(b.block)) + offset;
  return py::array(dtype, shape, {}, data, view);
}

}  // namespace

std::unique_ptr<BlockState> adopt_block(const std::shared_ptr<ConnState>& conn, pmm_block* block,
                                        const char* what) {
  auto b = std::make_unique<BlockState>();
  b->conn = conn;
  b->block = block;
  if (conn->close_requested || conn->gone) {
    // close() came while the call was in flight: the disconnect drops (or
    // has dropped) this reference with the rest. Puts happen in ~BlockState.
    throw_invalid(fmt::format("{}: the connection was closed during the call", what));
  }
  b->id = pmm_block_id(block);
  b->size = pmm_block_size(block);
  b->pool = pmm_block_pool(block);
  return b;
}

void register_block(py::module_& m) {
  py::class_<BlockState> cls(m, "Block", R"(One reference to a pmm block, mapped in this process.

Made by Connection.alloc() or Connection.import_(). The block's memory is
available through the buffer protocol (memoryview(b), numpy.asarray(b)) and
Block.ndarray(); every such view keeps the memory held: put() while views
live drops the reference when the last view is gone.)");

  // The buffer protocol by hand: see the top of this file.
  auto* heap_type = reinterpret_cast<PyHeapTypeObject*>(cls.ptr());
  heap_type->ht_type.tp_as_buffer = &heap_type->as_buffer;
  heap_type->as_buffer.bf_getbuffer = block_getbuffer;
  heap_type->as_buffer.bf_releasebuffer = block_releasebuffer;

  cls.def_property_readonly(
         "size", [](const BlockState& b) { return b.size; }, "Size in bytes.")
      .def_property_readonly(
          "id", [](const BlockState& b) { return b.id; },
          "The daemon-wide block id (pmmctl blocks shows it).")
      .def_property_readonly(
          "pool", [](const BlockState& b) { return b.pool; },
          "Name of the pool the block came from.")
      .def_property_readonly(
          "fd",
          [](const BlockState& b) {
            require_usable(b, "fd");
            return pmm_block_fd(b.block);
          },
          "The pool's memory fd (owned by the connection: os.dup() it to keep it).")
      .def_property_readonly(
          "offset",
          [](const BlockState& b) {
            require_usable(b, "offset");
            return pmm_block_offset(b.block);
          },
          "The block's offset in the pool's fd.")
      .def_property_readonly(
          "phys",
          [](const BlockState& b) -> py::object {
            require_usable(b, "phys");
            uint64_t phys = pmm_block_phys(b.block);
            if (phys == 0) return py::none();
            return py::int_(phys);
          },
          "Physical address of the first byte, or None when unknown or hidden.")
      .def_property_readonly(
          "closed", [](const BlockState& b) { return b.put_requested || b.gone; },
          "True once put() was called (or the connection closed).")
      .def_property_readonly(
          "buffer", [](const BlockState& b) { return static_cast<bool>(b.bufpool); },
          "True for a buffer acquired from a BufPool (put() gives it back there).")
      .def_property_readonly(
          "views", [](const BlockState& b) { return b.pins; },
          "Buffer views (memoryviews, numpy arrays) now holding the block.")
      .def(
          "put", [](BlockState& b) { request_put(b); },
          "Drops this reference (a BufPool's buffer: gives it back to its pool): now, or\n"
          "when the last view of the block is released.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](BlockState& b, py::handle, py::handle, py::handle) {
             request_put(b);
             return false;
           })
      .def(
          "export",
          [](BlockState& b, py::handle max_imports, py::handle lifetime) {
            require_usable(b, "export");
            auto imports =
                static_cast<uint32_t>(to_uint(max_imports, "max_imports", 1, UINT32_MAX));
            uint32_t ms = to_ms(lifetime, "lifetime");
            pmm_token token{};
            call_released(*b.conn, &b, [&] { return pmm_export(b.block, imports, ms, &token); });
            char text[PMM_TOKEN_STRLEN];
            pmm_token_format(&token, text);
            return std::string(text);
          },
          py::arg("max_imports") = 1, py::arg("lifetime") = py::none(),
          "Exports the block: returns a token (32 hex digits) another process imports with\n"
          "Connection.import_(). The export holds a reference until imported max_imports\n"
          "times, withdrawn (Connection.unexport) or `lifetime` seconds passed (None: the\n"
          "daemon's default, 60 s).")
      .def(
          "sysv_export",
          [](BlockState& b) {
            require_usable(b, "sysv_export");
            pmm_sysv_segment seg{};
            call_released(*b.conn, &b, [&] { return pmm_sysv_export(b.block, &seg); });
            return sysv_segment_type()(seg.shmid, seg.offset, seg.size);
          },
          "Exports a block of a sysv pool as SysvSegment(shmid, offset, size).")
      .def(
          "sysv_unexport",
          [](BlockState& b) {
            require_usable(b, "sysv_unexport");
            call_released(*b.conn, &b, [&] { return pmm_sysv_unexport(b.block); });
          },
          "Withdraws the SysV export.")
      .def(
          "prefault",
          [](BlockState& b) {
            require_usable(b, "prefault");
            call_released(*b.conn, &b, [&] { return pmm_block_prefault(b.block); });
          },
          "Fills this process's page tables for the block now (before writing a frame).")
      .def(
          "__array__",
          [](py::object self, py::handle /*dtype*/) {
            // numpy.asarray(b) asks for this before the buffer protocol; were
            // it missing, numpy would turn a put block's refusal into a 0-d
            // object array instead of raising it. numpy casts to `dtype`.
            auto& b = self.cast<BlockState&>();
            return make_ndarray(self, py::int_(b.size), py::str("uint8"), py::int_(0));
          },
          py::arg("dtype") = py::none())
      .def("ndarray", &make_ndarray, py::arg("shape"), py::arg("dtype") = "uint8",
           py::arg("offset") = 0,
           "A C-ordered numpy array of `shape` and `dtype` over the block's memory from\n"
           "`offset`, without a copy. It keeps the block held while it lives.")
      .def("__repr__", [](const BlockState& b) {
        return fmt::format("<pmm.Block id={} pool={} size={}{}{}>", b.id, b.pool, b.size,
                           b.bufpool ? " buffer" : "", b.put_requested || b.gone ? " put" : "");
      });
}

}  // namespace pmm::python
