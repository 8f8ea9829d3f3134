// The pmm wire codec. See codec.h for the contract, docs/protocol.md for the
// bytes.
//
// Each message's layout is written once, as `fields(io, msg)`, and run by
// two IO types: Writer (encode) and Reader (decode). Both apply the same
// limits and cross-field rules, so the encoder cannot produce what the
// decoder refuses. Both keep the first error and ignore everything after it,
// which keeps `fields` free of error plumbing; the Reader never reads past
// its span and allocates only after a count has passed its limit.
#include "proto/codec.h"

#include "proto/codec_direct.h"

#include <algorithm>
#include <array>
#include <bit>
#include <concepts>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace pmm::proto {
namespace {

// The last code on the wire (base/error.h); kTimeout is libpmm's own and never sent.
constexpr auto kLastErrc = Errc::kExists;

// The path of the field being handled, for messages: "blocks[3].holders[0].device".
// Kept as (list, index) frames and written out only when an error names a
// field, so a message that decodes costs no formatting (a list item used to
// format its path even when nothing was wrong: once per Allocate in pmmd).
class FieldPath {
 public:
  std::string name(std::string_view field) const {
    std::string out;
    for (size_t i = 0; i < depth_ && i < kMaxDepth; ++i)
      out += fmt::format("{}[{}].", std::string_view(frames_[i].list, frames_[i].length),
                         frames_[i].index);
    out += field;
    return out;
  }
  size_t push(std::string_view list, size_t index) {
    if (depth_ < kMaxDepth) frames_[depth_] = Frame{list.data(), list.size(), index};
    return depth_++;
  }
  void pop(size_t saved) { depth_ = saved; }

 private:
  // Deeper than any message nests lists (two: blocks[i].holders[j]).
  static constexpr size_t kMaxDepth = 4;
  // Trivial, and left uninitialised: only frames below depth_ are read,
  // each written by push() first, so a Reader or Writer (one per message)
  // costs no stores for them.
  struct Frame {
    const char* list;
    size_t length;
    size_t index;
  };
  std::array<Frame, kMaxDepth> frames_;
  size_t depth_ = 0;
};

// Shared by Reader and Writer: the sticky first error. The message's name
// is looked up only when an error names it.
class IoBase {
 public:
  IoBase(MessageType message, Errc code) : message_(message), code_(code) {}
  [[nodiscard]] bool ok() const { return !error_; }
  [[nodiscard]] Error take_error() { return std::move(*error_); }

  // A rule that is not about a single field's encoding (flags, limits,
  // consistency between fields). `what` says what was wrong and what is allowed.
  template <typename... Args>
  void require(bool cond, fmt::format_string<Args...> what, Args&&... args) {
    if (ok() && !cond) set_error(fmt::format(what, std::forward<Args>(args)...));
  }

 protected:
  void set_error(std::string text) {
    if (error_) return;
    error_ = Error{code_, fmt::format("{}: {}", message_type_name(message_), text), 0};
  }

  FieldPath path_;
  MessageType message_;
  Errc code_;
  // The first error; none (nothing to build or destroy) while all is well.
  std::optional<Error> error_;
};

// Range checks for the enums on the wire.
bool enum_valid(PoolType t) { return static_cast<uint8_t>(t) <= 2; }
bool enum_valid(HolderKind k) { return static_cast<uint8_t>(k) <= 2; }
bool enum_valid(MapMode m) { return static_cast<uint8_t>(m) <= 2; }
bool enum_valid(Errc c) {
  auto v = static_cast<int32_t>(c);
  return v >= 1 && v <= static_cast<int32_t>(kLastErrc);
}
std::string enum_allowed(PoolType) { return "0 (shmem), 1 (hugetlb) or 2 (sysv)"; }
std::string enum_allowed(HolderKind) { return "0 (session), 1 (export) or 2 (sysv_export)"; }
std::string enum_allowed(MapMode) { return "0 (auto), 1 (exact) or 2 (buckets)"; }
std::string enum_allowed(Errc) {
  return fmt::format("an error code from 1 to {}", static_cast<int32_t>(kLastErrc));
}

// Writes at pos_ into `out`; what does not fit is counted, not written, so
// size() says how large the message is either way. Each field is a compare,
// a copy and an add, where a vector insert per field (its generic range
// path) was most of what encoding a message cost.
class Writer : public IoBase {
 public:
  Writer(MessageType message, std::span<std::byte> out, size_t at)
      : IoBase(message, Errc::kInvalidArgument), out_(out), pos_(at) {}
  // The message's size, header included, whether or not it fitted.
  [[nodiscard]] size_t size() const { return pos_; }

  template <std::integral T>
  void integer(std::string_view, const T& v) {
    // Little-endian on the wire: one copy of the value's bytes.
    auto u = static_cast<std::make_unsigned_t<T>>(v);
    if constexpr (std::endian::native == std::endian::big) u = std::byteswap(u);
    put(&u, sizeof(T));
  }
  void boolean(std::string_view, const bool& v) {
    const uint8_t b = v ? 1 : 0;
    put(&b, 1);
  }
  template <typename E, typename Wire>
  void enumeration(std::string_view field, const E& e, Wire) {
    if (!enum_valid(e)) {
      set_error(fmt::format("{} is {}; expected {}", path_.name(field), static_cast<int64_t>(e),
                            enum_allowed(e)));
      return;
    }
    integer(field, static_cast<Wire>(e));
  }
  void string(std::string_view field, const std::string& s, size_t max) {
    if (s.size() > max) {
      set_error(fmt::format("{} is {} bytes long; at most {}", path_.name(field), s.size(), max));
      return;
    }
    if (s.find('\0') != std::string::npos) {
      set_error(fmt::format("{} contains a NUL byte", path_.name(field)));
      return;
    }
    integer(field, static_cast<uint16_t>(s.size()));
    put(s.data(), s.size());
  }
  void token(std::string_view, const Token& t) { put(t.data(), t.size()); }
  template <typename T, typename F>
  void list(std::string_view field, const std::vector<T>& v, size_t max, F&& item) {
    if (v.size() > max) {
      set_error(fmt::format("{} has {} entries; at most {}", path_.name(field), v.size(), max));
      return;
    }
    integer(field, static_cast<uint32_t>(v.size()));
    for (size_t i = 0; i < v.size() && ok(); ++i) {
      size_t saved = path_.push(field, i);
      item(*this, v[i]);
      path_.pop(saved);
    }
  }

