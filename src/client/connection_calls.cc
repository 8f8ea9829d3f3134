// The calls of pmm::client::Connection (connection.h): each builds its
// request, sends it through request() (connection_request.h) and takes the
// reply it expects. The hot ones (Allocate, Put, Import, Export) go out from
// encodings made once, with only their varying field patched.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "client/connection.h"
#include "client/connection_request.h"
#include "proto/channel.h"

namespace pmm::client {
namespace {

// Pages of an admin listing we follow before deciding the daemon loops.
constexpr size_t kMaxPages = 1 << 20;

// Requests sent from an encoding made once, with their one varying field
// patched (proto::FieldRequest): Put (each block's last put), Import, and
// Export for the last max_imports/lifetime this thread asked for. nullptr
// if the codec's encoding does not allow that; the request is then encoded
// each time.
[[gnu::always_inline]] inline const proto::FieldRequest* put_request() {
  static const Result<proto::FieldRequest> put =
      proto::FieldRequest::make(proto::Put{.block_id = proto::FieldRequest::kU64Marker},
                                proto::FieldRequest::u64(proto::FieldRequest::kU64Marker));
  return put ? &*put : nullptr;
}

[[gnu::always_inline]] inline const proto::FieldRequest* import_request() {
  static const Result<proto::FieldRequest> import =
      proto::FieldRequest::make(proto::Import{.token = proto::FieldRequest::kTokenMarker},
                                proto::FieldRequest::token(proto::FieldRequest::kTokenMarker));
  return import ? &*import : nullptr;
}

const proto::FieldRequest* export_request(uint32_t max_imports, uint32_t lifetime_ms) {
  struct Last {
    uint32_t max_imports = 0;
    uint32_t lifetime_ms = 0;
    std::optional<Result<proto::FieldRequest>> request;
  };
  thread_local Last last;
  if (!last.request || last.max_imports != max_imports || last.lifetime_ms != lifetime_ms) {
    last.request =
        proto::FieldRequest::make(proto::Export{.block_id = proto::FieldRequest::kU64Marker,
                                                .max_imports = max_imports,
                                                .lifetime_ms = lifetime_ms},
                                  proto::FieldRequest::u64(proto::FieldRequest::kU64Marker));
    last.max_imports = max_imports;
    last.lifetime_ms = lifetime_ms;
  }
  return *last.request ? &**last.request : nullptr;
}

}  // namespace

using detail::reply_name;

Status Connection::post_put(uint64_t block_id) {
  if (const proto::FieldRequest* put = put_request()) {
    const auto value = proto::FieldRequest::u64(block_id);
    return post(Outgoing{.field = put,
                         .field_value = value,
                         .type = proto::MessageType::kPut,
                         .block_id = block_id});
  }
  proto::Message m{.body = proto::Put{.block_id = block_id}};
  return post(Outgoing{.message = &m, .type = proto::MessageType::kPut, .block_id = block_id});
}

Status Connection::post_watch_release(uint64_t block_id) {
  proto::Message m{.body = proto::WatchRelease{.block_id = block_id}};
  return post(
      Outgoing{.message = &m, .type = proto::MessageType::kWatchRelease, .block_id = block_id});
}

template <typename Reply>
Result<Reply> Connection::expect(proto::Envelope& env, proto::MessageType request_type) {
  if (auto* r = std::get_if<Reply>(&env.message.body)) return std::move(*r);
  return die_locked(
      Error{Errc::kProtocol,
            fmt::format("pmmd at {} answered {} with {}; expected {}", path_,
                        proto::message_type_name(request_type), reply_name(env.message.body),
                        proto::message_type_name(Reply::kType))});
}

template <typename Reply>
Result<Reply> Connection::call(proto::Message m, uint64_t block_id) {
  const proto::MessageType type = proto::type_of(m.body);
  return request<Reply>(Outgoing{.message = &m, .type = type, .block_id = block_id},
                        [&](proto::Envelope& env) { return expect<Reply>(env, type); });
}

// Inline into its three callers: one frame less per Allocate and Import.
[[gnu::always_inline]] inline Result<BlockView> Connection::block_reply(const Outgoing& out) {
  uint64_t give_back = 0;
  auto view = request<BlockView>(out, [&](proto::Envelope& env) -> Result<BlockView> {
    auto* info = std::get_if<proto::BlockInfo>(&env.message.body);
    if (info == nullptr)
      return die_locked(
          Error{Errc::kProtocol,
                fmt::format("pmmd at {} answered {} with {}; expected BlockInfo", path_,
                            proto::message_type_name(out.type), reply_name(env.message.body))});
    auto mapped = pools_.map(*info);
    if (!mapped) {
      give_back = info->block_id;
      return std::unexpected(mapped.error());
    }
    const PoolMapping& pm = **mapped;
    return BlockView{.id = info->block_id,
                     .pool_index = info->pool_index,
                     .pool = pm.name,
                     .type = pm.type,
                     .offset = info->offset,
                     .size = info->size,
                     .phys = info->phys,
                     .data = pm.data + info->offset,
                     .fd = pm.fd,
                     .shmid = pm.shmid};
  });
  // The session holds a reference we cannot use: give it back, so a
  // failed call leaves the block as it found it.
  if (give_back != 0) (void)put(give_back);
  return view;
}

Result<BlockView> Connection::allocate(const std::vector<std::string>& pools, uint64_t size,
                                       uint64_t alignment, uint32_t flags) {
  const AllocArgs a{.pools = &pools, .size = size, .alignment = alignment, .flags = flags};
  return block_reply(Outgoing{.alloc = &a, .type = proto::MessageType::kAllocate});
}

Result<BlockView> Connection::allocate_wait(const std::vector<std::string>& pools, uint64_t size,
                                            uint64_t alignment, uint32_t flags,
                                            std::chrono::milliseconds wait) {
  const auto ms = std::clamp<int64_t>(wait.count(), 0, proto::kMaxAllocateWaitMs);
  proto::Message m{.body = proto::AllocateWait{.pools = pools,
                                               .size = size,
                                               .alignment = alignment,
                                               .flags = flags,
                                               .wait_ms = static_cast<uint32_t>(ms)}};
  // Its reply may come after later ones' (it waits in the daemon), so it
  // always counts as one that may bring an fd (fd_possible_locked).
  return block_reply(Outgoing{.message = &m,
                              .type = proto::MessageType::kAllocateWait,
                              .fd_possible = true,
                              .extra_wait = std::chrono::milliseconds(ms)});
}

Result<BlockView> Connection::import(const proto::Token& token) {
  // The token names the block's pool: its reply brings an fd only if that
  // pool's has not come yet. A token whose pool byte was changed names no
  // export, so its reply is an ErrorReply, never an fd read with recv().
  const uint32_t pool = token[proto::kTokenPoolByte];
  if (const proto::FieldRequest* encoded = import_request())
    return block_reply(Outgoing{.field = encoded,
                                .field_value = proto::FieldRequest::token(token),
                                .type = proto::MessageType::kImport,
                                .token_pool = pool});
  proto::Message m{.body = proto::Import{.token = token}};
  return block_reply(
      Outgoing{.message = &m, .type = proto::MessageType::kImport, .token_pool = pool});
}

Status Connection::get(uint64_t block_id) {
  auto r = call<proto::Ok>(proto::Message{.body = proto::Get{.block_id = block_id}}, block_id);
  if (!r) return std::unexpected(r.error());
  return {};
}

Status Connection::put(uint64_t block_id) {
  Result<proto::Ok> r;
  if (const proto::FieldRequest* encoded = put_request()) {
    const auto value = proto::FieldRequest::u64(block_id);
    r = request<proto::Ok>(
        Outgoing{.field = encoded,
                 .field_value = value,
                 .type = proto::MessageType::kPut,
                 .block_id = block_id},
        [&](proto::Envelope& env) { return expect<proto::Ok>(env, proto::MessageType::kPut); });
  } else {
    r = call<proto::Ok>(proto::Message{.body = proto::Put{.block_id = block_id}});
  }
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<proto::Token> Connection::export_block(uint64_t block_id, uint32_t max_imports,
                                              uint32_t lifetime_ms) {
  Result<proto::TokenReply> r;
  if (const proto::FieldRequest* encoded = export_request(max_imports, lifetime_ms)) {
    const auto value = proto::FieldRequest::u64(block_id);
    r = request<proto::TokenReply>(
        Outgoing{.field = encoded, .field_value = value, .type = proto::MessageType::kExport},
        [&](proto::Envelope& env) {
          return expect<proto::TokenReply>(env, proto::MessageType::kExport);
        });
  } else {
    r = call<proto::TokenReply>(proto::Message{.body = proto::Export{.block_id = block_id,
                                                                     .max_imports = max_imports,
                                                                     .lifetime_ms = lifetime_ms}});
  }
  if (!r) return std::unexpected(r.error());
  return r->token;
}

Status Connection::unexport(const proto::Token& token) {
  auto r = call<proto::Ok>(proto::Message{.body = proto::Unexport{.token = token}});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<proto::SysvSegment> Connection::sysv_export(uint64_t block_id) {
  return call<proto::SysvSegment>(proto::Message{.body = proto::SysvExport{.block_id = block_id}},
                                  block_id);
}

Status Connection::sysv_unexport(uint64_t block_id) {
  auto r = call<proto::Ok>(proto::Message{.body = proto::SysvUnexport{.block_id = block_id}});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<std::vector<proto::PoolInfo>> Connection::list_pools() {
  auto r = call<proto::PoolList>(proto::Message{.body = proto::ListPools{}});
  if (!r) return std::unexpected(r.error());
  return std::move(r->pools);
}

Result<proto::StatsReply> Connection::stats() {
  return call<proto::StatsReply>(proto::Message{.body = proto::StatsRequest{}});
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
        return call<proto::BlockList>(proto::Message{.body = proto::ListBlocks{.after_id = after}});
      },
      &proto::BlockList::blocks);
}

Result<std::vector<proto::SessionEntry>> Connection::list_sessions() {
  return collect<proto::SessionList>(
      [this](uint64_t after) {
        return call<proto::SessionList>(
            proto::Message{.body = proto::ListSessions{.after_id = after}});
      },
      &proto::SessionList::sessions);
}

Result<std::vector<proto::DeviceEntry>> Connection::list_devices() {
  return collect<proto::DeviceList>(
      [this](uint64_t after) {
        return call<proto::DeviceList>(
            proto::Message{.body = proto::ListDevices{.after_id = after}});
      },
      &proto::DeviceList::devices);
}

Result<proto::CheckReply> Connection::check() {
  return call<proto::CheckReply>(proto::Message{.body = proto::CheckRequest{}});
}

Result<proto::MetricsReply> Connection::metrics() {
  return call<proto::MetricsReply>(proto::Message{.body = proto::MetricsRequest{}});
}

Result<proto::PoolMapReply> Connection::pool_map(const proto::PoolMapRequest& request) {
  return call<proto::PoolMapReply>(proto::Message{.body = request});
}

}  // namespace pmm::client
