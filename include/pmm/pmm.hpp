// pmm.hpp — C++ RAII over libpmm's C API (pmm/pmm.h). Header-only, C++17.
//
// Failures throw pmm::error (a std::runtime_error carrying the pmm_status and
// the daemon's message). Objects own what they stand for:
//   - pmm::Connection is move-only; its pmm_conn is closed when the
//     Connection AND every Block made through it are gone (blocks keep their
//     connection alive, so a Block may safely outlive the Connection object).
//   - pmm::Block is copyable: copies share ONE reference of this process to
//     the block; the last copy to go drops it (pmm_block_put). Take a second,
//     independent reference with Block::get_reference() if you need one.
//
// Usage:
//   pmm::Connection conn("decoder");                 // default socket
//   pmm::Block frame = conn.alloc("dma,general", 1 << 20, 0, PMM_ALLOC_ZERO);
//   std::memset(frame.data(), 0xab, frame.size());
//   pmm::Token t = frame.export_token(/*max_imports=*/1);
//   std::puts(t.str().c_str());                      // hand to another process
//   // ... in the other process:
//   pmm::Block same = other_conn.import(pmm::Token::parse(text));
//
// Waits: every call is bounded by the connection's timeout (5 s unless the
// Connection was made with another); a daemon that does not answer in time
// throws pmm::error with status PMM_E_TIMEOUT, and the connection stays
// usable (pmm.h says what happens to the abandoned request).
//
// fork(): a child may not use the Connection and Blocks it inherited: calls
// throw pmm::error (PMM_E_INVALID, "... connect anew in the child"). Their
// destructors in the child (at exit, or when they go out of scope) free the
// child's copies only and leave the parent's session and blocks untouched.
//
// Threading: as the C API — a Connection and its Blocks may be used from any
// thread concurrently; an individual Connection/Block *object* is like any
// C++ value (do not assign to it while another thread reads it).
#ifndef PMM_PMM_HPP_
#define PMM_PMM_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "pmm/pmm.h"

namespace pmm {

// A failed libpmm call. what() is pmm_last_error()'s text: "<status name>:
// <what was asked, which rule refused it, what would have fit>".
class error : public std::runtime_error {
 public:
  error(pmm_status status, const std::string& what) : std::runtime_error(what), status_(status) {}
  pmm_status status() const noexcept { return status_; }

 private:
  pmm_status status_;
};

namespace detail {
inline void check(pmm_status s) {
  if (s != PMM_OK) throw error(s, pmm_last_error());
}
}  // namespace detail

// An export token; text form is 32 lowercase hex digits.
class Token {
 public:
  Token() : raw_() {}
  explicit Token(const pmm_token& raw) : raw_(raw) {}

  // Throws pmm::error(PMM_E_INVALID) unless `text` is exactly 32 hex digits.
  static Token parse(const std::string& text) {
    pmm_token t;
    detail::check(pmm_token_parse(text.c_str(), &t));
    return Token(t);
  }
  std::string str() const {
    char buf[PMM_TOKEN_STRLEN];
    pmm_token_format(&raw_, buf);
    return std::string(buf);
  }
  const pmm_token& raw() const noexcept { return raw_; }

  friend bool operator==(const Token& a, const Token& b) noexcept {
    for (std::size_t i = 0; i < sizeof a.raw_.bytes; ++i)
      if (a.raw_.bytes[i] != b.raw_.bytes[i]) return false;
    return true;
  }
  friend bool operator!=(const Token& a, const Token& b) noexcept { return !(a == b); }

 private:
  pmm_token raw_;
};

using SysvSegment = pmm_sysv_segment;

class Connection;

// This process's reference to one block. Default-constructed: empty.
class Block {
 public:
  Block() = default;

  explicit operator bool() const noexcept { return static_cast<bool>(ref_); }

  void* data() const noexcept { return pmm_block_ptr(ref_.get()); }
  // Typed view of the start of the block, e.g. block.as<uint32_t>().
  template <typename T>
  T* as() const noexcept {
    return static_cast<T*>(data());
  }
  std::uint64_t size() const noexcept { return pmm_block_size(ref_.get()); }
  std::uint64_t id() const noexcept { return pmm_block_id(ref_.get()); }
  // The pool's fd (owned by the connection: dup() it to keep it) and offset.
  int fd() const noexcept { return pmm_block_fd(ref_.get()); }
  std::uint64_t offset() const noexcept { return pmm_block_offset(ref_.get()); }
  std::uint64_t phys() const noexcept { return pmm_block_phys(ref_.get()); }
  std::string pool() const { return pmm_block_pool(ref_.get()); }
  // Fills this process's page tables for the block now (see pmm_block_prefault).
  void prefault() const { detail::check(pmm_block_prefault(ref_.get())); }

