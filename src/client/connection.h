// pmm::client::Connection — libpmm's one connection to pmmd.
//
// It speaks the protocol of src/proto over a SOCK_SEQPACKET socket: a
// handshake (Hello with the device name and protocol version -> Welcome),
// then requests, each with a fresh request id that its reply must echo.
// Requests are pipelined: any number of threads may have one in flight at
// once. A thread sends its request and then waits for its reply; one of the
// waiting threads at a time reads the socket and hands each reply to the
// thread whose id it carries, so no thread holds a lock across a round trip
// and a slow answer to one thread does not hold up another.
//
// Every wait is bounded by the connection's timeout (ConnectOptions; 5 s by
// default): connecting, sending, and waiting for each reply. A daemon that
// does not answer in time (stopped, wedged) gives Errc::kTimeout naming the
// request and the wait. The request is then *abandoned*, and the connection
// stays usable: its id is never reused while abandoned, so a late reply is
// never taken for another request's; when the late reply comes, what it
// gave is undone (a block reference from Allocate, Import or Get is put, an
// Export's token or a SysvExport is withdrawn), so a timed-out call leaves
// no reference behind. An abandoned Put, Unexport or SysvUnexport is carried
// out when the daemon gets to it.
//
// Blocks come back as BlockView: a pointer into this connection's mapping of
// the block's pool (see pool_mappings.h: each pool's fd arrives once; it is
// kept, and the pool mapped when first used, retried after a failure).
// Since it arrives once, a reply that cannot bring one (every pool its
// request names has its fd here, or the reply is no BlockInfo) is read
// without room for one; a daemon that sends one there anyway has it
// dropped by the kernel, and that pool is then unusable on this connection
// (kSystem, saying so), as after a full fd table.
//
// Failure modes a user must be able to tell apart:
//   - nothing listens on the socket: Errc::kNoDaemon at connect(), naming the
//     path and asking "is pmmd running?";
//   - the daemon does not answer within the timeout: Errc::kTimeout (above);
//   - the daemon went away (EOF, EPIPE, ECONNRESET): Errc::kDisconnected; the
//     connection is dead from then on and every later call fails at once
//     with the same error, without touching the socket. Sends use
//     MSG_NOSIGNAL, so a dead daemon never raises SIGPIPE in the application;
//   - a reply that breaks the protocol (an id no request waits for, wrong
//     reply type, undecodable bytes): Errc::kProtocol, also fatal;
//   - a refusal (ErrorReply): its code and message, and the connection
//     carries on; so does a failure of this process (mmap, a full fd table).
//   - used in a fork() child: the connection belongs to the parent's
//     session. Every call fails (kInvalidArgument: "connect anew in the
//     child") without touching the socket, and destroying it in the child
//     only closes the child's copies of the fd and mappings: the parent's
//     session is untouched.
//
// Usage:
//   auto c = pmm::client::Connection::connect({.device = "decoder"});  // default socket
//   if (!c) { fmt::print(stderr, "{}\n", c.error().describe()); return 1; }
//   auto b = (*c)->allocate({"dma", "general"}, 1 << 20, 0, 0);
//   std::memset(b->data, 0, b->size);
//   (void)(*c)->put(b->id);
//
// Thread safety: every method may be called from any thread concurrently.
// The destructor must not race with calls (the owner destroys it last).
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "client/futex_lock.h"
#include "client/pool_mappings.h"
#include "os/socket_wait.h"
#include "os/unique_fd.h"
#include "proto/channel.h"
#include "proto/messages.h"