 private:
  // n bytes at pos_, which moves past them (written only where they fit).
  // One compare: pos_ + n cannot wrap (a message's fields add up to far
  // less than 2^64 bytes, each list and string being bounded).
  void put(const void* p, size_t n) {
    if (pos_ + n <= out_.size()) [[likely]]
      std::memcpy(out_.data() + pos_, p, n);
    pos_ += n;
  }

  std::span<std::byte> out_;
  size_t pos_;
};

class Reader : public IoBase {
 public:
  Reader(MessageType message, std::span<const std::byte> in)
      : IoBase(message, Errc::kProtocol), in_(in) {}
  [[nodiscard]] size_t remaining() const { return in_.size() - pos_; }

  // The field readers are inlined into each layout (a call per field cost
  // more than the read); their refusals are formatted out of line.
  template <std::integral T>
  [[gnu::always_inline]] void integer(std::string_view field, T& v) {
    if (!take(field, sizeof(T))) return;
    // Little-endian on the wire: one load (and a swap on a big-endian host).
    std::make_unsigned_t<T> u;
    std::memcpy(&u, in_.data() + pos_ - sizeof(T), sizeof(T));
    if constexpr (std::endian::native == std::endian::big) u = std::byteswap(u);
    v = static_cast<T>(u);
  }
  [[gnu::always_inline]] void boolean(std::string_view field, bool& v) {
    uint8_t raw = 0;
    integer(field, raw);
    if (!ok()) return;
    if (raw > 1) [[unlikely]] {
      refuse_boolean(field, raw);
      return;
    }
    v = raw == 1;
  }
  template <typename E, typename Wire>
  [[gnu::always_inline]] void enumeration(std::string_view field, E& e, Wire) {
    Wire raw{};
    integer(field, raw);
    if (!ok()) return;
    E candidate = static_cast<E>(raw);
    if (!enum_valid(candidate)) [[unlikely]] {
      refuse_enumeration(field, candidate, static_cast<int64_t>(raw));
      return;
    }
    e = candidate;
  }
  void string(std::string_view field, std::string& s, size_t max) {
    uint16_t len = 0;
    integer(field, len);
    if (!ok()) return;
    if (len > max) {
      set_error(fmt::format("{} is {} bytes long; at most {}", path_.name(field), len, max));
      return;
    }
    if (!take(field, len)) return;
    s.assign(reinterpret_cast<const char*>(in_.data() + pos_ - len), len);
    if (s.find('\0') != std::string::npos) {
      set_error(fmt::format("{} contains a NUL byte", path_.name(field)));
    }
  }
  void token(std::string_view field, Token& t) {
    if (!take(field, t.size())) return;
    std::memcpy(t.data(), in_.data() + pos_ - t.size(), t.size());
  }
  template <typename T, typename F>
  void list(std::string_view field, std::vector<T>& v, size_t max, F&& item) {
    uint32_t count = 0;
    integer(field, count);
    if (!ok()) return;
    if (count > max) {
      set_error(fmt::format("{} has {} entries; at most {}", path_.name(field), count, max));
      return;
    }
    // Every item takes at least one byte: a count the rest of the message
    // cannot hold is refused before anything is allocated.
    if (count > remaining()) {
      set_error(fmt::format("{} has {} entries but only {} bytes follow", path_.name(field), count,
                            remaining()));
      return;
    }
    v.resize(count);
    for (size_t i = 0; i < count && ok(); ++i) {
      size_t saved = path_.push(field, i);
      item(*this, v[i]);
      path_.pop(saved);
    }
  }
  void finish() {
    if (ok() && remaining() != 0) {
      set_error(fmt::format("{} trailing bytes after the last field", remaining()));
    }
  }

 private:
  // Inline for the bytes being there; the refusal is formatted out of line,
  // so every field's read stays a compare and an add.
  [[gnu::always_inline]] bool take(std::string_view field, size_t n) {
    if (ok() && n <= remaining()) [[likely]] {
      pos_ += n;
      return true;
    }
    return refuse_take(field, n);
  }
  [[gnu::noinline, gnu::cold]] void refuse_boolean(std::string_view field, uint8_t raw) {
    set_error(fmt::format("{} is {}; a boolean is 0 or 1", path_.name(field), raw));
  }
  template <typename E>
  [[gnu::noinline, gnu::cold]] void refuse_enumeration(std::string_view field, E candidate,
                                                       int64_t raw) {
    set_error(
        fmt::format("{} is {}; expected {}", path_.name(field), raw, enum_allowed(candidate)));
  }
  [[gnu::noinline, gnu::cold]] bool refuse_take(std::string_view field, size_t n) {
    if (!ok()) return false;
    set_error(fmt::format("truncated at {}: needs {} bytes at payload offset {}, {} left",
                          path_.name(field), n, pos_, remaining()));
    return false;
  }