  // Exports the block: the export holds its own reference until imported
  // `max_imports` times, withdrawn, or `lifetime` has passed (0 = 60 s).
  Token export_token(std::uint32_t max_imports = 1,
                     std::chrono::milliseconds lifetime = std::chrono::milliseconds(0)) const {
    pmm_token t;
    detail::check(
        pmm_export(ref_.get(), max_imports, static_cast<std::uint32_t>(lifetime.count()), &t));
    return Token(t);
  }
  // Blocks of `sysv` pools only; the export holds a reference until
  // sysv_unexport().
  SysvSegment sysv_export() const {
    SysvSegment s;
    detail::check(pmm_sysv_export(ref_.get(), &s));
    return s;
  }
  void sysv_unexport() const { detail::check(pmm_sysv_unexport(ref_.get())); }

  // A second reference of this process, independent of this one (and its
  // copies): the block stays held until both have been dropped.
  Block get_reference() const {
    detail::check(pmm_block_get(ref_.get()));
    return Block(conn_, ref_.get());
  }

  // Drops this object's share of the reference now (like assigning Block{}).
  void reset() noexcept {
    ref_.reset();
    conn_.reset();
  }

  // The C handle, for code that talks to the C API. Owned by this Block.
  pmm_block* handle() const noexcept { return ref_.get(); }

 private:
  friend class Connection;
  // Adopts one reference held through `b`.
  Block(std::shared_ptr<pmm_conn> conn, pmm_block* b)
      : conn_(conn),
        // The deleter keeps the connection alive until the put is sent.
        ref_(b, [conn](pmm_block* p) { (void)pmm_block_put(p); }) {}

  std::shared_ptr<pmm_conn> conn_;
  std::shared_ptr<pmm_block> ref_;
};

// One connection to pmmd. Default-constructed: not connected.
class Connection {
 public:
  Connection() = default;
  // Connects as `device` ("" = "default") to `socket_path` ("" = $PMM_SOCKET,
  // else $XDG_RUNTIME_DIR/pmm/pmm.sock, else /run/pmm/pmm.sock).
  explicit Connection(const std::string& device, const std::string& socket_path = "") {
    pmm_conn* c = nullptr;
    detail::check(
        pmm_connect(socket_path.empty() ? nullptr : socket_path.c_str(), device.c_str(), &c));
    conn_.reset(c, [](pmm_conn* p) { pmm_disconnect(p); });
  }

  // The same, with `timeout` bounding every wait of this connection
  // (connecting, and each call's request and reply).
  Connection(const std::string& device, const std::string& socket_path,
             std::chrono::milliseconds timeout) {
    pmm_connect_options o = {};
    o.size = sizeof o;
    o.socket_path = socket_path.empty() ? nullptr : socket_path.c_str();
    o.device = device.c_str();
    o.timeout_ms = timeout.count() <= 0 ? 1u : static_cast<std::uint32_t>(timeout.count());
    pmm_conn* c = nullptr;
    detail::check(pmm_connect_opts(&o, &c));
    conn_.reset(c, [](pmm_conn* p) { pmm_disconnect(p); });
  }

  // With every option of pmm_connect_options (e.g. flags =
  // PMM_CONNECT_POPULATE); `options.size` is set here.
  explicit Connection(pmm_connect_options options) {
    options.size = sizeof options;
    pmm_conn* c = nullptr;
    detail::check(pmm_connect_opts(&options, &c));
    conn_.reset(c, [](pmm_conn* p) { pmm_disconnect(p); });
  }

  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  explicit operator bool() const noexcept { return static_cast<bool>(conn_); }

  // `pools`: "general" or "dma,general" (tried in order); "" = the device's
  // default. `alignment` 0 = the pool's page size. `flags`: PMM_ALLOC_*.
  Block alloc(const std::string& pools, std::uint64_t size, std::uint64_t alignment = 0,
              std::uint32_t flags = 0) const {
    pmm_block* b = nullptr;
    detail::check(
        pmm_alloc(raw(), pools.empty() ? nullptr : pools.c_str(), size, alignment, flags, &b));
    return Block(conn_, b);
  }
  // alloc, but the daemon may keep the request waiting up to `wait` for
  // memory to be freed (pmm_alloc_opts: first come, first served; at most
  // PMM_ALLOC_MAX_WAIT_MS).
  Block alloc_wait(const std::string& pools, std::uint64_t size, std::chrono::milliseconds wait,
                   std::uint64_t alignment = 0, std::uint32_t flags = 0) const {
    pmm_alloc_options o = {};
    o.size = sizeof o;
    o.pools = pools.empty() ? nullptr : pools.c_str();
    o.alignment = alignment;
    o.flags = flags;
    o.wait_ms = wait.count() <= 0 ? 0u : static_cast<std::uint32_t>(wait.count());
    pmm_block* b = nullptr;
    detail::check(pmm_alloc_opts(raw(), size, &o, &b));
    return Block(conn_, b);
  }
  Block import(const Token& token) const {
    pmm_block* b = nullptr;
    detail::check(pmm_import(raw(), &token.raw(), &b));
    return Block(conn_, b);
  }
  void unexport(const Token& token) const { detail::check(pmm_unexport(raw(), &token.raw())); }

