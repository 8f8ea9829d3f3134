// Ledger: admin views and the invariant check; see ledger.h.
#include <algorithm>

#include "core/ledger.h"

namespace pmm::core {

Result<BlockInfo> Ledger::block(BlockId b) const {
  if (find(b) == nullptr) return fail(Errc::kNotFound, "no block {}", b);
  return info(slot_of(b));
}

// ---- indexes ------------------------------------------------------------------

void Ledger::uid_device_change(uint32_t uid, size_t device, int64_t bytes, int64_t blocks,
                               int64_t sessions) {
  const std::pair<uint32_t, size_t> key{uid, device};
  UidDeviceUse& u = find_or_make(uid_devices_, spare_uid_device_, key);
  u.bytes += static_cast<uint64_t>(bytes);  // two's complement: adds a negative
  u.blocks += static_cast<uint64_t>(blocks);
  u.sessions += static_cast<uint64_t>(sessions);
  if (u.bytes == 0 && u.blocks == 0 && u.sessions == 0)
    spare_uid_device_ = uid_devices_.extract(key);
}

// ---- views --------------------------------------------------------------------

BlockView Ledger::view(const Viewer& viewer, uint32_t slot, bool every_token) const {
  const BlockRecord& rec = slab_[slot];
  BlockView v;
  v.info = info(slot);
  if (!viewer.phys && v.info.phys != 0) {
    v.info.phys = 0;
    v.phys_hidden = true;
  }
  v.device = devices_.device(rec.device()).config.name;
  v.references = rec.total;
  // In session order, as listings have always shown them.
  std::vector<const Holder*> holders;
  each_holder(rec, [&](const Holder& h) { holders.push_back(&h); });
  std::sort(holders.begin(), holders.end(),
            [](const Holder* a, const Holder* b) { return a->session < b->session; });
  for (const Holder* h : holders) {
    const SessionRecord& sr = sessions_.at(h->session);
    if (!viewer.all && sr.info.uid != viewer.uid) {
      v.hidden_holders += (h->references > 0 ? 1 : 0) + (h->sysv() ? 1 : 0);
      continue;
    }
    HolderView hv;
    hv.session = h->session;
    hv.pid = sr.info.pid;
    hv.uid = sr.info.uid;
    hv.device = devices_.device(sr.device).config.name;
    if (h->references > 0) {
      hv.references = h->references;
      v.holders.push_back(hv);
    }
    if (h->sysv()) {
      hv.kind = HolderView::Kind::kSysvExport;
      hv.references = 1;
      v.holders.push_back(std::move(hv));
    }
  }
  // In token order, as listings have always shown them.
  std::vector<Token> tokens;
  if (rec.extra) tokens = rec.extra->exports;
  std::sort(tokens.begin(), tokens.end());
  for (const Token& t : tokens) {
    const Export& e = exports_.at(t);
    if (!viewer.all && e.exporter_uid != viewer.uid) {
      ++v.hidden_holders;
      continue;
    }
    HolderView hv;
    hv.kind = HolderView::Kind::kExport;
    hv.session = e.exporter;
    hv.pid = e.exporter_pid;
    hv.uid = e.exporter_uid;
    hv.device = devices_.device(e.exporter_device).config.name;
    hv.references = 1;
    // Even an admin does not get the bits: whoever has them can import.
    hv.token_shown = every_token || e.exporter_uid == viewer.uid;
    if (hv.token_shown) hv.token = t;
    hv.imports_left = e.imports_left;
    hv.deadline = e.deadline;
    v.holders.push_back(std::move(hv));
  }
  return v;
}

SessionView Ledger::view(const SessionRecord& sr) const {
  return SessionView{.info = sr.info,
                     .device = devices_.device(sr.device).config.name,
                     .blocks = sr.holds.size(),
                     .references = sr.references,
                     .bytes = sr.bytes};
}

// Walks the id order after the cursor. A non-admin sees only some blocks
// (and the order keeps some freed ids for a while), so the walk stops after
// kScanPerItem * limit ids even if the page is not full, and the cursor it
// returns is the last id looked at: a page costs O(log n + limit) however
// few of the blocks the viewer may see.
ViewPage<BlockView> Ledger::blocks(const Viewer& viewer, BlockId after, size_t limit) const {
  constexpr size_t kScanPerItem = 64;
  ViewPage<BlockView> page;
  page.next_after = after;
  limit = std::max<size_t>(limit, 1);
  const size_t budget = limit * kScanPerItem;
  size_t scanned = 0;
  for (size_t i = order_after(after); i < order_.size(); ++i) {
    const BlockId b = order_[i];
    const BlockRecord* rec = find(b);  // null: freed, and the order forgets it later
    if ((rec != nullptr && page.items.size() == limit) || scanned == budget) {
      page.more = true;
      break;
    }
    ++scanned;
    page.next_after = b;
    if (rec != nullptr && (viewer.all || visible_to(viewer.uid, *rec))) {
      page.items.push_back(view(viewer, slot_of(b)));
    }
  }
  return page;
}

ViewPage<SessionView> Ledger::sessions(const Viewer& viewer, SessionId after, size_t limit) const {
  ViewPage<SessionView> page;
  limit = std::max<size_t>(limit, 1);
  if (viewer.all) {
    for (auto it = sessions_.upper_bound(after); it != sessions_.end(); ++it) {
      if (page.items.size() == limit) {
        page.more = true;
        break;
      }
      page.items.push_back(view(it->second));
      page.next_after = it->first;
    }
    return page;
  }
  for (auto it = uid_sessions_.upper_bound({viewer.uid, after});
       it != uid_sessions_.end() && it->first == viewer.uid; ++it) {
    if (page.items.size() == limit) {
      page.more = true;
      break;
    }
    page.items.push_back(view(sessions_.at(it->second)));
    page.next_after = it->second;
  }
  return page;
}

ViewPage<DeviceView> Ledger::devices(const Viewer& viewer, uint64_t after, size_t limit) const {
  ViewPage<DeviceView> page;
  limit = std::max<size_t>(limit, 1);
  auto all = devices_.all();
  if (viewer.all) {
    for (size_t i = std::min<uint64_t>(after, all.size()); i < all.size(); ++i) {
      if (page.items.size() == limit) {
        page.more = true;
        break;
      }
      page.items.push_back(DeviceView{.index = i,
                                      .device = &all[i],
                                      .used = all[i].used_bytes,
                                      .blocks = all[i].blocks,
                                      .sessions = all[i].sessions});
      page.next_after = i + 1;
    }
    return page;
  }
  // Device ids are index + 1, so "id > after" is "index >= after".
  for (auto it = uid_devices_.lower_bound({viewer.uid, std::min<uint64_t>(after, SIZE_MAX)});
       it != uid_devices_.end() && it->first.first == viewer.uid; ++it) {
    if (page.items.size() == limit) {
      page.more = true;
      break;
    }
    size_t i = it->first.second;
    page.items.push_back(DeviceView{.index = i,
                                    .device = &all[i],
                                    .used = it->second.bytes,
                                    .blocks = it->second.blocks,
                                    .sessions = it->second.sessions});
    page.next_after = i + 1;
  }
  return page;
}

std::vector<BlockView> Ledger::blocks() const {
  std::vector<BlockView> out;
  out.reserve(live_blocks_);
  Viewer admin{.uid = 0, .all = true, .phys = true};
  for (BlockId b : order_) {
    if (find(b) != nullptr) out.push_back(view(admin, slot_of(b), /*every_token=*/true));
  }
  return out;
}

uint64_t Ledger::export_count() const { return exports_.size() + sysv_exports_; }

std::vector<SessionView> Ledger::sessions() const {
  std::vector<SessionView> out;
  out.reserve(sessions_.size());
  for (const auto& [id, sr] : sessions_) out.push_back(view(sr));
  return out;
}

std::vector<PoolView> Ledger::pools() const {
  std::vector<PoolView> out;
  for (size_t i = 0; i < pools_.size(); ++i) {
    const Pool& p = *pools_[i].pool;
    PoolStats st = p.stats();
    out.push_back(PoolView{.name = p.name(),
                           .type = std::string(mem::memory_type_name(p.region().type())),
                           .strategy = std::string(p.strategy().name()),
                           .access = pools_[i].access.describe(),
                           .size = st.alloc.size,
                           .used = st.alloc.bytes_used,
                           .free = st.alloc.bytes_free,
                           .largest_free = st.alloc.largest_free,
                           .reserved = devices_.reserved_for_others(i, SIZE_MAX),
                           .blocks = st.alloc.live_blocks});
  }
  return out;
}

// The view indexes and session lists against the records they summarise,
// rebuilt from scratch.
Status Ledger::check_view_indexes() const {
  std::map<std::pair<uint32_t, size_t>, UidDeviceUse> uid_devices;
  for (const BlockRecord& rec : slab_) {
    if (!rec.live()) continue;
    UidDeviceUse& u = uid_devices[{rec.uid, rec.device()}];
    u.bytes += rec.size;
    ++u.blocks;
  }
  for (const auto& [id, sr] : sessions_) {
    ++uid_devices[{sr.info.uid, sr.device}].sessions;
    uint64_t refs = 0, bytes = 0;
    for (size_t pos = 0; pos < sr.holds.size(); ++pos) {
      const uint32_t slot = sr.holds[pos];
      const Holder* h =
          slot < slab_.size() && slab_[slot].live() ? holder(slab_[slot], id) : nullptr;
      if (h == nullptr || h->position() != pos) {
        return fail(Errc::kSystem,
                    "invariant: session {} lists slot {} at {}, which has no holder of it there",
                    id, slot, pos);
      }
      refs += h->references;
      bytes += slab_[slot].size;
    }
    if (refs != sr.references || bytes != sr.bytes || !uid_sessions_.contains({sr.info.uid, id})) {
      return fail(Errc::kSystem,
                  "invariant: session {} counts {} references / {} bytes, its holds {} / {}", id,
                  sr.references, sr.bytes, refs, bytes);
    }
  }
  if (uid_sessions_.size() != sessions_.size()) {
    return fail(Errc::kSystem, "invariant: {} sessions but {} in the uid index", sessions_.size(),
                uid_sessions_.size());
  }
  if (uid_devices.size() != uid_devices_.size()) {
    return fail(Errc::kSystem, "invariant: {} (uid, device) uses recorded, the records say {}",
                uid_devices_.size(), uid_devices.size());
  }
  for (const auto& [key, u] : uid_devices) {
    auto it = uid_devices_.find(key);
    if (it == uid_devices_.end() || it->second.bytes != u.bytes || it->second.blocks != u.blocks ||
        it->second.sessions != u.sessions) {
      return fail(Errc::kSystem, "invariant: uid {} device {} use disagrees with the records",
                  key.first, key.second);
    }
  }
  return {};
}

Status Ledger::check_invariants() const {
  if (auto s = check_slab(); !s) return s;
  for (const auto& [id, sr] : session_cache_) {
    if (sr == nullptr) continue;
    auto it = sessions_.find(id);
    if (it == sessions_.end() || &it->second != sr) {
      return fail(Errc::kSystem, "invariant: the session cache names session {}, not open there",
                  id);
    }
  }
  std::vector<uint64_t> pool_bytes(pools_.size(), 0), pool_blocks(pools_.size(), 0);
  std::vector<std::vector<uint64_t>> charged(devices_.size(),
                                             std::vector<uint64_t>(pools_.size(), 0));
  std::vector<uint64_t> device_blocks(devices_.size(), 0);
  uint64_t sysv = 0;
  for (uint32_t slot = 0; slot < slab_.size(); ++slot) {
    const BlockRecord& rec = slab_[slot];
    if (!rec.live()) continue;
    const BlockId id = id_of(slot);
    if (rec.pool() >= pools_.size() || rec.device() >= devices_.size()) {
      return fail(Errc::kSystem, "invariant: block {} names pool {} / device {}", id, rec.pool(),
                  rec.device());
    }
    uint64_t total = rec.export_count();
    Status bad{};
    each_holder(rec, [&](const Holder& h) {
      total += h.references + (h.sysv() ? 1 : 0);
      sysv += h.sysv() ? 1 : 0;
      auto sit = sessions_.find(h.session);
      if (!bad) return;
      if (sit == sessions_.end() || h.position() >= sit->second.holds.size() ||
          sit->second.holds[h.position()] != slot) {
        bad =
            fail(Errc::kSystem, "invariant: block {} is held by session {}, which does not list it",
                 id, h.session);
      }
    });
    if (!bad) return bad;
    if (rec.extra) {
      for (const Token& t : rec.extra->exports) {
        auto e = exports_.find(t);
        if (e == exports_.end() || e->second.block != id) {
          return fail(Errc::kSystem, "invariant: block {} lists export {} that is not its own", id,
                      t.short_hex());
        }
      }
    }
    if (total != rec.total || total == 0) {
      return fail(Errc::kSystem, "invariant: block {} counts {} references but holders add to {}",
                  id, rec.total, total);
    }
    pool_bytes[rec.pool()] += rec.size;
    ++pool_blocks[rec.pool()];
    charged[rec.device()][rec.pool()] += rec.size;
    ++device_blocks[rec.device()];
  }
  std::vector<uint64_t> device_sessions(devices_.size(), 0);
  for (const auto& [id, sr] : sessions_) {
    if (id != sr.info.id)
      return fail(Errc::kSystem, "invariant: session {} has id {}", id, sr.info.id);
    ++device_sessions[sr.device];
  }
  if (deadlines_.size() != exports_.size()) {
    return fail(Errc::kSystem, "invariant: {} exports but {} deadlines", exports_.size(),
                deadlines_.size());
  }
  for (const auto& [t, e] : exports_) {
    const BlockRecord* rec = find(e.block);
    if (rec == nullptr || !rec->extra ||
        std::count(rec->extra->exports.begin(), rec->extra->exports.end(), t) != 1 ||
        e.imports_left == 0 || !deadlines_.contains({e.deadline, t})) {
      return fail(Errc::kSystem, "invariant: export {} of block {} is inconsistent", t.short_hex(),
                  e.block);
    }
  }
  for (size_t d = 0; d < devices_.size(); ++d) {
    const Device& dev = devices_.device(d);
    uint64_t sum = 0;
    for (size_t p = 0; p < pools_.size(); ++p) {
      if (dev.used_in_pool[p] != charged[d][p]) {
        return fail(Errc::kSystem, "invariant: device {} is charged {} in pool {}, blocks say {}",
                    dev.config.name, dev.used_in_pool[p], pools_[p].pool->name(), charged[d][p]);
      }
      sum += charged[d][p];
    }
    if (dev.used_bytes != sum || dev.blocks != device_blocks[d] ||
        dev.sessions != device_sessions[d]) {
      return fail(Errc::kSystem, "invariant: device {} totals disagree with blocks/sessions",
                  dev.config.name);
    }
  }
  for (size_t p = 0; p < pools_.size(); ++p) {
    const Pool& pool = *pools_[p].pool;
    alloc::Stats st = pool.strategy().stats();
    if (st.bytes_used != pool_bytes[p] || st.live_blocks != pool_blocks[p]) {
      return fail(Errc::kSystem,
                  "invariant: pool {} allocator has {} blocks / {} bytes, the ledger {} / {}",
                  pool.name(), st.live_blocks, st.bytes_used, pool_blocks[p], pool_bytes[p]);
    }
    if (auto s = pool.strategy().check_invariants(); !s) {
      return fail(Errc::kSystem, "invariant: pool {}: {}", pool.name(), s.error().message);
    }
  }
  if (sysv != sysv_exports_) {
    return fail(Errc::kSystem, "invariant: {} SysV exports counted, {} held", sysv_exports_, sysv);
  }
  if (auto v = check_view_indexes(); !v) return v;
  if (auto d = dead_.check(); !d) return d;
  return check_quota_invariants();
}

}  // namespace pmm::core
