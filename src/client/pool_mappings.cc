// See pool_mappings.h. Refusals of kProtocol are a daemon that broke the
// protocol, so those messages name the pool, what arrived and what the
// protocol says should have arrived. Failures of this process (mmap, shmat,
// a lost fd) keep their own code and say what to do.
#include "client/pool_mappings.h"

#include <utility>

namespace pmm::client {

const PoolMapping* PoolMappings::find(uint32_t pool_index) const {
  auto it = pools_.find(pool_index);
  return it == pools_.end() ? nullptr : it->second.get();
}

bool PoolMappings::fds_settled(const std::vector<std::string>& names) const {
  if (names.empty()) return false;
  for (const std::string& name : names) {
    bool settled = false;
    for (const auto& [index, m] : pools_) {
      if (m->name != name) continue;
      settled = PoolMappings::settled(*m);
      break;
    }
    if (!settled) return false;
  }
  return true;
}

Result<PoolMapping*> PoolMappings::entry(const proto::BlockInfo& info) {
  const proto::PoolMemory& mem = info.memory;
  auto it = pools_.find(info.pool_index);
  if (it != pools_.end()) {
    PoolMapping& have = *it->second;
    if (!same_pool(have, info))
      return fail(Errc::kProtocol,
                  "BlockInfo for pool '{}' (index {}) describes a different pool than before "
                  "(type, size, name or shmid changed)",
                  info.pool_name, info.pool_index);
    return &have;
  }
  if (mem.pool_size == 0)
    return fail(Errc::kProtocol, "BlockInfo for pool '{}' gives the pool size 0", info.pool_name);
  if (mem.type == proto::PoolType::kSysv && mem.shmid < 0)
    return fail(Errc::kProtocol, "BlockInfo for sysv pool '{}' has no shmid", info.pool_name);
  auto m = std::make_unique<PoolMapping>();
  m->type = mem.type;
  m->name = info.pool_name;
  m->size = mem.pool_size;
  if (mem.type == proto::PoolType::kSysv) m->shmid = mem.shmid;
  PoolMapping* p = m.get();
  pools_.emplace(info.pool_index, std::move(m));
  return p;
}

Status PoolMappings::keep_fd(const proto::BlockInfo& info, os::UniqueFd fd) {
  if (info.memory.type == proto::PoolType::kSysv)
    return fail(Errc::kProtocol,
                "BlockInfo for sysv pool '{}' carried an fd; sysv pools pass a shmid",
                info.pool_name);
  auto e = entry(info);
  if (!e) return std::unexpected(e.error());
  PoolMapping& m = **e;
  if (m.owned_fd)
    return fail(Errc::kProtocol,
                "BlockInfo for pool '{}' carried the pool's fd again; it is sent once per "
                "connection",
                info.pool_name);
  m.fd = fd.get();
  m.owned_fd = std::move(fd);
  m.fd_lost.reset();
  return {};
}

void PoolMappings::lose_fd(const proto::BlockInfo& info, const Error& why) {
  auto e = entry(info);
  if (e && !(*e)->owned_fd) (*e)->fd_lost = why;
}

Status PoolMappings::attach(PoolMapping& m, const proto::BlockInfo& info) const {
  if (m.type == proto::PoolType::kSysv) {
    auto at = os::shm_attach(m.shmid);
    if (!at)
      return fail(at.error().code, "cannot attach sysv pool '{}': {}", info.pool_name,
                  at.error().message);
    if (at->size() < m.size)
      return fail(Errc::kProtocol, "sysv pool '{}': segment {} has {} bytes, the daemon says {}",
                  info.pool_name, m.shmid, at->size(), m.size);
    if (auto p = populated(at->data(), m.size, info); !p) return p;
    m.data = at->data();
    m.shm = std::move(*at);
    return {};
  }
  if (!m.owned_fd) {
    if (m.fd_lost)
      return fail(m.fd_lost->code,
                  "pool '{}' cannot be used on this connection: its fd was sent once and lost "
                  "({}); connect again to use it",
                  info.pool_name, m.fd_lost->message);
    return fail(Errc::kProtocol,
                "the first BlockInfo of pool '{}' came without the pool's fd "
                "(memory.fd_attached unset); the daemon must send it once per connection",
                info.pool_name);
  }
  auto map = os::map_shared(m.fd, m.size);
  if (!map)
    return fail(map.error().code,
                "cannot map pool '{}' ({} bytes): {}; the pool's fd is kept and the next call "
                "tries again",
                info.pool_name, m.size, map.error().message);
  if (auto p = populated(map->data(), m.size, info); !p) return p;
  m.data = map->data();
  m.map = std::move(*map);
  return {};
}

Status PoolMappings::populated(std::byte* data, uint64_t size, const proto::BlockInfo& info) const {
  if (!populate_) return {};
  const uint64_t page = info.memory.page_size != 0 ? info.memory.page_size : os::base_page_size();
  if (auto s = os::populate(data, size, page); !s)
    return fail(s.error().code,
                "cannot populate pool '{}' ({} bytes) as this connection asked "
                "(PMM_CONNECT_POPULATE): {}; the next call tries again",
                info.pool_name, size, s.error().message);
  return {};
}

Result<const PoolMapping*> PoolMappings::map_other(const proto::BlockInfo& info) {
  // A pool mapped before, described as before, and the block inside it
  // (what map_new would find, without its Result).
  if (auto it = pools_.find(info.pool_index); it != pools_.end()) {
    const PoolMapping& m = *it->second;
    if (m.data != nullptr && same_pool(m, info) && inside(m, info)) {
      last_ = &m;
      last_index_ = info.pool_index;
      return &m;
    }
  }
  return map_new(info);
}

Result<const PoolMapping*> PoolMappings::map_new(const proto::BlockInfo& info) {
  auto e = entry(info);
  if (!e) return std::unexpected(e.error());
  PoolMapping& m = **e;
  if (m.data == nullptr) {
    if (auto s = attach(m, info); !s) {
      // A failed first attach leaves an entry with nothing in it; harmless,
      // but keep the table to pools that have something to say.
      if (!m.owned_fd && !m.fd_lost && m.type != proto::PoolType::kSysv) {
        if (last_ == &m) last_ = nullptr;
        pools_.erase(info.pool_index);
      }
      return std::unexpected(s.error());
    }
  }
  if (!inside(m, info))
    return fail(Errc::kProtocol,
                "block {} at offset {} size {} does not lie inside pool '{}' of {} bytes",
                info.block_id, info.offset, info.size, info.pool_name, m.size);
  return &m;
}

}  // namespace pmm::client
