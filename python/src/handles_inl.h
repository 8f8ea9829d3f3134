// call_released, included by handles.h only.
#ifndef PMM_PYTHON_HANDLES_INL_H_
#define PMM_PYTHON_HANDLES_INL_H_

#include <pybind11/pybind11.h>

#include "errors.h"

namespace pmm::python {

template <typename State, typename Call>
pmm_status call_pinned(State& state, std::string& message, Call&& call) {
  pin(state);
  pmm_status status = PMM_OK;
  {
    pybind11::gil_scoped_release released;
    status = call();
    // pmm_last_error() is per thread: read it in the thread that failed.
    if (status != PMM_OK) message = pmm_last_error();
  }
  unpin(state);
  return status;
}

template <typename Call>
void call_released(ConnState& c, BlockState* b, Call&& call) {
  std::string message;
  pmm_status status = b != nullptr ? call_pinned(*b, message, call) : call_pinned(c, message, call);
  if (status != PMM_OK) throw_status(status, message);
}

}  // namespace pmm::python

#endif  // PMM_PYTHON_HANDLES_INL_H_
