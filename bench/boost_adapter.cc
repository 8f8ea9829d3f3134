// The Boost.Interprocess peer: rbtree_best_fit, the classic O(log n) best fit
// (free blocks in an intrusive red-black tree ordered by size, neighbours
// found through boundary tags), on a managed external buffer.
//
// Unlike ours it keeps its metadata in band: a header in front of every block
// and the tree nodes inside the free blocks, so it needs real memory behind
// the whole region. We map it with MAP_NORESERVE; only the pages that hold a
// header or a tree node get touched. Its headers and the segment manager also
// take bytes out of the region, which the utilisation figures include.
//
// Alignments up to the algorithm's own (16 bytes on x86-64) use allocate();
// larger ones use allocate_aligned(), which over-allocates and splits.
#include <sys/mman.h>

#include <boost/interprocess/indexes/iset_index.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#include <cerrno>
#include <cstring>
#include <new>

#include "adapter.h"

namespace pmm::bench {
namespace {

namespace bip = boost::interprocess;
using Algorithm = bip::rbtree_best_fit<bip::null_mutex_family>;
using Buffer = bip::basic_managed_external_buffer<char, Algorithm, bip::iset_index>;

// Owns the mapping; declared before the buffer so that it outlives it.
struct Mapping {
  char* base;
  uint64_t size;
  ~Mapping() { munmap(base, size); }
};

class BoostAllocator final : public BenchAllocator {
 public:
  BoostAllocator(char* base, uint64_t region_size)
      : mapping_{base, region_size},
        base_(base),
        region_size_(region_size),
        buffer_(bip::create_only, base, region_size) {}

  std::optional<Placed> allocate(uint64_t size, uint64_t alignment) override {
    void* p = alignment <= Algorithm::Alignment
                  ? buffer_.allocate(size, std::nothrow)
                  : buffer_.allocate_aligned(size, alignment, std::nothrow);
    if (p == nullptr) return std::nullopt;
    const auto off = static_cast<uint64_t>(static_cast<char*>(p) - base_);
    return Placed{.offset = off, .ref = off};
  }

  void release(uint64_t ref) override { buffer_.deallocate(base_ + ref); }

  uint64_t region_size() const override { return region_size_; }

 private:
  Mapping mapping_;
  char* base_;
  uint64_t region_size_;
  Buffer buffer_;
};

}  // namespace

Result<std::unique_ptr<BenchAllocator>> make_boost_allocator(uint64_t region_size) {
  void* p = mmap(nullptr, region_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    return fail(Errc::kSystem, "mmap of {} bytes for rbtree_best_fit failed: {}", region_size,
                std::strerror(err));
  }
  return std::make_unique<BoostAllocator>(static_cast<char*>(p), region_size);
}

}  // namespace pmm::bench
