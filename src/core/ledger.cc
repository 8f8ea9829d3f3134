// The block table, sessions and exports; see ledger.h. Views and the
// invariant check are in ledger_views.cc.
#include "core/ledger.h"

#include <algorithm>

#include "base/units.h"

namespace pmm::core {

namespace {

// Zero would refuse everything; a granule that is not a power of two would
// misalign every block after the first.
Status check_quotas(const Quotas& q) {
  for (auto [name, v] : {std::pair{"blocks_per_session", q.blocks_per_session},
                         std::pair{"blocks_per_uid", q.blocks_per_uid},
                         std::pair{"exports_per_session", q.exports_per_session},
                         std::pair{"exports_per_uid", q.exports_per_uid},
                         std::pair{"sysv_exports_per_session", q.sysv_exports_per_session},
                         std::pair{"sysv_exports_per_uid", q.sysv_exports_per_uid}}) {
    if (v == 0) return fail(Errc::kInvalidArgument, "limit {} is 0; it must be at least 1", name);
  }
  if (q.block_granule == 0 || (q.block_granule & (q.block_granule - 1)) != 0) {
    return fail(Errc::kInvalidArgument, "block granule {} B is not a power of two",
                q.block_granule);
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<Ledger>> Ledger::create(std::vector<LedgerPool> pools,
                                               std::vector<DeviceConfig> devices,
                                               LedgerOptions options) {
  std::vector<std::string> names;
  std::vector<uint64_t> sizes;
  for (const auto& p : pools) {
    if (!p.pool) return fail(Errc::kInvalidArgument, "a pool is missing (null)");
    if (std::find(names.begin(), names.end(), p.pool->name()) != names.end()) {
      return fail(Errc::kExists, "pool {} is declared twice; pool names must be unique",
                  p.pool->name());
    }
    names.push_back(p.pool->name());
    sizes.push_back(p.pool->region().size());
  }
  if (options.default_export_lifetime.count() <= 0 ||
      options.default_export_lifetime > options.max_export_lifetime) {
    return fail(Errc::kInvalidArgument,
                "default export lifetime {} must be above 0 and at most the maximum {}",
                format_duration(options.default_export_lifetime),
                format_duration(options.max_export_lifetime));
  }
  if (auto q = check_quotas(options.quotas); !q) return std::unexpected(q.error());
  if (pools.size() > kMaxPools) {
    return fail(Errc::kInvalidArgument, "{} pools declared; pmmd keeps at most {}", pools.size(),
                kMaxPools);
  }
  if (devices.size() + 1 > kMaxDevices) {
    return fail(Errc::kInvalidArgument, "{} devices declared; pmmd keeps at most {}",
                devices.size(), kMaxDevices - 1);
  }
  auto table = DeviceTable::create(std::move(devices), names, sizes);
  if (!table) return std::unexpected(table.error());
  return std::unique_ptr<Ledger>(new Ledger(std::move(pools), std::move(*table), options));
}

Ledger::Ledger(std::vector<LedgerPool> pools, DeviceTable devices, LedgerOptions options)
    : pools_(std::move(pools)), devices_(std::move(devices)), options_(options) {}

Ledger::~Ledger() = default;

std::optional<size_t> Ledger::find_pool(std::string_view name) const {
  for (size_t i = 0; i < pools_.size(); ++i) {
    if (pools_[i].pool->name() == name) return i;
  }
  return std::nullopt;
}

// ---- sessions ---------------------------------------------------------------

Result<std::string> Ledger::open_session(SessionInfo info) {
  PMM_CHECK_ON_EXIT("Ledger::open_session", checks_, record_count(), check_invariants());
  if (sessions_.contains(info.id)) {
    return fail(Errc::kExists, "session {} is open already", info.id);
  }
  auto device = devices_.claim(info.device, info.uid, info.gid, info.groups);
  if (!device) return std::unexpected(device.error());
  SessionRecord sr;
  sr.device = *device;
  sr.info = std::move(info);
  sr.serial = next_serial_++;
  devices_.session_opened(sr.device);
  std::string name = devices_.device(sr.device).config.name;
  insert_reusing(uid_sessions_, spare_uid_session_, {sr.info.uid, sr.info.id});
  uid_device_change(sr.info.uid, sr.device, 0, 0, 1);
  sr.uid_device = &uid_devices_.find({sr.info.uid, sr.device})->second;
  sr.quota = &find_or_make(uid_use_, spare_uid_use_, sr.info.uid);
  ++sr.quota->sessions;
  const SessionId id = sr.info.id;
  if (spare_session_.empty()) {
    sessions_.emplace(id, std::move(sr));
  } else {
    spare_session_.key() = id;
    spare_session_.mapped() = std::move(sr);
    sessions_.insert(std::move(spare_session_));
  }
  return name;
}

Result<CloseSummary> Ledger::close_session(SessionId s) {
  PMM_CHECK_ON_EXIT("Ledger::close_session", checks_, record_count(), check_invariants());
  auto it = sessions_.find(s);
  if (it == sessions_.end() || it->second.closing) return fail(Errc::kNotFound, "no session {}", s);
  CloseSummary sum;
  size_t budget = SIZE_MAX;
  drop_holds(it->second, budget, sum);
  finish_close(it);
  return sum;
}

Status Ledger::begin_close(SessionId s) {
  PMM_CHECK_ON_EXIT("Ledger::begin_close", checks_, record_count(), check_invariants());
  auto it = sessions_.find(s);
  if (it == sessions_.end() || it->second.closing) return fail(Errc::kNotFound, "no session {}", s);
  it->second.closing = true;
  closing_.push_back(s);
  return {};
}

std::vector<std::pair<SessionId, CloseSummary>> Ledger::reap(size_t budget) {
  std::vector<std::pair<SessionId, CloseSummary>> done;
  reap(budget, done);
  return done;
}

void Ledger::reap(size_t budget, std::vector<std::pair<SessionId, CloseSummary>>& done) {
  PMM_CHECK_ON_EXIT("Ledger::reap", checks_, record_count(), check_invariants());
  done.clear();
  while (budget > 0 && !closing_.empty()) {
    auto it = sessions_.find(closing_.front());
    SessionRecord& sr = it->second;
    drop_holds(sr, budget, sr.closed);
    if (!sr.holds.empty()) break;  // budget spent
    done.emplace_back(it->first, sr.closed);
    finish_close(it);
    closing_.pop_front();
  }
}

void Ledger::drop_holds(SessionRecord& sr, size_t& budget, CloseSummary& sum) {
  const SessionId s = sr.info.id;
  // From the back: the session's list shrinks without moving anything.
  while (budget > 0 && !sr.holds.empty()) {
    --budget;
    const uint32_t slot = sr.holds.back();
    BlockRecord& rec = slab_[slot];
    const Holder h = *holder(rec, s);
    remove_holder(sr, slot);
    sr.references -= h.references;
    uint32_t n = h.references + (h.sysv() ? 1 : 0);
    if (h.sysv()) {
      --sysv_exports_;
      --sr.sysv_exports;
      --sr.quota->sysv_exports;
    }
    sum.references_dropped += n;
    const uint64_t size = rec.size;
    rec.total -= n - 1;  // drop_reference takes the last one and frees at zero
    if (drop_reference(slot, &sr)) {
      sum.bytes_freed += size;
      ++sum.blocks_freed;
    }
  }
}

void Ledger::finish_close(std::map<SessionId, SessionRecord>::iterator it) {
  devices_.session_closed(it->second.device);
  --it->second.quota->sessions;
  tidy_use(it->second.info.uid);
  if (auto n = uid_sessions_.extract({it->second.info.uid, it->first}))
    spare_uid_session_ = std::move(n);
  if (auto& c = session_cache_[it->first % kSessionCache]; c.second == &it->second) c = {};
  uid_device_change(it->second.info.uid, it->second.device, 0, 0, -1);
  spare_session_ = sessions_.extract(it);
}

Result<Ledger::SessionRecord*> Ledger::session_slow(SessionId s) {
  auto& cached = session_cache_[s % kSessionCache];
  SessionRecord* sr = nullptr;
  if (cached.second != nullptr && cached.first == s) {
    sr = cached.second;
  } else {
    auto it = sessions_.find(s);
    if (it != sessions_.end()) {
      sr = &it->second;
      cached = {s, sr};
    }
  }
  if (sr == nullptr || sr->closing) {
    return fail(Errc::kNotFound, "no session {}; open a session first", s);
  }
  return sr;
}

std::unexpected<Error> Ledger::refuse_held_block(const SessionRecord& sr, BlockId b,
                                                 std::string_view op) const {
  return fail(Errc::kNotFound,
              "{} block {}: session {} holds no reference to it; a session may {} only blocks "
              "it allocated or imported and has not put",
              op, b, sr.info.id, op);
}

// ---- blocks -------------------------------------------------------------------

std::unexpected<Error> Ledger::refuse_access(const SessionRecord& sr, size_t pool,
                                             std::string_view op) const {
  const LedgerPool& p = pools_[pool];
  return fail(Errc::kPermission, "{} in pool {}: uid {} gid {} may not use it; allowed: {}", op,
              p.pool->name(), sr.info.uid, sr.info.gid, p.access.describe());
}

Result<BlockInfo> Ledger::allocate(SessionId s, std::span<const std::string> pools, uint64_t size,
                                   uint64_t alignment, AllocFlags flags) {
  PMM_CHECK_ON_EXIT("Ledger::allocate", checks_, record_count(), check_invariants());
  auto sr = session(s);
  if (!sr) return std::unexpected(sr.error());
  const Device& dev = devices_.device((*sr)->device);
  if (size == 0) return fail(Errc::kInvalidArgument, "size 0: a block needs at least 1 byte");
  if (auto q = admit_new_block(**sr); !q) return std::unexpected(q.error());
  auto rounded = granular(size);
  if (!rounded) return std::unexpected(rounded.error());
  size = *rounded;
  if (alignment == 0) alignment = dev.config.default_alignment;
  flags.contiguous = flags.contiguous || dev.config.contiguous;

  // The pools to try, in order: the device's, or the named ones, every name
  // checked before any is tried. No list is built (a heap allocation per
  // allocate): a named pool after the first is looked up again when its
  // turn comes (the first, usually the only one, is kept).
  const size_t count = pools.empty() ? dev.pools.size() : pools.size();
  size_t first = 0;
  for (size_t k = 0; k < pools.size(); ++k) {
    auto i = find_pool(pools[k]);
    if (!i) {
      std::string all;
      for (const auto& p : pools_) all += (all.empty() ? "" : ", ") + p.pool->name();
      return fail(Errc::kNotFound, "no pool named '{}'; the pools are: {}", pools[k], all);
    }
    if (k == 0) first = *i;
  }
  if (count == 0) {
    return fail(Errc::kNotFound, "device {} has no pools to allocate from", dev.config.name);
  }
  auto pool_at = [&](size_t k) {
    return pools.empty() ? dev.pools[k] : k == 0 ? first : *find_pool(pools[k]);
  };
  if (count == 1) return allocate_in(**sr, pool_at(0), size, alignment, flags);
  std::string reasons;
  Error last;
  for (size_t k = 0; k < count; ++k) {
    auto r = allocate_in(**sr, pool_at(k), size, alignment, flags);
    if (r) return r;
    if (r.error().code == Errc::kInvalidArgument) return r;
    reasons += fmt::format("{}{}", reasons.empty() ? "" : "; ", r.error().message);
    last = std::move(r.error());
  }
  return fail(last.code, "no pool could give {}: {}", format_size(size), reasons);
}

// Inline into allocate(): one frame for the common allocate from one pool.
[[gnu::always_inline]] inline Result<BlockInfo> Ledger::allocate_in(SessionRecord& sr, size_t p,
                                                                    uint64_t size,
                                                                    uint64_t alignment,
                                                                    AllocFlags flags) {
  if (auto a = check_access(sr, p, "allocate"); !a) return std::unexpected(a.error());
  Pool& pool = *pools_[p].pool;
  // The strategy's size and bytes used only: Pool::stats() also reads the
  // pool's health (an fstat() of its memory file for a resident pool), and
  // the strategy's full stats() finds the largest free extent, which only a
  // refusal names.
  const alloc::Strategy& strategy = pool.strategy();
  const uint64_t pool_size = pool.region().size();  // the strategy's too (Pool::create)
  // The allocator calls a size beyond its space a bad argument; to a client
  // it is a valid request this pool cannot meet, and the next pool may.
  if (size > pool_size) {
    return fail(Errc::kNoMemory, "pool {}: {} asked but the pool has {} (largest free extent {})",
                pool.name(), format_size(size), format_size(pool_size),
                format_size(strategy.stats().largest_free));
  }
  uint64_t free_before = pool_size - strategy.bytes_used();
  if (auto ok = devices_.admit(sr.device, p, pool.name(), size, free_before); !ok) {
    return std::unexpected(ok.error());
  }
  auto blk = pool.allocate(AllocRequest{
      .size = size, .alignment = alignment, .contiguous = flags.contiguous, .zero = flags.zero});
  if (!blk) return std::unexpected(blk.error());
  // A pool may round the size up; the rules must hold for what it gave.
  if (blk->size != size) {
    if (auto ok = devices_.admit(sr.device, p, pool.name(), blk->size, free_before); !ok) {
      (void)pool.release(blk->handle);  // just allocated: cannot fail
      return std::unexpected(ok.error());
    }
  }
  auto slot = take_slot();
  if (!slot) {
    (void)pool.release(blk->handle);  // just allocated: cannot fail
    return std::unexpected(slot.error());
  }
  BlockRecord& rec = slab_[*slot];
  // The physical address is the pool's for that offset, so the record keeps
  // only whether it is known (make_ready() may have found it moved).
  rec.key |= (uint64_t{sr.device} << 9) | (uint64_t{p} << 1) | (blk->phys != 0 ? 1 : 0);
  rec.offset = blk->offset;
  rec.size = blk->size;
  rec.handle = blk->handle;
  rec.uid = sr.info.uid;
  ++sr.quota->blocks;
  rec.total = 1;
  devices_.charge(sr.device, p, blk->size);
  // What uid_device_change(uid, device, size, 1, 0) does, without the
  // lookup: the entry holds this session, so it is not erased.
  sr.uid_device->bytes += blk->size;
  ++sr.uid_device->blocks;
  add_holder(sr, *slot).references = 1;
  ++sr.references;
  BlockInfo out = info(*slot);
  out.phys = blk->phys;
  return out;
}

Result<uint64_t> Ledger::get(SessionId s, BlockId b) {
  PMM_CHECK_ON_EXIT("Ledger::get", checks_, record_count(), check_invariants());
  auto sr = session(s);
  if (!sr) return std::unexpected(sr.error());
  auto rec = held_block(**sr, b, "get");
  if (!rec) return std::unexpected(rec.error());
  Holder& h = *holder(**rec, s);
  if ((*rec)->total >= kMaxReferences) {
    return fail(Errc::kLimit,
                "get block {}: it has {} references in all (session {} holds {}), the most pmmd "
                "counts; put some first",
                b, (*rec)->total, s, h.references);
  }
  ++h.references;
  ++(*rec)->total;
  ++(*sr)->references;
  return h.references;
}

Result<uint64_t> Ledger::put(SessionId s, BlockId b) {
  PMM_CHECK_ON_EXIT("Ledger::put", checks_, record_count(), check_invariants());
  auto sr = session(s);
  if (!sr) return std::unexpected(sr.error());
  auto rec = held_block(**sr, b, "put");
  if (!rec) return std::unexpected(rec.error());
  Holder& h = *holder(**rec, s);
  uint64_t left = --h.references;
  --(*sr)->references;
  const uint32_t slot = slot_of(b);
  if (h.empty()) remove_holder(**sr, slot);
  drop_reference_inline(slot, *sr);
  return left;
}

bool Ledger::drop_reference(uint32_t slot, SessionRecord* by) {
  return drop_reference_inline(slot, by);
}

[[gnu::always_inline]] inline bool Ledger::drop_reference_inline(uint32_t slot, SessionRecord* by) {
  BlockRecord& rec = slab_[slot];
  if (--rec.total > 0) return false;
  // Nothing holds it: back to the pool. Release of a handle the pool gave
  // us cannot fail; check_invariants() would catch a pool that disagrees.
  (void)pools_[rec.pool()].pool->release(rec.handle);
  devices_.uncharge(rec.device(), rec.pool(), rec.size);
  const uint32_t uid = rec.uid;
  const size_t device = rec.device();
  const uint64_t size = rec.size;
  free_slot(slot);
  if (by != nullptr && by->info.uid == uid) {
    // The session's own uid: its entries are at hand and stay (it is open).
    --by->quota->blocks;
    if (by->device == device) {
      by->uid_device->bytes -= size;
      --by->uid_device->blocks;
      return true;
    }
  } else {
    --use_of(uid).blocks;
    tidy_use(uid);
  }
  uid_device_change(uid, device, -static_cast<int64_t>(size), -1, 0);
  return true;
}

}  // namespace pmm::core
