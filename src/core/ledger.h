// pmm::core::Ledger — the daemon's books: pools, the block table with its
// holders and reference counts, sessions, device rules, export tokens.
//
// Pure logic: no sockets, no clocks (callers pass `now`), no threads. The
// daemon turns each request into one Ledger call; tests drive it directly.
//
// A block's holders, each counted in its total:
//   - sessions: each with its own count of references (allocate/import give
//     one, get adds one, put drops one);
//   - exports: a token holds one reference until it has been imported
//     max_imports times, is withdrawn, or its deadline passes (expire());
//     exports survive the exporting session, so a producer may exit before
//     its consumer imports;
//   - SysV exports: one reference per (session, block), until sysv_unexport
//     or until that session closes (nothing else would ever withdraw it).
// When the total reaches zero the block returns to its pool. Its id is not
// used again for 2^40 allocations (the block table, below, encodes a slot
// in an id's low 24 bits and an allocation count above them).
//
// Closing a session (exit, crash and SIGKILL all look the same to the
// daemon: the socket closed) drops all its references at once.
//
// Access: each pool lists the uids and gids that may use it, or is open to
// everyone explicitly; root and the daemon's own uid may use every pool
// (access.h). Checked on allocate and import; a refusal names the pool, the
// uid/gid and what is allowed. Device rules, and who may claim a device:
// see devices.h.
//
// Usage:
//   auto l = Ledger::create(std::move(pools), devices);
//   (*l)->open_session({.id = 1, .pid = 42, .uid = 1000, .gid = 1000, .device = "decoder"});
//   auto b = (*l)->allocate(1, {"general"}, 1 << 20, 0, {});
//   auto t = (*l)->export_block(1, b->id, 1, {}, now);
//   (*l)->close_session(1);            // the export still holds the block
//   auto c = (*l)->import_block(2, *t, now);
//
// Thread safety: none; one owner (the daemon's thread).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/invariants.h"
#include "core/access.h"
#include "core/dead_tokens.h"
#include "core/devices.h"
#include "core/ledger_map.h"
#include "core/pool.h"
#include "core/spare_node.h"
#include "core/tokens.h"

