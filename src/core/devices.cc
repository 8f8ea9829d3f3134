// Device limits and guarantees; see devices.h.
#include "core/devices.h"

#include <algorithm>

#include "base/units.h"

namespace pmm::core {

uint64_t Device::headroom() const {
  if (!config.max_bytes) return UINT64_MAX;
  return *config.max_bytes > used_bytes ? *config.max_bytes - used_bytes : 0;
}

uint64_t Device::unmet_reserve() const {
  if (!home_pool) return 0;
  uint64_t held = used_in_pool[*home_pool];
  return config.min_bytes > held ? config.min_bytes - held : 0;
}

std::string Device::label() const {
  return uid ? fmt::format("{} (uid {})", config.name, *uid) : config.name;
}

bool Device::may_use(size_t pool) const {
  return std::find(pools.begin(), pools.end(), pool) != pools.end();
}

Result<DeviceTable> DeviceTable::create(std::vector<DeviceConfig> configs,
                                        std::span<const std::string> pool_names,
                                        std::span<const uint64_t> pool_sizes) {
  DeviceTable t;
  t.pool_names_.assign(pool_names.begin(), pool_names.end());
  auto pool_index = [&](std::string_view name) -> std::optional<size_t> {
    for (size_t i = 0; i < pool_names.size(); ++i) {
      if (pool_names[i] == name) return i;
    }
    return std::nullopt;
  };
  auto all_pools = [&] {
    std::string s;
    for (const auto& n : pool_names) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? std::string("none") : s;
  };

  bool has_default = false;
  std::vector<uint64_t> min_in_pool(pool_names.size(), 0);
  for (auto& c : configs) {
    if (c.name.empty()) {
      return fail(Errc::kInvalidArgument, "a device has an empty name; give it a name");
    }
    for (const auto& other : t.devices_) {
      if (other.config.name == c.name) {
        return fail(Errc::kExists, "device {}: declared twice; each device name once", c.name);
      }
    }
    if (c.default_alignment != 0 && (c.default_alignment & (c.default_alignment - 1)) != 0) {
      return fail(Errc::kInvalidArgument,
                  "device {}: alignment {} is not a power of two; use 4096, 65536, 2MiB, ...",
                  c.name, c.default_alignment);
    }
    Device d;
    for (const auto& p : c.pools) {
      auto i = pool_index(p);
      if (!i) {
        return fail(Errc::kNotFound, "device {}: unknown pool '{}'; the pools are: {}", c.name, p,
                    all_pools());
      }
      if (!d.may_use(*i)) d.pools.push_back(*i);
    }
    if (c.pools.empty()) {
      for (size_t i = 0; i < pool_names.size(); ++i) d.pools.push_back(i);
    }
    if (c.min_bytes > 0) {
      if (c.pools.empty()) {
        return fail(Errc::kInvalidArgument,
                    "device {}: min {} needs a home pool to be kept in; list it first in "
                    "`pools`",
                    c.name, format_size(c.min_bytes));
      }
      d.home_pool = d.pools.front();
      min_in_pool[*d.home_pool] += c.min_bytes;
      if (min_in_pool[*d.home_pool] > pool_sizes[*d.home_pool]) {
        return fail(Errc::kInvalidArgument,
                    "device {}: the mins kept in pool {} add up to {}, more than its size {}; "
                    "lower a min or enlarge the pool",
                    c.name, pool_names[*d.home_pool], format_size(min_in_pool[*d.home_pool]),
                    format_size(pool_sizes[*d.home_pool]));
      }
    }
    if (c.name == kDefaultDevice && c.min_bytes > 0) {
      return fail(Errc::kInvalidArgument,
                  "device default: min {} would be kept once for every uid that uses the "
                  "default device; give the guarantee to a named device",
                  format_size(c.min_bytes));
    }
    if (c.name == kDefaultDevice) c.access.everyone = true;
    if (c.max_bytes && c.min_bytes > *c.max_bytes) {
      return fail(Errc::kInvalidArgument, "device {}: min {} is above its max {}; min <= max",
                  c.name, format_size(c.min_bytes), format_size(*c.max_bytes));
    }
    has_default = has_default || c.name == kDefaultDevice;
    d.used_in_pool.assign(pool_names.size(), 0);
    d.config = std::move(c);
    t.any_reserve_ = t.any_reserve_ || d.home_pool.has_value();
    t.devices_.push_back(std::move(d));
  }
  if (!has_default) {
    Device d;
    d.config.name = std::string(kDefaultDevice);
    for (size_t i = 0; i < pool_names.size(); ++i) d.pools.push_back(i);
    d.used_in_pool.assign(pool_names.size(), 0);
    d.declared = false;
    d.config.access.everyone = true;
    t.devices_.push_back(std::move(d));
  }
  t.default_ = t.resolve(kDefaultDevice);
  return t;
}

size_t DeviceTable::resolve(std::string_view name) const {
  for (size_t i = 0; i < devices_.size(); ++i) {
    if (!devices_[i].uid && devices_[i].config.name == name) return i;
  }
  return default_;
}

Result<size_t> DeviceTable::claim(std::string_view name, uint32_t uid, uint32_t gid,
                                  std::span<const uint32_t> groups) {
  size_t i = resolve(name);
  if (i != default_) {
    const Device& d = devices_[i];
    if (d.config.access.allows(uid, gid, groups)) return i;
    return fail(Errc::kPermission, "device {}: uid {} gid {} may not claim it; who may: {}",
                d.config.name, uid, gid, d.config.access.describe());
  }
  if (auto it = default_by_uid_.find(uid); it != default_by_uid_.end()) return it->second;
  // One row per uid that ever used the default device: bounded by the uids
  // on the machine, and row ids stay stable for the admin listing.
  Device d = devices_[default_];
  d.uid = uid;
  d.used_bytes = 0;
  d.used_in_pool.assign(pool_names_.size(), 0);
  d.blocks = 0;
  d.sessions = 0;
  any_reserve_ = any_reserve_ || d.home_pool.has_value();
  devices_.push_back(std::move(d));
  default_by_uid_.emplace(uid, devices_.size() - 1);
  return devices_.size() - 1;
}

uint64_t DeviceTable::reserved_for_others(size_t pool, size_t except) const {
  // No device keeps a guarantee (the common config): nothing to add up.
  if (!any_reserve_) return 0;
  uint64_t sum = 0;
  for (size_t i = 0; i < devices_.size(); ++i) {
    if (i == except || devices_[i].home_pool != pool) continue;
    sum += devices_[i].unmet_reserve();
  }
  return sum;
}

Status DeviceTable::admit(size_t d, size_t pool, std::string_view pool_name, uint64_t size,
                          uint64_t pool_free) const {
  // The three rules inline; which one refused, and the message, out of line.
  const Device& dev = devices_[d];
  const uint64_t others = reserved_for_others(pool, d);
  if (dev.may_use(pool) && size <= dev.headroom() &&
      !(size <= pool_free && size > pool_free - std::min(others, pool_free))) [[likely]] {
    return {};
  }
  return refuse(d, pool, pool_name, size, pool_free);
}

std::unexpected<Error> DeviceTable::refuse(size_t d, size_t pool, std::string_view pool_name,
                                           uint64_t size, uint64_t pool_free) const {
  const Device& dev = devices_[d];
  if (!dev.may_use(pool)) {
    std::string allowed;
    for (size_t p : dev.pools) allowed += (allowed.empty() ? "" : ", ") + pool_names_[p];
    return fail(Errc::kPermission, "pool {}: device {} may use only pools {}", pool_name,
                dev.label(), allowed.empty() ? std::string("(none)") : allowed);
  }
  if (size > dev.headroom()) {
    return fail(Errc::kLimit,
                "pool {}: device {} asked for {} but its max is {} and it holds {}; {} would "
                "fit under its max",
                pool_name, dev.label(), format_size(size), format_size(*dev.config.max_bytes),
                format_size(dev.used_bytes), format_size(dev.headroom()));
  }
  uint64_t others = reserved_for_others(pool, d);
  if (size <= pool_free && size > pool_free - std::min(others, pool_free)) {
    // Name the devices whose guarantees are in the way.
    std::string who;
    for (size_t i = 0; i < devices_.size(); ++i) {
      if (i == d || devices_[i].home_pool != pool || devices_[i].unmet_reserve() == 0) continue;
      who += fmt::format("{}{} ({})", who.empty() ? "" : ", ", devices_[i].label(),
                         format_size(devices_[i].unmet_reserve()));
    }
    return fail(Errc::kLimit,
                "pool {}: device {} asked for {}; {} is free but {} of it is kept for the "
                "guarantees (min) of {}; {} would fit",
                pool_name, dev.label(), format_size(size), format_size(pool_free),
                format_size(std::min(others, pool_free)), who,
                format_size(pool_free - std::min(others, pool_free)));
  }
  // admit() found a rule broken that none of the above names: a bug here.
  return fail(Errc::kSystem, "pool {}: device {}: admission refused {} for no rule", pool_name,
              dev.label(), format_size(size));
}

void DeviceTable::charge(size_t d, size_t pool, uint64_t size) {
  devices_[d].used_bytes += size;
  devices_[d].used_in_pool[pool] += size;
  ++devices_[d].blocks;
}

void DeviceTable::uncharge(size_t d, size_t pool, uint64_t size) {
  devices_[d].used_bytes -= size;
  devices_[d].used_in_pool[pool] -= size;
  --devices_[d].blocks;
}

}  // namespace pmm::core
