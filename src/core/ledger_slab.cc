// Ledger: the block table's storage — the slab of records, block ids, free
// slots, the id order, and each block's holders and export tokens; see
// "the block table" in ledger.h.
//
// Why this shape: at a million live blocks the daemon's memory is its block
// records. A map node per block, per hold and per (uid, block) cost 432 B a
// block; a 64-byte slab record with its first holder inline, 4 B in the
// holding session's list and 8-16 B in the id order cost about 80 B. The
// rare block with several holders or exports pays for a side record.
#include <algorithm>
#include <functional>

#include "core/ledger.h"

namespace pmm::core {

Result<uint32_t> Ledger::take_slot() {
  if (live_blocks_ >= kMaxLiveBlocks) {
    return fail(Errc::kLimit,
                "allocate: pmmd holds {} live blocks, the most its block table can address; free "
                "some",
                live_blocks_);
  }
  if (next_block_serial_ > kMaxSerial) {
    return fail(Errc::kLimit,
                "allocate: pmmd has handed out 2^40 block ids, every one it can without reusing "
                "one; restart it");
  }
  uint32_t slot = 0;
  auto above = std::greater<uint32_t>();
  // Entries at or above the slab's end were left by trimming; the heap's
  // least entry being one of them means all are.
  if (!free_slots_.empty() && free_slots_.front() < slab_.size()) {
    std::pop_heap(free_slots_.begin(), free_slots_.end(), above);
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    free_slots_.clear();
    stale_free_ = 0;
    slot = static_cast<uint32_t>(slab_.size());
    slab_.emplace_back();
  }
  slab_[slot].key = next_block_serial_++ << kSlotBits;
  ++live_blocks_;
  order_.push_back(id_of(slot));
  return slot;
}

void Ledger::free_slot(uint32_t slot) {
  slab_[slot] = BlockRecord{};
  --live_blocks_;
  // Trim the slab's free tail; the free list forgets those slots lazily.
  if (slot + 1 == slab_.size()) {
    while (!slab_.empty() && !slab_.back().live()) {
      slab_.pop_back();
      ++stale_free_;
    }
    --stale_free_;  // `slot` itself was never put in the free list
    if (slab_.capacity() > 1024 && slab_.size() < slab_.capacity() / 4) slab_.shrink_to_fit();
  } else {
    free_slots_.push_back(slot);
    std::push_heap(free_slots_.begin(), free_slots_.end(), std::greater<uint32_t>());
  }
  if (slab_.empty()) {
    free_slots_ = {};
    stale_free_ = 0;
  } else if (stale_free_ > 64 && stale_free_ * 2 > free_slots_.size()) {
    const size_t end = slab_.size();
    std::erase_if(free_slots_, [end](uint32_t s) { return s >= end; });
    std::make_heap(free_slots_.begin(), free_slots_.end(), std::greater<uint32_t>());
    stale_free_ = 0;
    if (free_slots_.capacity() > 1024 && free_slots_.size() < free_slots_.capacity() / 4) {
      free_slots_.shrink_to_fit();
    }
  }
  // The id order keeps the freed id until the dead outnumber the live.
  if (live_blocks_ == 0) {
    order_ = {};
    order_dead_ = 0;
  } else if (++order_dead_ > live_blocks_ && order_dead_ > 64) {
    std::erase_if(order_, [this](BlockId b) { return find(b) == nullptr; });
    order_dead_ = 0;
    if (order_.capacity() > 1024 && order_.size() < order_.capacity() / 4) order_.shrink_to_fit();
  }
}

size_t Ledger::order_after(BlockId after) const {
  return static_cast<size_t>(std::upper_bound(order_.begin(), order_.end(), after) -
                             order_.begin());
}

BlockInfo Ledger::info(uint32_t slot) const {
  const BlockRecord& rec = slab_[slot];
  const Pool& pool = *pools_[rec.pool()].pool;
  return BlockInfo{.id = id_of(slot),
                   .pool = rec.pool(),
                   .pool_name = pool.name(),
                   .offset = rec.offset,
                   .size = rec.size,
                   .phys = rec.phys_known() ? pool.physical_address(rec.offset) : 0};
}

// ---- holders ------------------------------------------------------------------

namespace {
bool by_session(const auto& h, SessionId s) { return h.session < s; }
}  // namespace

const Ledger::Holder* Ledger::other_holder(const BlockRecord& rec, SessionId s) const {
  if (!rec.extra) return nullptr;
  const auto& hs = rec.extra->holders;
  auto it = std::lower_bound(hs.begin(), hs.end(), s, by_session<Holder>);
  return it != hs.end() && it->session == s ? &*it : nullptr;
}

Ledger::Holder& Ledger::add_holder(SessionRecord& sr, uint32_t slot) {
  BlockRecord& rec = slab_[slot];
  Holder h{.session = sr.info.id, .references = 0, .packed = 0};
  h.set_position(static_cast<uint32_t>(sr.holds.size()));
  sr.holds.push_back(slot);
  sr.bytes += rec.size;
  if (!rec.holder.used()) {
    rec.holder = h;
    rec.holder.packed |= Holder::kHolderUsed;
    return rec.holder;
  }
  if (!rec.extra) rec.extra = new_extra();
  auto& hs = rec.extra->holders;
  auto it = std::lower_bound(hs.begin(), hs.end(), h.session, by_session<Holder>);
  return *hs.insert(it, h);
}

void Ledger::remove_holder(SessionRecord& sr, uint32_t slot) {
  BlockRecord& rec = slab_[slot];
  Holder* h = holder(rec, sr.info.id);
  const uint32_t pos = h->position();
  if (h == &rec.holder) {
    rec.holder = Holder{};
  } else {
    auto& hs = rec.extra->holders;
    hs.erase(hs.begin() + (h - hs.data()));
    tidy_extra(rec);
  }
  sr.bytes -= rec.size;
  // Swap-remove from the session's list; the moved block's holder learns
  // its new place.
  const uint32_t last = sr.holds.back();
  sr.holds[pos] = last;
  sr.holds.pop_back();
  if (last != slot) holder(slab_[last], sr.info.id)->set_position(pos);
  if (sr.holds.capacity() > 64 && sr.holds.size() < sr.holds.capacity() / 4) {
    sr.holds.shrink_to_fit();
  }
}

void Ledger::add_export_token(BlockRecord& rec, const Token& t) {
  if (!rec.extra) rec.extra = new_extra();
  rec.extra->exports.push_back(t);
}

void Ledger::remove_export_token(BlockRecord& rec, const Token& t) {
  auto& ts = rec.extra->exports;
  auto it = std::find(ts.begin(), ts.end(), t);
  *it = ts.back();
  ts.pop_back();
  tidy_extra(rec);
}

void Ledger::tidy_extra(BlockRecord& rec) {
  if (!rec.extra || !rec.extra->holders.empty() || !rec.extra->exports.empty()) return;
  // One emptied side record is kept for the next block that needs one: a
  // block exported and imported frame after frame would otherwise cost an
  // allocation and a free of the record and its list per export. Only a
  // small one: the spare is memory no block accounts for.
  constexpr size_t kSpareKept = 4;
  if (!spare_extra_ && rec.extra->holders.capacity() <= kSpareKept &&
      rec.extra->exports.capacity() <= kSpareKept) {
    spare_extra_ = std::move(rec.extra);
  } else {
    rec.extra.reset();
  }
}

std::unique_ptr<Ledger::BlockExtra> Ledger::new_extra() {
  if (spare_extra_) return std::move(spare_extra_);
  return std::make_unique<BlockExtra>();
}

bool Ledger::visible_to(uint32_t uid, const BlockRecord& rec) const {
  bool seen = false;
  each_holder(rec,
              [&](const Holder& h) { seen = seen || sessions_.at(h.session).info.uid == uid; });
  if (seen || !rec.extra) return seen;
  for (const Token& t : rec.extra->exports) {
    if (exports_.at(t).exporter_uid == uid) return true;
  }
  return false;
}

// ---- invariants ---------------------------------------------------------------

Status Ledger::check_slab() const {
  size_t live = 0;
  std::vector<char> listed(slab_.size(), 0);
  size_t stale = 0;
  for (uint32_t s : free_slots_) {
    if (s >= slab_.size()) {
      ++stale;
      continue;
    }
    if (slab_[s].live() || listed[s]) {
      return fail(Errc::kSystem, "invariant: free list names slot {}, which is {}", s,
                  listed[s] ? "listed twice" : "live");
    }
    listed[s] = 1;
  }
  if (stale != stale_free_) {
    return fail(Errc::kSystem, "invariant: free list has {} entries past the slab, counted {}",
                stale, stale_free_);
  }
  if (!std::is_heap(free_slots_.begin(), free_slots_.end(), std::greater<uint32_t>())) {
    return fail(Errc::kSystem, "invariant: the free list is not a min-heap");
  }
  for (uint32_t s = 0; s < slab_.size(); ++s) {
    const BlockRecord& rec = slab_[s];
    if (!rec.live()) {
      if (!listed[s]) return fail(Errc::kSystem, "invariant: free slot {} is not listed", s);
      if (rec.extra || rec.holder.used() || rec.total != 0) {
        return fail(Errc::kSystem, "invariant: free slot {} keeps a record", s);
      }
      continue;
    }
    ++live;
    if (rec.serial() >= next_block_serial_) {
      return fail(Errc::kSystem, "invariant: slot {} has serial {} (next {})", s, rec.serial(),
                  next_block_serial_);
    }
    if (rec.extra && rec.extra->holders.empty() && rec.extra->exports.empty()) {
      return fail(Errc::kSystem, "invariant: block {} keeps an empty side record", id_of(s));
    }
    if (rec.holder.used() && rec.holder.empty()) {
      return fail(Errc::kSystem, "invariant: block {} keeps an empty hold of session {}", id_of(s),
                  rec.holder.session);
    }
    if (rec.extra) {
      const auto& hs = rec.extra->holders;
      for (size_t i = 0; i < hs.size(); ++i) {
        if (hs[i].empty() || hs[i].used() || (i > 0 && hs[i - 1].session >= hs[i].session) ||
            (rec.holder.used() && rec.holder.session == hs[i].session)) {
          return fail(Errc::kSystem, "invariant: block {} has holders out of order or twice",
                      id_of(s));
        }
      }
    }
  }
  if (!slab_.empty() && !slab_.back().live()) {
    return fail(Errc::kSystem, "invariant: the slab ends in a free slot");
  }
  if (live != live_blocks_) {
    return fail(Errc::kSystem, "invariant: {} live records, counted {}", live, live_blocks_);
  }
  size_t in_order = 0, dead = 0;
  for (size_t i = 0; i < order_.size(); ++i) {
    if (i > 0 && order_[i - 1] >= order_[i]) {
      return fail(Errc::kSystem, "invariant: the id order is not increasing at {}", i);
    }
    (find(order_[i]) ? in_order : dead) += 1;
  }
  if (in_order != live_blocks_ || dead != order_dead_) {
    return fail(Errc::kSystem, "invariant: the id order has {} live / {} dead ids, counted {} / {}",
                in_order, dead, live_blocks_, order_dead_);
  }
  return {};
}

}  // namespace pmm::core
