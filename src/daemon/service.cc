// Requests to ledger calls and replies; see service.h.
#include "daemon/service.h"

#include "base/units.h"
#include "daemon/steady_now.h"

#ifndef PMM_VERSION
#define PMM_VERSION "dev"
#endif

namespace pmm::daemon {

static_assert(core::Token::kPoolByte == proto::kTokenPoolByte,
              "the ledger writes the pool byte where libpmm reads it");

namespace {

proto::PoolType pool_type(mem::MemoryType t) {
  switch (t) {
    case mem::MemoryType::kShmem:
      return proto::PoolType::kShmem;
    case mem::MemoryType::kHugetlb:
      return proto::PoolType::kHugetlb;
    case mem::MemoryType::kSysv:
      return proto::PoolType::kSysv;
  }
  return proto::PoolType::kShmem;
}

proto::Message reply(uint32_t request_id, proto::Body body) {
  return proto::Message{.request_id = request_id, .body = std::move(body)};
}

}  // namespace

Service::Service(std::unique_ptr<core::Ledger> ledger, const Log& log)
    : ledger_(std::move(ledger)), log_(log) {
  // A pool's memory never changes after it is made (the ledger's pools are
  // fixed at its creation): what a BlockInfo says of it is read once here,
  // not through five virtual calls per allocate and import.
  for (size_t i = 0; i < ledger_->pool_count(); ++i) {
    const mem::Region& region = ledger_->pool(i).region();
    const mem::MemoryType type = region.type();
    pool_memory_.push_back(PoolMemory{
        .memory = proto::PoolMemory{.type = pool_type(type),
                                    .fd_attached = false,
                                    .pool_size = region.size(),
                                    .page_size = region.page_size(),
                                    .shmid = type == mem::MemoryType::kSysv ? region.shmid() : -1},
        .sysv = type == mem::MemoryType::kSysv,
        .fd = type == mem::MemoryType::kSysv ? -1 : region.fd()});
  }
}

Reply Service::refusal(uint32_t request_id, const Error& e) {
  return Reply{.message = reply(request_id, proto::from_error(e))};
}

Reply Service::hello(SessionState& s, uint32_t request_id, const proto::Hello& h) {
  if (h.protocol_version != proto::kProtocolVersion) {
    Reply r = error(
        s, request_id,
        Error{Errc::kProtocol, fmt::format("client speaks protocol version {}; this daemon speaks "
                                           "version {}",
                                           h.protocol_version, proto::kProtocolVersion)},
        "hello");
    r.close_after = true;
    return r;
  }
  auto device = ledger_->open_session(core::SessionInfo{.id = s.id,
                                                        .pid = s.peer.pid,
                                                        .uid = s.peer.uid,
                                                        .gid = s.peer.gid,
                                                        .groups = s.groups,
                                                        .device = h.device});
  if (!device) {
    Reply r = error(s, request_id, device.error(), "hello");
    r.close_after = true;
    return r;
  }
  s.greeted = true;
  s.device = *device;
  s.fd_sent.reset();
  if (h.device.empty() || h.device == *device) {
    log_.info("{} connected", who(s));
  } else {
    log_.info("{} connected (asked for device '{}', which the config does not declare)", who(s),
              h.device);
  }
  return Reply{.message =
                   reply(request_id, proto::Welcome{.protocol_version = proto::kProtocolVersion,
                                                    .session_id = s.id,
                                                    .daemon_version = "pmmd " PMM_VERSION})};
}

Reply Service::block_reply(SessionState& s, uint32_t request_id, const core::BlockInfo& b) {
  Reply r;
  block_reply(s, request_id, b, r);
  return r;
}

void Service::block_reply(SessionState& s, uint32_t request_id, const core::BlockInfo& b,
                          Reply& out) {
  const PoolMemory& pm = pool_memory_[b.pool];
  // Written over the reply `out` held: every allocate and import answers
  // with one, and the BlockInfo the last one left (its pool name's storage
  // included) is reused, every field of it set again.
  out.message.request_id = request_id;
  auto* info = std::get_if<proto::BlockInfo>(&out.message.body);
  if (info == nullptr) [[unlikely]]
    info = &out.message.body.emplace<proto::BlockInfo>();
  info->block_id = b.id;
  // A pool's name never changes, and this BlockInfo's name is always the
  // one of its pool_index (both are set together, here; a fresh BlockInfo's
  // "" differs in length from any pool's name but an empty one, which it
  // equals): the same pool means the same name, with no compare of bytes.
  if (info->pool_index != b.pool || info->pool_name.size() != b.pool_name.size())
    info->pool_name.assign(b.pool_name);
  info->pool_index = static_cast<uint32_t>(b.pool);
  info->offset = b.offset;
  info->size = b.size;
  // Only to whom pagemap would show it (viewer(s).phys).
  info->phys = sees_physical(s) ? b.phys : 0;
  info->memory = pm.memory;
  out.fd = -1;
  out.fd_pool.reset();
  out.close_after = false;
  out.deferred = false;
  // A sysv pool travels as its shmid; any other sends its fd once per session.
  if (!pm.sysv && !s.fd_sent[b.pool]) {
    info->memory.fd_attached = true;
    out.fd = pm.fd;
    out.fd_pool = b.pool;
  }
}

Reply Service::ok_reply(uint32_t request_id) {
  Reply r;
  ok_reply(request_id, r);
  return r;
}

void Service::ok_reply(uint32_t request_id, Reply& out) {
  out.message.request_id = request_id;
  if (!std::holds_alternative<proto::Ok>(out.message.body)) [[unlikely]]
    out.message.body.emplace<proto::Ok>();
  out.fd = -1;
  out.fd_pool.reset();
  out.close_after = false;
  out.deferred = false;
}

proto::PoolInfo Service::pool_info(size_t i, const SessionState& s) const {
  const core::Pool& p = ledger_->pool(i);
  core::PoolStats st = p.stats();
  return proto::PoolInfo{.index = static_cast<uint32_t>(i),
                         .name = p.name(),
                         .type = pool_type(p.region().type()),
                         .size = st.alloc.size,
                         .page_size = p.region().page_size(),
                         .bytes_used = st.alloc.bytes_used,
                         .bytes_free = st.alloc.bytes_free,
                         .largest_free = st.alloc.largest_free,
                         .free_extents = st.alloc.free_extents,
                         .live_blocks = st.alloc.live_blocks,
                         .has_physical = p.has_physical(),
                         .strategy = std::string(p.strategy().name()),
                         .accessible = ledger_->access(i).allows(s.peer.uid, s.peer.gid, s.groups),
                         .state = core::describe_health(p)};
}

Reply Service::handle(SessionState& s, const proto::Message& m, core::SteadyTime now) {
  // `now` was read just before the call: it is the request's start too (one
  // clock read fewer per request).
  Reply r = dispatch(s, m, now);
  handled(m, r, now);
  return r;
}

Reply* Service::handle_hot(SessionState& s, const proto::Message& m, core::SteadyTime now,
                           HotReplies& kept) {
  if (!s.greeted) [[unlikely]]
    return nullptr;
  const uint32_t id = m.request_id;
  Reply* out;
  if (const auto* a = std::get_if<proto::Allocate>(&m.body)) {
    on_allocate(s, id, *a, *(out = &kept.block));
  } else if (const auto* p = std::get_if<proto::Put>(&m.body)) {
    on_put(s, id, *p, *(out = &kept.ok));
  } else if (const auto* g = std::get_if<proto::Get>(&m.body)) {
    on_get(s, id, *g, *(out = &kept.ok));
  } else if (const auto* i = std::get_if<proto::Import>(&m.body)) {
    on_import(s, id, *i, now, *(out = &kept.block));
  } else if (const auto* e = std::get_if<proto::Export>(&m.body)) {
    on_export(s, id, *e, now, *(out = &kept.token));
  } else {
    return nullptr;
  }
  handled(m, *out, now);
  return out;
}

[[gnu::always_inline]] inline void Service::handled(const proto::Message& m, const Reply& r,
                                                    core::SteadyTime now) {
  handled_at_ = steady_now();
  metrics_.record(proto::type_of(m.body), std::holds_alternative<proto::ErrorReply>(r.message.body),
                  handled_at_ - now);
}

[[gnu::always_inline]] inline void Service::on_allocate(SessionState& s, uint32_t id,
                                                        const proto::Allocate& req, Reply& out) {
  core::Ledger& l = *ledger_;
  if ((req.flags & ~proto::kAllocKnownFlags) != 0) [[unlikely]] {
    out = error(s, id,
                Error{Errc::kInvalidArgument,
                      fmt::format("allocate: unknown flag bits {:#x}; known are 0x1 "
                                  "(contiguous) and 0x2 (zero)",
                                  req.flags & ~proto::kAllocKnownFlags)},
                "allocate");
    return;
  }
  auto b = l.allocate(s.id, req.pools, req.size, req.alignment,
                      core::AllocFlags{.contiguous = (req.flags & proto::kAllocContiguous) != 0,
                                       .zero = (req.flags & proto::kAllocZero) != 0});
  // What the pools found of memory punched by clients (core/pool.h).
  for (size_t i = 0; i < l.pool_count(); ++i) {
    if (!l.pool(i).has_notices()) [[likely]]
      continue;
    for (const std::string& n : l.pool(i).take_notices()) log_.info("{}", n);
  }
  if (!b) [[unlikely]] {
    out = error(s, id, b.error(),
                lazy([&] { return fmt::format("allocate of {}", format_size(req.size)); }));
    return;
  }
  log_.detail("{} allocated block {}: {} in {} at {:#x}", who(s), b->id,
              lazy([&] { return format_size(b->size); }), b->pool_name, b->offset);
  block_reply(s, id, *b, out);
}

[[gnu::always_inline]] inline void Service::on_get(SessionState& s, uint32_t id,
                                                   const proto::Get& req, Reply& out) {
  auto n = ledger_->get(s.id, req.block_id);
  if (!n) [[unlikely]] {
    out =
        error(s, id, n.error(), lazy([&] { return fmt::format("get of block {}", req.block_id); }));
    return;
  }
  log_.detail("{} took a reference to block {} (holds {})", who(s), req.block_id, *n);
  ok_reply(id, out);
}

[[gnu::always_inline]] inline void Service::on_put(SessionState& s, uint32_t id,
                                                   const proto::Put& req, Reply& out) {
  core::Ledger& l = *ledger_;
  auto n = l.put(s.id, req.block_id);
  if (!n) [[unlikely]] {
    out =
        error(s, id, n.error(), lazy([&] { return fmt::format("put of block {}", req.block_id); }));
    return;
  }
  after_put(req.block_id);
  // Whether the block went back is looked up only for a line that is
  // written: a lookup that finds nothing builds an error message, which
  // every last put paid for (block ids are never reused, so the answer is
  // the same after after_put).
  log_.detail(
      "{} dropped a reference to block {} (holds {}){}", who(s), req.block_id, *n,
      lazy([&] { return l.block(req.block_id) ? "" : "; the block went back to its pool"; }));
  ok_reply(id, out);
}

[[gnu::always_inline]] inline void Service::on_export(SessionState& s, uint32_t id,
                                                      const proto::Export& req,
                                                      core::SteadyTime now, Reply& out) {
  auto t = ledger_->export_block(s.id, req.block_id, req.max_imports,
                                 std::chrono::milliseconds(req.lifetime_ms), now);
  if (!t) [[unlikely]] {
    out = error(s, id, t.error(),
                lazy([&] { return fmt::format("export of block {}", req.block_id); }));
    return;
  }
  log_.detail("{} exported block {} as token {}… ({} import(s))", who(s), req.block_id,
              lazy([&] { return t->short_hex(); }), req.max_imports == 0 ? 1 : req.max_imports);
  // Written over what `out` held, as block_reply and ok_reply do.
  out.message.request_id = id;
  auto* reply = std::get_if<proto::TokenReply>(&out.message.body);
  if (reply == nullptr) [[unlikely]]
    reply = &out.message.body.emplace<proto::TokenReply>();
  reply->token = t->bytes;
  out.fd = -1;
  out.fd_pool.reset();
  out.close_after = false;
  out.deferred = false;
}

[[gnu::always_inline]] inline void Service::on_import(SessionState& s, uint32_t id,
                                                      const proto::Import& req,
                                                      core::SteadyTime now, Reply& out) {
  core::Token t{.bytes = req.token};
  auto b = ledger_->import_block(s.id, t, now);
  if (!b) [[unlikely]] {
    out =
        error(s, id, b.error(), lazy([&] { return fmt::format("import of {}…", t.short_hex()); }));
    return;
  }
  log_.detail("{} imported block {} ({} in {}) with token {}…", who(s), b->id,
              lazy([&] { return format_size(b->size); }), b->pool_name,
              lazy([&] { return t.short_hex(); }));
  block_reply(s, id, *b, out);
}

Reply Service::dispatch(SessionState& s, const proto::Message& m, core::SteadyTime now) {
  const uint32_t id = m.request_id;
  if (!s.greeted) {
    if (const auto* h = std::get_if<proto::Hello>(&m.body)) return hello(s, id, *h);
    Reply r =
        error(s, id,
              Error{Errc::kProtocol, fmt::format("the first message must be Hello, not {}",
                                                 proto::message_type_name(proto::type_of(m.body)))},
              "handshake");
    r.close_after = true;
    return r;
  }
  core::Ledger& l = *ledger_;
  return std::visit(
      [&](const auto& req) -> Reply {
        using T = std::decay_t<decltype(req)>;
        if constexpr (std::is_same_v<T, proto::Hello>) {
          Reply r =
              error(s, id, Error{Errc::kProtocol, "Hello sent twice in one session"}, "hello");
          r.close_after = true;
          return r;
        } else if constexpr (std::is_same_v<T, proto::ListPools>) {
          proto::PoolList list;
          for (size_t i = 0; i < l.pool_count(); ++i) list.pools.push_back(pool_info(i, s));
          return Reply{.message = reply(id, std::move(list))};
        } else if constexpr (std::is_same_v<T, proto::Allocate>) {
          Reply r;
          on_allocate(s, id, req, r);
          return r;
        } else if constexpr (std::is_same_v<T, proto::Get>) {
          Reply r;
          on_get(s, id, req, r);
          return r;
        } else if constexpr (std::is_same_v<T, proto::Put>) {
          Reply r;
          on_put(s, id, req, r);
          return r;
        } else if constexpr (std::is_same_v<T, proto::Export>) {
          Reply r;
          on_export(s, id, req, now, r);
          return r;
        } else if constexpr (std::is_same_v<T, proto::Import>) {
          Reply r;
          on_import(s, id, req, now, r);
          return r;
        } else if constexpr (std::is_same_v<T, proto::Unexport>) {
          core::Token t{.bytes = req.token};
          auto r = l.unexport(s.id, t);
          if (!r)
            return error(s, id, r.error(),
                         lazy([&] { return fmt::format("unexport of {}…", t.short_hex()); }));
          after_drop();
          log_.detail("{} withdrew export {}…", who(s), lazy([&] { return t.short_hex(); }));
          return ok_reply(id);
        } else if constexpr (std::is_same_v<T, proto::SysvExport>) {
          auto seg = l.sysv_export(s.id, req.block_id);
          if (!seg) {
            return error(s, id, seg.error(), lazy([&] {
                           return fmt::format("sysv-export of block {}", req.block_id);
                         }));
          }
          log_.detail("{} exported block {} as SysV segment {} at {:#x}", who(s), req.block_id,
                      seg->shmid, seg->offset);
          return Reply{.message = reply(
                           id, proto::SysvSegment{
                                   .shmid = seg->shmid, .offset = seg->offset, .size = seg->size})};
        } else if constexpr (std::is_same_v<T, proto::SysvUnexport>) {
          auto r = l.sysv_unexport(s.id, req.block_id);
          if (!r) {
            return error(s, id, r.error(), lazy([&] {
                           return fmt::format("sysv-unexport of block {}", req.block_id);
                         }));
          }
          after_put(req.block_id);
          log_.detail("{} withdrew the SysV export of block {}", who(s), req.block_id);
          return ok_reply(id);
        } else if constexpr (std::is_same_v<T, proto::StatsRequest>) {
          proto::StatsReply st;
          st.sessions = l.session_count();
          st.exports = l.export_count();
          st.refused = refusals_.snapshot();
          for (size_t i = 0; i < l.pool_count(); ++i) {
            st.pools.push_back(pool_info(i, s));
            st.blocks += st.pools.back().live_blocks;
            st.bytes += st.pools.back().bytes_used;
          }
          return Reply{.message = reply(id, std::move(st))};
        } else if constexpr (std::is_same_v<T, proto::ListBlocks>) {
          return list_blocks(s, id, req, now);
        } else if constexpr (std::is_same_v<T, proto::ListSessions>) {
          return list_sessions(s, id, req);
        } else if constexpr (std::is_same_v<T, proto::ListDevices>) {
          return list_devices(s, id, req);
        } else if constexpr (std::is_same_v<T, proto::CheckRequest>) {
          return check(s, id);
        } else if constexpr (std::is_same_v<T, proto::MetricsRequest>) {
          return metrics(s, id, now);
        } else if constexpr (std::is_same_v<T, proto::PoolMapRequest>) {
          return pool_map(s, id, req);
        } else if constexpr (std::is_same_v<T, proto::AllocateWait>) {
          return allocate_wait(s, id, req, now);
        } else if constexpr (std::is_same_v<T, proto::WatchRelease>) {
          return watch_release(s, id, req);
        } else {
          // A reply type sent as a request: the codec refuses these, so
          // this is reached only if it changes; answer rather than crash.
          Reply r = error(s, id,
                          Error{Errc::kProtocol, fmt::format("{} is a reply, not a request",
                                                             proto::message_type_name(T::kType))},
                          "request");
          r.close_after = true;
          return r;
        }
      },
      m.body);
}

}  // namespace pmm::daemon
