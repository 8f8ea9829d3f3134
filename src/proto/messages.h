// pmm::proto messages — every request and reply of the pmm wire protocol.
//
// One message is one SOCK_SEQPACKET datagram: a 16-byte header
//   {magic u32 = kMagic, version u16, type u16, request_id u32, payload_length u32}
// followed by a little-endian payload (fixed-width integers; strings as u16
// length + bytes; lists as u32 count + items). Every string and list has a
// maximum, listed below, so the largest reply fits one datagram well under the
// default socket buffer. docs/protocol.md describes the bytes; this header is
// the C++ side of the same contract, and codec.h turns these structs into
// bytes and back.
//
// A connection starts with Hello -> Welcome (or ErrorReply). Then each request
// gets exactly one reply carrying the same request_id: the reply named next
// to the request below, or an ErrorReply.
//
// Usage:
//   proto::Message m{.request_id = 7,
//                    .body = proto::Allocate{.pools = {"dma", "general"}, .size = 1 << 20}};
//   Result<std::vector<std::byte>> bytes = proto::encode(m);
//   Result<proto::Message> back = proto::decode_request(*bytes);
//   if (auto* a = std::get_if<proto::Allocate>(&back->body)) { ... }
//
// Thread safety: plain values; no shared state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/error.h"

namespace pmm::proto {

// ---- framing ---------------------------------------------------------------

// The bytes 'P' 'M' 'M' '1' as they appear on the wire (read as a
// little-endian u32).
inline constexpr uint32_t kMagic = 0x314d4d50;
// Bumped whenever any payload below changes. Hello, Welcome and ErrorReply
// keep their layout across versions so a mismatch can always be reported.
inline constexpr uint16_t kProtocolVersion = 2;
inline constexpr size_t kHeaderSize = 16;

// Whole datagrams, header included. Requests are small; replies carry the
// admin listings. Both are far below the ~208 KiB default socket buffer.
inline constexpr size_t kMaxRequestSize = 64 * 1024;
inline constexpr size_t kMaxReplySize = 128 * 1024;
// A message carries at most this many fds (BlockInfo carries a pool's fd).
inline constexpr size_t kMaxFdsPerMessage = 1;

// ---- limits ----------------------------------------------------------------

inline constexpr size_t kMaxNameLength = 64;     // pool, device, strategy names, versions
inline constexpr size_t kMaxTextLength = 1024;   // error messages
inline constexpr size_t kMaxAllocatePools = 16;  // pools one Allocate may try
inline constexpr size_t kMaxPools = 128;         // pools in PoolList and StatsReply
inline constexpr size_t kMaxBlocksPerPage = 64;
inline constexpr size_t kMaxHoldersPerBlock = 16;  // more are counted, not listed
inline constexpr size_t kMaxSessionsPerPage = 256;
inline constexpr size_t kMaxDevicesPerPage = 256;
inline constexpr size_t kMaxRefusalCauses = 32;  // causes in StatsReply.refused

// Allocate.flags bits; the same values as PMM_ALLOC_* in pmm/pmm.h.
inline constexpr uint32_t kAllocContiguous = 0x1;
inline constexpr uint32_t kAllocZero = 0x2;
inline constexpr uint32_t kAllocKnownFlags = kAllocContiguous | kAllocZero;

enum class MessageType : uint16_t {
  // requests (client -> daemon)
  kHello = 1,
  kListPools = 2,
  kAllocate = 3,
  kGet = 4,
  kPut = 5,
  kExport = 6,
  kImport = 7,
  kUnexport = 8,
  kSysvExport = 9,
  kSysvUnexport = 10,
  kStats = 11,
  kListBlocks = 12,
  kListSessions = 13,
  kListDevices = 14,
  // replies (daemon -> client)
  kError = 100,
  kWelcome = 101,
  kOk = 102,
  kPoolList = 103,
  kBlockInfo = 104,
  kToken = 105,
  kSysvSegment = 106,
  kStatsReply = 107,
  kBlockList = 108,
  kSessionList = 109,
  kDeviceList = 110,
  // admin: the invariant walk (pmmctl check); appended to both ranges
  kCheck = 15,
  kCheckReply = 111,
  // views: request counters (pmmctl metrics, top) and a pool's map (pmmctl
  // map); appended to both ranges (requests 16-19, replies 112-115)
  kMetrics = 16,
  kPoolMap = 17,
  kMetricsReply = 112,
  kPoolMapReply = 113,
  // frame-rate sharing (issue 10): requests 20-29, replies 116-125, events
  // 130-139. An event is sent by the daemon unasked, with request_id 0.
  kAllocateWait = 20,
  kWatchRelease = 21,
  kReleased = 130,
};

// "Allocate", "BlockInfo", ...; "unknown" for values not listed above.
[[nodiscard]] std::string_view message_type_name(MessageType t);

// Memory type of a pool, as mem::MemoryType (same order). u8 on the wire.
enum class PoolType : uint8_t { kShmem = 0, kHugetlb = 1, kSysv = 2 };
[[nodiscard]] std::string_view pool_type_name(PoolType t);  // "shmem", ...

using Token = std::array<uint8_t, 16>;
// A token's last byte is the index of the exported block's pool; the other
// 15 are random. An importer reads it to know, before it asks, whether the
// Import's reply can bring that pool's fd (docs/protocol.md). The daemon
// finds an export by all 16 bytes: a changed pool byte names no export.
inline constexpr size_t kTokenPoolByte = 15;

// ---- requests --------------------------------------------------------------

// First message of every connection. `pid` is informational (logs); the
// daemon trusts only SO_PEERCRED.
struct Hello {
  static constexpr MessageType kType = MessageType::kHello;
  uint16_t protocol_version = kProtocolVersion;
  std::string device{};  // <= kMaxNameLength; "" = "default"
  int32_t pid = 0;
  bool operator==(const Hello&) const = default;
};

// -> PoolList
struct ListPools {
  static constexpr MessageType kType = MessageType::kListPools;
  bool operator==(const ListPools&) const = default;
};

// -> BlockInfo. Pools are tried in order; empty = the device's default pools.
struct Allocate {
  static constexpr MessageType kType = MessageType::kAllocate;
  std::vector<std::string> pools{};  // <= kMaxAllocatePools names, each <= kMaxNameLength
  uint64_t size = 0;
  uint64_t alignment = 0;  // 0 = default
  uint32_t flags = 0;      // kAlloc* bits only
  bool operator==(const Allocate&) const = default;
};

// -> Ok. Adds one reference for this session.
struct Get {
  static constexpr MessageType kType = MessageType::kGet;
  uint64_t block_id = 0;
  bool operator==(const Get&) const = default;
};

// -> Ok. Drops one of this session's references.
struct Put {
  static constexpr MessageType kType = MessageType::kPut;
  uint64_t block_id = 0;
  bool operator==(const Put&) const = default;
};

// -> TokenReply
struct Export {
  static constexpr MessageType kType = MessageType::kExport;
  uint64_t block_id = 0;
  uint32_t max_imports = 0;  // 0 = 1
  uint32_t lifetime_ms = 0;  // 0 = the daemon's default
  bool operator==(const Export&) const = default;
};

// -> BlockInfo
struct Import {
  static constexpr MessageType kType = MessageType::kImport;
  Token token{};
  bool operator==(const Import&) const = default;
};

// -> Ok
struct Unexport {
  static constexpr MessageType kType = MessageType::kUnexport;
  Token token{};
  bool operator==(const Unexport&) const = default;
};

// -> SysvSegment
struct SysvExport {
  static constexpr MessageType kType = MessageType::kSysvExport;
  uint64_t block_id = 0;
  bool operator==(const SysvExport&) const = default;
};

// -> Ok
struct SysvUnexport {
  static constexpr MessageType kType = MessageType::kSysvUnexport;
  uint64_t block_id = 0;
  bool operator==(const SysvUnexport&) const = default;
};

// -> StatsReply
struct StatsRequest {
  static constexpr MessageType kType = MessageType::kStats;
  bool operator==(const StatsRequest&) const = default;
};

// Admin listings are paginated: items with id > after_id, in id order, at
// most `limit` (0 = the page maximum; above it is a protocol error). The
// reply's next_after_id is the cursor for the next page while `more`.

// -> BlockList
struct ListBlocks {
  static constexpr MessageType kType = MessageType::kListBlocks;
  uint64_t after_id = 0;
  uint32_t limit = 0;  // <= kMaxBlocksPerPage
  bool operator==(const ListBlocks&) const = default;
};

// -> SessionList
struct ListSessions {
  static constexpr MessageType kType = MessageType::kListSessions;
  uint64_t after_id = 0;
  uint32_t limit = 0;  // <= kMaxSessionsPerPage
  bool operator==(const ListSessions&) const = default;
};

// -> DeviceList
struct ListDevices {
  static constexpr MessageType kType = MessageType::kListDevices;
  uint64_t after_id = 0;
  uint32_t limit = 0;  // <= kMaxDevicesPerPage
  bool operator==(const ListDevices&) const = default;
};

// ---- replies ---------------------------------------------------------------

// The answer to any request that failed. `code` is a pmm::Errc other than kOk.
struct ErrorReply {
  static constexpr MessageType kType = MessageType::kError;
  Errc code = Errc::kSystem;
  std::string message{};  // <= kMaxTextLength
  bool operator==(const ErrorReply&) const = default;
};

struct Welcome {
  static constexpr MessageType kType = MessageType::kWelcome;
  uint16_t protocol_version = kProtocolVersion;
  uint64_t session_id = 0;
  std::string daemon_version{};  // <= kMaxNameLength, e.g. "pmmd 0.1.0"
  bool operator==(const Welcome&) const = default;
};

struct Ok {
  static constexpr MessageType kType = MessageType::kOk;
  bool operator==(const Ok&) const = default;
};

// One pool as ListPools and Stats show it.
struct PoolInfo {
  uint32_t index = 0;  // stable for the daemon's life; BlockInfo.pool_index
  std::string name{};  // <= kMaxNameLength
  PoolType type = PoolType::kShmem;
  uint64_t size = 0;
  uint64_t page_size = 0;
  uint64_t bytes_used = 0;
  uint64_t bytes_free = 0;
  uint64_t largest_free = 0;
  uint64_t free_extents = 0;
  uint64_t live_blocks = 0;
  bool has_physical = false;
  std::string strategy{};   // <= kMaxNameLength: "best_fit", "tlsf"
  bool accessible = false;  // the asking session's uid/gid may use it
  // <= kMaxTextLength: "ok", or "degraded: ..." when clients punched the
  // pool's memory (core::describe_health).
  std::string state{};
  bool operator==(const PoolInfo&) const = default;
};

struct PoolList {
  static constexpr MessageType kType = MessageType::kPoolList;
  std::vector<PoolInfo> pools{};  // <= kMaxPools
  bool operator==(const PoolList&) const = default;
};

// How the client reaches a block's memory. shmem/hugetlb: the pool's memfd
// travels as SCM_RIGHTS with the BlockInfo that first shows this pool to the
// session (fd_attached = true; later BlockInfos of that pool carry no fd and
// the client reuses its mapping of pool_size bytes). sysv: shmid, no fd.
struct PoolMemory {
  PoolType type = PoolType::kShmem;
  bool fd_attached = false;  // never true for sysv
  uint64_t pool_size = 0;
  uint64_t page_size = 0;
  int32_t shmid = -1;  // >= 0 for sysv, -1 otherwise
  bool operator==(const PoolMemory&) const = default;
};

// The answer to Allocate and Import: the session now holds one reference.
struct BlockInfo {
  static constexpr MessageType kType = MessageType::kBlockInfo;
  uint64_t block_id = 0;
  uint32_t pool_index = 0;
  std::string pool_name{};  // <= kMaxNameLength
  uint64_t offset = 0;      // in the pool
  uint64_t size = 0;
  uint64_t phys = 0;  // physical address of the first byte; 0 = unknown
  PoolMemory memory{};
  bool operator==(const BlockInfo&) const = default;
};

struct TokenReply {
  static constexpr MessageType kType = MessageType::kToken;
  Token token{};
  bool operator==(const TokenReply&) const = default;
};

// As pmm_sysv_segment: attach shmid and use size bytes from offset.
struct SysvSegment {
  static constexpr MessageType kType = MessageType::kSysvSegment;
  int32_t shmid = -1;
  uint64_t offset = 0;
  uint64_t size = 0;
  bool operator==(const SysvSegment&) const = default;
};

// How many connections or requests the daemon refused for one cause since
// it started: "sessions", "sessions_per_uid", "no_fds", "hello_timeout",
// "protocol", or the refused request's error ("no_memory", "limit", ...).
struct RefusalCount {
  std::string cause{};  // <= kMaxNameLength
  uint64_t count = 0;
  bool operator==(const RefusalCount&) const = default;
};

struct StatsReply {
  static constexpr MessageType kType = MessageType::kStatsReply;
  uint64_t sessions = 0;
  uint64_t blocks = 0;
  uint64_t bytes = 0;                   // bytes in live blocks, all pools
  uint64_t exports = 0;                 // live export tokens and sysv exports
  std::vector<PoolInfo> pools{};        // <= kMaxPools
  std::vector<RefusalCount> refused{};  // <= kMaxRefusalCauses, by cause
  bool operator==(const StatsReply&) const = default;
};

enum class HolderKind : uint8_t { kSession = 0, kExport = 1, kSysvExport = 2 };
[[nodiscard]] std::string_view holder_kind_name(HolderKind k);  // "session", ...

// Who holds references to a block. `id`: the session id for kSession and
// kSysvExport; for kExport, when token_shown, the token's first 8 bytes read
// big-endian (so its hex form is the first 16 digits of the token text),
// else 0: only the exporter's uid is shown token bits. pid, uid and device
// are those of the session that holds or made the export.
struct Holder {
  HolderKind kind = HolderKind::kSession;
  uint64_t id = 0;
  int32_t pid = 0;
  std::string device{};  // <= kMaxNameLength
  uint32_t references = 0;
  uint32_t uid = 0;
  bool token_shown = false;   // kExport: id is the token prefix
  uint32_t imports_left = 0;  // kExport
  uint64_t expires_ms = 0;    // kExport: milliseconds until its deadline
  bool operator==(const Holder&) const = default;
};

struct BlockEntry {
  uint64_t id = 0;
  uint32_t pool_index = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t phys = 0;              // 0: unknown, or hidden (phys_hidden)
  bool phys_hidden = false;       // known, but the viewer may not see it
  uint32_t refcount = 0;          // every holder's references, listed or not
  std::vector<Holder> holders{};  // <= kMaxHoldersPerBlock
  uint32_t holders_omitted = 0;   // not listed: beyond the limit, or another user's
  bool operator==(const BlockEntry&) const = default;
};

struct BlockList {
  static constexpr MessageType kType = MessageType::kBlockList;
  std::vector<BlockEntry> blocks{};  // <= kMaxBlocksPerPage
  uint64_t next_after_id = 0;
  bool more = false;
  bool operator==(const BlockList&) const = default;
};

struct SessionEntry {
  uint64_t id = 0;
  int32_t pid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string device{};  // <= kMaxNameLength
  uint64_t blocks_held = 0;
  uint64_t references = 0;
  uint64_t bytes_held = 0;
  bool operator==(const SessionEntry&) const = default;
};

struct SessionList {
  static constexpr MessageType kType = MessageType::kSessionList;
  std::vector<SessionEntry> sessions{};  // <= kMaxSessionsPerPage
  uint64_t next_after_id = 0;
  bool more = false;
  bool operator==(const SessionList&) const = default;
};

// max and min are the device's limits in bytes; max = UINT64_MAX means no
// limit, min = 0 no guarantee. headroom: what the device may still take now.
struct DeviceEntry {
  uint64_t id = 0;     // stable for the daemon's life; the pagination cursor
  std::string name{};  // <= kMaxNameLength
  uint64_t max = 0;
  uint64_t min = 0;
  uint64_t used = 0;
  uint64_t headroom = 0;
  uint32_t sessions = 0;
  bool operator==(const DeviceEntry&) const = default;
};

struct DeviceList {
  static constexpr MessageType kType = MessageType::kDeviceList;
  std::vector<DeviceEntry> devices{};  // <= kMaxDevicesPerPage
  uint64_t next_after_id = 0;
  bool more = false;
  bool operator==(const DeviceList&) const = default;
};

// ---- the invariant walk (pmmctl check) ---------------------------------------

// -> CheckReply. Root only (else ErrorReply kPermission). The daemon walks
// every pool's allocator and the whole ledger, cross-checking every record
// (Pool::check_invariants, Ledger::check_invariants). It is O(blocks +
// sessions + exports) and the daemon serves nobody else meanwhile, which is
// why it is an admin request.
struct CheckRequest {
  static constexpr MessageType kType = MessageType::kCheck;
  bool operator==(const CheckRequest&) const = default;
};

struct CheckReply {
  static constexpr MessageType kType = MessageType::kCheckReply;
  std::string violation{};  // <= kMaxTextLength; "" = every invariant holds
  uint64_t pools = 0;       // what was walked
  uint64_t blocks = 0;
  uint64_t sessions = 0;
  uint64_t exports = 0;
  uint64_t micros = 0;  // how long the walk took
  bool operator==(const CheckReply&) const = default;
};

// ---- views: metrics and pool maps (pmmctl metrics, top, map) ----------------

inline constexpr size_t kMaxRequestTypes = 64;        // MetricsReply.requests
inline constexpr size_t kMaxLatencyBuckets = 32;      // MetricsReply.latency_bounds_ns
inline constexpr size_t kMaxMapEntries = 2048;        // PoolMapReply.extents
inline constexpr size_t kMaxMapBarriers = 2048;       // PoolMapReply.barriers
inline constexpr size_t kMaxMapDevices = 64;          // PoolMapReply.devices
inline constexpr uint16_t kMapDeviceHidden = 0xffff;  // MapExtent.device: not for this viewer
inline constexpr uint16_t kMapDeviceNone = 0xfffe;    // MapExtent.device: free bytes only

// -> MetricsReply. Admins only (root, [admin], pmmd's own uid), else
// ErrorReply kPermission: the counters are the whole daemon's activity.
struct MetricsRequest {
  static constexpr MessageType kType = MessageType::kMetrics;
  bool operator==(const MetricsRequest&) const = default;
};

// Requests of one type since the daemon started; `errors` of them were
// answered with an ErrorReply.
struct RequestCount {
  uint16_t type = 0;  // a MessageType value
  uint64_t count = 0;
  uint64_t errors = 0;
  bool operator==(const RequestCount&) const = default;
};

// Counters since pmmd started. The latency histogram is the time pmmd spent
// handling each request (decode to reply, socket time excluded):
// latency_counts[i] requests took <= latency_bounds_ns[i] and more than the
// bound before it (not cumulative); the last count, one past the bounds, is
// those above every bound. Bounds strictly increase.
struct MetricsReply {
  static constexpr MessageType kType = MessageType::kMetricsReply;
  uint64_t uptime_ms = 0;
  std::vector<RequestCount> requests{};       // <= kMaxRequestTypes, by type
  std::vector<uint64_t> latency_bounds_ns{};  // <= kMaxLatencyBuckets
  std::vector<uint64_t> latency_counts{};     // bounds + 1 entries
  uint64_t latency_sum_ns = 0;
  uint64_t latency_count = 0;  // = the sum of latency_counts
  bool operator==(const MetricsReply&) const = default;
};

inline constexpr uint32_t kMapPageRecords = 1024;     // PoolMapRequest.limit when 0
inline constexpr uint32_t kMaxMapPageRecords = 2048;  // PoolMapRequest.limit at most

// How a PoolMapRequest wants the pool drawn.
enum class MapMode : uint8_t {
  kAuto = 0,     // exact if the pool's blocks fit max_entries, else buckets (first page)
  kExact = 1,    // one entry per block
  kBuckets = 2,  // equal buckets of ceil(size / max_entries) bytes
};

// -> PoolMapReply: one page of the pool laid out by offset. Anyone may ask;
// what the reply names follows "Who sees what" (docs/protocol.md). Paged
// like the listings: the page visits at most `limit` block records (of any
// pool) with id > after_id, so each request costs pmmd O(limit). The client
// asks again with after_id = next_after_id, and the same max_entries and
// the mode the first reply chose, while `more`.
struct PoolMapRequest {
  static constexpr MessageType kType = MessageType::kPoolMap;
  std::string pool{};        // <= kMaxNameLength
  uint32_t max_entries = 0;  // 1..kMaxMapEntries; 0 = kMaxMapEntries
  MapMode mode = MapMode::kAuto;
  uint64_t after_id = 0;
  uint32_t limit = 0;  // <= kMaxMapPageRecords; 0 = kMapPageRecords
  bool operator==(const PoolMapRequest&) const = default;
};

// One entry of a page, by offset, none overlapping, inside [0, size). An
// exact page (bucket_size 0) has one per block of the page (used == size).
// A bucketed page has one per bucket (offset a multiple of bucket_size, the
// last bucket shorter) that the page's blocks touch, with the bytes they
// use in it. device: an index into PoolMapReply.devices, kMapDeviceHidden
// for another user's block (the viewer is not told whose). In a bucket,
// the device and uid of the largest block part in it.
struct MapExtent {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t used = 0;  // <= size
  uint16_t device = kMapDeviceNone;
  uint32_t uid = 0;    // the allocating uid; 0 when hidden
  bool mixed = false;  // a bucket whose used bytes have several devices/owners
  bool operator==(const MapExtent&) const = default;
};

// A physical-run edge: the run starting at `offset` is not physically
// adjacent to the one before. phys: its physical address, only for a
// viewer that may see physical addresses (else 0).
struct MapBarrier {
  uint64_t offset = 0;
  uint64_t phys = 0;
  bool operator==(const MapBarrier&) const = default;
};

// The pool's figures (size, blocks, bytes used and free, free extents and
// the largest, from the allocator's counters) are as of this page. Barriers
// come with the first page (after_id 0) only.
struct PoolMapReply {
  static constexpr MessageType kType = MessageType::kPoolMapReply;
  uint32_t pool_index = 0;
  std::string pool{};      // <= kMaxNameLength
  std::string strategy{};  // <= kMaxNameLength
  uint64_t size = 0;
  uint64_t page_size = 0;
  uint64_t blocks = 0;
  uint64_t bytes_used = 0;
  uint64_t bytes_free = 0;
  uint64_t free_extents = 0;
  uint64_t largest_free = 0;
  uint64_t bucket_size = 0;            // 0: exact, one entry per block
  std::vector<std::string> devices{};  // <= kMaxMapDevices names, each <= kMaxNameLength
  std::vector<MapExtent> extents{};    // <= kMaxMapEntries
  std::vector<MapBarrier> barriers{};  // <= kMaxMapBarriers
  uint64_t barriers_omitted = 0;       // run edges beyond kMaxMapBarriers
  uint64_t next_after_id = 0;
  bool more = false;
  uint64_t micros = 0;  // what this page cost pmmd
  bool operator==(const PoolMapReply&) const = default;
};

// ---- frame-rate sharing (issue 10) ------------------------------------------

// The longest AllocateWait.wait_ms the daemon accepts (PMM_ALLOC_MAX_WAIT_MS).
inline constexpr uint32_t kMaxAllocateWaitMs = 60'000;

// -> BlockInfo, possibly after a while. As Allocate, but when the pools are
// full (kNoMemory) or a device rule or quota refuses for now (kLimit) the
// daemon queues the request, first come first served across sessions, and
// answers when it can be served or when wait_ms has passed (the refusal of
// that moment). Bounded queue: past it, kLimit at once.
struct AllocateWait {
  static constexpr MessageType kType = MessageType::kAllocateWait;
  std::vector<std::string> pools{};  // as Allocate
  uint64_t size = 0;
  uint64_t alignment = 0;
  uint32_t flags = 0;
  uint32_t wait_ms = 0;  // <= kMaxAllocateWaitMs; 0 = answer at once
  bool operator==(const AllocateWait&) const = default;
};

// -> Ok. The session must hold the block. Arms (or, if armed, counts once
// more) a one-shot release
// notification: the daemon sends Released (request_id 0) once no one but
// this session holds the block (no other session, no export, no SysV
// export) — at once if that is already so. The watch ends there, when this
// session stops holding the block, or when it closes. Bounded per session.
struct WatchRelease {
  static constexpr MessageType kType = MessageType::kWatchRelease;
  uint64_t block_id = 0;
  bool operator==(const WatchRelease&) const = default;
};

// Event (daemon -> client, request_id 0): every holder of the block other
// than this session has let go (see WatchRelease).
struct Released {
  static constexpr MessageType kType = MessageType::kReleased;
  uint64_t block_id = 0;
  // How many WatchRelease requests of the block this answers (each one is
  // answered once; those armed while one was pending are answered together).
  uint32_t watches = 1;
  bool operator==(const Released&) const = default;
};

// ---- the sum type ----------------------------------------------------------

using Body = std::variant<
    // requests
    Hello, ListPools, Allocate, Get, Put, Export, Import, Unexport, SysvExport, SysvUnexport,
    StatsRequest, ListBlocks, ListSessions, ListDevices,
    // replies
    ErrorReply, Welcome, Ok, PoolList, BlockInfo, TokenReply, SysvSegment, StatsReply, BlockList,
    SessionList, DeviceList,
    // the invariant walk (request, reply)
    CheckRequest, CheckReply,
    // views (requests, replies)
    MetricsRequest, PoolMapRequest, MetricsReply, PoolMapReply,
    // frame-rate sharing (requests, event)
    AllocateWait, WatchRelease, Released>;

struct Message {
  uint32_t request_id = 0;  // a reply echoes its request's id
  Body body{};
  bool operator==(const Message&) const = default;
};

// Inline, as loads from tables: pmmd asks these several times per request,
// and a call each was a visible part of a request's cost.
namespace detail {
// Whether each type value below 256 is a known type (messages.cc; every
// type is below 256).
extern const std::array<bool, 256> kKnownTypes;
// Body's alternatives' types by index.
inline constexpr auto kTypeOfIndex = []<size_t... I>(std::index_sequence<I...>) {
  return std::array<MessageType, sizeof...(I)>{std::variant_alternative_t<I, Body>::kType...};
}
(std::make_index_sequence<std::variant_size_v<Body>>{});
}  // namespace detail

[[nodiscard]] inline MessageType type_of(const Body& body) {
  // A Body left valueless by a throwing assignment (bad_alloc) has no type:
  // 0, which no message has and nothing accepts.
  const size_t i = body.index();
  return i < detail::kTypeOfIndex.size() ? detail::kTypeOfIndex[i] : MessageType{};
}
// Requests are the known types below 100; replies (and events, which also
// go daemon -> client) the known types from 100 on.
[[nodiscard]] inline bool is_request(MessageType t) {
  const auto v = static_cast<uint16_t>(t);
  return v >= 1 && v < 100 && detail::kKnownTypes[v];
}
[[nodiscard]] inline bool is_reply(MessageType t) {
  const auto v = static_cast<uint16_t>(t);
  return v >= 100 && v < detail::kKnownTypes.size() && detail::kKnownTypes[v];
}
// An unsolicited daemon -> client message (request_id 0), e.g. Released.
[[nodiscard]] bool is_event(MessageType t);

// ErrorReply <-> Error. from_error cuts a message longer than kMaxTextLength
// (at a UTF-8 character boundary) and maps kOk to kSystem, so the result
// always encodes.
[[nodiscard]] ErrorReply from_error(const Error& e);
[[nodiscard]] Error to_error(const ErrorReply& r);

}  // namespace pmm::proto