  // The C handle (owned by this Connection and its Blocks).
  pmm_conn* raw() const {
    if (!conn_) throw error(PMM_E_INVALID, "invalid argument: pmm::Connection is not connected");
    return conn_.get();
  }

 private:
  friend class BufferPool;
  std::shared_ptr<pmm_conn> conn_;
};

class BufferPool;

// One acquired buffer of a BufferPool (move-only). Its destructor releases
// it to the pool (pmm_bufpool_release); an exported buffer comes back to the
// free list once its importers have put it. Default-constructed: empty.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& o) noexcept : pool_(std::move(o.pool_)), block_(o.block_) { o.block_ = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      release();
      pool_ = std::move(o.pool_);
      block_ = o.block_;
      o.block_ = nullptr;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { release(); }

  explicit operator bool() const noexcept { return block_ != nullptr; }
  void* data() const noexcept { return pmm_block_ptr(block_); }
  template <typename T>
  T* as() const noexcept {
    return static_cast<T*>(data());
  }
  std::uint64_t size() const noexcept { return pmm_block_size(block_); }
  std::uint64_t id() const noexcept { return pmm_block_id(block_); }
  int fd() const noexcept { return pmm_block_fd(block_); }
  std::uint64_t offset() const noexcept { return pmm_block_offset(block_); }
  // Shares the buffer: it returns to the pool when released here AND put by
  // every importer (see pmm_bufpool_* in pmm.h).
  Token export_token(std::uint32_t max_imports = 1,
                     std::chrono::milliseconds lifetime = std::chrono::milliseconds(0)) const {
    pmm_token t;
    detail::check(
        pmm_export(block_, max_imports, static_cast<std::uint32_t>(lifetime.count()), &t));
    return Token(t);
  }
  // Gives the buffer back now (as the destructor does).
  void release() noexcept {
    if (block_ != nullptr) (void)pmm_bufpool_release(pool_.get(), block_);
    block_ = nullptr;
    pool_.reset();
  }
  // The C handle (owned by the pool).
  pmm_block* handle() const noexcept { return block_; }

 private:
  friend class BufferPool;
  Buffer(std::shared_ptr<pmm_bufpool> pool, pmm_block* b) : pool_(std::move(pool)), block_(b) {}

  std::shared_ptr<pmm_bufpool> pool_;
  pmm_block* block_ = nullptr;
};

// A pmm_bufpool: `count` buffers of `buffer_size` bytes from `pools`,
// growing up to `max_count` (0: no growth). Acquire and release are local.
// The pool (and its connection) stay alive while any Buffer of it does.
class BufferPool {
 public:
  BufferPool() = default;
  BufferPool(const Connection& conn, const std::string& pools, std::uint64_t buffer_size,
             std::uint32_t count, std::uint32_t max_count = 0, std::uint64_t alignment = 0,
             std::uint32_t flags = 0) {
    pmm_bufpool_options o = {};
    o.size = sizeof o;
    o.pools = pools.empty() ? nullptr : pools.c_str();
    o.buffer_size = buffer_size;
    o.alignment = alignment;
    o.flags = flags;
    o.count = count;
    o.max_count = max_count;
    pmm_bufpool* p = nullptr;
    detail::check(pmm_bufpool_create(conn.raw(), &o, &p));
    std::shared_ptr<pmm_conn> keep = conn.conn_;
    // The deleter keeps the connection alive until the pool is destroyed.
    pool_.reset(p, [keep](pmm_bufpool* q) { pmm_bufpool_destroy(q); });
  }

  explicit operator bool() const noexcept { return static_cast<bool>(pool_); }

  // A free buffer; waits up to `wait` when all are in use, then throws
  // pmm::error(PMM_E_TIMEOUT).
  Buffer acquire(std::chrono::milliseconds wait = std::chrono::milliseconds(0)) const {
    pmm_block* b = nullptr;
    detail::check(pmm_bufpool_acquire(
        raw(), wait.count() <= 0 ? 0u : static_cast<std::uint32_t>(wait.count()), &b));
    return Buffer(pool_, b);
  }

  pmm_bufpool_stats stats() const {
    pmm_bufpool_stats st = {};
    st.size = sizeof st;
    detail::check(pmm_bufpool_get_stats(raw(), &st));
    return st;
  }

  pmm_bufpool* raw() const {
    if (!pool_) throw error(PMM_E_INVALID, "invalid argument: pmm::BufferPool is empty");
    return pool_.get();
  }

 private:
  std::shared_ptr<pmm_bufpool> pool_;
};

}  // namespace pmm

#endif  // PMM_PMM_HPP_