namespace pmm::client {

namespace detail {
// fork()s seen in this process's line (connection.cc counts them in the
// child, through pthread_atfork).
extern std::atomic<uint32_t> g_forks;
}  // namespace detail

// One block as this process sees it. `data` stays valid while the
// Connection lives (the pool mapping is never unmapped before).
struct BlockView {
  uint64_t id = 0;
  uint32_t pool_index = 0;
  // The pool's name, kept by the connection (its PoolMapping) and
  // NUL-terminated; valid as long as `data`.
  std::string_view pool;
  proto::PoolType type = proto::PoolType::kShmem;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t phys = 0;  // 0 = unknown
  std::byte* data = nullptr;
  int fd = -1;         // the pool's memfd, owned by the connection; -1 for sysv
  int32_t shmid = -1;  // sysv pools
};

// The default bound on every wait of a connection.
inline constexpr std::chrono::milliseconds kDefaultTimeout{5000};

struct ConnectOptions {
  std::string socket_path;  // "" = os::default_socket_path()
  std::string device;       // "" = "default"
  // Bounds each wait: connecting, each request's send and its reply. At
  // least 1 ms.
  std::chrono::milliseconds timeout = kDefaultTimeout;
  // Populate each pool's mapping when it is made (PMM_CONNECT_POPULATE).
  bool populate = false;
};

class Connection {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Connection>> connect(const ConnectOptions& options);
  // As above, keeping the options' strings without copying them.
  [[nodiscard]] static Result<std::unique_ptr<Connection>> connect(ConnectOptions&& options);
  // Connects to `socket_path` ("" = os::default_socket_path()) and
  // handshakes as `device` ("" = "default"), with the default timeout.
  [[nodiscard]] static Result<std::unique_ptr<Connection>> connect(const std::string& socket_path,
                                                                   const std::string& device);
  // Handshakes over an already connected socket (tests, in-process links);
  // the socket is made blocking with a receive timeout (SO_RCVTIMEO)
  // shorter than `timeout`: a reply is then awaited in the read itself, and
  // sends and reads that must not wait pass MSG_DONTWAIT.
  [[nodiscard]] static Result<std::unique_ptr<Connection>> handshake(
      os::UniqueFd sock, const std::string& label, const std::string& device,
      std::chrono::milliseconds timeout = kDefaultTimeout);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  [[nodiscard]] const std::string& socket_path() const { return path_; }
  [[nodiscard]] const std::string& device() const { return device_; }
  [[nodiscard]] uint64_t session_id() const { return welcome_.session_id; }
  [[nodiscard]] const std::string& daemon_version() const { return welcome_.daemon_version; }
  [[nodiscard]] std::chrono::milliseconds timeout() const { return timeout_; }

  // ---- blocks: each BlockView holds one reference of this session -------
  // The last Allocate a connection sent is kept encoded: the same pools,
  // size, alignment and flags again are sent with only a new request id
  // (no list copied, nothing encoded), as a caller allocating frame after
  // frame does.
  [[nodiscard]] Result<BlockView> allocate(const std::vector<std::string>& pools, uint64_t size,
                                           uint64_t alignment, uint32_t flags);
  [[nodiscard]] Result<BlockView> import(const proto::Token& token);
  [[nodiscard]] Status get(uint64_t block_id);
  [[nodiscard]] Status put(uint64_t block_id);

  // ---- frame-rate sharing (issue 10) ---------------------------------------
  // allocate, but the daemon may queue it up to `wait` (AllocateWait); the
  // reply is awaited that long plus the connection's timeout.
  [[nodiscard]] Result<BlockView> allocate_wait(const std::vector<std::string>& pools,
                                                uint64_t size, uint64_t alignment, uint32_t flags,
                                                std::chrono::milliseconds wait);
  // Sends a Put / WatchRelease and returns without waiting for its reply
  // (libpmm's last put of a block, a buffer pool's watch). A refusal is
  // kept and returned, naming what failed, by the first round trip that
  // starts after it was read (a round trip reads earlier answers before its
  // own, so at latest the one after the next). At most kMaxPosted such requests are unanswered at
  // once; a post past that first waits (bounded) for answers.
  [[nodiscard]] Status post_put(uint64_t block_id);
  [[nodiscard]] Status post_watch_release(uint64_t block_id);
  static constexpr size_t kMaxPosted = 64;
  // A post reads earlier posts' answers itself only once this many are
  // unread; below it they wait in the socket for the next read, which is
  // the next call's own (so a lone alloc + last put costs one read per
  // reply, none finding nothing).
  static constexpr size_t kDrainPosted = 16;
  // Called, under the connection's lock, with the block id of each Released
  // event (a release watch fired). It must not call back into the
  // Connection. Set it before the first watch.
  void set_release_handler(std::function<void(uint64_t block_id, uint32_t watches)> handler);
  // Wakes threads waiting in pump() on the lock's condition (not one
  // blocked reading the socket): something they wait for changed locally.
  void notify_waiters();
  // Reads what the daemon sent (replies, events) until `done()` holds or
  // `deadline` passes; false at the deadline. `done` runs under the lock.
  // A deadline in the past reads only what is already there, without
  // waiting. Errors are the connection's death.
  [[nodiscard]] Result<bool> pump(const std::function<bool()>& done, os::Deadline deadline);

