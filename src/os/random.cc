// getrandom(2) wrapper; see random.h.
#include "os/random.h"

#include <sys/random.h>

#include <cerrno>

#include "os/sys_error.h"

namespace pmm::os {

Status random_bytes(std::span<uint8_t> out) {
  size_t done = 0;
  // Bounded: each successful call returns at least one byte; EINTR retries
  // are the only other way round the loop.
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

}  // namespace pmm::os
