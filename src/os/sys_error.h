// pmm::os::sys_fail — how a failed system call becomes a pmm::Error.
//
// Every wrapper in src/os/ reports a failure as Errc::kSystem with
// sys_errno set and a message that names the call, its key arguments and
// strerror, so a person reading a log knows what was tried:
//   "mmap(NULL, 67108864, PROT_READ|PROT_WRITE, MAP_SHARED, fd 5, 0) failed:
//    Cannot allocate memory (errno 12)"
//
// Usage:
//   if (::ftruncate(fd, size) != 0)
//     return os::sys_fail(errno, "ftruncate(fd {}, {})", fd, size);
//
// Thread safety: pure functions (strerror_r, no shared state).
#pragma once

#include <fmt/format.h>

#include <cstring>
#include <expected>
#include <string>
#include <utility>

#include "base/error.h"

namespace pmm::os {

// strerror for `err`, thread-safe: "Cannot allocate memory (errno 12)".
[[nodiscard]] inline std::string errno_text(int err) {
  char buf[128];
  // GNU strerror_r returns the text (maybe not in buf).
  const char* text = ::strerror_r(err, buf, sizeof buf);
  return fmt::format("{} (errno {})", text, err);
}

// The Error for a system call that failed with `err`; `call` describes it.
template <typename... Args>
[[nodiscard]] std::unexpected<Error> sys_fail(int err, fmt::format_string<Args...> call,
                                              Args&&... args) {
  return std::unexpected(Error{
      Errc::kSystem,
      fmt::format("{} failed: {}", fmt::format(call, std::forward<Args>(args)...), errno_text(err)),
      err});
}

}  // namespace pmm::os
