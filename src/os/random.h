// pmm::os::random_bytes — bytes from the kernel's random source (getrandom).
//
// Used for export tokens: a token is the only thing a process needs to take a
// reference to a block, so it must not be guessable. getrandom(2) with no
// flags blocks only until the kernel's pool is first initialised (early
// boot), then never; short reads of more than 256 bytes are retried here.
//
// Usage:
//   std::array<uint8_t, 16> t;
//   if (auto s = pmm::os::random_bytes(t); !s) return std::unexpected(s.error());
//
// Thread safety: any thread; no shared state.
#pragma once

#include <cstdint>
#include <span>

#include "base/error.h"

namespace pmm::os {

// Fills `out` completely. Errors: kSystem naming getrandom and errno.
[[nodiscard]] Status random_bytes(std::span<uint8_t> out);

}  // namespace pmm::os
