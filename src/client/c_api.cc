// The C API of include/pmm/pmm.h over pmm::client::Connection, in the manner
// of leveldb's c.cc: each opaque handle is a struct that owns the C++ object
// (c_handles.h says how references are counted and which locks exist).
//
// A put that drops the last local reference takes the handle out of the
// table before it sends the Put, so an import racing with it makes a new
// handle (or revives this one, if it comes first) instead of using one being
// freed. That Put is posted: sent without waiting for its answer.
//
// In a fork() child every call on an inherited pmm_conn fails before
// taking any lock (see Connection::inherited), and pmm_disconnect there
// frees the child's copies only.
//
// Failures set a thread-local message: "<status name>: <what happened>".
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/error.h"
#include "client/c_handles.h"
#include "client/connection.h"
#include "os/memory.h"
#include "pmm/pmm.h"

static_assert(PMM_OK == static_cast<int>(pmm::Errc::kOk));
static_assert(PMM_E_INVALID == static_cast<int>(pmm::Errc::kInvalidArgument));
static_assert(PMM_E_NO_MEMORY == static_cast<int>(pmm::Errc::kNoMemory));
static_assert(PMM_E_LIMIT == static_cast<int>(pmm::Errc::kLimit));
static_assert(PMM_E_NOT_FOUND == static_cast<int>(pmm::Errc::kNotFound));
static_assert(PMM_E_PERMISSION == static_cast<int>(pmm::Errc::kPermission));
static_assert(PMM_E_NO_DAEMON == static_cast<int>(pmm::Errc::kNoDaemon));
static_assert(PMM_E_DISCONNECTED == static_cast<int>(pmm::Errc::kDisconnected));
static_assert(PMM_E_PROTOCOL == static_cast<int>(pmm::Errc::kProtocol));
static_assert(PMM_E_UNSUPPORTED == static_cast<int>(pmm::Errc::kUnsupported));
static_assert(PMM_E_SYSTEM == static_cast<int>(pmm::Errc::kSystem));
static_assert(PMM_E_EXPIRED == static_cast<int>(pmm::Errc::kExpired));
static_assert(PMM_E_EXISTS == static_cast<int>(pmm::Errc::kExists));
static_assert(PMM_E_TIMEOUT == static_cast<int>(pmm::Errc::kTimeout));
static_assert(PMM_ALLOC_CONTIGUOUS == pmm::proto::kAllocContiguous);
static_assert(PMM_ALLOC_ZERO == pmm::proto::kAllocZero);
static_assert(sizeof(pmm_token::bytes) == std::tuple_size_v<pmm::proto::Token>);

namespace pmm::capi {

namespace {
thread_local std::string t_last_error;
}  // namespace

constinit thread_local bool detail::t_error_set = false;

pmm_status fail_with(const pmm::Error& e) {
  t_last_error = e.describe();
  detail::t_error_set = true;
  return static_cast<pmm_status>(e.code);
}

pmm_status fail_with(pmm::Errc code, std::string message) {
  return fail_with(pmm::Error{code, std::move(message), 0});
}

void clear_error() {
  t_last_error.clear();
  detail::t_error_set = false;
}

const char* last_error() { return t_last_error.c_str(); }

pmm::Result<std::vector<std::string>> split_pools(const char* pools) {
  std::vector<std::string> out;
  if (pools == nullptr || *pools == '\0') return out;
  std::string_view rest(pools);
  for (size_t position = 1;; ++position) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty())
      return pmm::fail(pmm::Errc::kInvalidArgument,
                       "pools \"{}\": name {} is empty; write pool names separated by commas, "
                       "e.g. \"dma,general\", or pass NULL for the device's default pools",
                       pools, position);
    out.emplace_back(item);
    if (comma == std::string_view::npos) return out;
    rest.remove_prefix(comma + 1);
  }
}

