// Implementation of os/guarded_memory.h. The guard is sigsetjmp before the
// memset and a SIGBUS handler that siglongjmps back when this thread is
// inside a guarded write; the memset is the only code that runs under it,
// so no lock or allocation is ever abandoned half-done.
#include "os/guarded_memory.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "os/memory.h"
#include "os/sys_error.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older headers lack it
#endif

namespace pmm::os {
namespace {

thread_local sigjmp_buf* t_guard = nullptr;
thread_local void* t_fault_address = nullptr;
struct sigaction g_previous {};

void on_sigbus(int sig, siginfo_t* info, void* context) {
  if (t_guard != nullptr) {
    t_fault_address = info != nullptr ? info->si_addr : nullptr;
    siglongjmp(*t_guard, 1);
  }
  // Not a guarded write: behave as if this handler were not there.
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // The default action: returning re-runs the faulting access, which now
  // raises SIGBUS with the default disposition (the process dies of it, as
  // it would have without the guard).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGBUS, &dfl, nullptr);
}

void install_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous);
  });
}

// Kept out of line so the compiler cannot move the memset across the
// sigsetjmp.
[[gnu::noinline]] void raw_fill(void* addr, int byte, size_t len) { std::memset(addr, byte, len); }

}  // namespace

Status fault_in(void* addr, size_t len) {
  if (len == 0) return {};
  const uintptr_t page = base_page_size();
  const uintptr_t start = reinterpret_cast<uintptr_t>(addr) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(addr) + len + page - 1) & ~(page - 1);
  auto* p = reinterpret_cast<void*>(start);
  if (::madvise(p, end - start, MADV_POPULATE_WRITE) == 0) return {};
  const int err = errno;
  if (err == EINVAL) return {};  // before Linux 5.14: fill_guarded is the only guard
  auto r = sys_fail(err, "madvise({}, {}, MADV_POPULATE_WRITE)", p, end - start);
  if (err == EFAULT || err == ENOMEM || err == EHWPOISON) {
    r.error().code = Errc::kNoMemory;
    r.error().message +=
        err == EFAULT ? "; a page of it is gone (punched out of the file) and the kernel has none "
                        "to put back: touching it would raise SIGBUS"
                      : "; the kernel has no page to put there";
  }
  return r;
}

Status fill_guarded(void* addr, int byte, size_t len) {
  install_handler();
  sigjmp_buf jump;
  // savemask 1: the handler runs with SIGBUS blocked unless SA_NODEFER; the
  // mask is restored on the way back either way.
  if (sigsetjmp(jump, 1) != 0) {
    t_guard = nullptr;
    return fail(Errc::kNoMemory,
                "writing {} bytes at {} raised SIGBUS at {}: the memory was taken away (a hole "
                "punched in the pool's file) and the kernel had no page to put back",
                len, addr, t_fault_address);
  }
  t_guard = &jump;
  raw_fill(addr, byte, len);
  t_guard = nullptr;
  return {};
}

Result<uint64_t> file_resident_bytes(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return sys_fail(errno, "fstat(fd {})", fd);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace pmm::os
