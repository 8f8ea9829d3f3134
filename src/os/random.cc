// getrandom(2), buffered per thread; see random.h.
#include "os/random.h"

#include <sys/mman.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "os/sys_error.h"

namespace pmm::os {
namespace {

// Bounded: each successful call returns at least one byte; EINTR retries
// are the only other way round the loop.
Status fill_from_kernel(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_fail(errno, "getrandom({} bytes)", out.size() - done);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

// One page: the count of unused bytes, then the bytes. Unused bytes are
// the first `left`; they are taken from the end, so what is taken is
// wiped and what is left stays contiguous. A fork() child sees the page
// zeroed (MADV_WIPEONFORK): `left` is 0 there, so it refills.
struct Page {
  size_t left;
  uint8_t bytes[4096 - sizeof(size_t)];
};
static_assert(sizeof(Page) == 4096);

// This thread's page, mapped on first use and unmapped when the thread
// ends; nullptr where it cannot be had (no memory, or no MADV_WIPEONFORK).
class ThreadPage {
 public:
  ~ThreadPage() {
    if (page_ != nullptr) ::munmap(page_, sizeof(Page));
  }
  Page* get() {
    if (!tried_) {
      tried_ = true;
      void* p =
          ::mmap(nullptr, sizeof(Page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != MAP_FAILED && ::madvise(p, sizeof(Page), MADV_WIPEONFORK) != 0) {
        ::munmap(p, sizeof(Page));
        p = MAP_FAILED;
      }
      if (p != MAP_FAILED) page_ = static_cast<Page*>(p);
    }
    return page_;
  }

 private:
  Page* page_ = nullptr;
  bool tried_ = false;
};

}  // namespace

Status random_bytes(std::span<uint8_t> out) {
  if (out.empty()) return {};  // (an empty span's data() may be null: no memcpy)
  // Large requests would drain the page for little gain: straight through.
  constexpr size_t kLargest = sizeof(Page::bytes) / 16;
  thread_local ThreadPage page;
  Page* p = out.size() <= kLargest ? page.get() : nullptr;
  if (p == nullptr) return fill_from_kernel(out);
  if (p->left < out.size()) {
    if (auto s = fill_from_kernel(p->bytes); !s) {
      p->left = 0;
      return s;
    }
    p->left = sizeof p->bytes;
  }
  uint8_t* from = p->bytes + p->left - out.size();
  std::memcpy(out.data(), from, out.size());
  ::explicit_bzero(from, out.size());
  p->left -= out.size();
  return {};
}

}  // namespace pmm::os