namespace {
// The last list this thread parsed: an application allocates frame after
// frame from the same pools, and the same string need not be split into a
// new vector of strings each time.
struct LastPools {
  std::string text;
  std::vector<std::string> list;
  bool parsed = false;
};
thread_local LastPools t_last_pools;

// parsed_pools of a text other than the last one.
[[gnu::noinline]] const std::vector<std::string>* parse_new_pools(const char* pools,
                                                                  pmm::Error* error) {
  LastPools& last = t_last_pools;
  auto list = split_pools(pools);
  if (!list) {
    *error = std::move(list.error());
    return nullptr;
  }
  last.list = std::move(*list);
  last.text = pools;
  last.parsed = true;
  return &last.list;
}

const std::vector<std::string> kDefaultPools;
}  // namespace

// The pools of a pmm_alloc as a list; NULL (with `error` set) when the
// text is malformed. The list stays valid until the calling thread parses
// another (the last text is kept parsed per thread). Inline (every
// pmm_alloc): a compare with the last text.
[[gnu::always_inline]] inline const std::vector<std::string>* parsed_pools(const char* pools,
                                                                           pmm::Error* error) {
  if (pools == nullptr || *pools == '\0') return &kDefaultPools;
  LastPools& last = t_last_pools;
  if (last.parsed && std::strcmp(last.text.c_str(), pools) == 0) [[likely]]
    return &last.list;
  return parse_new_pools(pools, error);
}

pmm_block* adopt(pmm_conn* conn, const pmm::client::BlockView& view) {
  bool made = false;
  pmm_block* b = nullptr;
  {
    std::lock_guard lock(conn->mu);
    b = conn->blocks.find_or_insert(
        view.id,
        [&] {
          std::unique_ptr<pmm_block> fresh;
          if (conn->spare_count > 0) {
            // A handle the last put left: no heap allocation.
            fresh.reset(conn->spare_blocks[--conn->spare_count]);
          } else {
            fresh = std::make_unique<pmm_block>();
          }
          fresh->conn = conn;
          fresh->view = view;
          // Nobody else sees it before the lock is let go.
          fresh->refs.store(1, std::memory_order_relaxed);
          fresh->pool.store(nullptr, std::memory_order_relaxed);
          return fresh;
        },
        made);
    if (!made) b->refs.fetch_add(1, std::memory_order_relaxed);
  }
  // The daemon holds one reference per handle: give back the one this
  // import added. A round trip (a rare path: importing a block already
  // held), so that when the import returns the books say one reference.
  // Should it fail, the session keeps a spare one until it closes.
  if (!made) (void)conn->rep->put(b->view.id);
  return b;
}

}  // namespace pmm::capi

using pmm::capi::fail_with;
using pmm::capi::ok;

namespace {

pmm::proto::Token to_proto(const pmm_token& t) {
  pmm::proto::Token out;
  std::memcpy(out.data(), t.bytes, out.size());
  return out;
}

// The error of a call on a connection this process inherited through fork.
std::optional<pmm::Error> inherited(const pmm_conn* conn) { return conn->rep->inherited(); }

// Whether a caller's pmm_connect_options of `size` bytes has the field that
// ends at `end` (structs grow at the end; older callers pass smaller ones).
bool has_field(const pmm_connect_options* o, size_t end) { return o->size >= end; }
#define PMM_FIELD_END(field) \
  (offsetof(pmm_connect_options, field) + sizeof(pmm_connect_options::field))

}  // namespace