  std::span<const std::byte> in_;
  size_t pos_ = 0;
};

// ---- layouts -----------------------------------------------------------------
// One `fields` per message or item. M is T or const T, so the same function
// reads (Reader, T&) and writes (Writer, const T&).

template <typename M, typename T>
concept Is = std::same_as<std::remove_const_t<M>, T>;

void fields(auto& io, Is<Hello> auto& m) {
  io.integer("protocol_version", m.protocol_version);
  io.string("device", m.device, kMaxNameLength);
  io.integer("pid", m.pid);
}
void fields(auto&, Is<ListPools> auto&) {}
// Allocate's fields, which AllocateWait starts with.
void allocate_fields(auto& io, auto& m) {
  io.list("pool list", m.pools, kMaxAllocatePools,
          [](auto& i, auto& name) { i.string("name", name, kMaxNameLength); });
  io.integer("size", m.size);
  io.integer("alignment", m.alignment);
  io.integer("flags", m.flags);
  io.require((m.flags & ~kAllocKnownFlags) == 0,
             "flags 0x{:x} has unknown bits; known: contiguous=0x1, zero=0x2", m.flags);
}
void fields(auto& io, Is<Allocate> auto& m) { allocate_fields(io, m); }
void fields(auto& io, Is<Get> auto& m) { io.integer("block_id", m.block_id); }
void fields(auto& io, Is<Put> auto& m) { io.integer("block_id", m.block_id); }
void fields(auto& io, Is<Export> auto& m) {
  io.integer("block_id", m.block_id);
  io.integer("max_imports", m.max_imports);
  io.integer("lifetime_ms", m.lifetime_ms);
}
void fields(auto& io, Is<Import> auto& m) { io.token("token", m.token); }
void fields(auto& io, Is<Unexport> auto& m) { io.token("token", m.token); }
void fields(auto& io, Is<SysvExport> auto& m) { io.integer("block_id", m.block_id); }
void fields(auto& io, Is<SysvUnexport> auto& m) { io.integer("block_id", m.block_id); }
void fields(auto&, Is<StatsRequest> auto&) {}

void page_request(auto& io, auto& m, size_t max) {
  io.integer("after_id", m.after_id);
  io.integer("limit", m.limit);
  io.require(m.limit <= max, "limit {} is above the page size {}; use 0 to {}", m.limit, max, max);
}
void fields(auto& io, Is<ListBlocks> auto& m) { page_request(io, m, kMaxBlocksPerPage); }
void fields(auto& io, Is<ListSessions> auto& m) { page_request(io, m, kMaxSessionsPerPage); }
void fields(auto& io, Is<ListDevices> auto& m) { page_request(io, m, kMaxDevicesPerPage); }

void fields(auto& io, Is<ErrorReply> auto& m) {
  io.enumeration("code", m.code, int32_t{});
  io.string("message", m.message, kMaxTextLength);
}
void fields(auto& io, Is<Welcome> auto& m) {
  io.integer("protocol_version", m.protocol_version);
  io.integer("session_id", m.session_id);
  io.string("daemon_version", m.daemon_version, kMaxNameLength);
}
void fields(auto&, Is<Ok> auto&) {}

void fields(auto& io, Is<PoolInfo> auto& m) {
  io.integer("index", m.index);
  io.string("name", m.name, kMaxNameLength);
  io.enumeration("type", m.type, uint8_t{});
  io.integer("size", m.size);
  io.integer("page_size", m.page_size);
  io.integer("bytes_used", m.bytes_used);
  io.integer("bytes_free", m.bytes_free);
  io.integer("largest_free", m.largest_free);
  io.integer("free_extents", m.free_extents);
  io.integer("live_blocks", m.live_blocks);
  io.boolean("has_physical", m.has_physical);
  io.string("strategy", m.strategy, kMaxNameLength);
  io.boolean("accessible", m.accessible);
  io.string("state", m.state, kMaxTextLength);
}
void pool_list(auto& io, auto& pools) {
  io.list("pools", pools, kMaxPools, [](auto& i, auto& p) { fields(i, p); });
}
void fields(auto& io, Is<PoolList> auto& m) { pool_list(io, m.pools); }

void fields(auto& io, Is<PoolMemory> auto& m) {
  io.enumeration("memory.type", m.type, uint8_t{});
  io.boolean("memory.fd_attached", m.fd_attached);
  io.integer("memory.pool_size", m.pool_size);
  io.integer("memory.page_size", m.page_size);
  io.integer("memory.shmid", m.shmid);
  if (m.type == PoolType::kSysv) {
    io.require(!m.fd_attached, "memory.fd_attached is set for a sysv pool; sysv travels as shmid");
    io.require(m.shmid >= 0, "memory.shmid is {} for a sysv pool; it must be >= 0", m.shmid);
  } else if (m.shmid != -1) {  // the type's name is looked up only for the refusal
    io.require(false, "memory.shmid is {} for a {} pool; it must be -1", m.shmid,
               pool_type_name(m.type));
  }
}
void fields(auto& io, Is<BlockInfo> auto& m) {
  io.integer("block_id", m.block_id);
  io.integer("pool_index", m.pool_index);
  io.string("pool_name", m.pool_name, kMaxNameLength);
  io.integer("offset", m.offset);
  io.integer("size", m.size);
  io.integer("phys", m.phys);
  fields(io, m.memory);
}
void fields(auto& io, Is<TokenReply> auto& m) { io.token("token", m.token); }
void fields(auto& io, Is<SysvSegment> auto& m) {
  io.integer("shmid", m.shmid);
  io.integer("offset", m.offset);
  io.integer("size", m.size);
}
void fields(auto& io, Is<StatsReply> auto& m) {
  io.integer("sessions", m.sessions);
  io.integer("blocks", m.blocks);
  io.integer("bytes", m.bytes);
  io.integer("exports", m.exports);
  pool_list(io, m.pools);
  io.list("refused", m.refused, kMaxRefusalCauses, [](auto& i, auto& r) {
    i.string("refused.cause", r.cause, kMaxNameLength);
    i.integer("refused.count", r.count);
  });
}

void fields(auto& io, Is<Holder> auto& m) {
  io.enumeration("kind", m.kind, uint8_t{});
  io.integer("id", m.id);
  io.integer("pid", m.pid);
  io.string("device", m.device, kMaxNameLength);
  io.integer("references", m.references);
  io.integer("uid", m.uid);
  io.boolean("token_shown", m.token_shown);
  io.integer("imports_left", m.imports_left);
  io.integer("expires_ms", m.expires_ms);
}
void fields(auto& io, Is<BlockEntry> auto& m) {
  io.integer("id", m.id);
  io.integer("pool_index", m.pool_index);
  io.integer("offset", m.offset);
  io.integer("size", m.size);
  io.integer("phys", m.phys);
  io.boolean("phys_hidden", m.phys_hidden);
  io.integer("refcount", m.refcount);
  io.list("holders", m.holders, kMaxHoldersPerBlock, [](auto& i, auto& h) { fields(i, h); });
  io.integer("holders_omitted", m.holders_omitted);
}
void page_reply(auto& io, auto& m) {
  io.integer("next_after_id", m.next_after_id);
  io.boolean("more", m.more);
}
void fields(auto& io, Is<BlockList> auto& m) {
  io.list("blocks", m.blocks, kMaxBlocksPerPage, [](auto& i, auto& b) { fields(i, b); });
  page_reply(io, m);
}
void fields(auto& io, Is<SessionEntry> auto& m) {
  io.integer("id", m.id);
  io.integer("pid", m.pid);
  io.integer("uid", m.uid);
  io.integer("gid", m.gid);
  io.string("device", m.device, kMaxNameLength);
  io.integer("blocks_held", m.blocks_held);
  io.integer("references", m.references);
  io.integer("bytes_held", m.bytes_held);
}
void fields(auto& io, Is<SessionList> auto& m) {
  io.list("sessions", m.sessions, kMaxSessionsPerPage, [](auto& i, auto& s) { fields(i, s); });
  page_reply(io, m);
}
void fields(auto& io, Is<DeviceEntry> auto& m) {
  io.integer("id", m.id);
  io.string("name", m.name, kMaxNameLength);
  io.integer("max", m.max);
  io.integer("min", m.min);
  io.integer("used", m.used);
  io.integer("headroom", m.headroom);
  io.integer("sessions", m.sessions);
}
void fields(auto& io, Is<DeviceList> auto& m) {
  io.list("devices", m.devices, kMaxDevicesPerPage, [](auto& i, auto& d) { fields(i, d); });
  page_reply(io, m);
}

void fields(auto& io, Is<AllocateWait> auto& m) {
  allocate_fields(io, m);
  io.integer("wait_ms", m.wait_ms);
  io.require(m.wait_ms <= kMaxAllocateWaitMs, "wait_ms {} is above the longest wait, {} ms",
             m.wait_ms, kMaxAllocateWaitMs);
}
void fields(auto& io, Is<WatchRelease> auto& m) { io.integer("block_id", m.block_id); }
void fields(auto& io, Is<Released> auto& m) {
  io.integer("block_id", m.block_id);
  io.integer("watches", m.watches);
}
void fields(auto&, Is<CheckRequest> auto&) {}
void fields(auto& io, Is<CheckReply> auto& m) {
  io.string("violation", m.violation, kMaxTextLength);
  io.integer("pools", m.pools);
  io.integer("blocks", m.blocks);
  io.integer("sessions", m.sessions);
  io.integer("exports", m.exports);
  io.integer("micros", m.micros);
}

void fields(auto&, Is<MetricsRequest> auto&) {}
void fields(auto& io, Is<MetricsReply> auto& m) {
  io.integer("uptime_ms", m.uptime_ms);
  io.list("requests", m.requests, kMaxRequestTypes, [](auto& i, auto& r) {
    i.integer("type", r.type);
    i.integer("count", r.count);
    i.integer("errors", r.errors);
    i.require(r.errors <= r.count, "requests: {} errors of {} requests of type {}", r.errors,
              r.count, r.type);
  });
  io.list("latency_bounds_ns", m.latency_bounds_ns, kMaxLatencyBuckets,
          [](auto& i, auto& b) { i.integer("bound", b); });
  io.list("latency_counts", m.latency_counts, kMaxLatencyBuckets + 1,
          [](auto& i, auto& c) { i.integer("count", c); });
  io.integer("latency_sum_ns", m.latency_sum_ns);
  io.integer("latency_count", m.latency_count);
  io.require(m.latency_counts.size() == m.latency_bounds_ns.size() + 1,
             "latency_counts has {} entries; it needs one per bound plus one (+Inf): {}",
             m.latency_counts.size(), m.latency_bounds_ns.size() + 1);
  bool ascending = true;
  for (size_t i = 1; i < m.latency_bounds_ns.size(); ++i)
    ascending = ascending && m.latency_bounds_ns[i - 1] < m.latency_bounds_ns[i];
  io.require(ascending, "latency_bounds_ns must strictly increase");
}
void fields(auto& io, Is<PoolMapRequest> auto& m) {
  io.string("pool", m.pool, kMaxNameLength);
  io.integer("max_entries", m.max_entries);
  io.enumeration("mode", m.mode, uint8_t{});
  io.integer("after_id", m.after_id);
  io.integer("limit", m.limit);
  io.require(m.max_entries <= kMaxMapEntries, "max_entries {} is above {}; use 0 to {}",
             m.max_entries, kMaxMapEntries, kMaxMapEntries);
  io.require(m.limit <= kMaxMapPageRecords, "limit {} is above {}; use 0 to {}", m.limit,
             kMaxMapPageRecords, kMaxMapPageRecords);
}
void fields(auto& io, Is<MapExtent> auto& m) {
  io.integer("offset", m.offset);
  io.integer("size", m.size);
  io.integer("used", m.used);
  io.integer("device", m.device);
  io.integer("uid", m.uid);
  io.boolean("mixed", m.mixed);
  io.require(m.used <= m.size, "extent at {}: used {} exceeds its size {}", m.offset, m.used,
             m.size);
}
void fields(auto& io, Is<PoolMapReply> auto& m) {
  io.integer("pool_index", m.pool_index);
  io.string("pool", m.pool, kMaxNameLength);
  io.string("strategy", m.strategy, kMaxNameLength);
  io.integer("size", m.size);
  io.integer("page_size", m.page_size);
  io.integer("blocks", m.blocks);
  io.integer("bytes_used", m.bytes_used);
  io.integer("bytes_free", m.bytes_free);
  io.integer("free_extents", m.free_extents);
  io.integer("largest_free", m.largest_free);
  io.integer("bucket_size", m.bucket_size);
  io.list("devices", m.devices, kMaxMapDevices,
          [](auto& i, auto& d) { i.string("name", d, kMaxNameLength); });
  io.list("extents", m.extents, kMaxMapEntries, [](auto& i, auto& e) { fields(i, e); });
  io.list("barriers", m.barriers, kMaxMapBarriers, [](auto& i, auto& b) {
    i.integer("offset", b.offset);
    i.integer("phys", b.phys);
  });
  io.integer("barriers_omitted", m.barriers_omitted);
  io.integer("next_after_id", m.next_after_id);
  io.boolean("more", m.more);
  io.integer("micros", m.micros);
  // Entries in order, none overlapping, inside the pool, naming listed
  // devices: a client may draw them without further checks.
  uint64_t at = 0;
  bool fine = true;
  for (const MapExtent& e : m.extents) {
    fine =
        fine && e.offset >= at && e.size > 0 && e.size <= m.size && e.offset <= m.size - e.size &&
        (e.device == kMapDeviceHidden || e.device == kMapDeviceNone || e.device < m.devices.size());
    at = e.offset + e.size;
  }
  io.require(fine,
             "extents must lie in [0, {}) in order, none empty or overlapping, naming listed "
             "devices",
             m.size);
}

// ---- framing -----------------------------------------------------------------

// Little-endian loads; the caller has checked the bytes are there.
template <typename U>
U load_le(std::span<const std::byte> b, size_t at) {
  U v;
  std::memcpy(&v, b.data() + at, sizeof(U));
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  return v;
}
uint32_t load_u32(std::span<const std::byte> b, size_t at) { return load_le<uint32_t>(b, at); }
uint16_t load_u16(std::span<const std::byte> b, size_t at) { return load_le<uint16_t>(b, at); }

// Hello, Welcome and ErrorReply keep their layout in every version, so a
// peer speaking another version can still be told so.
bool layout_frozen(MessageType t) {
  return t == MessageType::kHello || t == MessageType::kWelcome || t == MessageType::kError;
}

// Makes `m` a default T again before it is decoded into, except that an
// Allocate keeps its pool list as it is: the decoder sizes the list to the
// count on the wire and assigns every name, so a client naming the same
// pools each time costs no string built or freed (RequestSlots).
template <typename T>
void reset(T& m) {
  m = T{};
}
template <typename T>
requires std::same_as<T, Allocate> || std::same_as<T, AllocateWait>
void reset(T& m) {
  // Every field but the list, as a default T has them (no vector moved out
  // and back).
  m.size = 0;
  m.alignment = 0;
  m.flags = 0;
  if constexpr (std::same_as<T, AllocateWait>) {
    m.wait_ms = 0;
    static_assert(sizeof(T) == sizeof(m.pools) + 2 * sizeof(uint64_t) + 2 * sizeof(uint32_t),
                  "a field added to AllocateWait must be reset here");
  } else {
    static_assert(sizeof(T) == sizeof(m.pools) + 2 * sizeof(uint64_t) + sizeof(uint64_t),
                  "a field added to Allocate must be reset here");
  }
}

// Decodes a T into `body`, reusing the T it holds, if it holds one.
template <typename T>
Status decode_payload(std::span<const std::byte> payload, Body& body) {
  T* m = std::get_if<T>(&body);
  if (m != nullptr) {
    reset(*m);
  } else {
    m = &body.emplace<T>();
  }
  Reader r(T::kType, payload);
  fields(r, *m);
  r.finish();
  if (!r.ok()) return std::unexpected(r.take_error());
  return {};
}

using PayloadDecoder = Status (*)(std::span<const std::byte>, Body&);
struct DecoderEntry {
  MessageType type;
  PayloadDecoder decode;
};
// One entry per alternative of Body, in its order.
constexpr auto kDecoders = []<size_t... I>(std::index_sequence<I...>) {
  return std::array<DecoderEntry, sizeof...(I)>{
      DecoderEntry{std::variant_alternative_t<I, Body>::kType,
                   &decode_payload<std::variant_alternative_t<I, Body>>}...};
}
(std::make_index_sequence<std::variant_size_v<Body>>{});

// Body's alternative for each type value below 256 (every type is: see
// messages.cc), -1 for none: a load per message rather than a search.
constexpr auto kBodyIndex = [] {
  std::array<int8_t, 256> index{};
  index.fill(-1);
  for (size_t i = 0; i < kDecoders.size(); ++i) {
    index[static_cast<uint16_t>(kDecoders[i].type)] = static_cast<int8_t>(i);
  }
  return index;
}();
static_assert(std::variant_size_v<Body> < 128);

// The index in Body of the alternative of `type`.
std::optional<size_t> body_index(MessageType type) {
  const auto v = static_cast<uint16_t>(type);
  if (v >= kBodyIndex.size() || kBodyIndex[v] < 0) return std::nullopt;
  return static_cast<size_t>(kBodyIndex[v]);
}

// `index` is body_index(type), found by the caller.
Status decode_body(MessageType type, std::optional<size_t> index,
                   std::span<const std::byte> payload, Body& body) {
  // The refusal is formatted only for a type that matched nothing.
  if (index) return kDecoders[*index].decode(payload, body);
  return fail(Errc::kProtocol, "unknown message type {}", static_cast<int>(type));
}

}  // namespace