  [[nodiscard]] Result<proto::Token> export_block(uint64_t block_id, uint32_t max_imports,
                                                  uint32_t lifetime_ms);
  [[nodiscard]] Status unexport(const proto::Token& token);
  [[nodiscard]] Result<proto::SysvSegment> sysv_export(uint64_t block_id);
  [[nodiscard]] Status sysv_unexport(uint64_t block_id);

  // ---- admin views (pmmctl); listings follow every page ------------------
  [[nodiscard]] Result<std::vector<proto::PoolInfo>> list_pools();
  [[nodiscard]] Result<proto::StatsReply> stats();
  [[nodiscard]] Result<std::vector<proto::BlockEntry>> list_blocks();
  [[nodiscard]] Result<std::vector<proto::SessionEntry>> list_sessions();
  [[nodiscard]] Result<std::vector<proto::DeviceEntry>> list_devices();
  // The daemon's invariant walk (root or pmmd's uid; else kPermission).
  // A violation is a successful reply with `violation` set.
  [[nodiscard]] Result<proto::CheckReply> check();
  // Request counters and latency histogram (admins; else kPermission).
  [[nodiscard]] Result<proto::MetricsReply> metrics();
  // One page of a pool laid out by offset (pmmctl map follows the pages).
  [[nodiscard]] Result<proto::PoolMapReply> pool_map(const proto::PoolMapRequest& request);

  // The error every call now returns at once, when the connection is dead
  // (or inherited through fork).
  [[nodiscard]] std::optional<Error> dead() const;

  // Whether the connection is dead, without a lock (local get/put ask it
  // on every call; dead() then says why).
  [[nodiscard]] bool died() const { return died_.load(std::memory_order_acquire); }

  // Set when this process is not the one that connected (a fork() child):
  // the error every call returns there. Takes no lock, so it is safe in a
  // child forked while another thread of the parent held one.
  [[nodiscard]] std::optional<Error> inherited() const {
    // The cheap test inline (every call asks; one relaxed load): no fork
    // since this connection was made, so this is the process that made it.
    if (detail::g_forks.load(std::memory_order_relaxed) == fork_generation_) [[likely]]
      return std::nullopt;
    return inherited_after_fork();
  }

 private:
  // mu_ and what waits on it: a futex lock, since a request takes it a few
  // times (a pthread mutex's lock and unlock cost ~50 instructions a pair
  // more), and condition_variable_any, which works with any lock and costs
  // nothing unless a thread sleeps or wakes another.
  using Lock = FutexHold;
  using Condition = std::condition_variable_any;

