#include "errors.h"

#include <array>

namespace py = pybind11;

namespace pmm::python {
namespace {

struct StatusClass {
  pmm_status status;
  const char* name;
  const char* builtin;  // a builtin exception it also derives from, or null
  const char* doc;
};

// The order is pmm_status's; a status not listed raises pmm.Error itself.
constexpr std::array kClasses = {
    StatusClass{PMM_E_INVALID, "InvalidArgument", "ValueError",
                "The request is wrong (size 0, bad alignment, bad name, a put block)."},
    StatusClass{PMM_E_NO_MEMORY, "NoMemory", nullptr, "No free extent in any requested pool fits."},
    StatusClass{PMM_E_LIMIT, "LimitExceeded", nullptr,
                "A device rule (its max, others' min) or a quota refused it."},
    StatusClass{PMM_E_NOT_FOUND, "NotFound", "LookupError", "No such pool, block or token."},
    StatusClass{PMM_E_PERMISSION, "PermissionDenied", "PermissionError",
                "This uid/gid may not use the pool or claim the device."},
    StatusClass{PMM_E_NO_DAEMON, "NoDaemon", "ConnectionError",
                "Nothing listens on the socket: is pmmd running?"},
    StatusClass{PMM_E_DISCONNECTED, "Disconnected", "ConnectionError",
                "The daemon went away; the connection is dead."},
    StatusClass{PMM_E_PROTOCOL, "ProtocolMismatch", nullptr,
                "The daemon and libpmm disagree on the protocol."},
    StatusClass{PMM_E_UNSUPPORTED, "Unsupported", nullptr,
                "Valid but not possible for this pool type."},
    StatusClass{PMM_E_SYSTEM, "SystemCallFailed", "OSError",
                "A system call failed; the message names it."},
    StatusClass{PMM_E_EXPIRED, "Expired", nullptr,
                "An export token that ran out of imports or time."},
    StatusClass{PMM_E_EXISTS, "AlreadyExists", nullptr,
                "Already done (e.g. a token withdrawn twice)."},
    StatusClass{PMM_E_TIMEOUT, "Timeout", "TimeoutError",
                "The daemon did not answer within the connection's timeout, or "
                "BufPool.acquire found no buffer free in time."},
};

// Borrowed from the module, which lives as long as the interpreter.
PyObject* g_base = nullptr;
std::array<PyObject*, kClasses.size()> g_classes{};

PyObject* class_of(pmm_status status) {
  for (size_t i = 0; i < kClasses.size(); ++i) {
    if (kClasses[i].status == status) return g_classes[i];
  }
  return g_base;
}

}  // namespace

void register_errors(py::module_& m) {
  g_base = PyErr_NewExceptionWithDoc(
      "pmm.Error",
      "Base of every pmm error. `status` is pmm's status number, `status_name` its name.", nullptr,
      nullptr);
  if (g_base == nullptr) throw py::error_already_set();
  py::handle base(g_base);
  base.attr("status") = py::int_(0);
  base.attr("status_name") = py::str("error");
  m.add_object("Error", base);

  py::module_ builtins = py::module_::import("builtins");
  for (size_t i = 0; i < kClasses.size(); ++i) {
    const StatusClass& c = kClasses[i];
    py::tuple bases = c.builtin == nullptr ? py::make_tuple(base)
                                           : py::make_tuple(base, builtins.attr(c.builtin));
    std::string qualified = std::string("pmm.") + c.name;
    PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), c.doc, bases.ptr(), nullptr);
    if (cls == nullptr) throw py::error_already_set();
    py::handle h(cls);
    h.attr("status") = py::int_(static_cast<int>(c.status));
    h.attr("status_name") = py::str(pmm_status_name(c.status));
    m.add_object(c.name, h);  // the module holds the reference
    g_classes[i] = cls;
  }
}

void throw_status(pmm_status status, const std::string& message) {
  PyErr_SetString(class_of(status), message.empty() ? pmm_status_name(status) : message.c_str());
  throw py::error_already_set();
}

void throw_invalid(const std::string& message) { throw_status(PMM_E_INVALID, message); }

}  // namespace pmm::python