Result<Header> decode_header(std::span<const std::byte> bytes) {
  if (bytes.size() < kHeaderSize) {
    return fail(Errc::kProtocol, "message is {} bytes; the header alone is {}", bytes.size(),
                kHeaderSize);
  }
  Header h;
  h.magic = load_u32(bytes, 0);
  h.version = load_u16(bytes, 4);
  h.type = static_cast<MessageType>(load_u16(bytes, 6));
  h.request_id = load_u32(bytes, 8);
  h.payload_length = load_u32(bytes, 12);
  if (h.magic != kMagic) {
    return fail(Errc::kProtocol,
                "bad magic 0x{:08x}; a pmm message starts with 0x{:08x} (\"PMM1\")", h.magic,
                kMagic);
  }
  if (h.payload_length != bytes.size() - kHeaderSize) {
    return fail(Errc::kProtocol, "header announces {} payload bytes but {} follow",
                h.payload_length, bytes.size() - kHeaderSize);
  }
  return h;
}

Result<std::vector<std::byte>> encode(const Message& m) {
  std::vector<std::byte> out;
  // One allocation for the common messages (every request, BlockInfo, Ok,
  // Token are under 256 bytes) instead of one per doubling from 16.
  out.reserve(256);
  if (auto s = encode_into(m, out); !s) return std::unexpected(s.error());
  return out;
}

