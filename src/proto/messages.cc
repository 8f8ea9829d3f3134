// Names of message types and enums, request/reply classification, and the
// ErrorReply <-> Error conversions.
#include "proto/messages.h"

#include <array>
#include <cstdint>
#include <utility>
#include <variant>

namespace pmm::proto {

namespace {

// constexpr so that the known types below can be a table built at compile
// time from the same list.
constexpr std::string_view type_name(MessageType t) {
  switch (t) {
    case MessageType::kHello:
      return "Hello";
    case MessageType::kListPools:
      return "ListPools";
    case MessageType::kAllocate:
      return "Allocate";
    case MessageType::kGet:
      return "Get";
    case MessageType::kPut:
      return "Put";
    case MessageType::kExport:
      return "Export";
    case MessageType::kImport:
      return "Import";
    case MessageType::kUnexport:
      return "Unexport";
    case MessageType::kSysvExport:
      return "SysvExport";
    case MessageType::kSysvUnexport:
      return "SysvUnexport";
    case MessageType::kStats:
      return "Stats";
    case MessageType::kListBlocks:
      return "ListBlocks";
    case MessageType::kListSessions:
      return "ListSessions";
    case MessageType::kListDevices:
      return "ListDevices";
    case MessageType::kError:
      return "Error";
    case MessageType::kWelcome:
      return "Welcome";
    case MessageType::kOk:
      return "Ok";
    case MessageType::kPoolList:
      return "PoolList";
    case MessageType::kBlockInfo:
      return "BlockInfo";
    case MessageType::kToken:
      return "Token";
    case MessageType::kSysvSegment:
      return "SysvSegment";
    case MessageType::kStatsReply:
      return "StatsReply";
    case MessageType::kBlockList:
      return "BlockList";
    case MessageType::kSessionList:
      return "SessionList";
    case MessageType::kDeviceList:
      return "DeviceList";
    case MessageType::kCheck:
      return "Check";
    case MessageType::kCheckReply:
      return "CheckReply";
    case MessageType::kMetrics:
      return "Metrics";
    case MessageType::kPoolMap:
      return "PoolMap";
    case MessageType::kMetricsReply:
      return "MetricsReply";
    case MessageType::kPoolMapReply:
      return "PoolMapReply";
    case MessageType::kAllocateWait:
      return "AllocateWait";
    case MessageType::kWatchRelease:
      return "WatchRelease";
    case MessageType::kReleased:
      return "Released";
  }
  return "unknown";
}

// Every type value that fits a byte, known or not: is_request and friends
// ask per message (twice per request in pmmd), and a name lookup and a
// string compare each time were a visible part of a request's cost.
// Types are below 256 (static_assert below keeps it so).
constexpr auto kKnown = [] {
  std::array<bool, 256> known{};
  for (size_t v = 0; v < known.size(); ++v)
    known[v] = type_name(static_cast<MessageType>(v)) != "unknown";
  return known;
}();
static_assert(type_name(static_cast<MessageType>(256)) == "unknown" &&
                  type_name(static_cast<MessageType>(UINT16_MAX)) == "unknown",
              "a message type at or above 256 needs a larger kKnown");

constexpr bool known(MessageType t) {
  auto v = static_cast<uint16_t>(t);
  return v < kKnown.size() && kKnown[v];
}

}  // namespace

// Constant-initialised: safe to read from any static initialiser.
constinit const std::array<bool, 256> detail::kKnownTypes = kKnown;

std::string_view message_type_name(MessageType t) { return type_name(t); }

std::string_view pool_type_name(PoolType t) {
  switch (t) {
    case PoolType::kShmem:
      return "shmem";
    case PoolType::kHugetlb:
      return "hugetlb";
    case PoolType::kSysv:
      return "sysv";
  }
  return "unknown";
}

std::string_view holder_kind_name(HolderKind k) {
  switch (k) {
    case HolderKind::kSession:
      return "session";
    case HolderKind::kExport:
      return "export";
    case HolderKind::kSysvExport:
      return "sysv_export";
  }
  return "unknown";
}

bool is_event(MessageType t) {
  auto v = static_cast<uint16_t>(t);
  return v >= 130 && v < 140 && known(t);
}

ErrorReply from_error(const Error& e) {
  ErrorReply r{.code = e.code == Errc::kOk ? Errc::kSystem : e.code, .message = e.message};
  if (r.message.size() > kMaxTextLength) {
    size_t cut = kMaxTextLength;
    // Step back over UTF-8 continuation bytes (10xxxxxx) so no character is
    // split in half.
    while (cut > 0 && (static_cast<unsigned char>(r.message[cut]) & 0xc0) == 0x80) --cut;
    r.message.resize(cut);
  }
  return r;
}

Error to_error(const ErrorReply& r) { return Error{r.code, r.message, 0}; }

}  // namespace pmm::proto
