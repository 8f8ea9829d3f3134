// Service: the listings (paginated, filtered by who asks), session close
// and expiry; see service.h.
#include <algorithm>
#include <limits>

#include "base/units.h"
#include "daemon/service.h"

namespace pmm::daemon {

namespace {

uint32_t clamp32(uint64_t v) {
  return static_cast<uint32_t>(std::min<uint64_t>(v, std::numeric_limits<uint32_t>::max()));
}

size_t page_size(uint32_t limit, size_t max) {
  return limit == 0 ? max : std::min<size_t>(limit, max);
}

// An export's holder id: the token's first 8 bytes read big-endian, so its
// hex form is the first 16 digits of the token text (docs/protocol.md).
uint64_t token_id(const core::Token& t) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = v << 8 | t.bytes[i];
  return v;
}

proto::HolderKind holder_kind(core::HolderView::Kind k) {
  switch (k) {
    case core::HolderView::Kind::kSession:
      return proto::HolderKind::kSession;
    case core::HolderView::Kind::kExport:
      return proto::HolderKind::kExport;
    case core::HolderView::Kind::kSysvExport:
      return proto::HolderKind::kSysvExport;
  }
  return proto::HolderKind::kSession;
}

}  // namespace

core::Viewer Service::viewer(const SessionState& s) const {
  // The kernel shows pagemap's frame numbers only to CAP_SYS_ADMIN; a
  // client gets from us no more than it could read itself. uid 0 is the
  // uid it had when it connected (SO_PEERCRED), so a socket handed to a
  // process that later gains the capability (a setuid exec) does not count.
  return core::Viewer{.uid = s.peer.uid,
                      .all = admins_.includes(s.peer.uid, s.peer.gid, s.groups),
                      .phys = sees_physical(s)};
}

Reply Service::list_blocks(const SessionState& s, uint32_t request_id, const proto::ListBlocks& r,
                           core::SteadyTime now) const {
  proto::BlockList out;
  auto page = ledger_->blocks(viewer(s), r.after_id, page_size(r.limit, proto::kMaxBlocksPerPage));
  for (const auto& v : page.items) {
    proto::BlockEntry e{.id = v.info.id,
                        .pool_index = static_cast<uint32_t>(v.info.pool),
                        .offset = v.info.offset,
                        .size = v.info.size,
                        .phys = v.info.phys,
                        .phys_hidden = v.phys_hidden,
                        .refcount = clamp32(v.references),
                        .holders_omitted = clamp32(v.hidden_holders)};
    for (const auto& h : v.holders) {
      if (e.holders.size() == proto::kMaxHoldersPerBlock) {
        e.holders_omitted = clamp32(uint64_t{e.holders_omitted} + 1);
        continue;
      }
      bool is_export = h.kind == core::HolderView::Kind::kExport;
      uint64_t expires = 0;
      if (is_export && h.deadline > now) {
        expires = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(h.deadline - now).count());
      }
      e.holders.push_back(
          proto::Holder{.kind = holder_kind(h.kind),
                        .id = is_export ? (h.token_shown ? token_id(h.token) : 0) : h.session,
                        .pid = h.pid,
                        .device = h.device,
                        .references = clamp32(h.references),
                        .uid = h.uid,
                        .token_shown = is_export && h.token_shown,
                        .imports_left = h.imports_left,
                        .expires_ms = expires});
    }
    out.blocks.push_back(std::move(e));
  }
  // The last id the ledger looked at, which may lie past the last entry: a
  // non-admin's page ends after a bounded scan (Ledger::blocks).
  out.next_after_id = page.next_after;
  out.more = page.more;
  return Reply{.message = proto::Message{.request_id = request_id, .body = std::move(out)}};
}

Reply Service::list_sessions(const SessionState& s, uint32_t request_id,
                             const proto::ListSessions& r) const {
  proto::SessionList out;
  auto page =
      ledger_->sessions(viewer(s), r.after_id, page_size(r.limit, proto::kMaxSessionsPerPage));
  for (const auto& v : page.items) {
    out.sessions.push_back(proto::SessionEntry{.id = v.info.id,
                                               .pid = v.info.pid,
                                               .uid = v.info.uid,
                                               .gid = v.info.gid,
                                               .device = v.device,
                                               .blocks_held = v.blocks,
                                               .references = v.references,
                                               .bytes_held = v.bytes});
    out.next_after_id = v.info.id;
  }
  out.more = page.more;
  return Reply{.message = proto::Message{.request_id = request_id, .body = std::move(out)}};
}

Reply Service::list_devices(const SessionState& s, uint32_t request_id,
                            const proto::ListDevices& r) const {
  proto::DeviceList out;
  auto page =
      ledger_->devices(viewer(s), r.after_id, page_size(r.limit, proto::kMaxDevicesPerPage));
  for (const auto& v : page.items) {
    const core::Device& d = *v.device;
    uint64_t id = v.index + 1;  // the table never changes during the daemon's life
    out.devices.push_back(
        proto::DeviceEntry{.id = id,
                           .name = d.label(),
                           .max = d.config.max_bytes.value_or(std::numeric_limits<uint64_t>::max()),
                           .min = d.config.min_bytes,
                           .used = v.used,
                           .headroom = d.headroom(),
                           .sessions = clamp32(v.sessions)});
    out.next_after_id = id;
  }
  out.more = page.more;
  return Reply{.message = proto::Message{.request_id = request_id, .body = std::move(out)}};
}

void Service::close(SessionState& s, std::string_view why) {
  if (!s.greeted) {
    log_.info("connection {} (pid {}, uid {}) closed before Hello: {}", s.id, s.peer.pid,
              s.peer.uid, why);
    return;
  }
  auto closing = ledger_->begin_close(s.id);
  s.greeted = false;
  forget_session(s.id);
  if (!closing) {
    log_.info("{} closed ({}), but the ledger did not know it: {}", who(s), why,
              closing.error().describe());
    return;
  }
  log_.info("{} closed ({})", who(s), why);
  // A session with few blocks is done at once; a large one in later turns.
  reap();
}

void Service::reap() {
  // Each slice gives blocks back: what others wait for, or watch.
  after_drop();
  ledger_->reap(kReapPerTurn, reaped_);
  for (const auto& [id, sum] : reaped_) {
    // The size is formatted only for a line the rate limit lets through.
    log_.info("session {}: dropped {} reference(s), {} block(s) back to their pools ({})", id,
              sum.references_dropped, sum.blocks_freed,
              lazy([&sum] { return format_size(sum.bytes_freed); }));
  }
}

size_t Service::expire(core::SteadyTime now) {
  size_t n = ledger_->expire(now);
  if (n > 0) after_drop();
  if (n > 0) log_.info("{} export(s) expired unimported; their references were dropped", n);
  return n;
}

}  // namespace pmm::daemon
