// An outside allocator behind the benchmark's adapter, loaded at run time
// from a shared object that exports the small C ABI in adapter.h, so that
// a peer (OffsetAllocator, a TLSF in C, ...) is measured on the very same
// traces without its code living in this repository.
#include <dlfcn.h>

#include <string>

#include "adapter.h"

namespace pmm::bench {
namespace {

struct PeerAbi {
  const char* (*name)() = nullptr;
  void* (*create)(uint64_t) = nullptr;
  int (*allocate)(void*, uint64_t, uint64_t, uint64_t*, uint64_t*) = nullptr;
  void (*release)(void*, uint64_t) = nullptr;
  void (*destroy)(void*) = nullptr;
};

PeerAbi& abi() {
  static PeerAbi a;
  return a;
}

std::string& loaded_name() {
  static std::string n = "peer";
  return n;
}

class PeerAllocator final : public BenchAllocator {
 public:
  PeerAllocator(void* self, uint64_t region_size) : self_(self), region_size_(region_size) {}
  ~PeerAllocator() override { abi().destroy(self_); }
  PeerAllocator(const PeerAllocator&) = delete;
  PeerAllocator& operator=(const PeerAllocator&) = delete;

  std::optional<Placed> allocate(uint64_t size, uint64_t alignment) override {
    Placed p;
    if (abi().allocate(self_, size, alignment, &p.offset, &p.ref) != 0) return std::nullopt;
    return p;
  }
  void release(uint64_t ref) override { abi().release(self_, ref); }
  uint64_t region_size() const override { return region_size_; }

 private:
  void* self_;
  uint64_t region_size_;
};

// dlsym returns void*; the ABI's functions are cast from it as POSIX allows.
template <typename F>
Status resolve(void* lib, const char* symbol, F& out, const std::string& path) {
  void* f = dlsym(lib, symbol);
  if (f == nullptr)
    return fail(Errc::kInvalidArgument,
                "peer {}: no symbol {}; a peer exports pmm_peer_name, pmm_peer_create, "
                "pmm_peer_allocate, pmm_peer_release and pmm_peer_destroy (bench/adapter.h)",
                path, symbol);
  out = reinterpret_cast<F>(f);
  return {};
}

}  // namespace

Status load_peer(const std::string& path) {
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return fail(Errc::kInvalidArgument, "peer {}: {}", path, dlerror());
  PeerAbi a;
  for (Status s : {resolve(lib, "pmm_peer_name", a.name, path),
                   resolve(lib, "pmm_peer_create", a.create, path),
                   resolve(lib, "pmm_peer_allocate", a.allocate, path),
                   resolve(lib, "pmm_peer_release", a.release, path),
                   resolve(lib, "pmm_peer_destroy", a.destroy, path)}) {
    if (!s) return s;
  }
  abi() = a;
  loaded_name() = a.name();
  return {};
}

std::string_view peer_name() { return loaded_name(); }

Result<std::unique_ptr<BenchAllocator>> make_peer_allocator(uint64_t region_size) {
  if (abi().create == nullptr) return fail(Errc::kInvalidArgument, "no peer loaded (--peer PATH)");
  void* self = abi().create(region_size);
  if (self == nullptr)
    return fail(Errc::kNoMemory, "peer {} could not manage a region of {} bytes", peer_name(),
                region_size);
  return std::make_unique<PeerAllocator>(self, region_size);
}

}  // namespace pmm::bench
