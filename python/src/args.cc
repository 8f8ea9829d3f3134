#include "args.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "errors.h"

namespace py = pybind11;

namespace pmm::python {
namespace {

std::string type_name(py::handle value) {
  return py::str(py::type::handle_of(value).attr("__name__")).cast<std::string>();
}

[[noreturn]] void throw_type(const std::string& message) {
  PyErr_SetString(PyExc_TypeError, message.c_str());
  throw py::error_already_set();
}

std::string checked_str(py::handle value, const char* what) {
  std::string s = value.cast<std::string>();
  if (s.find('\0') != std::string::npos) {
    throw_invalid(fmt::format("{} must not contain a NUL character", what));
  }
  return s;
}

}  // namespace

uint64_t to_uint(py::handle value, const char* what, uint64_t min, uint64_t max) {
  if (PyBool_Check(value.ptr()) || !PyIndex_Check(value.ptr())) {
    throw_type(fmt::format("{} must be an integer, not {}", what, type_name(value)));
  }
  py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
  if (!i) throw py::error_already_set();
  int overflow = 0;
  long long ll = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow < 0 || (overflow == 0 && ll < 0) ||
      (overflow == 0 && static_cast<uint64_t>(ll) < min)) {
    throw_invalid(
        fmt::format("{} must be at least {} (got {})", what, min, py::str(i).cast<std::string>()));
  }
  uint64_t u = 0;
  if (overflow > 0) {
    u = PyLong_AsUnsignedLongLong(i.ptr());
    if (PyErr_Occurred()) {
      PyErr_Clear();
      u = std::numeric_limits<uint64_t>::max();
      if (max == u) {  // beyond 64 bits: nothing could take it
        throw_invalid(fmt::format("{} must be at most {} (got {})", what, max,
                                  py::str(i).cast<std::string>()));
      }
    }
  } else {
    u = static_cast<uint64_t>(ll);
  }
  if (u > max) {
    throw_invalid(
        fmt::format("{} must be at most {} (got {})", what, max, py::str(i).cast<std::string>()));
  }
  return u;
}

std::optional<std::string> to_optional_str(py::handle value, const char* what) {
  if (value.is_none()) return std::nullopt;
  if (!py::isinstance<py::str>(value)) {
    throw_type(fmt::format("{} must be a str or None, not {}", what, type_name(value)));
  }
  return checked_str(value, what);
}

std::optional<std::string> to_pools(py::handle value) {
  if (value.is_none()) return std::nullopt;
  if (py::isinstance<py::str>(value)) {
    std::string s = checked_str(value, "pools");
    if (s.empty()) {
      throw_invalid("pools must name at least one pool (\"general\", \"dma,general\") or be None");
    }
    return s;
  }
  if (!py::isinstance<py::list>(value) && !py::isinstance<py::tuple>(value)) {
    throw_type(fmt::format("pools must be a str, a list or tuple of str, or None, not {}",
                           type_name(value)));
  }
  std::string joined;
  for (py::handle item : value) {
    if (!py::isinstance<py::str>(item)) {
      throw_type(fmt::format("pools must hold pool names (str), not {}", type_name(item)));
    }
    std::string name = checked_str(item, "a pool name");
    if (name.empty() || name.find(',') != std::string::npos) {
      throw_invalid(
          fmt::format("pool name {:?} in the pools list must be one non-empty name "
                      "without commas",
                      name));
    }
    if (!joined.empty()) joined += ',';
    joined += name;
  }
  if (joined.empty()) throw_invalid("pools must name at least one pool or be None");
  return joined;
}

uint32_t to_ms(py::handle value, const char* what) {
  if (value.is_none()) return 0;
  if (PyBool_Check(value.ptr()) ||
      !(PyFloat_Check(value.ptr()) || PyLong_Check(value.ptr()) || PyIndex_Check(value.ptr()))) {
    throw_type(
        fmt::format("{} must be a number of seconds or None, not {}", what, type_name(value)));
  }
  double seconds = value.cast<double>();
  constexpr double kMaxSeconds = std::numeric_limits<uint32_t>::max() / 1000.0;
  if (!std::isfinite(seconds) || seconds <= 0 || seconds > kMaxSeconds) {
    throw_invalid(fmt::format("{} must be more than 0 and at most {:.0f} seconds (got {})", what,
                              kMaxSeconds, py::str(value).cast<std::string>()));
  }
  return static_cast<uint32_t>(std::ceil(seconds * 1000.0));
}

uint32_t to_wait_ms(py::handle value, const char* what, uint32_t max_ms, const char* limit) {
  if (value.is_none()) return 0;
  if (PyBool_Check(value.ptr()) ||
      !(PyFloat_Check(value.ptr()) || PyLong_Check(value.ptr()) || PyIndex_Check(value.ptr()))) {
    throw_type(
        fmt::format("{} must be a number of seconds or None, not {}", what, type_name(value)));
  }
  // An int too large for a double (10**400) is out of range, not a crash.
  double seconds = PyFloat_AsDouble(value.ptr());
  if (seconds == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    seconds = std::numeric_limits<double>::infinity();
  }
  const double max_seconds = max_ms / 1000.0;
  if (!std::isfinite(seconds) || seconds < 0 || seconds > max_seconds) {
    throw_invalid(fmt::format("{} must be from 0 to {:g} seconds ({}) or None (got {})", what,
                              max_seconds, limit, py::str(value).cast<std::string>()));
  }
  return static_cast<uint32_t>(std::min(std::ceil(seconds * 1000.0), static_cast<double>(max_ms)));
}

bool to_bool(py::handle value, const char* what) {
  if (PyBool_Check(value.ptr())) return value.ptr() == Py_True;
  throw_type(fmt::format("{} must be True or False, not {}", what, type_name(value)));
}

pmm_token to_token(py::handle value) {
  if (!py::isinstance<py::str>(value)) {
    throw_type(fmt::format("token must be a str of 32 hex digits (from Block.export()), not {}",
                           type_name(value)));
  }
  std::string text = checked_str(value, "token");
  pmm_token token{};
  if (pmm_token_parse(text.c_str(), &token) != PMM_OK) {
    throw_invalid(
        fmt::format("token must be 32 hex digits, as Block.export() returns it "
                    "(got {:?})",
                    text.size() > 64 ? text.substr(0, 64) + "..." : text));
  }
  return token;
}

}  // namespace pmm::python
