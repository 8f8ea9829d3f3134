// Who may use a pool or claim a device; see access.h.
#include "core/access.h"

#include <algorithm>

#include <fmt/format.h>

namespace pmm::core {

namespace {

std::string join_ids(const std::vector<uint32_t>& ids) {
  std::string s;
  for (uint32_t id : ids) s += fmt::format("{}{}", s.empty() ? "" : ", ", id);
  return s;
}

}  // namespace

bool Access::allows_uid(uint32_t uid) const {
  return everyone || uid == 0 || uid == owner ||
         std::find(uids.begin(), uids.end(), uid) != uids.end();
}

bool Access::listed(uint32_t uid, uint32_t gid, std::span<const uint32_t> groups) const {
  auto in_gids = [&](uint32_t g) { return std::find(gids.begin(), gids.end(), g) != gids.end(); };
  return std::find(uids.begin(), uids.end(), uid) != uids.end() || in_gids(gid) ||
         std::any_of(groups.begin(), groups.end(), in_gids);
}

std::string Access::describe() const {
  if (everyone) return "every user";
  std::string s = "root";
  if (owner != 0) s += fmt::format(", uid {} (pmmd's own)", owner);
  if (!uids.empty()) s += "; uids " + join_ids(uids);
  if (!gids.empty()) s += "; gids " + join_ids(gids);
  return s;
}

}  // namespace pmm::core
