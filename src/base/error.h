// pmm::Error and pmm::Result: how every layer of pmm reports failure.
//
// A function that can fail returns `Result<T>` (std::expected<T, Error>) and
// is [[nodiscard]]. An Error carries a code a program can branch on and a
// message a person can act on: what was asked, which rule refused it, and
// what would have been accepted ("alignment 3 is not a power of two; use 1,
// 2, 4, ... up to 1 GiB"). Messages never end with a newline or a period.
//
// The numeric codes are part of the wire protocol and of the C API
// (`pmm_status` in include/pmm/pmm.h has the same values): never renumber.
//
// Usage:
//   pmm::Result<uint64_t> r = strategy.allocate(size, 64);
//   if (!r) return std::unexpected(r.error());
//   return pmm::fail(Errc::kInvalidArgument, "size 0: a block needs at least 1 byte");
//
// Thread safety: plain values; no shared state.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace pmm {

enum class Errc : int32_t {
  kOk = 0,
  kInvalidArgument = 1,  // the request itself is wrong (size 0, bad alignment, bad name)
  kNoMemory = 2,         // the pool has no free extent that fits
  kLimit = 3,            // a device rule (max, min) or a quota ([limits]) refused it
  kNotFound = 4,         // no such pool, block, token, session
  kPermission = 5,       // the caller's uid/gid may not use that pool
  kNoDaemon = 6,         // nothing listens on the socket
  kDisconnected = 7,     // the daemon went away mid-session
  kProtocol = 8,         // a malformed, truncated or oversized message
  kUnsupported = 9,      // valid but not possible here (sysv export of a shmem block)
  kSystem = 10,          // a system call failed; the message names it and errno
  kExpired = 11,         // an export token whose lifetime or import count ran out
  kExists = 12,          // already there (a pool name twice, a second release)
  // The daemon did not answer within the caller's wait. libpmm's own verdict
  // (the daemon never sends it), so the wire codec's range stops before it.
  kTimeout = 13,
};

[[nodiscard]] constexpr std::string_view errc_name(Errc c) noexcept {
  switch (c) {
    case Errc::kOk:
      return "ok";
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kNoMemory:
      return "out of pool memory";
    case Errc::kLimit:
      return "limit reached";
    case Errc::kNotFound:
      return "not found";
    case Errc::kPermission:
      return "permission denied";
    case Errc::kNoDaemon:
      return "daemon not running";
    case Errc::kDisconnected:
      return "daemon went away";
    case Errc::kProtocol:
      return "protocol error";
    case Errc::kUnsupported:
      return "unsupported";
    case Errc::kSystem:
      return "system call failed";
    case Errc::kExpired:
      return "expired";
    case Errc::kExists:
      return "already exists";
    case Errc::kTimeout:
      return "timed out";
  }
  return "unknown error";
}

struct Error {
  Errc code = Errc::kOk;
  std::string message;
  int sys_errno = 0;  // set for kSystem: the errno of the call that failed

  // "out of pool memory: pool general: ..." — the form people see.
  [[nodiscard]] std::string describe() const {
    return fmt::format("{}: {}", errc_name(code), message);
  }
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

[[nodiscard]] inline std::unexpected<Error> fail(Errc code, std::string message,
                                                 int sys_errno = 0) {
  return std::unexpected(Error{code, std::move(message), sys_errno});
}

// fail(Errc::kInvalidArgument, "size {} is larger than the pool ({})", a, b)
template <typename... Args>
[[nodiscard]] std::unexpected<Error> fail(Errc code, fmt::format_string<Args...> f,
                                          Args&&... args) {
  return std::unexpected(Error{code, fmt::format(f, std::forward<Args>(args)...), 0});
}

}  // namespace pmm
