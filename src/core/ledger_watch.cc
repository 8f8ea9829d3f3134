// Ledger::references_of: what the daemon's release notifications
// (daemon/service_frames.cc) ask of the books. Kept apart from the ledger's
// internals so that it reads only what every version of them keeps: a
// block's total count and one session's share of it.
#include "core/ledger.h"

namespace pmm::core {

Result<Ledger::ReferencesOf> Ledger::references_of(BlockId b, SessionId s) const {
  const BlockRecord* rec = find(b);
  if (rec == nullptr) return fail(Errc::kNotFound, "no block {}", b);
  ReferencesOf r;
  if (const Holder* h = holder(*rec, s)) r.mine = h->references;
  r.others = rec->total - r.mine;
  return r;
}

}  // namespace pmm::core
