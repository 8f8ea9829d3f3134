// Service: the invariant walk a running daemon does for `pmmctl check`.
//
// Every pool's allocator (its own structures and the pool's accounting)
// and then the whole ledger (counts, holders, sessions, device charges,
// exports and deadlines, each against the others and against the
// allocators) are walked; the first violation is returned as text, so an
// operator learns of a bookkeeping bug without attaching a debugger, and a
// stress run can assert a clean daemon at its end.
//
// Who may ask: root, and the uid pmmd itself runs as (who can read its
// memory anyway). The walk is O(blocks + sessions + exports) and the loop
// serves nobody meanwhile, and it describes other users' holdings: an
// unprivileged client gets kPermission, naming who may.
#include <unistd.h>

#include <chrono>

#include "daemon/service.h"

namespace pmm::daemon {

Reply Service::check(const SessionState& s, uint32_t request_id) {
  // Admins only ([admin], root) and pmmd's own uid: the walk sees every
  // user's records and stalls the loop for as long as it runs.
  if (!viewer(s).all && s.peer.uid != ::geteuid()) {
    return error(s, request_id,
                 Error{Errc::kPermission,
                       fmt::format("check: uid {} may not run the invariant check; it walks every "
                                   "user's blocks and stalls the daemon while it runs, so only "
                                   "admins ({}) or pmmd's own uid ({}) may",
                                   s.peer.uid, admins_.describe(), ::geteuid())},
                 "check");
  }
  const auto start = std::chrono::steady_clock::now();
  const core::Ledger& l = *ledger_;
  proto::CheckReply out;
  Status result;
  for (size_t i = 0; i < l.pool_count() && result; ++i) {
    result = l.pool(i).check_invariants();
    out.blocks += l.pool(i).stats().alloc.live_blocks;
  }
  if (result) result = l.check_invariants();
  out.pools = l.pool_count();
  out.sessions = l.sessions().size();
  out.exports = l.export_count();
  out.micros = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::steady_clock::now() - start)
                                         .count());
  if (!result) {
    // from_error cuts an overlong message at a character boundary.
    out.violation = proto::from_error(result.error()).message;
    log_.info("{} ran the invariant check: VIOLATION: {}", who(s), out.violation);
  } else {
    log_.info(
        "{} ran the invariant check: clean ({} pools, {} blocks, {} sessions, {} exports, "
        "{} us)",
        who(s), out.pools, out.blocks, out.sessions, out.exports, out.micros);
  }
  return Reply{.message = proto::Message{.request_id = request_id, .body = std::move(out)}};
}

}  // namespace pmm::daemon