namespace pmm::core {

using SteadyTime = std::chrono::steady_clock::time_point;
using SessionId = uint64_t;
using BlockId = uint64_t;

// Who may use a pool: root, the daemon's uid, the listed uids and gids, or
// everyone when opened explicitly (access.h).
using PoolAccess = Access;

struct LedgerPool {
  std::unique_ptr<Pool> pool{};
  PoolAccess access{};
};

// What one session and one uid may make the daemon hold: [limits] in the
// config; docs/config.md gives the daemon memory each record costs, so an
// operator can size them. Every refusal is kLimit naming the limit, its
// value and the current use. Root (uid 0) is held to the per-session limits
// only: it can do anything to the daemon anyway, and a system compositor
// running as root should not share one budget with every root process.
struct Quotas {
  // Distinct blocks a session holds (allocated or imported).
  uint64_t blocks_per_session = 16384;
  // Live blocks allocated by a uid's sessions, including those that outlive
  // their session because an export or an importer still holds them.
  uint64_t blocks_per_uid = 65536;
  // Live export tokens made by one session (while it is open) / by one uid
  // (until the token ends: imported, withdrawn or expired).
  uint64_t exports_per_session = 4096;
  uint64_t exports_per_uid = 16384;
  // Live SysV exports of one session / of all of a uid's sessions.
  uint64_t sysv_exports_per_session = 4096;
  uint64_t sysv_exports_per_uid = 16384;
  // Every block size is rounded up to a multiple of this power of two, so
  // the daemon's memory per byte lent is at most (bytes per block record) /
  // granule: about 0.03 at 4 KiB, where a 1-byte block would cost about 120.
  uint64_t block_granule = 4096;
};

// What one uid holds, counted against its Quotas.
struct QuotaUse {
  uint64_t blocks = 0;        // live blocks it allocated
  uint64_t exports = 0;       // live tokens it exported
  uint64_t sysv_exports = 0;  // live SysV exports of its sessions
};

struct LedgerOptions {
  // Lifetime of an export whose exporter asks for none (0).
  std::chrono::milliseconds default_export_lifetime{60'000};
  // The longest an exporter may ask for; longer is refused.
  std::chrono::milliseconds max_export_lifetime{3'600'000};
  // Live exports per block; one more is refused with kLimit. Bounds what a
  // client can make the daemon remember.
  uint32_t max_exports_per_block = 256;
  Quotas quotas{};
};

struct SessionInfo {
  SessionId id = 0;
  int32_t pid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups{};  // supplementary (SO_PEERGROUPS); count like gid for access
  std::string device{};            // as the client asked; resolved to a declared one or "default"
};

struct AllocFlags {
  bool contiguous = false;  // one physically contiguous run
  bool zero = false;        // zero it before handing it out
};

struct BlockInfo {
  BlockId id = 0;
  size_t pool = 0;  // index, for Ledger::pool()
  std::string pool_name{};
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t phys = 0;
};

struct SysvSegment {
  int32_t shmid = -1;
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct CloseSummary {
  uint64_t references_dropped = 0;  // session refs + SysV exports
  uint64_t blocks_freed = 0;
  uint64_t bytes_freed = 0;
};

// ---- admin views ----------------------------------------------------------
//
// Who sees what. The daemon decides who the viewer is (its uid from
// SO_PEERCRED, whether it is an admin, whether it may see physical
// addresses) and passes that as plain values; the ledger only filters.
//   - A viewer that is not `all` sees the sessions of its own uid, and the
//     blocks that a session of its uid holds (references or a SysV export)
//     or that its uid exported; in those blocks only its own uid's holders
//     are listed, the others are counted in `hidden_holders`. It sees the
//     devices its uid uses, with its own uid's usage only.
//   - `all` (an admin) sees every session, block, holder and device.
//   - Physical addresses only when `phys`; otherwise 0, with phys_hidden.
//   - Token bits only to the exporter's uid, admin or not: everyone else
//     who sees an export sees its deadline and imports left, not its token.
// Every listing is a page after a cursor (ids only grow), ordered by id,
// and costs O(log n + page): blocks come from the id order, a non-admin's
// page ending after a bounded scan with its cursor (next_after) past what
// it scanned; session and device usage are running counters.

struct Viewer {
  uint32_t uid = 0;
  bool all = false;   // an admin: every user's sessions, blocks and exports
  bool phys = false;  // may see physical addresses
};

struct HolderView {
  enum class Kind { kSession, kExport, kSysvExport } kind = Kind::kSession;
  SessionId session = 0;      // kSession, kSysvExport; the exporter for kExport
  int32_t pid = 0;            // of that session (kept after it closed, for exports)
  uint32_t uid = 0;           // of that session
  std::string device{};       // of that session
  uint64_t references = 0;    // kSession: its count; others: 1
  Token token{};              // kExport, when token_shown; zero otherwise
  bool token_shown = false;   // kExport: the viewer is the exporter's uid
  uint32_t imports_left = 0;  // kExport
  SteadyTime deadline{};      // kExport
};

struct BlockView {
  BlockInfo info{};  // phys 0 when phys_hidden
  bool phys_hidden = false;
  std::string device{};  // charged to
  uint64_t references = 0;
  std::vector<HolderView> holders{};  // those the viewer may see
  uint64_t hidden_holders = 0;        // holders of other uids, not listed
};

struct SessionView {
  SessionInfo info{};
  std::string device{};  // resolved
  uint64_t blocks = 0;
  uint64_t references = 0;
  uint64_t bytes = 0;  // sizes of the blocks it holds
};

// A device as one viewer sees it: an admin the device's totals, anyone else
// its own uid's part (used, blocks, sessions). Limits are the device's.
struct DeviceView {
  size_t index = 0;  // into Ledger::devices(); +1 is the listing's cursor id
  const Device* device = nullptr;
  uint64_t used = 0;
  uint64_t blocks = 0;
  uint64_t sessions = 0;
};

template <typename T>
struct ViewPage {
  std::vector<T> items{};
  bool more = false;  // items may remain after next_after
  // The cursor for the next page: the last id this page looked at, which
  // may lie past its last item (a block listing stops after a bounded
  // scan, see blocks()).
  uint64_t next_after = 0;
};

struct PoolView {
  std::string name{};
  std::string type{};
  std::string strategy{};
  std::string access{};
  uint64_t size = 0;
  uint64_t used = 0;
  uint64_t free = 0;
  uint64_t largest_free = 0;
  uint64_t reserved = 0;  // unmet device guarantees kept in it
  uint64_t blocks = 0;
};

class Ledger {
 public:
  // Pool names must be unique; devices are validated against the pools
  // (see DeviceTable::create).
  [[nodiscard]] static Result<std::unique_ptr<Ledger>> create(std::vector<LedgerPool> pools,
                                                              std::vector<DeviceConfig> devices,
                                                              LedgerOptions options = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // ---- sessions ------------------------------------------------------------
  // Returns the resolved device name. kExists if the id is open already;
  // kPermission if the session may not claim the device it names.
  [[nodiscard]] Result<std::string> open_session(SessionInfo info);
  // Drops every reference and SysV export of the session at once.
  // kNotFound if unknown (or closing already). Work: O(blocks it holds).
  [[nodiscard]] Result<CloseSummary> close_session(SessionId s);
  // The same in bounded slices, for the daemon: begin_close() makes the
  // session unusable at once (every call naming it is kNotFound, as if it
  // were gone) in O(log n); reap() then drops at most `budget` of the
  // closing sessions' block holds, oldest session first, and returns the
  // sessions it finished, each with its summary. Until finished a closing
  // session still holds what it held (its blocks are not reused, its
  // device still counts it) and is listed in the views; other sessions'
  // requests are served between slices, so a disconnect that drops 500k
  // blocks costs other clients a few milliseconds, not half a second.
  [[nodiscard]] Status begin_close(SessionId s);
  std::vector<std::pair<SessionId, CloseSummary>> reap(size_t budget);
  // The same into `done` (cleared first; a caller that keeps it allocates
  // nothing per call, as pmmd's loop does once per turn while reaping).
  void reap(size_t budget, std::vector<std::pair<SessionId, CloseSummary>>& done);
  [[nodiscard]] bool reaping() const { return !closing_.empty(); }

  // ---- blocks --------------------------------------------------------------
  // Tries `pools` in order (empty: the device's pools) and returns the first
  // block that every rule admits; the session holds one reference. When all
  // fail the error has the code of the last pool tried and the reason of
  // each. alignment 0: the device's default, else the pool's page size.
  [[nodiscard]] Result<BlockInfo> allocate(SessionId s, std::span<const std::string> pools,
                                           uint64_t size, uint64_t alignment, AllocFlags flags);
  // Adds a reference; the session must hold one already. Returns its count.
  [[nodiscard]] Result<uint64_t> get(SessionId s, BlockId b);
  // Drops one of the session's references. Returns the session's count left.
  [[nodiscard]] Result<uint64_t> put(SessionId s, BlockId b);

  // ---- sharing -------------------------------------------------------------
  // The session must hold the block. max_imports 0 means 1; lifetime 0
  // means options.default_export_lifetime.
  [[nodiscard]] Result<Token> export_block(SessionId s, BlockId b, uint32_t max_imports,
                                           std::chrono::milliseconds lifetime, SteadyTime now);
  // The importer gets a reference of its own. kNotFound for a token never
  // issued or withdrawn, kExpired for one used up or past its deadline.
  [[nodiscard]] Result<BlockInfo> import_block(SessionId s, const Token& t, SteadyTime now);
  // Withdraws an export: the exporting uid, or root, may. kExists if it was
  // withdrawn already; kExpired if it ran out first.
  [[nodiscard]] Status unexport(SessionId s, const Token& t);
  // Blocks of sysv pools only (kUnsupported naming the pool's type
  // otherwise). kExists if this session has exported it already.
  [[nodiscard]] Result<SysvSegment> sysv_export(SessionId s, BlockId b);
  [[nodiscard]] Status sysv_unexport(SessionId s, BlockId b);

  // Drops every export whose deadline is <= now. Returns how many.
  size_t expire(SteadyTime now);
  // The earliest export deadline, for the daemon's timer.
  [[nodiscard]] std::optional<SteadyTime> next_deadline() const {
    if (deadlines_.empty()) return std::nullopt;
    return deadlines_.begin()->first;
  }

  // ---- views ---------------------------------------------------------------
  [[nodiscard]] size_t pool_count() const { return pools_.size(); }
  // The most pools a ledger holds (create() refuses more): a pool's index
  // is stored in 8 bits of each block record.
  static constexpr size_t kMaxPools = 256;
  [[nodiscard]] const Pool& pool(size_t i) const { return *pools_[i].pool; }
  [[nodiscard]] const PoolAccess& access(size_t i) const { return pools_[i].access; }
  // Live export tokens plus SysV exports.
  [[nodiscard]] uint64_t export_count() const;
  [[nodiscard]] std::optional<size_t> find_pool(std::string_view name) const;
  [[nodiscard]] Result<BlockInfo> block(BlockId b) const;
  // References to `b` held by anyone but session `s`'s plain references
  // (other sessions, exports, SysV exports, `s`'s own SysV export), and how
  // many `s` holds; kNotFound if there is no such block (ledger_watch.cc).
  struct ReferencesOf {
    uint64_t others = 0;
    uint64_t mine = 0;
  };
  [[nodiscard]] Result<ReferencesOf> references_of(BlockId b, SessionId s) const;
  [[nodiscard]] size_t session_count() const { return sessions_.size(); }
  // Pages of what `viewer` may see (see "admin views" above): the items
  // with id > after, in id order, at most `limit` (>= 1); the next page
  // starts after page.next_after. A block page scans at most 64 * limit
  // ids, so a non-admin's may come back short, even empty, with `more`.
  // Devices' ids are their index + 1.
  [[nodiscard]] ViewPage<BlockView> blocks(const Viewer& viewer, BlockId after, size_t limit) const;
  [[nodiscard]] ViewPage<SessionView> sessions(const Viewer& viewer, SessionId after,
                                               size_t limit) const;
  [[nodiscard]] ViewPage<DeviceView> devices(const Viewer& viewer, uint64_t after,
                                             size_t limit) const;
  // Everything, as an admin with physical addresses sees it, and every
  // token (which no listing shows). O(n): tests and debugging.
  [[nodiscard]] std::vector<BlockView> blocks() const;
  [[nodiscard]] std::vector<SessionView> sessions() const;
  [[nodiscard]] std::span<const Device> devices() const { return devices_.all(); }
  [[nodiscard]] std::vector<PoolView> pools() const;
  [[nodiscard]] const LedgerOptions& options() const { return options_; }
  // What `uid` holds against its quotas (all zero when it holds nothing).
  [[nodiscard]] QuotaUse quota_use(uint32_t uid) const;
  // One page of pool `pool` laid out by offset, as `viewer` may see it
  // (ledger_map.h). O(request.limit + the viewer's own blocks in the page).
  [[nodiscard]] MapPage pool_map_page(const Viewer& viewer, size_t pool,
                                      const MapPageRequest& request) const;

  // What the block table occupies: live blocks, slots in use (the highest
  // live slot + 1), the slab's capacity in records, and the ids the listing
  // order keeps (freed ones until they outnumber the live). For tests and
  // diagnostics: memory follows `slots` and `capacity`.
  struct TableUse {
    size_t live = 0;
    size_t slots = 0;
    size_t capacity = 0;
    size_t order = 0;
  };
  [[nodiscard]] TableUse table_use() const {
    return {.live = live_blocks_,
            .slots = slab_.size(),
            .capacity = slab_.capacity(),
            .order = order_.size()};
  }

  // Cross-checks every record against every other and against the pools'
  // allocators: counts add up, holders and session lists agree, device
  // charges equal the blocks charged, pool bytes_used equals the live
  // blocks. Returns the first violation. O(n). Builds with
  // PMM_CHECK_INVARIANTS run it after every call that changes the ledger
  // (paced, see base/invariants.h); `pmmctl check` runs it on demand.
  [[nodiscard]] Status check_invariants() const;

 private:
  // ---- the block table (ledger_slab.cc) ----
  //
  // Records live in one vector (the slab), indexed by slot; a block's id is
  // (serial << kSlotBits) | slot, where the serial counts allocations from 1.
  // Lookup is O(1), and an id whose slot now holds another block (or none)
  // is told apart by the serial: kNotFound, never the wrong block. Ids grow
  // with every allocation, so they are unique for 2^40 allocations (the
  // 2^40th is refused) and the id-ordered listing is an append-only vector.
  // Free slots are reused lowest first and the slab's tail is trimmed, so
  // the daemon's memory follows its live blocks (docs/config.md gives the
  // bytes per record).
  static constexpr unsigned kSlotBits = 24;
  static constexpr uint64_t kMaxLiveBlocks = uint64_t{1} << kSlotBits;
  static constexpr uint64_t kMaxSerial = (uint64_t{1} << 40) - 1;
  // References to one block in all (every session's, exports, SysV
  // exports): a client that loops on get() hits this rather than wrapping
  // the 32-bit count.
  static constexpr uint32_t kMaxReferences = uint32_t{1} << 31;
  // Devices are stored in a few bits of each record (pools too: kMaxPools).
  static constexpr size_t kMaxDevices = 1 << 15;

  // One session's hold on one block: its references and whether it has a
  // SysV export of it; `position` is the block's index in that session's
  // `holds`, so removing a hold is O(1). A hold with no references and no
  // SysV export is not kept.
  struct Holder {
    SessionId session = 0;
    uint32_t references = 0;
    uint32_t packed = 0;  // position (low 24 bits) | kHolderSysv | kHolderUsed

    static constexpr uint32_t kHolderSysv = 1u << 24;
    static constexpr uint32_t kHolderUsed = 1u << 25;  // BlockRecord::holder is one
    [[nodiscard]] uint32_t position() const { return packed & (kHolderSysv - 1); }
    void set_position(uint32_t p) { packed = (packed & ~(kHolderSysv - 1)) | p; }
    [[nodiscard]] bool used() const { return (packed & kHolderUsed) != 0; }
    [[nodiscard]] bool sysv() const { return (packed & kHolderSysv) != 0; }
    void set_sysv(bool on) { packed = on ? packed | kHolderSysv : packed & ~kHolderSysv; }
    [[nodiscard]] bool empty() const { return references == 0 && !sysv(); }
  };
  // What few blocks need: holders past the first (sorted by session id) and
  // the block's export tokens. Null while a block has one holder and no
  // exports, which is almost every block.
  struct BlockExtra {
    std::vector<Holder> holders;
    std::vector<Token> exports;
  };
  // 64 bytes; the id, pool, device and whether the physical address is
  // known share one word.
  struct BlockRecord {
    uint64_t offset = 0;
    uint64_t size = 0;
    alloc::Handle handle{};  // the pool's name for it, for release
    uint64_t key = 0;        // serial (high 40 bits; 0: free slot) | device << 9 | pool << 1 | phys
    std::unique_ptr<BlockExtra> extra;
    Holder holder;       // the first holder, if used()
    uint32_t total = 0;  // references in all
    uint32_t uid = 0;    // of the allocating session: its blocks_per_uid and device usage

    [[nodiscard]] uint64_t serial() const { return key >> kSlotBits; }
    [[nodiscard]] bool live() const { return serial() != 0; }
    [[nodiscard]] size_t pool() const { return static_cast<size_t>((key >> 1) & 0xff); }
    [[nodiscard]] size_t device() const { return static_cast<size_t>((key >> 9) & 0x7fff); }
    [[nodiscard]] bool phys_known() const { return (key & 1) != 0; }
    [[nodiscard]] size_t export_count() const { return extra ? extra->exports.size() : 0; }
  };
  // docs/config.md's bytes per block assume this.
  static_assert(sizeof(BlockRecord) == 64, "a block record is 64 bytes");
  // One uid's use of one device, for the views of non-admins.
  struct UidDeviceUse {
    uint64_t bytes = 0;
    uint64_t blocks = 0;
    uint64_t sessions = 0;
  };
  // A uid's quota use, kept while it has a session open even when all its
  // counts are zero, so that its sessions may point at it.
  struct UidUse : QuotaUse {
    uint64_t sessions = 0;  // open sessions of the uid
  };
  struct SessionRecord {
    SessionInfo info;
    size_t device = 0;
    // Its uid's entries in uid_use_ and uid_devices_ (for its device), found
    // once at open: each request of the session would otherwise look them up
    // by uid (a hash and a tree lookup per allocate and per put). Valid while
    // it is open: its own session count keeps both entries (tidy_use,
    // uid_device_change), and map nodes do not move.
    UidUse* quota = nullptr;
    UidDeviceUse* uid_device = nullptr;
    std::vector<uint32_t> holds;  // slots of the blocks where it has a Holder
    uint64_t serial = 0;          // unique over the ledger's life (ids may be reused)
    uint64_t exports = 0;         // live tokens it made
    uint64_t sysv_exports = 0;
    uint64_t references = 0;  // sum of its Holders' references (for views)
    uint64_t bytes = 0;       // sizes of the blocks it holds (for views)
    bool closing = false;     // begin_close() was called; reap() is dropping its holds
    CloseSummary closed{};    // what reap() dropped of it so far
  };
  struct Export {
    BlockId block = 0;
    uint32_t imports_left = 0;
    SteadyTime deadline{};
    SessionId exporter = 0;
    uint32_t exporter_uid = 0;
    int32_t exporter_pid = 0;
    size_t exporter_device = 0;
    uint64_t exporter_serial = 0;  // SessionRecord::serial of the exporter
  };
  using DeadReason = DeadTokens::Reason;

  Ledger(std::vector<LedgerPool> pools, DeviceTable devices, LedgerOptions options);

  // Blocks, sessions and exports: what one check_invariants() walks.
  [[nodiscard]] size_t record_count() const {
    return live_blocks_ + sessions_.size() + exports_.size();
  }
  // A live session by id: a hit in the cache inline, anything else (a
  // miss, a closing or unknown session) through session_slow.
  Result<SessionRecord*> session(SessionId s) {
    const auto& cached = session_cache_[s % kSessionCache];
    if (cached.first == s && cached.second != nullptr && !cached.second->closing) [[likely]]
      return cached.second;
    return session_slow(s);
  }
  Result<SessionRecord*> session_slow(SessionId s);
  // The block if session sr holds a reference to it; the refusal out of line.
  Result<BlockRecord*> held_block(SessionRecord& sr, BlockId b, std::string_view op) {
    if (BlockRecord* rec = find(b)) {
      const Holder* h = holder(*rec, sr.info.id);
      if (h != nullptr && h->references > 0) [[likely]]
        return rec;
    }
    return refuse_held_block(sr, b, op);
  }
  [[gnu::cold]] std::unexpected<Error> refuse_held_block(const SessionRecord& sr, BlockId b,
                                                         std::string_view op) const;
  Result<BlockInfo> allocate_in(SessionRecord& sr, size_t pool, uint64_t size, uint64_t alignment,
                                AllocFlags flags);
  // Whether sr's uid may use the pool; the refusal out of line.
  Status check_access(const SessionRecord& sr, size_t pool, std::string_view op) const {
    if (pools_[pool].access.allows(sr.info.uid, sr.info.gid, sr.info.groups)) [[likely]]
      return {};
    return refuse_access(sr, pool, op);
  }
  [[gnu::cold]] std::unexpected<Error> refuse_access(const SessionRecord& sr, size_t pool,
                                                     std::string_view op) const;
  // Drops at most `budget` of the session's holds (decrementing budget),
  // adding to `sum`; finish_close() then forgets the session.
  void drop_holds(SessionRecord& sr, size_t& budget, CloseSummary& sum);
  void finish_close(std::map<SessionId, SessionRecord>::iterator it);
  // Drops one reference held by an export/sysv/session bookkeeping done by
  // the caller; frees the block at zero. Returns true if it was freed.
  // `by`: the session dropping it, if any (its cached entries serve when the
  // block is its uid's on its device).
  bool drop_reference(uint32_t slot, SessionRecord* by = nullptr);
  // The same, for inlining into put() (ledger.cc), the hot caller.
  bool drop_reference_inline(uint32_t slot, SessionRecord* by);
  // By value: callers pass references into the containers it erases from.
  void remove_export(Token t, DeadReason why);

  // ---- slab, ids and holders (ledger_slab.cc) ----
  [[nodiscard]] static uint32_t slot_of(BlockId b) {
    return static_cast<uint32_t>(b & (kMaxLiveBlocks - 1));
  }
  [[nodiscard]] BlockId id_of(uint32_t slot) const {
    return (slab_[slot].serial() << kSlotBits) | slot;
  }
  // The live block with id `b`, or null (never issued, freed, or its slot
  // reused by a later block). Inline: every request naming a block asks.
  [[nodiscard]] const BlockRecord* find(BlockId b) const {
    const uint32_t slot = slot_of(b);
    if (slot >= slab_.size()) return nullptr;
    const BlockRecord& rec = slab_[slot];
    if (!rec.live() || rec.serial() != (b >> kSlotBits)) return nullptr;
    return &rec;
  }
  [[nodiscard]] BlockRecord* find(BlockId b) {
    return const_cast<BlockRecord*>(std::as_const(*this).find(b));
  }
  // A free slot (lowest first) for a new block with the next serial;
  // kLimit past kMaxLiveBlocks live blocks or kMaxSerial allocations.
  Result<uint32_t> take_slot();
  // Forgets the block in `slot` and gives the slot back; trims the slab.
  void free_slot(uint32_t slot);
  [[nodiscard]] BlockInfo info(uint32_t slot) const;
  // Session `s`'s holder of the block, or null.
  // Inline for the block's first holder (most blocks have one); the others
  // are searched out of line.
  [[nodiscard]] const Holder* holder(const BlockRecord& rec, SessionId s) const {
    if (rec.holder.used() && rec.holder.session == s) return &rec.holder;
    return other_holder(rec, s);
  }
  [[nodiscard]] Holder* holder(BlockRecord& rec, SessionId s) {
    return const_cast<Holder*>(std::as_const(*this).holder(rec, s));
  }
  [[nodiscard]] const Holder* other_holder(const BlockRecord& rec, SessionId s) const;
  // Adds an empty holder of `sr` to the block in `slot` (which must have
  // none) and lists the block in sr.holds.
  Holder& add_holder(SessionRecord& sr, uint32_t slot);
  // Removes `sr`'s holder (which must exist) and its place in sr.holds.
  void remove_holder(SessionRecord& sr, uint32_t slot);
  // Every holder of the block, in no particular order.
  template <typename F>
  void each_holder(const BlockRecord& rec, F&& f) const {
    if (rec.holder.used()) f(rec.holder);
    if (rec.extra) {
      for (const Holder& h : rec.extra->holders) f(h);
    }
  }
  void add_export_token(BlockRecord& rec, const Token& t);
  void remove_export_token(BlockRecord& rec, const Token& t);
  // Drops `rec.extra` once it holds nothing.
  void tidy_extra(BlockRecord& rec);
  // A side record for a block: the spare one tidy_extra kept, or a new one.
  std::unique_ptr<BlockExtra> new_extra();
  // Whether a non-admin `uid` sees the block: a session of its uid holds it
  // or its uid exported it.
  [[nodiscard]] bool visible_to(uint32_t uid, const BlockRecord& rec) const;
  // The first entry of order_ with an id > after.
  [[nodiscard]] size_t order_after(BlockId after) const;
  Status check_slab() const;

  // ---- quotas (ledger_quotas.cc) ----
  // Whether the session may hold one more block / make one more export /
  // SysV export; kLimit naming the limit, its value and the use otherwise.
  Status admit_hold(const SessionRecord& sr, std::string_view op) const;
  // Inline when the block is admitted; admit_new_block_slow refuses.
  Status admit_new_block(const SessionRecord& sr) const {
    const Quotas& q = options_.quotas;
    if (sr.holds.size() < q.blocks_per_session &&
        (sr.info.uid == 0 || sr.quota->blocks < q.blocks_per_uid)) [[likely]]
      return {};
    return admit_new_block_slow(sr);
  }
  Status admit_new_block_slow(const SessionRecord& sr) const;
  Status admit_export(const SessionRecord& sr) const;
  Status admit_sysv_export(const SessionRecord& sr) const;
  // `size` rounded up to the block granule; kInvalidArgument on overflow.
  Result<uint64_t> granular(uint64_t size) const {
    const uint64_t g = options_.quotas.block_granule;
    if (size <= UINT64_MAX - (g - 1)) [[likely]]
      return (size + g - 1) & ~(g - 1);
    return refuse_granular(size);
  }
  [[gnu::cold]] static std::unexpected<Error> refuse_granular(uint64_t size);
  QuotaUse& use_of(uint32_t uid) { return find_or_make(uid_use_, spare_uid_use_, uid); }
  // Forgets a uid whose counts are all back to zero and that has no session
  // open.
  void tidy_use(uint32_t uid);
  // The exporter of `e`, if that very session is still open.
  SessionRecord* live_exporter(const Export& e);
  Status check_quota_invariants() const;

  // View indexes (ledger_views.cc); every change to a Hold's existence, an
  // export or a device charge goes through these.
  void uid_device_change(uint32_t uid, size_t device, int64_t bytes, int64_t blocks,
                         int64_t sessions);
  // every_token: the test-only blocks() shows every token.
  BlockView view(const Viewer& viewer, uint32_t slot, bool every_token = false) const;
  Status check_view_indexes() const;
  SessionView view(const SessionRecord& sr) const;

  std::vector<LedgerPool> pools_{};
  DeviceTable devices_;
  LedgerOptions options_;
  // The block table (see "the block table" above): records by slot, the
  // free slots below slab_.size() as a min-heap (plus `stale_free_` entries
  // at or above it, left by trimming and dropped lazily), and every id
  // issued in increasing order, those of freed blocks (`order_dead_` of
  // them) removed once they outnumber the live.
  std::vector<BlockRecord> slab_;
  std::vector<uint32_t> free_slots_;
  size_t stale_free_ = 0;
  size_t live_blocks_ = 0;
  std::vector<BlockId> order_;
  size_t order_dead_ = 0;
  uint64_t next_block_serial_ = 1;
  std::map<SessionId, SessionRecord> sessions_;  // ordered: the listing's cursor
  // Recently looked-up sessions, by id modulo the size (the daemon numbers
  // sessions in order, so open ones rarely share an entry): every request
  // finds its session, and a tree walk per request grows with the number
  // of sessions. An entry names a record in sessions_ (map nodes do not
  // move); finish_close() forgets it before the record goes.
  static constexpr size_t kSessionCache = 256;
  std::array<std::pair<SessionId, SessionRecord*>, kSessionCache> session_cache_{};
  std::deque<SessionId> closing_;  // begin_close() order, for reap()
  // Views: (uid, session) for each open session; (uid, device) -> that
  // uid's use of the device. Which blocks a uid sees is read from each
  // block's holders and exports.
  std::set<std::pair<uint32_t, SessionId>> uid_sessions_;
  std::map<std::pair<uint32_t, size_t>, UidDeviceUse> uid_devices_;
  std::unordered_map<Token, Export> exports_;
  std::set<std::pair<SteadyTime, Token>> deadlines_;
  // Recently ended tokens and why, so a late import says "expired" rather
  // than "never heard of it". Bounded: the oldest are forgotten first.
  DeadTokens dead_;
  // An emptied side record kept for reuse (tidy_extra, new_extra).
  std::unique_ptr<BlockExtra> spare_extra_;
  // The nodes of the export last removed, reused by the next export_block.
  std::unordered_map<Token, Export>::node_type spare_export_;
  std::set<std::pair<SteadyTime, Token>>::node_type spare_deadline_;
  uint64_t sysv_exports_ = 0;
  std::unordered_map<uint32_t, UidUse> uid_use_;
  // A node each of the per-session and per-uid tables last erased, for the
  // next session (spare_node.h): sessions come and go without a malloc.
  std::map<SessionId, SessionRecord>::node_type spare_session_;
  std::set<std::pair<uint32_t, SessionId>>::node_type spare_uid_session_;
  std::map<std::pair<uint32_t, size_t>, UidDeviceUse>::node_type spare_uid_device_;
  std::unordered_map<uint32_t, UidUse>::node_type spare_uid_use_;
  uint64_t next_serial_ = 1;
  InvariantCadence checks_;
};

}  // namespace pmm::core
