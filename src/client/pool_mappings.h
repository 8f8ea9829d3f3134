// pmm::client::PoolMappings — this connection's view of the daemon's pools.
//
// Trust domain = pool (DESIGN.md): a client that may use a pool maps all of
// it, once, and every block of that pool is a pointer into that mapping. The
// daemon sends a shmem/hugetlb pool's memfd once per connection, with the
// first BlockInfo that shows the pool (memory.fd_attached); that fd is
// mmap()ed MAP_SHARED over memory.pool_size bytes and kept (pmm_block_fd
// hands it out). A sysv pool is shmat()ed by shmid once. Everything is
// unmapped, detached and closed when the PoolMappings goes, i.e. when the
// connection closes.
//
// The checks here catch a daemon that breaks the protocol (a block past its
// pool's end, a second fd for a pool, no fd for an unknown pool) as
// Errc::kProtocol, so a bad reply is never turned into a wild pointer.
//
// Usage:
//   PoolMappings maps;
//   auto base = maps.map(info, std::move(envelope.fd));  // info: proto::BlockInfo
//   std::byte* p = (*base)->data + info.offset;
//
// Not thread-safe: Connection calls it under its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "base/error.h"
#include "os/memory.h"
#include "os/sysv.h"
#include "os/unique_fd.h"
#include "proto/messages.h"

namespace pmm::client {

struct PoolMapping {
  proto::PoolType type = proto::PoolType::kShmem;
  uint64_t size = 0;
  std::byte* data = nullptr;  // the first byte of the pool in this process
  int fd = -1;                // the memfd (shmem, hugetlb); -1 for sysv
  int32_t shmid = -1;         // sysv only

  // Owners; exactly one of map/shm is set.
  os::UniqueFd owned_fd;
  os::Mapping map;
  os::ShmAttachment shm;
};

class PoolMappings {
 public:
  PoolMappings() = default;
  PoolMappings(const PoolMappings&) = delete;
  PoolMappings& operator=(const PoolMappings&) = delete;

  // The mapping of `info`'s pool, made now if this is the pool's first block
  // (then `fd` must be its memfd, or invalid for sysv). Checks that the block
  // lies inside the pool. The pointer stays valid until clear().
  [[nodiscard]] Result<const PoolMapping*> map(const proto::BlockInfo& info, os::UniqueFd fd);

  // The pool's mapping if it has been made.
  [[nodiscard]] const PoolMapping* find(uint32_t pool_index) const;
  [[nodiscard]] size_t size() const { return pools_.size(); }

  // Unmaps, detaches and closes everything.
  void clear() { pools_.clear(); }

 private:
  [[nodiscard]] Result<std::unique_ptr<PoolMapping>> make(const proto::BlockInfo& info,
                                                          os::UniqueFd fd) const;

  // unique_ptr: PoolMapping addresses stay put when the table grows.
  std::unordered_map<uint32_t, std::unique_ptr<PoolMapping>> pools_;
};

}  // namespace pmm::client
