// The `pmm` Python module: numpy arrays over pmm blocks, shared between
// processes by token. python/README.md is its user's guide; handles.h states
// the lifetime rules.
#include <pybind11/pybind11.h>

#include "block.h"
#include "bufpool.h"
#include "errors.h"

namespace pmm::python {
void register_connection(pybind11::module_& m);
}

PYBIND11_MODULE(pmm, m) {
  m.doc() =
      "pmm: blocks of the pmm physical memory manager as Python buffers and numpy arrays,\n"
      "shared between processes by token and freed by the daemon when their holders die.";
  m.attr("API_VERSION") = PMM_API_VERSION;
  pmm::python::register_errors(m);
  pmm::python::register_block(m);
  pmm::python::register_bufpool(m);
  pmm::python::register_connection(m);
}
