// See pool_mappings.h. Every refusal here is a daemon that broke the
// protocol, so the messages name the pool, what arrived and what the
// protocol says should have arrived.
#include "client/pool_mappings.h"

#include <utility>

namespace pmm::client {

const PoolMapping* PoolMappings::find(uint32_t pool_index) const {
  auto it = pools_.find(pool_index);
  return it == pools_.end() ? nullptr : it->second.get();
}

Result<std::unique_ptr<PoolMapping>> PoolMappings::make(const proto::BlockInfo& info,
                                                        os::UniqueFd fd) const {
  const proto::PoolMemory& mem = info.memory;
  auto m = std::make_unique<PoolMapping>();
  m->type = mem.type;
  m->size = mem.pool_size;
  if (mem.pool_size == 0)
    return fail(Errc::kProtocol, "BlockInfo for pool '{}' gives the pool size 0", info.pool_name);

  if (mem.type == proto::PoolType::kSysv) {
    if (fd)
      return fail(Errc::kProtocol,
                  "BlockInfo for sysv pool '{}' carried an fd; sysv pools pass "
                  "a shmid",
                  info.pool_name);
    if (mem.shmid < 0)
      return fail(Errc::kProtocol, "BlockInfo for sysv pool '{}' has no shmid", info.pool_name);
    auto at = os::shm_attach(mem.shmid);
    if (!at)
      return fail(at.error().code, "cannot attach sysv pool '{}': {}", info.pool_name,
                  at.error().message);
    if (at->size() < mem.pool_size)
      return fail(Errc::kProtocol, "sysv pool '{}': segment {} has {} bytes, the daemon says {}",
                  info.pool_name, mem.shmid, at->size(), mem.pool_size);
    m->shmid = mem.shmid;
    m->data = at->data();
    m->shm = std::move(*at);
    return m;
  }

  if (!fd)
    return fail(Errc::kProtocol,
                "the first BlockInfo of pool '{}' came without the pool's fd "
                "(memory.fd_attached unset); the daemon must send it once per connection",
                info.pool_name);
  auto map = os::map_shared(fd.get(), mem.pool_size);
  if (!map)
    return fail(map.error().code, "cannot map pool '{}' ({} bytes): {}", info.pool_name,
                mem.pool_size, map.error().message);
  m->fd = fd.get();
  m->owned_fd = std::move(fd);
  m->data = map->data();
  m->map = std::move(*map);
  return m;
}

Result<const PoolMapping*> PoolMappings::map(const proto::BlockInfo& info, os::UniqueFd fd) {
  const PoolMapping* have = find(info.pool_index);
  if (have == nullptr) {
    auto made = make(info, std::move(fd));
    if (!made) return std::unexpected(made.error());
    have = made->get();
    pools_.emplace(info.pool_index, std::move(*made));
  } else {
    if (fd)
      return fail(Errc::kProtocol,
                  "BlockInfo for pool '{}' carried the pool's fd again; it is sent once per "
                  "connection",
                  info.pool_name);
    if (have->type != info.memory.type || have->size != info.memory.pool_size ||
        (have->type == proto::PoolType::kSysv && have->shmid != info.memory.shmid))
      return fail(Errc::kProtocol,
                  "BlockInfo for pool '{}' (index {}) describes a different pool than before "
                  "(type, size or shmid changed)",
                  info.pool_name, info.pool_index);
  }
  if (info.size == 0 || info.offset > have->size || info.size > have->size - info.offset)
    return fail(Errc::kProtocol,
                "block {} at offset {} size {} does not lie inside pool '{}' of {} bytes",
                info.block_id, info.offset, info.size, info.pool_name, have->size);
  return have;
}

}  // namespace pmm::client
