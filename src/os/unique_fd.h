// pmm::os::UniqueFd — sole owner of one file descriptor.
//
// Move-only: the descriptor is closed exactly once, by whichever UniqueFd
// holds it last. Use release() to hand it to something else that closes it
// (for example a message that passes it over a socket and then closes it).
//
// Usage:
//   os::UniqueFd fd(::memfd_create("pmm", MFD_CLOEXEC));
//   if (!fd) return os::sys_fail(errno, "memfd_create(...)");
//   ::ftruncate(fd.get(), size);
//
// Thread safety: like an int; one owner at a time.
#pragma once

#include <unistd.h>

#include <utility>

namespace pmm::os {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }

  // Closes the current descriptor (if any) and takes `fd`. close() errors
  // are ignored: the descriptor is gone either way on Linux.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace pmm::os
