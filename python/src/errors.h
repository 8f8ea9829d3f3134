// pmm's statuses as Python exceptions.
//
// Every pmm_status but PMM_OK has one exception class; all of them derive
// from pmm.Error, and where Python has a builtin that means the same thing
// they derive from it too, so `except ValueError` or `except TimeoutError`
// catches what a Python programmer expects:
//
//   try:
//       conn.alloc("general", 1 << 40)
//   except pmm.NoMemory as e:        # also a pmm.Error
//       print(e, e.status, e.status_name)
//
// The message is pmm's own (pmm_last_error()): what was asked, which rule
// refused it, what would have fit. Called with the GIL held.
#ifndef PMM_PYTHON_ERRORS_H_
#define PMM_PYTHON_ERRORS_H_

#include <pybind11/pybind11.h>

#include <string>

#include "pmm/pmm.h"

namespace pmm::python {

// Creates pmm.Error and one subclass per status in `m`.
void register_errors(pybind11::module_& m);

// Raises the class of `status` with `message` (pmm_last_error() captured in
// the thread that made the failing call).
[[noreturn]] void throw_status(pmm_status status, const std::string& message);

// Raises pmm.InvalidArgument (a ValueError): a bad argument caught before it
// reaches libpmm, or a call on a block that was put / a closed connection.
[[noreturn]] void throw_invalid(const std::string& message);

}  // namespace pmm::python

#endif  // PMM_PYTHON_ERRORS_H_