Result<size_t> encode_into(const Message& m, std::span<std::byte> out) {
  MessageType type = type_of(m.body);
  Writer w(type, out, kHeaderSize);
  std::visit([&](const auto& body) { fields(w, body); }, m.body);
  if (!w.ok()) return std::unexpected(w.take_error());
  const size_t size = w.size();
  size_t limit = is_request(type) ? kMaxRequestSize : kMaxReplySize;
  if (size > limit) {
    return fail(Errc::kInvalidArgument, "{}: message would be {} bytes; at most {}",
                message_type_name(type), size, limit);
  }
  if (size > out.size()) return size;  // the caller makes room and asks again
  auto put = [&]<typename U>(size_t at, U v) {
    if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
    std::memcpy(out.data() + at, &v, sizeof(U));
  };
  put(0, uint32_t{kMagic});
  put(4, uint16_t{kProtocolVersion});
  put(6, static_cast<uint16_t>(type));
  put(8, uint32_t{m.request_id});
  put(12, static_cast<uint32_t>(size - kHeaderSize));
  return size;
}

Status encode_into(const Message& m, std::vector<std::byte>& out) {
  // Room for the common messages (every request, BlockInfo, Ok, Token are
  // under 256 bytes) at once, and for a larger one once its size is known.
  // (Not the whole capacity: a kept buffer of kilobytes would be zero-filled
  // per message.)
  out.resize(std::max<size_t>(256, kHeaderSize));
  auto size = encode_into(m, std::span<std::byte>(out));
  if (!size) return std::unexpected(size.error());
  if (*size > out.size()) {
    out.resize(*size);
    size = encode_into(m, std::span<std::byte>(out));
    if (!size) return std::unexpected(size.error());
  }
  out.resize(*size);
  return {};
}

