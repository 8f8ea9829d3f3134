// The libpmm calls of the pipeline's stages; see pmm_stage.h.
#include "pmm_stage.h"

#include <fmt/format.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>

namespace examples {

std::string pmm_failure(const std::string& what, pmm_status status) {
  return fmt::format("{}: {} [{}]", what, pmm_last_error(), pmm_status_name(status));
}

void populate_read(const void* addr, uint64_t bytes) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t start = reinterpret_cast<uintptr_t>(addr) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(addr) + bytes + page - 1) & ~(page - 1);
  // A hint: a kernel before 5.14 says EINVAL, and the pages then fault one by one.
  (void)::madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_READ);
}

Result<PmmConn> connect_pmm(const char* device) {
  pmm_conn* conn = nullptr;
  const pmm_status st = pmm_connect(nullptr, device, &conn);
  if (st != PMM_OK) {
    const char* socket = std::getenv("PMM_SOCKET");
    return std::unexpected(pmm_failure(
        fmt::format("cannot connect to pmmd (PMM_SOCKET={})", socket != nullptr ? socket : "unset"),
        st));
  }
  return PmmConn(conn);
}

Result<PmmBlock> alloc_frame(pmm_conn* conn, const std::string& pools, const Frame& frame) {
  pmm_block* block = nullptr;
  const pmm_status st = pmm_alloc(conn, pools.c_str(), frame.bytes(), 0, 0, &block);
  if (st != PMM_OK) {
    return std::unexpected(
        pmm_failure(fmt::format("cannot allocate {} bytes for a {}x{} frame from pool(s) '{}'",
                                frame.bytes(), frame.width, frame.height, pools),
                    st));
  }
  // Every output frame is written whole: fill the page tables in one call
  // instead of faulting page by page (a hint; failing it costs only speed).
  (void)pmm_block_prefault(block);
  return PmmBlock(block);
}

Result<PmmBlock> import_frame(pmm_conn* conn, const Frame& frame) {
  pmm_token token;
  pmm_status st = pmm_token_parse(frame.token.c_str(), &token);
  if (st != PMM_OK) {
    return std::unexpected(pmm_failure(fmt::format("bad token '{}'", frame.token), st));
  }
  pmm_block* raw = nullptr;
  st = pmm_import(conn, &token, &raw);
  if (st != PMM_OK) {
    return std::unexpected(pmm_failure(fmt::format("cannot import token {}", frame.token), st));
  }
  PmmBlock block(raw);
  if (pmm_block_size(raw) < frame.bytes()) {
    return std::unexpected(fmt::format(
        "block {} has {} bytes but a {}x{} frame of stride {} needs {}", pmm_block_id(raw),
        pmm_block_size(raw), frame.width, frame.height, frame.stride, frame.bytes()));
  }
  populate_read(pmm_block_ptr(raw), frame.bytes());
  return block;
}

Result<std::string> export_frame(pmm_block* block, Frame frame, uint32_t lifetime_ms) {
  pmm_token token;
  const pmm_status st = pmm_export(block, 1, lifetime_ms, &token);
  if (st != PMM_OK) {
    return std::unexpected(
        pmm_failure(fmt::format("cannot export block {}", pmm_block_id(block)), st));
  }
  char text[PMM_TOKEN_STRLEN];
  pmm_token_format(&token, text);
  frame.token = text;
  return format_frame_line("pmm-frame", frame);
}

Result<Frame> input_frame(const std::string& token, const std::string& size, uint32_t stride) {
  if (token.empty()) {
    auto line = read_line(stdin);
    if (!line) return std::unexpected(line.error());
    return parse_frame_line(*line, "pmm-frame");
  }
  if (size.empty()) {
    return std::unexpected(
        fmt::format("token {} given without its size: add WIDTHxHEIGHT (e.g. 3840x2160)", token));
  }
  auto dims = parse_size(size);
  if (!dims) return std::unexpected(dims.error());
  Frame frame;
  frame.token = token;
  frame.width = dims->width;
  frame.height = dims->height;
  frame.stride = stride != 0 ? stride : stride_for_width(dims->width);
  return validate_frame(std::move(frame));
}

}  // namespace examples
