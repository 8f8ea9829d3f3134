// pmm.BufPool: a pmm_bufpool (pmm.h) seen from Python. N buffers of one
// size recycled in this process: acquire() and a buffer's put() are local
// (no daemon round trip); a buffer exported to another process comes back
// to the pool only once that process let go (put, exit or death).
#ifndef PMM_PYTHON_BUFPOOL_H_
#define PMM_PYTHON_BUFPOOL_H_

#include <pybind11/pybind11.h>

#include <memory>

#include "handles.h"

namespace pmm::python {

// Connection.bufpool(pools, count, size, alignment=0, max_count=None,
// zero=False, contiguous=False): checks every argument, then creates the
// pool (all `count` buffers or none) with the GIL released.
std::shared_ptr<PoolState> make_bufpool(const std::shared_ptr<ConnState>& conn,
                                        pybind11::handle pools, pybind11::handle count,
                                        pybind11::handle size, pybind11::handle alignment,
                                        pybind11::handle max_count, pybind11::handle zero,
                                        pybind11::handle contiguous);

void register_bufpool(pybind11::module_& m);

}  // namespace pmm::python

#endif  // PMM_PYTHON_BUFPOOL_H_