  // A request on its way: what its reply would have to undo if it came
  // after the caller gave up (abandoned). A slot of slots_; id 0: free.
  struct InFlight {
    // User-provided, so that a table of them (grow_locked) is built member
    // by member: an implicit one would zero-fill each slot's room for a
    // reply (hundreds of bytes) first.
    InFlight() {}  // NOLINT(modernize-use-equals-default)
    uint32_t id = 0;
    proto::MessageType type{};
    bool abandoned = false;    // nobody waits: timed out, posted or an undo
    bool posted = false;       // a refusal becomes posted_error_
    bool fd_possible = false;  // its reply may bring a pool's fd
    uint64_t block_id = 0;     // Get, SysvExport, posted Put and WatchRelease
    // The answer: in `reply`, or (in_reader) in the reply buffer of the
    // thread that read it, which is the awaiting thread itself and takes it
    // in place before it reads again.
    bool in_reader = false;
    std::optional<Result<proto::Envelope>> reply{};
    Condition* waiter = nullptr;  // the awaiting thread's own
    [[nodiscard]] bool answered() const { return in_reader || reply.has_value(); }
  };
  // An Allocate's arguments (allocate()).
  struct AllocArgs {
    const std::vector<std::string>* pools = nullptr;
    uint64_t size = 0;
    uint64_t alignment = 0;
    uint32_t flags = 0;
  };
  // What a request is, for the table and the socket.
  struct Outgoing {
    proto::Message* message = nullptr;           // encoded at each send, or
    const AllocArgs* alloc = nullptr;            // sent as alloc_cache_.bytes, its id patched, or
    const proto::FieldRequest* field = nullptr;  // this, with its field set to
    std::span<const std::byte> field_value{};    // these bytes, or
    std::vector<std::byte>* encoded = nullptr;   // these (the caller's own), their id patched
    proto::MessageType type{};
    uint64_t block_id = 0;
    bool fd_possible = false;
    // An Import's pool, from its token (proto::kTokenPoolByte): its reply
    // may bring an fd only while that pool's is not settled here.
    std::optional<uint32_t> token_pool{};
    std::chrono::milliseconds extra_wait{0};
  };
  // The last Allocate sent, encoded (allocate()). Under mu_.
  struct AllocCache {
    std::vector<std::string> pools;
    uint64_t size = 0;
    uint64_t alignment = 0;
    uint32_t flags = 0;
    std::vector<std::byte> bytes;  // empty: none yet
    bool settled = false;          // every pool's fd is here: no reply brings one
  };

  Connection(os::UniqueFd sock, std::string path, std::string device,
             std::chrono::milliseconds timeout);
  // handshake, keeping `label` and `device` without copying them again.
  // `fresh`: `sock` is connect_unix_within's, non-blocking and nothing else.
  [[nodiscard]] static Result<std::unique_ptr<Connection>> handshake_owned(
      os::UniqueFd sock, std::string label, std::string device, std::chrono::milliseconds timeout,
      bool fresh = false);

  // The handshake's round trip: sends `hello` (an encoded Hello, its id
  // patched here) and reads its answer, bounded by `deadline`. Not through
  // request(): nothing else can be in flight on a connection not yet handed
  // out, so it needs no slot, lock or condition (a connection that only
  // says hello makes no request table). The Welcome lies in this thread's
  // reply buffer until its next read. Errors as request()'s; the caller
  // ends the connection on any.
  [[nodiscard]] Result<const proto::Welcome*> say_hello(std::span<std::byte> hello,
                                                        os::Deadline deadline);

  // inherited() once a fork() has happened since: compares the pid.
  [[nodiscard]] std::optional<Error> inherited_after_fork() const;

  // Registers and sends a request, and waits (bounded) for its reply,
  // reading the socket when no other thread does. A reply that is not an
  // ErrorReply is handed to `take` under mu_ (in place, not moved out),
  // except that a T of proto::Ok or proto::TokenReply read as such
  // (proto::SmallReply) is returned as it came: a Take for those types
  // must only check the type (expect()). One lock acquisition to register
  // and send, one per reply read.
  template <typename T, typename Take>
  [[nodiscard]] Result<T> request(const Outgoing& out, Take&& take);
  // Sends without waiting (post_put, post_watch_release).
  [[nodiscard]] Status post(const Outgoing& out);
  // Waits (reading the socket when no other thread does) until done() or
  // the deadline; false at the deadline. Takes `lock` (on mu_) held.
  // `own`: the caller's condition (request), else it waits on replied_.
  // `fresh`: the deadline was set a moment ago (saves a clock read).
  // `buffer`: this thread's reply_buffer(), if the caller has it at hand.
  template <typename Done>
  bool drive_locked(Lock& lock, const Done& done, os::Deadline deadline, Condition* own = nullptr,
                    bool fresh = false, proto::Envelope* buffer = nullptr);
  // Wakes every thread waiting on replied_ (none if it was never made).
  void notify_replied_locked() {
    if (replied_) replied_->notify_all();
  }
  // The reader leaves: wake one waiter to read in its place.
  void hand_off_locked();
  // hand_off_locked when some thread waits.
  [[gnu::noinline]] void hand_off_waiters_locked();
  // Reads what is already there, when no other thread reads. Under mu_.
  // `answers_only`: stop once no reply is outstanding instead of reading
  // until the socket is empty.
  void drain_locked(Lock& lock, bool answers_only = false);
  // Hands what was read (`buffer`: this thread's reply_buffer()) to its
  // waiter, or marks the connection dead. `own`: the reading thread's
  // condition, when it awaits a reply itself (its reply then stays where it
  // was read).
  void take_locked(const Result<bool>& in, proto::Envelope& buffer, std::vector<proto::Body>& undo,
                   const Condition* own);
  // take_locked of a failed read: the connection ends, with the daemon's
  // reason if it left one.
  [[gnu::noinline]] void read_failed_locked(const Error& e);
  // request + the expected reply type.
  template <typename Reply>
  [[nodiscard]] Result<Reply> call(proto::Message m, uint64_t block_id = 0);
  // The reply of `env` if it is a Reply; else the connection dies
  // (kProtocol naming what came for `request_type`). Under mu_.
  template <typename Reply>
  [[nodiscard]] Result<Reply> expect(proto::Envelope& env, proto::MessageType request_type);
  // Maps a BlockInfo's pool; when that fails, gives the reference back.
  [[nodiscard]] Result<BlockView> block_reply(const Outgoing& out);
  // After the socket was found closed or reset: the daemon's Error with
  // request_id 0, if it left one (why it refused or ended the connection).
  // Under mu_; the peer is gone, so the read cannot block.
  std::optional<Error> connection_refusal_locked();

