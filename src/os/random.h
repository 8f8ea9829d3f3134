// pmm::os::random_bytes — bytes from the kernel's random source (getrandom).
//
// Used for export tokens: a token is the only thing a process needs to take a
// reference to a block, so it must not be guessable. getrandom(2) with no
// flags blocks only until the kernel's pool is first initialised (early
// boot), then never; short reads are retried here.
//
// Small requests (a token is 16 bytes) are served from a per-thread page
// that one getrandom call fills: a daemon exporting frame after frame makes
// one system call per 255 tokens instead of one per token. Each byte is
// handed out once and wiped from the page as it goes. The page is
// MADV_WIPEONFORK, so a fork() child starts with an empty one and never
// repeats its parent's bytes; where the kernel cannot do that (before
// 4.14), every request calls getrandom.
//
// Usage:
//   std::array<uint8_t, 16> t;
//   if (auto s = pmm::os::random_bytes(t); !s) return std::unexpected(s.error());
//
// Thread safety: any thread; each thread has its own page.
#pragma once

#include <cstdint>
#include <span>

#include "base/error.h"

namespace pmm::os {

// Fills `out` completely. Errors: kSystem naming getrandom and errno.
[[nodiscard]] Status random_bytes(std::span<uint8_t> out);

}  // namespace pmm::os