extern "C" {

const char* pmm_last_error(void) { return pmm::capi::last_error(); }

const char* pmm_status_name(pmm_status status) {
  // errc_name returns views of string literals: NUL-terminated.
  return pmm::errc_name(static_cast<pmm::Errc>(status)).data();
}

pmm_status pmm_connect(const char* socket_path, const char* device, pmm_conn** out) {
  pmm_connect_options o{};
  o.size = sizeof o;
  o.socket_path = socket_path;
  o.device = device;
  return pmm_connect_opts(&o, out);
}

pmm_status pmm_connect_opts(const pmm_connect_options* options, pmm_conn** out) {
  if (options == nullptr || out == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument,
                     "pmm_connect_opts: options and out must not be NULL");
  if (!has_field(options, PMM_FIELD_END(socket_path)))
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("pmm_connect_opts: options->size is {}; set it to "
                                 "sizeof(pmm_connect_options) ({})",
                                 options->size, sizeof(pmm_connect_options)));
  // The strings built in place (a constructor from the text, not an
  // assignment over an empty string).
  const char* device = has_field(options, PMM_FIELD_END(device)) && options->device != nullptr
                           ? options->device
                           : "";
  pmm::client::ConnectOptions o{
      .socket_path = options->socket_path != nullptr ? options->socket_path : "", .device = device};
  if (has_field(options, PMM_FIELD_END(timeout_ms)) && options->timeout_ms != 0)
    o.timeout = std::chrono::milliseconds(options->timeout_ms);
  if (has_field(options, PMM_FIELD_END(flags))) {
    if ((options->flags & ~uint64_t{PMM_CONNECT_POPULATE}) != 0)
      return fail_with(pmm::Errc::kInvalidArgument,
                       fmt::format("pmm_connect_opts: unknown flags {:#x}; known: "
                                   "PMM_CONNECT_POPULATE (0x1)",
                                   options->flags & ~uint64_t{PMM_CONNECT_POPULATE}));
    o.populate = (options->flags & PMM_CONNECT_POPULATE) != 0;
  }
  auto c = pmm::client::Connection::connect(std::move(o));
  if (!c) return fail_with(c.error());
  auto* conn = new pmm_conn;
  conn->rep = std::move(*c);
  *out = conn;
  return ok();
}

void pmm_disconnect(pmm_conn* conn) {
  if (conn == nullptr) return;
  if (inherited(conn)) {
    // A fork child's copy: free it without a lock (a parent thread may have
    // held one at fork time); the Connection closes only this copy's fd.
    conn->blocks.clear();
    conn->free_spare_blocks();
    conn->rep.reset();
    delete conn;
    return;
  }
  {
    std::lock_guard lock(conn->mu);
    conn->blocks.clear();
  }
  // Closing the socket drops every reference the session holds, at once.
  conn->rep.reset();
  delete conn;
}

pmm_status pmm_alloc(pmm_conn* conn, const char* pools, uint64_t size, uint64_t alignment,
                     uint32_t flags, pmm_block** out) {
  if (conn == nullptr || out == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument, "pmm_alloc: conn and out must not be NULL");
  if ((flags & ~pmm::proto::kAllocKnownFlags) != 0)
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("pmm_alloc: unknown flags {:#x}; known: PMM_ALLOC_CONTIGUOUS "
                                 "(0x1), PMM_ALLOC_ZERO (0x2)",
                                 flags & ~pmm::proto::kAllocKnownFlags));
  pmm::Error bad;
  const std::vector<std::string>* list = pmm::capi::parsed_pools(pools, &bad);
  if (list == nullptr) return fail_with(bad);
  auto view = conn->rep->allocate(*list, size, alignment, flags);
  if (!view) return fail_with(view.error());
  *out = pmm::capi::adopt(conn, std::move(*view));
  return ok();
}