  // Makes sock_ blocking and sets its SO_RCVTIMEO to blocking_wait_.
  // `fresh`: O_NONBLOCK is its only status flag (one fcntl, not two).
  [[nodiscard]] Status prepare_socket(bool fresh);
  // Takes a free slot for a new request under a new id (never one in
  // flight or abandoned; its slot is id & mask, so lookup is one index).
  // `fd_possible`: whether its reply may bring a pool's fd (out.fd_possible,
  // or for an Allocate what prepare_allocate_locked found).
  [[nodiscard]] InFlight& register_locked(const Outgoing& out, bool fd_possible);
  // Doubles slots_ (at least kFirstSlots), each slot at its id's new place.
  void grow_locked();
  [[gnu::always_inline]] [[nodiscard]] InFlight* find_locked(uint32_t id) {
    if (id == 0 || slots_.empty()) return nullptr;
    InFlight& f = slots_[id & slot_mask_];
    return f.id == id ? &f : nullptr;
  }
  // Frees a slot, keeping the counts below true.
  void remove_locked(InFlight& f);
  // `f`'s reply has come: it no longer counts as unanswered.
  void mark_answered_locked(InFlight& f);
  // A posted request's answer that is no refusal (a last put's Ok): its
  // slot freed and counted, and waiters for room among posts told.
  void posted_answered_locked(InFlight& f);
  // Sends request `id` (MSG_DONTWAIT, under mu_, so requests reach the
  // socket in the order they were registered); while the socket buffer is
  // full it waits (bounded) with mu_ released, counted in unsent_.
  // A zero `deadline`: now + the timeout, read only if it must wait.
  // `waited` (if given) is set when it did.
  [[nodiscard]] Status send_locked(Lock& lock, const Outgoing& out, uint32_t id,
                                   os::Deadline deadline, bool* waited = nullptr);
  // send_locked's first try: one non-blocking send; an Allocate from
  // `alloc_bytes` (alloc_cache_.bytes, or a copy of them), its id patched.
  [[nodiscard]] Status send_now(const Outgoing& out, uint32_t id, std::span<std::byte> alloc_bytes);
  // send_locked once the socket was full: waits for room and tries again.
  [[gnu::noinline]] [[nodiscard]] Status send_when_room_locked(Lock& lock, const Outgoing& out,
                                                               uint32_t id, os::Deadline deadline,
                                                               bool* waited);
  // Makes alloc_cache_ the encoding of `a` (encoding it when it differs
  // from the last) and judges whether its reply may bring an fd.
  [[nodiscard]] Status prepare_allocate_locked(const AllocArgs& a);
  // prepare_allocate_locked for arguments that differ from the last.
  [[gnu::noinline]] [[nodiscard]] Status encode_allocate_locked(const AllocArgs& a);
  // Whether the next reply read may carry an fd (recvmsg with room for
  // it) or cannot (recv). Under mu_; see connection.cc.
  [[nodiscard]] bool fd_possible_locked() const {
    return unanswered_ == 0 || fd_unanswered_ != 0 || unsent_ != 0;
  }
  // Reads one reply into `buffer` (the thread's reply_buffer(); see
  // connection.cc); false when none came before `deadline`.
  // `try_first`: try a non-blocking read before waiting. `far`: the
  // deadline is known to be at least blocking_wait_ away.
  [[nodiscard]] Result<bool> read_one(proto::Envelope& buffer, os::Deadline deadline,
                                      bool try_first, bool far, bool fd_possible);
  // Hands `env` (the thread's reply_buffer()) to its waiter, or undoes an
  // abandoned request's effect (appending the undo request to `undo`).
  // Errors end the connection.
  void deliver_locked(proto::Envelope& env, std::vector<proto::Body>& undo, const Condition* own);
  // Keeps the pool fd that came with `env` (a BlockInfo), or records its
  // loss; a second fd for a pool ends the connection.
  [[gnu::noinline]] void keep_pool_fd_locked(proto::Envelope& env);
  // deliver_locked past its common cases (an awaited reply, a posted
  // request's Ok): events, refusals, late replies, protocol breaches.
  // `f`: the request of env's id, if any.
  [[gnu::noinline]] [[nodiscard]] Status deliver_other_locked(proto::Envelope& env, InFlight* f,
                                                              std::vector<proto::Body>& undo);
  // Sends requests whose replies nobody waits for.
  void send_undo(std::vector<proto::Body> undo);
  // Marks the connection dead with `e`, wakes every waiter, returns `e`.
  std::unexpected<Error> die_locked(Error e);
  std::unexpected<Error> die(Error e);

