// Ledger: quotas per session and per uid, and the block granule; see
// ledger.h (Quotas) and docs/config.md ([limits]).
//
// Why these records are counted: each is memory the daemon keeps on behalf
// of a client (a block record with its holds, an export with its deadline,
// a SysV hold), and exports and blocks can outlive the session that made
// them. Per-session limits bound what one connection makes the daemon hold;
// per-uid limits bound what a user makes it hold over all its connections
// and over time (blocks kept alive by exports, exports of closed sessions),
// so a user cannot pin the pool or grow the daemon by reconnecting.
#include "base/units.h"
#include "core/ledger.h"

namespace pmm::core {

namespace {

// "... ; blocks_per_session is 16384 and it holds 16384: ..." — every
// refusal names the limit, its value and the use, and the way out.
Error over(std::string_view what, std::string_view limit, uint64_t value, uint64_t use,
           std::string_view remedy) {
  return Error{Errc::kLimit,
               fmt::format("{}: limit {} = {} reached ({} in use); {}, or raise [limits] {} in "
                           "the config",
                           what, limit, value, use, remedy, limit)};
}

}  // namespace

QuotaUse Ledger::quota_use(uint32_t uid) const {
  auto it = uid_use_.find(uid);
  return it == uid_use_.end() ? QuotaUse{} : static_cast<const QuotaUse&>(it->second);
}

void Ledger::tidy_use(uint32_t uid) {
  auto it = uid_use_.find(uid);
  if (it == uid_use_.end()) return;
  const UidUse& u = it->second;
  if (u.blocks == 0 && u.exports == 0 && u.sysv_exports == 0 && u.sessions == 0) {
    spare_uid_use_ = uid_use_.extract(it);
  }
}

Ledger::SessionRecord* Ledger::live_exporter(const Export& e) {
  auto it = sessions_.find(e.exporter);
  if (it == sessions_.end() || it->second.serial != e.exporter_serial) return nullptr;
  return &it->second;
}

std::unexpected<Error> Ledger::refuse_granular(uint64_t size) {
  return fail(Errc::kInvalidArgument, "size {} B is too large to be a block", size);
}

Status Ledger::admit_hold(const SessionRecord& sr, std::string_view op) const {
  const Quotas& q = options_.quotas;
  if (sr.holds.size() < q.blocks_per_session) return {};
  return std::unexpected(over(fmt::format("{}: session {} (uid {}) holds {} blocks", op, sr.info.id,
                                          sr.info.uid, sr.holds.size()),
                              "blocks_per_session", q.blocks_per_session, sr.holds.size(),
                              "put blocks it no longer needs"));
}

Status Ledger::admit_new_block_slow(const SessionRecord& sr) const {
  const Quotas& q = options_.quotas;
  if (auto s = admit_hold(sr, "allocate"); !s) return s;
  if (sr.info.uid == 0) return {};
  uint64_t use = sr.quota->blocks;  // quota_use(uid).blocks
  if (use < q.blocks_per_uid) return {};
  return std::unexpected(over(
      fmt::format("allocate: uid {} has {} live blocks over all its sessions (blocks that "
                  "exports or importers keep alive count too)",
                  sr.info.uid, use),
      "blocks_per_uid", q.blocks_per_uid, use, "put blocks, withdraw exports or let them expire"));
}

Status Ledger::admit_export(const SessionRecord& sr) const {
  const Quotas& q = options_.quotas;
  if (sr.exports >= q.exports_per_session) {
    return std::unexpected(over(fmt::format("export: session {} (uid {}) has {} live exports",
                                            sr.info.id, sr.info.uid, sr.exports),
                                "exports_per_session", q.exports_per_session, sr.exports,
                                "withdraw exports or let them be imported or expire"));
  }
  if (sr.info.uid == 0) return {};
  uint64_t use = sr.quota->exports;  // quota_use(uid).exports
  if (use < q.exports_per_uid) return {};
  return std::unexpected(
      over(fmt::format("export: uid {} has {} live exports (also those of its closed sessions)",
                       sr.info.uid, use),
           "exports_per_uid", q.exports_per_uid, use,
           "withdraw exports or let them be imported or expire"));
}

Status Ledger::admit_sysv_export(const SessionRecord& sr) const {
  const Quotas& q = options_.quotas;
  if (sr.sysv_exports >= q.sysv_exports_per_session) {
    return std::unexpected(over(fmt::format("sysv-export: session {} (uid {}) has {} SysV exports",
                                            sr.info.id, sr.info.uid, sr.sysv_exports),
                                "sysv_exports_per_session", q.sysv_exports_per_session,
                                sr.sysv_exports, "withdraw some (sysv-unexport)"));
  }
  if (sr.info.uid == 0) return {};
  uint64_t use = quota_use(sr.info.uid).sysv_exports;
  if (use < q.sysv_exports_per_uid) return {};
  return std::unexpected(
      over(fmt::format("sysv-export: uid {} has {} SysV exports over all its sessions", sr.info.uid,
                       use),
           "sysv_exports_per_uid", q.sysv_exports_per_uid, use, "withdraw some (sysv-unexport)"));
}

Status Ledger::check_quota_invariants() const {
  std::unordered_map<uint32_t, QuotaUse> want;
  std::unordered_map<SessionId, std::pair<uint64_t, uint64_t>> per_session;  // exports, sysv
  for (const BlockRecord& rec : slab_) {
    if (!rec.live()) continue;
    ++want[rec.uid].blocks;
    each_holder(rec, [&](const Holder& h) {
      if (!h.sysv()) return;
      ++want[sessions_.at(h.session).info.uid].sysv_exports;
      ++per_session[h.session].second;
    });
  }
  for (const auto& [t, e] : exports_) {
    ++want[e.exporter_uid].exports;
    auto it = sessions_.find(e.exporter);
    if (it != sessions_.end() && it->second.serial == e.exporter_serial) {
      ++per_session[e.exporter].first;
    }
  }
  std::unordered_map<uint32_t, uint64_t> sessions_of;
  for (const auto& [id, sr] : sessions_) {
    ++sessions_of[sr.info.uid];
    (void)want[sr.info.uid];  // a uid with a session open keeps its record
    if (sr.quota != &uid_use_.at(sr.info.uid) ||
        sr.uid_device != &uid_devices_.at({sr.info.uid, sr.device})) {
      return fail(Errc::kSystem, "invariant: session {} points at another uid's records", id);
    }
  }
  for (const auto& [uid, u] : uid_use_) {
    if (u.blocks == 0 && u.exports == 0 && u.sysv_exports == 0 && u.sessions == 0) {
      return fail(Errc::kSystem, "invariant: uid {} keeps an empty quota record", uid);
    }
    auto open = sessions_of.find(uid);
    if (u.sessions != (open == sessions_of.end() ? 0 : open->second)) {
      return fail(Errc::kSystem, "invariant: uid {} counted {} open sessions", uid, u.sessions);
    }
  }
  for (const auto& [uid, w] : want) {
    QuotaUse u = quota_use(uid);
    if (u.blocks != w.blocks || u.exports != w.exports || u.sysv_exports != w.sysv_exports) {
      return fail(Errc::kSystem,
                  "invariant: uid {} counted {} blocks / {} exports / {} SysV exports, records "
                  "say {} / {} / {}",
                  uid, u.blocks, u.exports, u.sysv_exports, w.blocks, w.exports, w.sysv_exports);
    }
  }
  if (want.size() != uid_use_.size()) {
    return fail(Errc::kSystem, "invariant: {} uids counted, records name {}", uid_use_.size(),
                want.size());
  }
  for (const auto& [id, sr] : sessions_) {
    auto [exports, sysv] = per_session[id];
    if (sr.exports != exports || sr.sysv_exports != sysv) {
      return fail(Errc::kSystem,
                  "invariant: session {} counted {} exports / {} SysV exports, records say {} / {}",
                  id, sr.exports, sr.sysv_exports, exports, sysv);
    }
  }
  return {};
}

}  // namespace pmm::core
