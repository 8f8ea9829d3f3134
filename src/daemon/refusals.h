// pmm::daemon::Refusals — how many connections and requests pmmd refused,
// per cause, since it started; what `pmmctl status` shows under "refused".
//
// A cause is a short fixed word: the loop's "sessions", "sessions_per_uid",
// "no_fds", "hello_timeout", "protocol", or the refused request's error
// ("no_memory", "limit", "permission", ...). The set is fixed by the code,
// so the map stays small whatever clients do.
//
// Usage:
//   Refusals r;
//   r.count("sessions_per_uid");
//   r.count(Errc::kNoMemory);
//   reply.refused = r.snapshot();
//
// Thread safety: none; the loop's thread owns it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/messages.h"

namespace pmm::daemon {

class Refusals {
 public:
  void count(std::string_view cause) {
    auto it = counts_.find(cause);
    if (it == counts_.end()) it = counts_.emplace(std::string(cause), 0).first;
    ++it->second;
  }
  void count(Errc code) { count(cause_of(code)); }

  [[nodiscard]] uint64_t get(std::string_view cause) const {
    auto it = counts_.find(cause);
    return it == counts_.end() ? 0 : it->second;
  }

  // By cause, in name order; at most proto::kMaxRefusalCauses.
  [[nodiscard]] std::vector<proto::RefusalCount> snapshot() const {
    std::vector<proto::RefusalCount> out;
    for (const auto& [cause, n] : counts_) {
      if (out.size() == proto::kMaxRefusalCauses) break;
      out.push_back({.cause = cause, .count = n});
    }
    return out;
  }

  // The pmm_status name without PMM_E_, lower case: "no_memory", "limit".
  [[nodiscard]] static std::string_view cause_of(Errc code) {
    switch (code) {
      case Errc::kInvalidArgument:
        return "invalid";
      case Errc::kNoMemory:
        return "no_memory";
      case Errc::kLimit:
        return "limit";
      case Errc::kNotFound:
        return "not_found";
      case Errc::kPermission:
        return "permission";
      case Errc::kProtocol:
        return "protocol";
      case Errc::kUnsupported:
        return "unsupported";
      case Errc::kSystem:
        return "system";
      case Errc::kExpired:
        return "expired";
      case Errc::kExists:
        return "exists";
      default:
        return "other";
    }
  }

 private:
  std::map<std::string, uint64_t, std::less<>> counts_;
};

}  // namespace pmm::daemon
