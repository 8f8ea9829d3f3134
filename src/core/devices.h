// pmm::core::DeviceTable — per-device limits (max) and guarantees (min) on
// shared pools, the admission rules of DESIGN.md capability 2.
//
// A *device* is a name a client gives when it connects ("decoder",
// "display"). Devices do not own memory; they draw on shared pools, and the
// config may give each one:
//   - `pools`: the pools it may use, in the order tried when a request
//     names none. Empty: every pool, in config order.
//   - `max`: a cap on the bytes charged to the device, over all pools.
//   - `min`: a guarantee, kept back in the device's *home pool* (the first
//     of `pools`), like cgroup memory.min: while the device holds less than
//     its min there, that difference (its unmet reserve) is unavailable to
//     every other device. The device itself may use its reserve and any
//     unreserved free space.
//   - `alignment`, `contiguous`: defaults applied to its requests.
//
// Charging: a block is charged to the device of the session that allocated
// it, from allocation until the block returns to its pool — also while
// other processes hold it through an import after the allocating session
// has gone. So `max` bounds the memory a producer keeps in flight in a
// pipeline, and the reserve arithmetic always matches the pool's real free
// space. Guarantees are in bytes: a pool fragmented by others may still
// lack one extent of the reserved size (the refusal then names the largest
// free extent).
//
// Identity: a declared device says who may claim it (`access`: uids, gids,
// or everyone; root and the daemon's own uid always may). Claiming one that
// one may not is kPermission at session open, naming the device and who
// may. Closed unless opened, like pools: a device's budget (`max`) and
// guarantee (`min`) are shared by every session that claims it, so anyone
// who could claim it could spend them.
//
// A client naming a device the config does not declare (or none) gets the
// device "default": the config's [devices.default] if there is one, else a
// device with no limits, no guarantee and every pool. Anyone may claim it,
// and it is charged *per uid*: each uid gets its own instance of it (a row
// of the table with `uid` set, made on first claim and kept), so the
// default `max` applies to each uid separately and one user never spends
// another's budget. A `min` on the default device is refused (it would be
// kept once per uid, without bound).
//
// Usage (the Ledger does this on every allocation):
//   DeviceTable t = *DeviceTable::create(configs, {"general", "display"}, {256 << 20, 64 << 20});
//   size_t d = *t.claim("decoder", uid, gid);   // kPermission if not allowed
//   if (auto ok = t.admit(d, pool, size, pool_free); !ok) return ok.error();
//   t.charge(d, pool, size);  ...  t.uncharge(d, pool, size);
//
// Thread safety: none; the daemon's thread owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "core/access.h"

namespace pmm::core {

struct DeviceConfig {
  std::string name{};
  std::vector<std::string> pools{};     // allowed, in default order; empty: all
  std::optional<uint64_t> max_bytes{};  // none: no cap
  uint64_t min_bytes = 0;               // guarantee in pools[0]; needs pools
  uint64_t default_alignment = 0;       // 0: the pool's page size
  bool contiguous = false;              // every request asks for contiguity
  Access access{};                      // who may claim it; closed by default
};

// A device's state, as the admin view shows it.
struct Device {
  DeviceConfig config{};
  std::vector<size_t> pools{};           // allowed pool indexes, in order
  std::optional<size_t> home_pool{};     // where min is kept; set iff min > 0
  uint64_t used_bytes = 0;               // charged, all pools
  std::vector<uint64_t> used_in_pool{};  // charged, per pool index
  uint64_t blocks = 0;                   // blocks charged to it
  uint64_t sessions = 0;                 // open sessions naming it
  bool declared = true;                  // false for the implicit "default"
  // Set on the per-uid instances of "default": the uid charged. The
  // template row (unset) is never charged.
  std::optional<uint32_t> uid{};

  // Bytes more it may be charged before `max`; UINT64_MAX when no max.
  [[nodiscard]] uint64_t headroom() const;
  // min minus what it holds in its home pool, floored at 0.
  [[nodiscard]] uint64_t unmet_reserve() const;
  [[nodiscard]] bool may_use(size_t pool) const;
  // "decoder", or "default (uid 1000)" for a per-uid instance.
  [[nodiscard]] std::string label() const;
};

inline constexpr std::string_view kDefaultDevice = "default";

class DeviceTable {
 public:
  // Validates the configs against the pools: names unique and non-empty,
  // every listed pool exists, min > 0 only with a home pool, and the sum of
  // the mins kept in each pool not above that pool's size. Errors are
  // kInvalidArgument naming the device and the rule.
  [[nodiscard]] static Result<DeviceTable> create(std::vector<DeviceConfig> configs,
                                                  std::span<const std::string> pool_names,
                                                  std::span<const uint64_t> pool_sizes);

  // The device index for a client's device name; unknown or empty names
  // resolve to "default" (its template row, never charged).
  [[nodiscard]] size_t resolve(std::string_view name) const;
  // The device a session of `uid`/`gid` naming `name` is charged to: a
  // declared device it may claim (kPermission naming the device and who may
  // otherwise), or, for an unknown or empty name, that uid's instance of
  // "default", made on first use.
  [[nodiscard]] Result<size_t> claim(std::string_view name, uint32_t uid, uint32_t gid,
                                     std::span<const uint32_t> groups = {});

  [[nodiscard]] const Device& device(size_t i) const { return devices_[i]; }
  [[nodiscard]] size_t size() const { return devices_.size(); }
  [[nodiscard]] std::span<const Device> all() const { return devices_; }

  // The sum of the unmet reserves kept in `pool` for devices other than
  // `except` (pass SIZE_MAX for all devices).
  [[nodiscard]] uint64_t reserved_for_others(size_t pool, size_t except) const;

  // Whether device `d` may be charged `size` more bytes in `pool`, whose
  // free space is `pool_free`. Checks, in this order: the device may use the
  // pool (kPermission), its max (kLimit), others' guarantees (kLimit). The
  // message names the rule and what would have fit. Space that the pool
  // simply does not have is not judged here: the pool's allocator reports
  // it with its largest free extent.
  [[nodiscard]] Status admit(size_t d, size_t pool, std::string_view pool_name, uint64_t size,
                             uint64_t pool_free) const;

  void charge(size_t d, size_t pool, uint64_t size);
  void uncharge(size_t d, size_t pool, uint64_t size);
  void session_opened(size_t d) { ++devices_[d].sessions; }
  void session_closed(size_t d) { --devices_[d].sessions; }

 private:
  // admit()'s refusal: the first rule broken, named with what would fit.
  [[gnu::cold, gnu::noinline]] std::unexpected<Error> refuse(size_t d, size_t pool,
                                                             std::string_view pool_name,
                                                             uint64_t size,
                                                             uint64_t pool_free) const;

  std::vector<Device> devices_{};
  // Some device keeps a guarantee (has a home pool): only then are the
  // reserves added up (reserved_for_others).
  bool any_reserve_ = false;
  std::vector<std::string> pool_names_{};
  size_t default_ = 0;
  std::unordered_map<uint32_t, size_t> default_by_uid_{};
};

}  // namespace pmm::core