pmm_status pmm_alloc_opts(pmm_conn* conn, uint64_t bytes, const pmm_alloc_options* options,
                          pmm_block** out) {
  if (conn == nullptr || options == nullptr || out == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument,
                     "pmm_alloc_opts: conn, options and out must not be NULL");
  if (options->size < sizeof(pmm_alloc_options))
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("pmm_alloc_opts: options->size is {}; set it to "
                                 "sizeof(pmm_alloc_options) ({})",
                                 options->size, sizeof(pmm_alloc_options)));
  if (auto e = inherited(conn)) return fail_with(*e);
  if (options->wait_ms > PMM_ALLOC_MAX_WAIT_MS)
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("pmm_alloc_opts: wait_ms {} is longer than the daemon waits, "
                                 "{} ms (PMM_ALLOC_MAX_WAIT_MS)",
                                 options->wait_ms, PMM_ALLOC_MAX_WAIT_MS));
  if (options->wait_ms == 0)
    return pmm_alloc(conn, options->pools, bytes, options->alignment, options->flags, out);
  if ((options->flags & ~pmm::proto::kAllocKnownFlags) != 0)
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("pmm_alloc_opts: unknown flags {:#x}; known: "
                                 "PMM_ALLOC_CONTIGUOUS (0x1), PMM_ALLOC_ZERO (0x2)",
                                 options->flags & ~pmm::proto::kAllocKnownFlags));
  pmm::Error bad;
  const std::vector<std::string>* list = pmm::capi::parsed_pools(options->pools, &bad);
  if (list == nullptr) return fail_with(bad);
  auto view = conn->rep->allocate_wait(*list, bytes, options->alignment, options->flags,
                                       std::chrono::milliseconds(options->wait_ms));
  if (!view) return fail_with(view.error());
  *out = pmm::capi::adopt(conn, std::move(*view));
  return ok();
}

pmm_status pmm_block_get(pmm_block* block) {
  if (block == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument, "pmm_block_get: block is NULL");
  if (auto e = inherited(block->conn)) return fail_with(*e);
  if (block->conn->rep->died()) return fail_with(*block->conn->rep->dead());
  // The caller holds a reference, so the handle cannot be going away.
  block->refs.fetch_add(1, std::memory_order_relaxed);
  return ok();
}

pmm_status pmm_block_put(pmm_block* block) {
  if (block == nullptr) return ok();
  pmm_conn* conn = block->conn;
  if (auto e = inherited(conn)) return fail_with(*e);
  const uint64_t before = block->refs.fetch_sub(1, std::memory_order_acq_rel);
  if (before > 1) {
    // The reference is gone either way; a dead connection is still news.
    if (conn->rep->died()) return fail_with(*conn->rep->dead());
    return ok();
  }
  if (block->pool.load(std::memory_order_acquire) != nullptr) {
    // The pool's own reference: freeing the handle under the pool would
    // leave it a dangling buffer.
    block->refs.fetch_add(1, std::memory_order_relaxed);
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("pmm_block_put: block {} is a buffer of a pmm_bufpool, whose "
                                 "reference this would drop; give it back with "
                                 "pmm_bufpool_release",
                                 block->view.id));
  }
  const uint64_t id = block->view.id;
  std::unique_ptr<pmm_block> last;
  {
    std::lock_guard lock(conn->mu);
    // An import may have revived the handle since (adopt, under this lock).
    if (block->refs.load(std::memory_order_acquire) != 0) return ok();
    last = conn->blocks.extract(id);
    // `block` is no one's now: keep it for the next adopt, or free it below.
    if (last != nullptr && conn->spare_count < pmm_conn::kSpareBlocks)
      conn->spare_blocks[conn->spare_count++] = last.release();
  }
  // The process's last reference: the daemon's goes too, without waiting.
  auto s = conn->rep->post_put(id);
  last.reset();  // frees `block`, if not kept
  if (!s) return fail_with(s.error());
  return ok();
}

void* pmm_block_ptr(const pmm_block* block) { return block ? block->view.data : nullptr; }
uint64_t pmm_block_size(const pmm_block* block) { return block ? block->view.size : 0; }
uint64_t pmm_block_id(const pmm_block* block) { return block ? block->view.id : 0; }
int pmm_block_fd(const pmm_block* block) { return block ? block->view.fd : -1; }
uint64_t pmm_block_offset(const pmm_block* block) { return block ? block->view.offset : 0; }
uint64_t pmm_block_phys(const pmm_block* block) { return block ? block->view.phys : 0; }
pmm_status pmm_block_prefault(pmm_block* block) {
  if (block == nullptr) return fail_with(pmm::Errc::kInvalidArgument, "pmm_block_prefault: NULL");
  if (block->view.type == pmm::proto::PoolType::kHugetlb) return PMM_OK;  // faulted in by pmmd
  auto s = pmm::os::prefault(block->view.data, block->view.size);
  return s ? PMM_OK : fail_with(s.error());
}
// view.pool views the connection's std::string of the name: NUL-terminated.
const char* pmm_block_pool(const pmm_block* block) { return block ? block->view.pool.data() : ""; }

