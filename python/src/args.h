// Argument checks for the binding: every bad argument raises an error that
// names the argument, what it got and what would be accepted, before
// anything reaches libpmm. Called with the GIL held.
#ifndef PMM_PYTHON_ARGS_H_
#define PMM_PYTHON_ARGS_H_

#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <string>

#include "pmm/pmm.h"

namespace pmm::python {

// An integer (anything with __index__: int, numpy integers; not bool, not
// float) in [min, max]. TypeError for another type, pmm.InvalidArgument
// outside the range.
uint64_t to_uint(pybind11::handle value, const char* what, uint64_t min, uint64_t max);

// A string or None. TypeError for another type; pmm.InvalidArgument for an
// embedded NUL (libpmm takes C strings).
std::optional<std::string> to_optional_str(pybind11::handle value, const char* what);

// Pools for alloc: None (the device's default pools), "a,b", or a list or
// tuple of names, tried in order.
std::optional<std::string> to_pools(pybind11::handle value);

// Seconds (int or float, > 0) to whole milliseconds for libpmm, rounded up;
// None is 0 (libpmm's default).
uint32_t to_ms(pybind11::handle value, const char* what);

// Seconds (int or float, >= 0) to whole milliseconds, rounded up, at most
// `max_ms`; None and 0 are 0 (do not wait). `limit` names the bound in the
// error ("PMM_ALLOC_MAX_WAIT_MS").
uint32_t to_wait_ms(pybind11::handle value, const char* what, uint32_t max_ms, const char* limit);

// True or False; TypeError for anything else, so that a
// string or None is not taken for a flag.
bool to_bool(pybind11::handle value, const char* what);

// A token: 32 hex digits, as Block.export() returns it.
pmm_token to_token(pybind11::handle value);

}  // namespace pmm::python

#endif  // PMM_PYTHON_ARGS_H_