namespace {

// decode() after its header has been read and checked (decode_request and
// decode_reply read it once, not twice), into `out`.
// `index` is body_index(h.type).
Status decode_after_header(const Header& h, std::optional<size_t> index,
                           std::span<const std::byte> bytes, Message& out) {
  if (!is_request(h.type) && !is_reply(h.type)) {
    return fail(Errc::kProtocol,
                "unknown message type {}; docs/protocol.md lists the known ones (requests "
                "below 100, replies and events from 100)",
                static_cast<uint16_t>(h.type));
  }
  if (h.version != kProtocolVersion && !layout_frozen(h.type)) {
    return fail(Errc::kProtocol, "{}: protocol version {}; this side speaks version {}",
                message_type_name(h.type), h.version, kProtocolVersion);
  }
  out.request_id = h.request_id;
  return decode_body(h.type, index, bytes.subspan(kHeaderSize), out.body);
}

// The checks decode_request and decode_reply make before the payload's.
Status check_request(const Header& h) {
  if (is_reply(h.type)) {
    return fail(Errc::kProtocol, "{} is a reply; the daemon only accepts requests",
                message_type_name(h.type));
  }
  return {};
}
Status check_reply(const Header& h) {
  if (is_request(h.type)) {
    return fail(Errc::kProtocol, "{} is a request; a reply was expected",
                message_type_name(h.type));
  }
  return {};
}

// A fresh Message: decoded into, then returned as it is (no move of a Body).
Result<Message> decode_new(std::span<const std::byte> bytes, Status (*check)(const Header&)) {
  auto h = decode_header(bytes);
  if (!h) return std::unexpected(h.error());
  if (check != nullptr) {
    if (auto c = check(*h); !c) return std::unexpected(c.error());
  }
  Result<Message> m(std::in_place);
  if (auto s = decode_after_header(*h, body_index(h->type), bytes, *m); !s)
    return std::unexpected(s.error());
  return m;
}

}  // namespace

