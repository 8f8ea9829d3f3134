// What every stage of the pmm pipeline does with libpmm (public C API only):
// connect, allocate an output block, import the input frame's token, export
// the output and print its frame line.
//
//   auto conn = examples::connect_pmm("scaler");
//   auto in = examples::import_frame(conn->get(), frame);     // frame from stdin
//   auto out = examples::alloc_frame(conn->get(), "general", out_frame);
//   ... fill pmm_block_ptr(out->get()) ...
//   auto line = examples::export_frame(out->get(), out_frame, 0);
//
// The handles are unique_ptrs whose deleters drop the reference / close the
// connection, so every exit path lets go of what the stage holds. A block
// must be released before its connection (declare the connection first).
// Threading: as libpmm's — a connection may be shared, a block handle is
// used by one thread at a time here.
#ifndef EXAMPLES_PMM_STAGE_H_
#define EXAMPLES_PMM_STAGE_H_

#include <memory>
#include <string>

#include "common/frame.h"
#include "pmm/pmm.h"

namespace examples {

struct ConnCloser {
  void operator()(pmm_conn* conn) const { pmm_disconnect(conn); }
};
struct BlockPutter {
  void operator()(pmm_block* block) const { (void)pmm_block_put(block); }
};
using PmmConn = std::unique_ptr<pmm_conn, ConnCloser>;
using PmmBlock = std::unique_ptr<pmm_block, BlockPutter>;

// "<what>: <pmm_last_error()> [<status name>]" for a failed libpmm call.
[[nodiscard]] std::string pmm_failure(const std::string& what, pmm_status status);

// Maps every page of [addr, addr + bytes) into this process's page tables in
// one call (MADV_POPULATE_READ) instead of a fault per touch. It matters most
// for a `sysv` pool: a SysV mapping has no fault-around (ipc/shm.c's vm_ops
// lack map_pages), so a reader takes one fault per 4 KiB page where a memfd
// mapping takes one per 16; see examples/README.md. A hint: failure costs
// only speed.
void populate_read(const void* addr, uint64_t bytes);

// Connects to pmmd at $PMM_SOCKET (or libpmm's default path) as `device`.
[[nodiscard]] Result<PmmConn> connect_pmm(const char* device);

// A block for `frame` (stride * height bytes) from `pools`.
[[nodiscard]] Result<PmmBlock> alloc_frame(pmm_conn* conn, const std::string& pools,
                                           const Frame& frame);

// Imports frame.token and checks that the block holds the frame.
[[nodiscard]] Result<PmmBlock> import_frame(pmm_conn* conn, const Frame& frame);

// Exports `block` for one import within `lifetime_ms` (0: the daemon's
// default) and returns the frame line that names it.
[[nodiscard]] Result<std::string> export_frame(pmm_block* block, Frame frame, uint32_t lifetime_ms);

// The input frame of a consumer stage: from `token` and `size` when given on
// the command line (BGRX, `stride` or the natural one), else the frame line
// on stdin.
[[nodiscard]] Result<Frame> input_frame(const std::string& token, const std::string& size,
                                        uint32_t stride);

}  // namespace examples

#endif  // EXAMPLES_PMM_STAGE_H_
