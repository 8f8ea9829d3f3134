// pmm::client::Connection — libpmm's one connection to pmmd.
//
// It speaks the protocol of src/proto over a SOCK_SEQPACKET socket: a
// handshake (Hello with the device name and protocol version -> Welcome),
// then one request at a time, each with a fresh request id that the reply
// must echo. A mutex serialises requests, so any thread may call any method;
// with one request in flight there is never a reply to route elsewhere.
//
// Blocks come back as BlockView: a pointer into this connection's mapping of
// the block's pool (see pool_mappings.h: each pool's fd arrives once and is
// mapped once), plus the pool's fd, offset, size and physical address.
//
// Failure modes a user must be able to tell apart:
//   - nothing listens on the socket: Errc::kNoDaemon at connect(), naming the
//     path and asking "is pmmd running?";
//   - the daemon went away (EOF, EPIPE, ECONNRESET): Errc::kDisconnected; the
//     connection is dead from then on and every later call fails at once
//     with the same error, without touching the socket. Sends use
//     MSG_NOSIGNAL, so a dead daemon never raises SIGPIPE in the application;
//   - a reply that breaks the protocol (wrong request id, wrong reply type,
//     undecodable bytes): Errc::kProtocol, also fatal for the connection;
//   - a refusal (ErrorReply): its code and message, and the connection
//     carries on.
//
// Usage:
//   auto c = pmm::client::Connection::connect("", "decoder");   // default socket
//   if (!c) { fmt::print(stderr, "{}\n", c.error().describe()); return 1; }
//   auto b = (*c)->allocate({"dma", "general"}, 1 << 20, 0, 0);
//   std::memset(b->data, 0, b->size);
//   (void)(*c)->put(b->id);
//
// Thread safety: every method may be called from any thread concurrently.
// The destructor must not race with calls (the owner destroys it last).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "client/pool_mappings.h"
#include "os/unique_fd.h"
#include "proto/channel.h"
#include "proto/messages.h"

namespace pmm::client {

// One block as this process sees it. `data` stays valid while the
// Connection lives (the pool mapping is never unmapped before).
struct BlockView {
  uint64_t id = 0;
  uint32_t pool_index = 0;
  std::string pool;
  proto::PoolType type = proto::PoolType::kShmem;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t phys = 0;  // 0 = unknown
  std::byte* data = nullptr;
  int fd = -1;         // the pool's memfd, owned by the connection; -1 for sysv
  int32_t shmid = -1;  // sysv pools
};

class Connection {
 public:
  // Connects to `socket_path` ("" = os::default_socket_path()) and
  // handshakes as `device` ("" = "default").
  [[nodiscard]] static Result<std::unique_ptr<Connection>> connect(const std::string& socket_path,
                                                                   const std::string& device);
  // Connects over an already connected socket (tests, in-process links).
  [[nodiscard]] static Result<std::unique_ptr<Connection>> handshake(os::UniqueFd sock,
                                                                     const std::string& label,
                                                                     const std::string& device);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  [[nodiscard]] const std::string& socket_path() const { return path_; }
  [[nodiscard]] const std::string& device() const { return device_; }
  [[nodiscard]] uint64_t session_id() const { return welcome_.session_id; }
  [[nodiscard]] const std::string& daemon_version() const { return welcome_.daemon_version; }

  // ---- blocks: each BlockView holds one reference of this session -------
  [[nodiscard]] Result<BlockView> allocate(const std::vector<std::string>& pools, uint64_t size,
                                           uint64_t alignment, uint32_t flags);
  [[nodiscard]] Result<BlockView> import(const proto::Token& token);
  [[nodiscard]] Status get(uint64_t block_id);
  [[nodiscard]] Status put(uint64_t block_id);

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

  // The error every call now returns at once, when the connection is dead.
  [[nodiscard]] std::optional<Error> dead() const;

 private:
  Connection(os::UniqueFd sock, std::string path, std::string device);

  // Sends `request` and waits for its reply; ErrorReply becomes its Error.
  // Caller holds mu_.
  [[nodiscard]] Result<proto::Envelope> roundtrip_locked(proto::Body request);
  // roundtrip + the expected reply type.
  template <typename Reply>
  [[nodiscard]] Result<Reply> call(proto::Body request);
  // Maps a BlockInfo's pool; when that fails, gives the reference back.
  [[nodiscard]] Result<BlockView> block_reply_locked(proto::Body request);
  // Marks the connection dead with `e` and returns it.
  std::unexpected<Error> die_locked(Error e);
  // After a send found the peer gone: the daemon's Error with request_id 0,
  // if it left one (why it refused the connection).
  std::optional<Error> connection_refusal_locked();

  mutable std::mutex mu_;
  os::UniqueFd sock_;
  std::string path_;
  std::string device_;
  proto::Welcome welcome_;
  uint32_t next_request_id_ = 1;
  std::optional<Error> dead_;
  PoolMappings pools_;
};

}  // namespace pmm::client
