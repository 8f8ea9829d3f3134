// Ledger: exports by token, SysV exports and expiry; see ledger.h.
#include "base/units.h"
#include "core/ledger.h"

namespace pmm::core {

Result<Token> Ledger::export_block(SessionId s, BlockId b, uint32_t max_imports,
                                   std::chrono::milliseconds lifetime, SteadyTime now) {
  PMM_CHECK_ON_EXIT("Ledger::export_block", checks_, record_count(), check_invariants());
  auto sr = session(s);
  if (!sr) return std::unexpected(sr.error());
  auto rec = held_block(**sr, b, "export");
  if (!rec) return std::unexpected(rec.error());
  if (lifetime.count() < 0 || lifetime > options_.max_export_lifetime) {
    return fail(Errc::kInvalidArgument,
                "export block {}: lifetime {} is outside 0 .. {}; 0 means the default {}", b,
                format_duration(lifetime), format_duration(options_.max_export_lifetime),
                format_duration(options_.default_export_lifetime));
  }
  if ((*rec)->export_count() >= options_.max_exports_per_block) {
    return fail(Errc::kLimit,
                "export block {}: it has {} live exports, the most; withdraw some or let them "
                "be imported",
                b, (*rec)->export_count());
  }
  if ((*rec)->total >= kMaxReferences) {
    return fail(Errc::kLimit, "export block {}: it has {} references in all, the most pmmd counts",
                b, (*rec)->total);
  }
  if (auto q = admit_export(**sr); !q) return std::unexpected(q.error());
  if (lifetime.count() == 0) lifetime = options_.default_export_lifetime;
  Token t;
  // 120 random bits do not collide in practice; the loop makes it certain
  // for live exports. (One equal to a remembered dead token would only
  // take that token's place there when it ends: dead_.remember.)
  static_assert(kMaxPools <= 256, "a token's pool byte holds any pool's index");
  for (int tries = 0;; ++tries) {
    auto g = Token::generate(static_cast<uint8_t>((*rec)->pool()));
    if (!g) return std::unexpected(g.error());
    t = *g;
    if (!exports_.contains(t)) break;
    if (tries == 8) return fail(Errc::kSystem, "getrandom keeps returning used tokens");
  }
  Export e{.block = b,
           .imports_left = max_imports == 0 ? 1 : max_imports,
           .deadline = now + lifetime,
           .exporter = s,
           .exporter_uid = (*sr)->info.uid,
           .exporter_pid = (*sr)->info.pid,
           .exporter_device = (*sr)->device,
           .exporter_serial = (*sr)->serial};
  // Into the nodes the last removed export left, when there are: a
  // producer exporting frame after frame allocates no map nodes.
  if (!spare_deadline_.empty()) {
    spare_deadline_.value() = {e.deadline, t};
    deadlines_.insert(std::move(spare_deadline_));
    spare_deadline_ = {};
  } else {
    deadlines_.emplace(e.deadline, t);
  }
  if (!spare_export_.empty()) {
    spare_export_.key() = t;
    spare_export_.mapped() = e;
    exports_.insert(std::move(spare_export_));
    spare_export_ = {};
  } else {
    exports_.emplace(t, e);
  }
  add_export_token(**rec, t);
  ++(*rec)->total;
  ++(*sr)->exports;
  ++(*sr)->quota->exports;  // use_of(uid).exports, the session's own uid
  return t;
}

Result<BlockInfo> Ledger::import_block(SessionId s, const Token& t, SteadyTime now) {
  PMM_CHECK_ON_EXIT("Ledger::import_block", checks_, record_count(), check_invariants());
  auto sr = session(s);
  if (!sr) return std::unexpected(sr.error());
  auto it = exports_.find(t);
  if (it == exports_.end()) {
    auto d = dead_.find(t);
    if (!d) {
      return fail(Errc::kNotFound,
                  "import: no export has token {}; a token is valid from export until it is "
                  "imported, withdrawn or expires",
                  t.short_hex());
    }
    switch (*d) {
      case DeadReason::kWithdrawn:
        return fail(Errc::kNotFound, "import: token {} was withdrawn by its exporter",
                    t.short_hex());
      case DeadReason::kUsedUp:
        return fail(Errc::kExpired,
                    "import: token {} was imported as many times as its exporter allowed",
                    t.short_hex());
      case DeadReason::kExpired:
        return fail(Errc::kExpired, "import: token {} expired: its lifetime ran out",
                    t.short_hex());
    }
  }
  if (it->second.deadline <= now) {
    remove_export(t, DeadReason::kExpired);
    return fail(Errc::kExpired, "import: token {} expired: its lifetime ran out", t.short_hex());
  }
  BlockId b = it->second.block;
  const uint32_t slot = slot_of(b);
  BlockRecord& rec = slab_[slot];
  if (auto a = check_access(**sr, rec.pool(), "import"); !a) {
    return std::unexpected(a.error());
  }
  Holder* h = holder(rec, s);
  if (h == nullptr) {
    if (auto q = admit_hold(**sr, "import"); !q) return std::unexpected(q.error());
  }
  if (rec.total >= kMaxReferences) {
    return fail(Errc::kLimit, "import block {}: it has {} references in all, the most pmmd counts",
                b, rec.total);
  }
  if (h == nullptr) h = &add_holder(**sr, slot);
  ++h->references;
  ++rec.total;
  ++(*sr)->references;
  BlockInfo out = info(slot);
  if (--it->second.imports_left == 0) remove_export(t, DeadReason::kUsedUp);
  return out;
}

Status Ledger::unexport(SessionId s, const Token& t) {
  PMM_CHECK_ON_EXIT("Ledger::unexport", checks_, record_count(), check_invariants());
  auto sr = session(s);
  if (!sr) return std::unexpected(sr.error());
  auto it = exports_.find(t);
  if (it == exports_.end()) {
    auto d = dead_.find(t);
    if (!d) {
      return fail(Errc::kNotFound, "unexport: no export has token {}", t.short_hex());
    }
    if (*d == DeadReason::kWithdrawn) {
      return fail(Errc::kExists, "unexport: token {} was withdrawn already", t.short_hex());
    }
    return fail(
        Errc::kExpired, "unexport: token {} has ended already ({})", t.short_hex(),
        *d == DeadReason::kUsedUp ? "imported as often as allowed" : "its lifetime ran out");
  }
  uint32_t uid = (*sr)->info.uid;
  if (uid != 0 && uid != it->second.exporter_uid) {
    return fail(Errc::kPermission,
                "unexport: token {} was exported by uid {}; only that uid or root may withdraw "
                "it, not uid {}",
                t.short_hex(), it->second.exporter_uid, uid);
  }
  remove_export(t, DeadReason::kWithdrawn);
  return {};
}

Result<SysvSegment> Ledger::sysv_export(SessionId s, BlockId b) {
  PMM_CHECK_ON_EXIT("Ledger::sysv_export", checks_, record_count(), check_invariants());
  auto sr = session(s);
  if (!sr) return std::unexpected(sr.error());
  auto rec = held_block(**sr, b, "sysv-export");
  if (!rec) return std::unexpected(rec.error());
  const Pool& pool = *pools_[(*rec)->pool()].pool;
  if (pool.region().type() != mem::MemoryType::kSysv) {
    std::string sysv;
    for (const auto& p : pools_) {
      if (p.pool->region().type() == mem::MemoryType::kSysv) {
        sysv += (sysv.empty() ? "" : ", ") + p.pool->name();
      }
    }
    return fail(Errc::kUnsupported,
                "sysv-export block {}: it is in pool {} of type {}; only blocks of sysv pools "
                "can be exported as SysV segments (sysv pools here: {})",
                b, pool.name(), mem::memory_type_name(pool.region().type()),
                sysv.empty() ? std::string("none") : sysv);
  }
  Holder& h = *holder(**rec, s);
  if (h.sysv()) {
    return fail(Errc::kExists, "sysv-export block {}: session {} has exported it already", b, s);
  }
  if (auto q = admit_sysv_export(**sr); !q) return std::unexpected(q.error());
  if ((*rec)->total >= kMaxReferences) {
    return fail(Errc::kLimit,
                "sysv-export block {}: it has {} references in all, the most pmmd counts", b,
                (*rec)->total);
  }
  h.set_sysv(true);
  ++(*rec)->total;
  ++sysv_exports_;
  ++(*sr)->sysv_exports;
  ++use_of((*sr)->info.uid).sysv_exports;
  return SysvSegment{
      .shmid = pool.region().shmid(), .offset = (*rec)->offset, .size = (*rec)->size};
}

Status Ledger::sysv_unexport(SessionId s, BlockId b) {
  PMM_CHECK_ON_EXIT("Ledger::sysv_unexport", checks_, record_count(), check_invariants());
  auto sr = session(s);
  if (!sr) return std::unexpected(sr.error());
  BlockRecord* rec = find(b);
  Holder* h = rec != nullptr ? holder(*rec, s) : nullptr;
  if (h == nullptr || !h->sysv()) {
    return fail(Errc::kNotFound, "sysv-unexport block {}: session {} has no SysV export of it", b,
                s);
  }
  h->set_sysv(false);
  --sysv_exports_;
  --(*sr)->sysv_exports;
  --use_of((*sr)->info.uid).sysv_exports;
  tidy_use((*sr)->info.uid);
  if (h->empty()) remove_holder(**sr, slot_of(b));
  drop_reference(slot_of(b));
  return {};
}

size_t Ledger::expire(SteadyTime now) {
  PMM_CHECK_ON_EXIT("Ledger::expire", checks_, record_count(), check_invariants());
  size_t n = 0;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    remove_export(deadlines_.begin()->second, DeadReason::kExpired);
    ++n;
  }
  return n;
}

void Ledger::remove_export(Token t, DeadReason why) {
  auto it = exports_.find(t);
  Export e = it->second;
  // Kept for the next export (one node at most).
  spare_export_ = exports_.extract(it);
  if (SessionRecord* sr = live_exporter(e)) {
    --sr->exports;
    --sr->quota->exports;  // its uid is the exporter's: its entry stays
  } else {
    --use_of(e.exporter_uid).exports;
    tidy_use(e.exporter_uid);
  }
  spare_deadline_ = deadlines_.extract({e.deadline, t});
  remove_export_token(slab_[slot_of(e.block)], t);
  dead_.remember(t, why);
  drop_reference(slot_of(e.block));
}

}  // namespace pmm::core
