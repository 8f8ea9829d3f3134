// The service fuzz target's input format, shared by the target
// (service_fuzz.cc) and the seed writer (make_seeds.cc).
//
// An input is a script of frames, run against a fresh in-process daemon
// service (real pools, real ledger, no sockets) with four client slots:
//   slot 0, 1: uid 0     slot 2: uid 1000     slot 3: uid 65534
// Frames:
//   0x00..0x7f  a request datagram from slot (op & 3): u16 length (LE), then
//               that many bytes, decoded by the strict codec as pmmd does
//               (a datagram that does not decode closes that session)
//   0x80..0xbf  slot (op & 3) disconnects (a crash looks the same)
//   0xc0..0xff  time passes: (op & 0x3f) * 500 ms, then expired exports go
// Import and Unexport whose token is 15 zero bytes and then k name the k-th
// token (mod how many) that an Export has returned so far in this input, so
// a mutated script can still share blocks.
//
// Thread safety: plain functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "proto/codec.h"

namespace pmm::fuzz {

inline constexpr int kSlots = 4;
inline constexpr uint32_t kSlotUid[kSlots] = {0, 0, 1000, 65534};

// The config the service target runs: pools of every kind the fuzzer can
// make without huge pages, both strategies, access rules, device limits.
inline constexpr const char* kServiceConfig = R"(
[pools.general]
type = "shmem"
size = "1MiB"

[pools.fast]
type = "shmem"
size = "1MiB"
strategy = "tlsf"
uids = [1000]

[pools.display]
type = "sysv"
size = "1MiB"

[devices.cam]
pools = ["general"]
max = "256KiB"

[devices.gpu]
pools = ["fast", "general"]
min = "128KiB"
)";

// Builds a script frame by frame.
class Script {
 public:
  void request(int slot, const proto::Message& m) {
    auto b = proto::encode(m);
    if (!b) return;
    out_.push_back(static_cast<std::byte>(slot & 3));
    out_.push_back(static_cast<std::byte>(b->size() & 0xff));
    out_.push_back(static_cast<std::byte>(b->size() >> 8));
    out_.insert(out_.end(), b->begin(), b->end());
  }
  void disconnect(int slot) { out_.push_back(static_cast<std::byte>(0x80 | (slot & 3))); }
  void wait(int half_seconds) {
    out_.push_back(static_cast<std::byte>(0xc0 | (half_seconds & 0x3f)));
  }
  [[nodiscard]] const std::vector<std::byte>& bytes() const { return out_; }

  // The token that names the k-th exported token of the input.
  static proto::Token issued(uint8_t k) {
    proto::Token t{};
    t[15] = k;
    return t;
  }

 private:
  std::vector<std::byte> out_;
};

}  // namespace pmm::fuzz