pmm_status pmm_export(pmm_block* block, uint32_t max_imports, uint32_t lifetime_ms,
                      pmm_token* out) {
  if (block == nullptr || out == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument, "pmm_export: block and out must not be NULL");
  auto t = block->conn->rep->export_block(block->view.id, max_imports, lifetime_ms);
  if (!t) return fail_with(t.error());
  std::memcpy(out->bytes, t->data(), sizeof out->bytes);
  if (block->pool.load(std::memory_order_acquire) != nullptr) pmm::capi::buffer_exported(block);
  return ok();
}

pmm_status pmm_import(pmm_conn* conn, const pmm_token* token, pmm_block** out) {
  if (conn == nullptr || token == nullptr || out == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument,
                     "pmm_import: conn, token and out must not be NULL");
  auto view = conn->rep->import(to_proto(*token));
  if (!view) return fail_with(view.error());
  *out = pmm::capi::adopt(conn, std::move(*view));
  return ok();
}

pmm_status pmm_unexport(pmm_conn* conn, const pmm_token* token) {
  if (conn == nullptr || token == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument, "pmm_unexport: conn and token must not be NULL");
  if (auto s = conn->rep->unexport(to_proto(*token)); !s) return fail_with(s.error());
  return ok();
}

pmm_status pmm_sysv_export(pmm_block* block, pmm_sysv_segment* out) {
  if (block == nullptr || out == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument,
                     "pmm_sysv_export: block and out must not be NULL");
  auto seg = block->conn->rep->sysv_export(block->view.id);
  if (!seg) return fail_with(seg.error());
  out->shmid = seg->shmid;
  out->offset = seg->offset;
  out->size = seg->size;
  return ok();
}

pmm_status pmm_sysv_unexport(pmm_block* block) {
  if (block == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument, "pmm_sysv_unexport: block is NULL");
  if (auto s = block->conn->rep->sysv_unexport(block->view.id); !s) return fail_with(s.error());
  return ok();
}

void pmm_token_format(const pmm_token* token, char out[PMM_TOKEN_STRLEN]) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof token->bytes; ++i) {
    out[2 * i] = kHex[token->bytes[i] >> 4];
    out[2 * i + 1] = kHex[token->bytes[i] & 0xf];
  }
  out[PMM_TOKEN_STRLEN - 1] = '\0';
}

pmm_status pmm_token_parse(const char* text, pmm_token* out) {
  if (text == nullptr || out == nullptr)
    return fail_with(pmm::Errc::kInvalidArgument, "pmm_token_parse: text and out must not be NULL");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const size_t len = std::strlen(text);
  const size_t want = PMM_TOKEN_STRLEN - 1;
  // Quote at most a little more than a token's worth of the input.
  std::string shown(text, std::min<size_t>(len, want + 8));
  if (len > shown.size()) shown += "...";
  if (len != want)
    return fail_with(pmm::Errc::kInvalidArgument,
                     fmt::format("token \"{}\" has {} characters; a token is exactly {} hex "
                                 "digits (0-9, a-f), as pmm_token_format writes it",
                                 shown, len, want));
  pmm_token t;
  for (size_t i = 0; i < sizeof t.bytes; ++i) {
    int hi = nibble(text[2 * i]);
    int lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return fail_with(pmm::Errc::kInvalidArgument,
                       fmt::format("token \"{}\": character {} ('{}') is not a hex digit; a token "
                                   "is exactly {} hex digits (0-9, a-f)",
                                   shown, hi < 0 ? 2 * i + 1 : 2 * i + 2,
                                   hi < 0 ? text[2 * i] : text[2 * i + 1], want));
    t.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  *out = t;
  return ok();
}

}  // extern "C"
