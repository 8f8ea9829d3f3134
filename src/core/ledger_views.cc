// Ledger: admin views and the invariant check; see ledger.h.
#include <algorithm>

#include "core/ledger.h"

namespace pmm::core {

Result<BlockInfo> Ledger::block(BlockId b) const {
  auto it = blocks_.find(b);
  if (it == blocks_.end()) return fail(Errc::kNotFound, "no block {}", b);
  return it->second.info;
}

std::vector<BlockView> Ledger::blocks() const {
  std::vector<BlockView> out;
  out.reserve(blocks_.size());
  for (const auto& [id, rec] : blocks_) {
    BlockView v;
    v.info = rec.info;
    v.device = devices_.device(rec.device).config.name;
    v.references = rec.total;
    for (const auto& [s, h] : rec.sessions) {
      const SessionRecord& sr = sessions_.at(s);
      HolderView hv;
      hv.session = s;
      hv.pid = sr.info.pid;
      hv.device = devices_.device(sr.device).config.name;
      if (h.references > 0) {
        hv.references = h.references;
        v.holders.push_back(hv);
      }
      if (h.sysv) {
        hv.kind = HolderView::Kind::kSysvExport;
        hv.references = 1;
        v.holders.push_back(std::move(hv));
      }
    }
    for (const Token& t : rec.exports) {
      const Export& e = exports_.at(t);
      HolderView hv;
      hv.kind = HolderView::Kind::kExport;
      hv.session = e.exporter;
      hv.pid = e.exporter_pid;
      hv.device = devices_.device(e.exporter_device).config.name;
      hv.references = 1;
      hv.token = t;
      hv.imports_left = e.imports_left;
      hv.deadline = e.deadline;
      v.holders.push_back(std::move(hv));
    }
    out.push_back(std::move(v));
  }
  return out;
}

uint64_t Ledger::export_count() const { return exports_.size() + sysv_exports_; }

std::vector<SessionView> Ledger::sessions() const {
  std::vector<SessionView> out;
  out.reserve(sessions_.size());
  for (const auto& [id, sr] : sessions_) {
    SessionView v;
    v.info = sr.info;
    v.device = devices_.device(sr.device).config.name;
    for (BlockId b : sr.blocks) {
      const BlockRecord& rec = blocks_.at(b);
      const Hold& h = rec.sessions.at(id);
      ++v.blocks;
      v.references += h.references;
      v.bytes += rec.info.size;
    }
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(),
            [](const SessionView& a, const SessionView& b) { return a.info.id < b.info.id; });
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

Status Ledger::check_invariants() const {
  std::vector<uint64_t> pool_bytes(pools_.size(), 0), pool_blocks(pools_.size(), 0);
  std::vector<std::vector<uint64_t>> charged(devices_.size(),
                                             std::vector<uint64_t>(pools_.size(), 0));
  std::vector<uint64_t> device_blocks(devices_.size(), 0);
  for (const auto& [id, rec] : blocks_) {
    if (id != rec.info.id || id == 0 || id >= next_block_) {
      return fail(Errc::kSystem, "invariant: block {} has id {} (next id {})", id, rec.info.id,
                  next_block_);
    }
    if (rec.info.pool >= pools_.size() || rec.device >= devices_.size()) {
      return fail(Errc::kSystem, "invariant: block {} names pool {} / device {}", id, rec.info.pool,
                  rec.device);
    }
    uint64_t total = rec.exports.size();
    for (const auto& [s, h] : rec.sessions) {
      if (h.references == 0 && !h.sysv) {
        return fail(Errc::kSystem, "invariant: block {} keeps an empty hold of session {}", id, s);
      }
      total += h.references + (h.sysv ? 1 : 0);
      auto sit = sessions_.find(s);
      if (sit == sessions_.end() || !sit->second.blocks.contains(id)) {
        return fail(Errc::kSystem,
                    "invariant: block {} is held by session {}, which does not list it", id, s);
      }
    }
    for (const Token& t : rec.exports) {
      auto e = exports_.find(t);
      if (e == exports_.end() || e->second.block != id) {
        return fail(Errc::kSystem, "invariant: block {} lists export {} that is not its own", id,
                    t.short_hex());
      }
    }
    if (total != rec.total || total == 0) {
      return fail(Errc::kSystem, "invariant: block {} counts {} references but holders add to {}",
                  id, rec.total, total);
    }
    pool_bytes[rec.info.pool] += rec.info.size;
    ++pool_blocks[rec.info.pool];
    charged[rec.device][rec.info.pool] += rec.info.size;
    ++device_blocks[rec.device];
  }
  std::vector<uint64_t> device_sessions(devices_.size(), 0);
  for (const auto& [id, sr] : sessions_) {
    if (id != sr.info.id)
      return fail(Errc::kSystem, "invariant: session {} has id {}", id, sr.info.id);
    ++device_sessions[sr.device];
    for (BlockId b : sr.blocks) {
      auto it = blocks_.find(b);
      if (it == blocks_.end() || !it->second.sessions.contains(id)) {
        return fail(Errc::kSystem, "invariant: session {} lists block {}, which has no hold of it",
                    id, b);
      }
    }
  }
  if (deadlines_.size() != exports_.size()) {
    return fail(Errc::kSystem, "invariant: {} exports but {} deadlines", exports_.size(),
                deadlines_.size());
  }
  for (const auto& [t, e] : exports_) {
    auto it = blocks_.find(e.block);
    if (it == blocks_.end() || !it->second.exports.contains(t) || e.imports_left == 0 ||
        !deadlines_.contains({e.deadline, t})) {
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
  uint64_t sysv = 0;
  for (const auto& [id, rec] : blocks_) {
    for (const auto& [s, h] : rec.sessions) sysv += h.sysv ? 1 : 0;
  }
  if (sysv != sysv_exports_) {
    return fail(Errc::kSystem, "invariant: {} SysV exports counted, {} held", sysv_exports_, sysv);
  }
  if (dead_.size() != dead_order_.size()) {
    return fail(Errc::kSystem, "invariant: {} dead tokens but {} in order", dead_.size(),
                dead_order_.size());
  }
  return check_quota_invariants();
}

}  // namespace pmm::core
