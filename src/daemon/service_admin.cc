// Service: admin listings (paginated), session close and expiry; see
// service.h.
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

Reply Service::list_blocks(uint32_t request_id, const proto::ListBlocks& r) const {
  proto::BlockList out;
  size_t limit = page_size(r.limit, proto::kMaxBlocksPerPage);
  for (const auto& v : ledger_->blocks()) {  // in id order
    if (v.info.id <= r.after_id) continue;
    if (out.blocks.size() == limit) {
      out.more = true;
      break;
    }
    proto::BlockEntry e{.id = v.info.id,
                        .pool_index = static_cast<uint32_t>(v.info.pool),
                        .offset = v.info.offset,
                        .size = v.info.size,
                        .phys = v.info.phys,
                        .refcount = clamp32(v.references)};
    for (const auto& h : v.holders) {
      if (e.holders.size() == proto::kMaxHoldersPerBlock) {
        ++e.holders_omitted;
        continue;
      }
      e.holders.push_back(proto::Holder{
          .kind = holder_kind(h.kind),
          .id = h.kind == core::HolderView::Kind::kExport ? token_id(h.token) : h.session,
          .pid = h.pid,
          .device = h.device,
          .references = clamp32(h.references)});
    }
    out.next_after_id = v.info.id;
    out.blocks.push_back(std::move(e));
  }
  return Reply{.message = proto::Message{.request_id = request_id, .body = std::move(out)}};
}

Reply Service::list_sessions(uint32_t request_id, const proto::ListSessions& r) const {
  proto::SessionList out;
  size_t limit = page_size(r.limit, proto::kMaxSessionsPerPage);
  for (const auto& v : ledger_->sessions()) {  // in id order
    if (v.info.id <= r.after_id) continue;
    if (out.sessions.size() == limit) {
      out.more = true;
      break;
    }
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
  return Reply{.message = proto::Message{.request_id = request_id, .body = std::move(out)}};
}

Reply Service::list_devices(uint32_t request_id, const proto::ListDevices& r) const {
  proto::DeviceList out;
  size_t limit = page_size(r.limit, proto::kMaxDevicesPerPage);
  auto devices = ledger_->devices();
  for (size_t i = 0; i < devices.size(); ++i) {
    uint64_t id = i + 1;  // the table never changes during the daemon's life
    if (id <= r.after_id) continue;
    if (out.devices.size() == limit) {
      out.more = true;
      break;
    }
    const core::Device& d = devices[i];
    out.devices.push_back(
        proto::DeviceEntry{.id = id,
                           .name = d.label(),
                           .max = d.config.max_bytes.value_or(std::numeric_limits<uint64_t>::max()),
                           .min = d.config.min_bytes,
                           .used = d.used_bytes,
                           .headroom = d.headroom(),
                           .sessions = clamp32(d.sessions)});
    out.next_after_id = id;
  }
  return Reply{.message = proto::Message{.request_id = request_id, .body = std::move(out)}};
}

void Service::close(SessionState& s, std::string_view why) {
  if (!s.greeted) {
    log_.info("connection {} (pid {}, uid {}) closed before Hello: {}", s.id, s.peer.pid,
              s.peer.uid, why);
    return;
  }
  auto sum = ledger_->close_session(s.id);
  s.greeted = false;
  if (!sum) {
    log_.info("{} closed ({}), but the ledger did not know it: {}", who(s), why,
              sum.error().describe());
    return;
  }
  log_.info("{} closed ({}): dropped {} reference(s), {} block(s) back to their pools ({})", who(s),
            why, sum->references_dropped, sum->blocks_freed, format_size(sum->bytes_freed));
}

size_t Service::expire(core::SteadyTime now) {
  size_t n = ledger_->expire(now);
  if (n > 0) log_.info("{} export(s) expired unimported; their references were dropped", n);
  return n;
}

}  // namespace pmm::daemon