Result<Message> decode(std::span<const std::byte> bytes) { return decode_new(bytes, nullptr); }

Result<Message> decode_request(std::span<const std::byte> bytes) {
  if (bytes.size() > kMaxRequestSize) {
    return fail(Errc::kProtocol, "request is {} bytes; at most {}", bytes.size(), kMaxRequestSize);
  }
  return decode_new(bytes, &check_request);
}

namespace {
// RequestSlots::decode's other path, out of line: its Result<Message> would
// otherwise give the common path a large frame to set up.
[[gnu::noinline]] Result<const Message*> decode_whole(std::span<const std::byte> bytes,
                                                      std::span<Message> slots) {
  auto whole = decode_request(bytes);
  if (!whole) return std::unexpected(std::move(whole.error()));
  Message& m = slots[*body_index(type_of(whole->body))];
  m = std::move(*whole);
  return &m;
}
}  // namespace

Result<const Message*> RequestSlots::decode(std::span<const std::byte> bytes) {
  static_assert(std::tuple_size_v<decltype(slots_)> == kDecoders.size());
  // The common case, checked inline: a header of this version announcing
  // the bytes that follow, for a known request type. Anything else takes
  // decode_request's path, so every refusal (and every accepted frozen
  // layout of another version) is exactly decode_request's.
  if (bytes.size() >= kHeaderSize && bytes.size() <= kMaxRequestSize) [[likely]] {
    const auto type = static_cast<MessageType>(load_u16(bytes, 6));
    if (load_u32(bytes, 0) == kMagic && load_u16(bytes, 4) == kProtocolVersion &&
        load_u32(bytes, 12) == bytes.size() - kHeaderSize && is_request(type)) [[likely]] {
      if (const std::optional<size_t> index = body_index(type)) [[likely]] {
        Message& m = slots_[*index];
        m.request_id = load_u32(bytes, 8);
        const auto payload = bytes.subspan(kHeaderSize);
        // The requests of an allocate, put, get, export and import, and a
        // connection's Hello, read directly when they are well formed
        // (codec_direct.h); anything
        // else, refusals included, is read by the generic layout below.
        Body& body = m.body;
        switch (type) {
          case MessageType::kAllocate:
            if (auto* a = std::get_if<Allocate>(&body); a && detail::decode_allocate(payload, *a))
              return &m;
            break;
          case MessageType::kPut:
            if (auto* p = std::get_if<Put>(&body);
                p && detail::decode_block_id(payload, p->block_id))
              return &m;
            break;
          case MessageType::kGet:
            if (auto* g = std::get_if<Get>(&body);
                g && detail::decode_block_id(payload, g->block_id))
              return &m;
            break;
          case MessageType::kExport:
            if (auto* e = std::get_if<Export>(&body); e && detail::decode_export(payload, *e))
              return &m;
            break;
          case MessageType::kImport:
            if (auto* i = std::get_if<Import>(&body); i && detail::decode_token(payload, i->token))
              return &m;
            break;
          case MessageType::kHello:
            if (auto* h = std::get_if<Hello>(&body); h && detail::decode_hello(payload, *h))
              return &m;
            break;
          default:
            break;
        }
        if (auto s = kDecoders[*index].decode(payload, m.body); !s) [[unlikely]] {
          // A failed decode may leave a name that broke the rules in the
          // slot; the direct path trusts the names it holds.
          if (auto* a = std::get_if<Allocate>(&body)) a->pools.clear();
          return std::unexpected(std::move(s.error()));
        }
        return &m;
      }
    }
  }
  return decode_whole(bytes, slots_);
}

Result<Message> decode_reply(std::span<const std::byte> bytes) {
  if (bytes.size() > kMaxReplySize) {
    return fail(Errc::kProtocol, "reply is {} bytes; at most {}", bytes.size(), kMaxReplySize);
  }
  return decode_new(bytes, &check_reply);
}

namespace {
// decode_reply_into's other path, out of line: its Result<Message> would
// otherwise give the common path a large frame to set up.
[[gnu::noinline]] Status decode_reply_moved(std::span<const std::byte> bytes, Message& out) {
  auto whole = decode_reply(bytes);
  if (!whole) return std::unexpected(std::move(whole.error()));
  out = std::move(*whole);
  return {};
}
}  // namespace

