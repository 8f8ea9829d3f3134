// pmm::client::PoolMappings — this connection's view of the daemon's pools.
//
// Trust domain = pool (DESIGN.md): a client that may use a pool maps all of
// it, and every block of that pool is a pointer into that mapping. The
// daemon sends a shmem/hugetlb pool's memfd once per connection, with the
// first BlockInfo that shows the pool (memory.fd_attached). That fd is kept
// the moment it arrives (keep_fd), whichever call's reply brought it, and
// the pool is mmap()ed MAP_SHARED over memory.pool_size bytes when a block
// of it is first used (map). A mapping that fails (ENOMEM under RLIMIT_AS)
// fails that call only; the fd stays, and the next call tries again. A sysv
// pool is shmat()ed by shmid the same way. Everything is unmapped, detached
// and closed when the PoolMappings goes, i.e. when the connection closes.
//
// One loss cannot be repaired: an fd that never arrived because this
// process's fd table was full (lose_fd). The daemon sends it once, so that
// pool stays unusable on this connection, and map() says so and why.
//
// The checks here catch a daemon that breaks the protocol (a block past its
// pool's end, a second fd for a pool, no fd for an unknown pool) as
// Errc::kProtocol, so a bad reply is never turned into a wild pointer.
//
// Usage:
//   PoolMappings maps;
//   if (envelope.fd) maps.keep_fd(info, std::move(envelope.fd));  // on arrival
//   auto base = maps.map(info);                                  // when used
//   std::byte* p = (*base)->data + info.offset;
//
// Not thread-safe: Connection calls it under its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "os/memory.h"
#include "os/sysv.h"
#include "os/unique_fd.h"
#include "proto/messages.h"

namespace pmm::client {

struct PoolMapping {
  proto::PoolType type = proto::PoolType::kShmem;
  std::string name;  // as the first BlockInfo of the pool named it
  uint64_t size = 0;
  std::byte* data = nullptr;  // the first byte of the pool here; null until mapped
  int fd = -1;                // the memfd (shmem, hugetlb); -1 for sysv
  int32_t shmid = -1;         // sysv only

  // Owners: the fd from its arrival; map or shm once mapped.
  os::UniqueFd owned_fd;
  os::Mapping map;
  os::ShmAttachment shm;
  // Why this pool's fd never arrived (it cannot come again).
  std::optional<Error> fd_lost;
};

class PoolMappings {
 public:
  PoolMappings() = default;
  PoolMappings(const PoolMappings&) = delete;
  PoolMappings& operator=(const PoolMappings&) = delete;

  // Keeps the memfd that came with `info` (fd_attached). kProtocol for an fd
  // the protocol does not allow: for a sysv pool, or a pool's second one.
  [[nodiscard]] Status keep_fd(const proto::BlockInfo& info, os::UniqueFd fd);
  // Records that `info`'s pool fd was sent but could not be received: `why`.
  void lose_fd(const proto::BlockInfo& info, const Error& why);

  // The mapping of `info`'s pool, made now if it has not been yet. Checks
  // that the block lies inside the pool. The pointer stays valid until
  // clear(). A failed mmap/shmat is returned and tried again next time.
  [[nodiscard]] Result<const PoolMapping*> map(const proto::BlockInfo& info) {
    // The pool of the last block mapped is looked at first, inline: a
    // client allocating from one pool finds it without a call or a lookup.
    if (last_ != nullptr && last_index_ == info.pool_index && same_pool(*last_, info) &&
        inside(*last_, info)) [[likely]]
      return last_;
    return map_other(info);
  }

  // Whether no BlockInfo of any of these pools can bring an fd any more:
  // each is known here with its fd kept or lost, or is sysv (the daemon
  // sends a pool's fd once per session). False for an empty list (the
  // device's default pools, which this side does not know).
  [[nodiscard]] bool fds_settled(const std::vector<std::string>& names) const;
  // The same for the pool of index `pool_index`: false while it is unknown.
  [[nodiscard]] bool fd_settled(uint32_t pool_index) const {
    const PoolMapping* m = find(pool_index);
    return m != nullptr && settled(*m);
  }

  // The pool's entry if it has one (mapped or not).
  [[nodiscard]] const PoolMapping* find(uint32_t pool_index) const;
  [[nodiscard]] size_t size() const { return pools_.size(); }

  // Unmaps, detaches and closes everything.
  void clear() {
    last_ = nullptr;
    if (!pools_.empty()) pools_.clear();  // an empty map's clear still wipes its buckets
  }

  // Populate each pool's whole mapping when it is made (MADV_POPULATE_WRITE,
  // else a touch per page): PMM_CONNECT_POPULATE. A populate that fails
  // fails the mapping, which is tried again next time.
  void set_populate(bool on) { populate_ = on; }

 private:
  // Whether `info` describes the pool of `have` as before. The name too:
  // which pools' fds are here is judged by name (fds_settled), so an index
  // must not change names.
  [[nodiscard]] static bool same_pool(const PoolMapping& have, const proto::BlockInfo& info) {
    const proto::PoolMemory& mem = info.memory;
    return have.type == mem.type && have.size == mem.pool_size && have.name == info.pool_name &&
           (have.type != proto::PoolType::kSysv || have.shmid == mem.shmid);
  }
  // Whether no BlockInfo of m's pool can bring an fd any more.
  [[nodiscard]] static bool settled(const PoolMapping& m) {
    return m.type == proto::PoolType::kSysv || m.owned_fd || m.fd_lost.has_value();
  }
  // Whether `info`'s block lies inside the pool (and is not empty).
  [[nodiscard]] static bool inside(const PoolMapping& m, const proto::BlockInfo& info) {
    return info.size != 0 && info.offset <= m.size && info.size <= m.size - info.offset;
  }
  // map() when the last pool is not the one, or refuses `info`.
  [[nodiscard]] Result<const PoolMapping*> map_other(const proto::BlockInfo& info);
  // map() past its common case: a pool not mapped yet, or a BlockInfo it
  // refuses.
  [[nodiscard]] Result<const PoolMapping*> map_new(const proto::BlockInfo& info);
  // The entry for `info`'s pool, made if missing; kProtocol if an entry
  // exists and `info` describes the pool differently.
  [[nodiscard]] Result<PoolMapping*> entry(const proto::BlockInfo& info);
  // mmap / shmat of an entry that is not mapped yet.
  [[nodiscard]] Status attach(PoolMapping& m, const proto::BlockInfo& info) const;
  [[nodiscard]] Status populated(std::byte* data, uint64_t size,
                                 const proto::BlockInfo& info) const;

  // unique_ptr: PoolMapping addresses stay put when the table grows.
  std::unordered_map<uint32_t, std::unique_ptr<PoolMapping>> pools_;
  // The entry map() last returned, under its index: found again without a
  // lookup. Null when none (or it was erased).
  const PoolMapping* last_ = nullptr;
  uint32_t last_index_ = 0;
  bool populate_ = false;
};

}  // namespace pmm::client
