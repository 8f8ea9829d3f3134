// call_released, included by handles.h only.
#ifndef PMM_PYTHON_HANDLES_INL_H_
#define PMM_PYTHON_HANDLES_INL_H_

#include <pybind11/pybind11.h>

#include "errors.h"

namespace pmm::python {

template <typename Call>
void call_released(ConnState& c, BlockState* b, Call&& call) {
  if (b != nullptr) {
    pin(*b);
  } else {
    pin(c);
  }
  pmm_status status = PMM_OK;
  std::string message;
  {
    pybind11::gil_scoped_release released;
    status = call();
    // pmm_last_error() is per thread: read it in the thread that failed.
    if (status != PMM_OK) message = pmm_last_error();
  }
  if (b != nullptr) {
    unpin(*b);
  } else {
    unpin(c);
  }
  if (status != PMM_OK) throw_status(status, message);
}

}  // namespace pmm::python

#endif  // PMM_PYTHON_HANDLES_INL_H_