namespace {

// BlockInfo's wire layout (fields(BlockInfo) above): the fixed fields
// around the pool name, and where each lies after it.
constexpr size_t kBlockInfoNameAt = 14;  // block_id u64, pool_index u32, name length u16
constexpr size_t kBlockInfoFixed = kBlockInfoNameAt + 46;  // + offset, size, phys, memory

// The reply to every Allocate and Import read straight off the wire, when
// it is well formed: the same rules as fields(BlockInfo) (name length and
// no NUL, enum and boolean ranges, PoolMemory's consistency, no trailing
// bytes), checked before anything is stored. The pool name is assigned
// only when it differs from the one `out` holds (a client allocating from
// one pool gets the same name every time). false: not accepted here, and
// `body` untouched; the general decoder then accepts it or refuses it with
// its message.
[[gnu::always_inline]] inline bool decode_block_info_fast(std::span<const std::byte> p,
                                                          Body& body) {
  if (p.size() < kBlockInfoFixed) return false;
  const size_t len = load_u16(p, 12);
  if (len > kMaxNameLength || p.size() != kBlockInfoFixed + len) return false;
  const char* name = reinterpret_cast<const char*>(p.data() + kBlockInfoNameAt);
  if (std::memchr(name, '\0', len) != nullptr) return false;
  const size_t at = kBlockInfoNameAt + len;
  const auto type = static_cast<uint8_t>(p[at + 24]);
  const auto fd_attached = static_cast<uint8_t>(p[at + 25]);
  const auto shmid = static_cast<int32_t>(load_u32(p, at + 42));
  if (fd_attached > 1 || !enum_valid(static_cast<PoolType>(type))) return false;
  if (static_cast<PoolType>(type) == PoolType::kSysv ? fd_attached != 0 || shmid < 0 : shmid != -1)
    return false;
  BlockInfo* m = std::get_if<BlockInfo>(&body);
  if (m == nullptr) m = &body.emplace<BlockInfo>();
  m->block_id = load_le<uint64_t>(p, 0);
  m->pool_index = load_u32(p, 8);
  if (std::string_view(m->pool_name) != std::string_view(name, len)) m->pool_name.assign(name, len);
  m->offset = load_le<uint64_t>(p, at);
  m->size = load_le<uint64_t>(p, at + 8);
  m->phys = load_le<uint64_t>(p, at + 16);
  m->memory.type = static_cast<PoolType>(type);
  m->memory.fd_attached = fd_attached == 1;
  m->memory.pool_size = load_le<uint64_t>(p, at + 26);
  m->memory.page_size = load_le<uint64_t>(p, at + 34);
  m->memory.shmid = shmid;
  return true;
}

// The answer to every Hello, as decode_block_info_fast (out of line: once
// per connection): its three fields (protocol_version u16, session_id u64,
// daemon_version string), the string's length bounded and free of NUL,
// nothing after it.
[[gnu::noinline]] bool decode_welcome_fast(std::span<const std::byte> p, Body& body) {
  constexpr size_t kNameAt = 12;  // protocol_version, session_id, length u16
  if (p.size() < kNameAt) return false;
  const size_t len = load_u16(p, 10);
  if (len > kMaxNameLength || p.size() != kNameAt + len) return false;
  const char* name = reinterpret_cast<const char*>(p.data() + kNameAt);
  if (std::memchr(name, '\0', len) != nullptr) return false;
  Welcome* m = std::get_if<Welcome>(&body);
  if (m == nullptr) m = &body.emplace<Welcome>();
  m->protocol_version = load_u16(p, 0);
  m->session_id = load_le<uint64_t>(p, 2);
  // Built and moved in, not assign()ed: a second assign() in this file
  // made GCC stop inlining BlockInfo's.
  if (std::string_view(m->daemon_version) != std::string_view(name, len))
    m->daemon_version = std::string(name, len);
  return true;
}

}  // namespace

Status decode_reply_into(std::span<const std::byte> bytes, Message& out) {
  // As RequestSlots::decode: the common case inline (this version, the
  // length the header announces, a known reply type), the payload decoded
  // over the alternative `out` holds when it is the same; anything else is
  // decode_reply's, refusals included. The two replies of every alloc+put,
  // a BlockInfo and an Ok, an Export's TokenReply and a connection's
  // Welcome are read without the general decoder's Reader when they are
  // well formed.
  if (bytes.size() >= kHeaderSize && bytes.size() <= kMaxReplySize) [[likely]] {
    const auto type = static_cast<MessageType>(load_u16(bytes, 6));
    if (load_u32(bytes, 0) == kMagic && load_u16(bytes, 4) == kProtocolVersion &&
        load_u32(bytes, 12) == bytes.size() - kHeaderSize && is_reply(type)) [[likely]] {
      if (const std::optional<size_t> index = body_index(type)) [[likely]] {
        out.request_id = load_u32(bytes, 8);
        const auto payload = bytes.subspan(kHeaderSize);
        if (type == MessageType::kOk && payload.empty()) {
          if (!std::holds_alternative<Ok>(out.body)) out.body.emplace<Ok>();
          return {};
        }
        if (type == MessageType::kBlockInfo && decode_block_info_fast(payload, out.body)) return {};
        if (type == MessageType::kWelcome && decode_welcome_fast(payload, out.body)) return {};
        if (type == MessageType::kToken && payload.size() == std::tuple_size_v<Token>) {
          // An Export's answer: the token's bytes, nothing else to check.
          TokenReply* t = std::get_if<TokenReply>(&out.body);
          if (t == nullptr) t = &out.body.emplace<TokenReply>();
          std::memcpy(t->token.data(), payload.data(), t->token.size());
          return {};
        }
        return kDecoders[*index].decode(payload, out.body);
      }
    }
  }
  return decode_reply_moved(bytes, out);
}

}  // namespace pmm::proto
