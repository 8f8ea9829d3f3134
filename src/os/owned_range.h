// pmm::os::OwnedRange — sole owner of one range of this process's address
// space (an mmap() mapping, a shmat() attachment), given back on destruction.
//
// One template so that every kind of mapping moves, resets and reports its
// range the same way; the kind differs only in how the range is given back.
//
// Usage:
//   using Mapping = OwnedRange<unmap_range>;       // memory.h
//   Mapping m(addr, size);                          // munmap()s when it goes
//
// Move-only; one owner; not thread-safe.
#pragma once

#include <cstddef>
#include <utility>

namespace pmm::os {

template <void (*Release)(void* addr, size_t size) noexcept>
class OwnedRange {
 public:
  OwnedRange() = default;
  OwnedRange(void* addr, size_t size) : addr_(addr), size_(size) {}
  ~OwnedRange() { reset(); }
  OwnedRange(OwnedRange&& other) noexcept
      : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  OwnedRange& operator=(OwnedRange&& other) noexcept {
    if (this != &other) {
      reset();
      addr_ = std::exchange(other.addr_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  OwnedRange(const OwnedRange&) = delete;
  OwnedRange& operator=(const OwnedRange&) = delete;

  [[nodiscard]] std::byte* data() const { return static_cast<std::byte*>(addr_); }
  [[nodiscard]] size_t size() const { return size_; }
  explicit operator bool() const { return addr_ != nullptr; }

  void reset() noexcept {
    if (addr_ != nullptr) Release(addr_, size_);
    addr_ = nullptr;
    size_ = 0;
  }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pmm::os
