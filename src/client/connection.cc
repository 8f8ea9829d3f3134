// See connection.h. The one rule that shapes this file: a connection is
// either alive, or dead with a remembered Error that every later call
// returns without touching the socket, so an application whose daemon died
// sees the same clear message from every call instead of a mix of EPIPE,
// EBADF and hangs.
#include "client/connection.h"

#include <unistd.h>

#include <cerrno>
#include <utility>
#include <variant>

#include "proto/channel.h"

namespace pmm::client {
namespace {

// Pages of an admin listing we follow before deciding the daemon loops.
constexpr size_t kMaxPages = 1 << 20;

// How long a closing connection waits for the daemon to confirm it has let go.
constexpr int kGoodbyeTimeoutMs = 2000;

bool is_disconnect(const Error& e) {
  return e.code == Errc::kDisconnected ||
         (e.code == Errc::kSystem && (e.sys_errno == EPIPE || e.sys_errno == ECONNRESET));
}

std::string reply_name(const proto::Body& body) {
  return std::string(proto::message_type_name(proto::type_of(body)));
}

}  // namespace

Connection::Connection(os::UniqueFd sock, std::string path, std::string device)
    : sock_(std::move(sock)), path_(std::move(path)), device_(std::move(device)) {}

// Pool mappings go before the socket closes: nothing may point into them
// once the daemon could hand the memory to someone else. Then we wait (a
// bounded time) for the daemon to close its side, so that every reference
// this session held is dropped by the time the destructor returns: a
// program that disconnects and then allocates, or tells another process to,
// finds the memory back in the pool.
Connection::~Connection() {
  pools_.clear();
  if (!dead_) os::shutdown_and_wait_for_peer(sock_.get(), kGoodbyeTimeoutMs);
}

Result<std::unique_ptr<Connection>> Connection::connect(const std::string& socket_path,
                                                        const std::string& device) {
  std::string path = socket_path.empty() ? os::default_socket_path() : socket_path;
  auto sock = os::connect_unix(path);
  if (!sock) {
    Error e = sock.error();
    if (e.code == Errc::kNoDaemon && e.message.find("pmmd") == std::string::npos)
      e.message += ": is pmmd running?";
    return std::unexpected(std::move(e));
  }
  return handshake(std::move(*sock), path, device);
}

Result<std::unique_ptr<Connection>> Connection::handshake(os::UniqueFd sock,
                                                          const std::string& label,
                                                          const std::string& device) {
  std::unique_ptr<Connection> c(new Connection(std::move(sock), label, device));
  std::lock_guard lock(c->mu_);
  auto reply = c->roundtrip_locked(proto::Hello{.protocol_version = proto::kProtocolVersion,
                                                .device = device,
                                                .pid = static_cast<int32_t>(::getpid())});
  if (!reply) {
    Error e = reply.error();
    if (e.code == Errc::kDisconnected)
      e.message = fmt::format(
          "pmmd at {} closed the connection during the handshake (see its log; a daemon that "
          "refuses this uid or is shutting down does that)",
          label);
    return std::unexpected(std::move(e));
  }
  auto* w = std::get_if<proto::Welcome>(&reply->message.body);
  if (w == nullptr)
    return fail(Errc::kProtocol, "pmmd at {} answered Hello with {}, not Welcome", label,
                reply_name(reply->message.body));
  if (w->protocol_version != proto::kProtocolVersion)
    return fail(Errc::kProtocol,
                "pmmd at {} speaks protocol version {}, this libpmm speaks {}; use a libpmm and "
                "pmmd of the same release",
                label, w->protocol_version, proto::kProtocolVersion);
  c->welcome_ = std::move(*w);
  return c;
}

std::optional<Error> Connection::dead() const {
  std::lock_guard lock(mu_);
  return dead_;
}

std::unexpected<Error> Connection::die_locked(Error e) {
  if (is_disconnect(e)) {
    e = Error{Errc::kDisconnected,
              fmt::format("pmmd at {} went away (the connection closed: it exited or was "
                          "killed); every block of this connection is gone: reconnect",
                          path_),
              e.sys_errno};
  }
  dead_ = e;
  // Nothing more will be read: close now so the daemon sees us gone too.
  sock_.reset();
  return std::unexpected(std::move(e));
}

Result<proto::Envelope> Connection::roundtrip_locked(proto::Body request) {
  if (dead_) return std::unexpected(*dead_);
  uint32_t id = next_request_id_++;
  if (next_request_id_ == 0) next_request_id_ = 1;
  proto::Message m{.request_id = id, .body = std::move(request)};
  const std::string name = reply_name(m.body);

  if (auto sent = proto::send(sock_.get(), m); !sent) {
    // An encoding refusal is the caller's bad argument; the socket is fine.
    if (sent.error().code == Errc::kInvalidArgument) return std::unexpected(sent.error());
    // The daemon may have refused the connection and closed it before our
    // request went out: its reason is still queued for us to read.
    // (Only then: with the peer gone, the read below cannot block.)
    if (is_disconnect(sent.error())) {
      if (auto refusal = connection_refusal_locked()) return die_locked(std::move(*refusal));
    }
    return die_locked(sent.error());
  }
  auto in = proto::receive_reply(sock_.get());
  if (!in) {
    // A daemon that closes a connection with our request unread makes the
    // kernel report ECONNRESET before the reply it queued: read that too.
    if (is_disconnect(in.error())) {
      if (auto refusal = connection_refusal_locked()) return die_locked(std::move(*refusal));
    }
    return die_locked(in.error());
  }
  if (!*in)  // a blocking socket never says "nothing yet"
    return die_locked(
        Error{Errc::kProtocol, fmt::format("no reply to {} from pmmd at {}", name, path_)});
  proto::Envelope env = std::move(**in);
  // request_id 0 is never a request's: the daemon refuses the connection
  // (a session limit, no fds left, no Hello in time) and closes it.
  if (auto* err = std::get_if<proto::ErrorReply>(&env.message.body);
      err != nullptr && env.message.request_id == 0 && id != 0)
    return die_locked(proto::to_error(*err));
  if (env.message.request_id != id)
    return die_locked(
        Error{Errc::kProtocol, fmt::format("pmmd at {} answered request {} ({}) with the id {}; "
                                           "replies must echo their request's id",
                                           path_, id, name, env.message.request_id)});
  if (auto* err = std::get_if<proto::ErrorReply>(&env.message.body))
    return std::unexpected(proto::to_error(*err));
  return env;
}

std::optional<Error> Connection::connection_refusal_locked() {
  auto in = proto::receive_reply(sock_.get());
  if (!in || !*in) return std::nullopt;
  auto* err = std::get_if<proto::ErrorReply>(&(*in)->message.body);
  if (err == nullptr || (*in)->message.request_id != 0) return std::nullopt;
  return proto::to_error(*err);
}

template <typename Reply>
Result<Reply> Connection::call(proto::Body request) {
  std::lock_guard lock(mu_);
  const std::string name = reply_name(request);
  auto env = roundtrip_locked(std::move(request));
  if (!env) return std::unexpected(env.error());
  auto* r = std::get_if<Reply>(&env->message.body);
  if (r == nullptr)
    return die_locked(
        Error{Errc::kProtocol,
              fmt::format("pmmd at {} answered {} with {}; expected {}", path_, name,
                          reply_name(env->message.body), proto::message_type_name(Reply::kType))});
  return std::move(*r);
}

Result<BlockView> Connection::block_reply_locked(proto::Body request) {
  const std::string name = reply_name(request);
  auto env = roundtrip_locked(std::move(request));
  if (!env) return std::unexpected(env.error());
  auto* info = std::get_if<proto::BlockInfo>(&env->message.body);
  if (info == nullptr)
    return die_locked(
        Error{Errc::kProtocol, fmt::format("pmmd at {} answered {} with {}; expected BlockInfo",
                                           path_, name, reply_name(env->message.body))});
  auto mapped = pools_.map(*info, std::move(env->fd));
  if (!mapped) {
    // The session holds a reference we cannot use: give it back, so a
    // failed call leaves the block as it found it.
    (void)roundtrip_locked(proto::Put{.block_id = info->block_id});
    return std::unexpected(mapped.error());
  }
  const PoolMapping& pm = **mapped;
  return BlockView{.id = info->block_id,
                   .pool_index = info->pool_index,
                   .pool = info->pool_name,
                   .type = pm.type,
                   .offset = info->offset,
                   .size = info->size,
                   .phys = info->phys,
                   .data = pm.data + info->offset,
                   .fd = pm.fd,
                   .shmid = pm.shmid};
}

Result<BlockView> Connection::allocate(const std::vector<std::string>& pools, uint64_t size,
                                       uint64_t alignment, uint32_t flags) {
  std::lock_guard lock(mu_);
  return block_reply_locked(
      proto::Allocate{.pools = pools, .size = size, .alignment = alignment, .flags = flags});
}

Result<BlockView> Connection::import(const proto::Token& token) {
  std::lock_guard lock(mu_);
  return block_reply_locked(proto::Import{.token = token});
}

Status Connection::get(uint64_t block_id) {
  auto r = call<proto::Ok>(proto::Get{.block_id = block_id});
  if (!r) return std::unexpected(r.error());
  return {};
}

Status Connection::put(uint64_t block_id) {
  auto r = call<proto::Ok>(proto::Put{.block_id = block_id});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<proto::Token> Connection::export_block(uint64_t block_id, uint32_t max_imports,
                                              uint32_t lifetime_ms) {
  auto r = call<proto::TokenReply>(
      proto::Export{.block_id = block_id, .max_imports = max_imports, .lifetime_ms = lifetime_ms});
  if (!r) return std::unexpected(r.error());
  return r->token;
}

Status Connection::unexport(const proto::Token& token) {
  auto r = call<proto::Ok>(proto::Unexport{.token = token});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<proto::SysvSegment> Connection::sysv_export(uint64_t block_id) {
  return call<proto::SysvSegment>(proto::SysvExport{.block_id = block_id});
}

Status Connection::sysv_unexport(uint64_t block_id) {
  auto r = call<proto::Ok>(proto::SysvUnexport{.block_id = block_id});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<std::vector<proto::PoolInfo>> Connection::list_pools() {
  auto r = call<proto::PoolList>(proto::ListPools{});
  if (!r) return std::unexpected(r.error());
  return std::move(r->pools);
}

Result<proto::StatsReply> Connection::stats() {
  return call<proto::StatsReply>(proto::StatsRequest{});
}

namespace {

// Follows a paginated listing: `page(after_id)` returns one reply; `items`
// picks its entries. A cursor that does not advance is a protocol error, not
// an endless loop.
template <typename Reply, typename Entry, typename Page>
Result<std::vector<Entry>> collect(Page page, std::vector<Entry> Reply::*items) {
  std::vector<Entry> all;
  uint64_t after = 0;
  for (size_t n = 0; n < kMaxPages; ++n) {
    Result<Reply> r = page(after);
    if (!r) return std::unexpected(r.error());
    for (Entry& e : (*r).*items) all.push_back(std::move(e));
    if (!r->more) return all;
    if (r->next_after_id <= after)
      return fail(Errc::kProtocol, "{} page cursor went from {} to {}; it must grow",
                  proto::message_type_name(Reply::kType), after, r->next_after_id);
    after = r->next_after_id;
  }
  return fail(Errc::kProtocol, "{} has more than {} pages", proto::message_type_name(Reply::kType),
              kMaxPages);
}

}  // namespace

Result<std::vector<proto::BlockEntry>> Connection::list_blocks() {
  return collect<proto::BlockList>(
      [this](uint64_t after) {
        return call<proto::BlockList>(proto::ListBlocks{.after_id = after});
      },
      &proto::BlockList::blocks);
}

Result<std::vector<proto::SessionEntry>> Connection::list_sessions() {
  return collect<proto::SessionList>(
      [this](uint64_t after) {
        return call<proto::SessionList>(proto::ListSessions{.after_id = after});
      },
      &proto::SessionList::sessions);
}

Result<std::vector<proto::DeviceEntry>> Connection::list_devices() {
  return collect<proto::DeviceList>(
      [this](uint64_t after) {
        return call<proto::DeviceList>(proto::ListDevices{.after_id = after});
      },
      &proto::DeviceList::devices);
}

Result<proto::CheckReply> Connection::check() {
  return call<proto::CheckReply>(proto::CheckRequest{});
}

}  // namespace pmm::client