  const pid_t pid_;                 // the process that connected
  const uint32_t fork_generation_;  // fork()s seen when it connected; see inherited()
  os::UniqueFd sock_;               // blocking, SO_RCVTIMEO; closed only by the destructor
  std::string path_;
  std::string device_;
  std::chrono::milliseconds timeout_;
  // sock_'s SO_RCVTIMEO: a wait at least this long is a blocking read
  // (one system call per reply, no poll); a shorter one polls. 0: always
  // poll (a timeout too short to leave room for the kernel's rounding).
  std::chrono::milliseconds blocking_wait_;
  proto::Welcome welcome_;

  mutable FutexLock mu_;  // guards everything below
  // pump() and post() waiters; an awaiting thread waits on its own
  // condition (InFlight::waiter), woken by its reply alone. Made when a
  // thread first waits on it (a condition_variable_any allocates its
  // mutex, which a connection that never has such a waiter need not pay).
  std::unique_ptr<Condition> replied_;
  uint32_t next_request_id_ = 1;
  bool reading_ = false;  // a thread is reading the socket
  // Requests in flight or abandoned, each at slots_[id & (size - 1)]; the
  // size is a power of two, at least twice the use (grown when not).
  std::vector<InFlight> slots_;
  size_t slot_mask_ = 0;      // slots_.size() - 1
  size_t used_ = 0;           // slots taken
  size_t waiting_ = 0;        // of them, requests a thread waits for
  size_t unanswered_ = 0;     // of them, not answered yet
  size_t fd_unanswered_ = 0;  // of those, ones whose reply may bring an fd
  size_t unsent_ = 0;         // registered, waiting for room in the socket
  size_t sleepers_ = 0;       // waiting threads whose reply has not come
  AllocCache alloc_cache_;
  std::optional<Error> dead_;
  std::atomic<bool> died_{false};  // dead_ is set
  PoolMappings pools_;
  size_t shared_waiters_ = 0;          // threads waiting on replied_
  size_t posted_ = 0;                  // posted requests not answered yet
  std::optional<Error> posted_error_;  // a posted request's refusal, for the next call
  std::function<void(uint64_t, uint32_t)> on_released_;
};

}  // namespace pmm::client
