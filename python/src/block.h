// pmm.Block: one reference to a pmm block, with the buffer protocol.
#ifndef PMM_PYTHON_BLOCK_H_
#define PMM_PYTHON_BLOCK_H_

#include <pybind11/pybind11.h>

#include <memory>

#include "handles.h"

namespace pmm::python {

// Wraps a handle libpmm just made (by alloc or import) on `conn`. If the
// connection was closed while that call was in flight, the block comes back
// already dropped and this raises.
std::unique_ptr<BlockState> adopt_block(const std::shared_ptr<ConnState>& conn, pmm_block* block,
                                        const char* what);

void register_block(pybind11::module_& m);

}  // namespace pmm::python

#endif  // PMM_PYTHON_BLOCK_H_
