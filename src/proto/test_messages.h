// Sample messages for the proto tests (and for any test that wants valid
// traffic): one of every message type with every field set to something
// other than its default, and the largest legal instance of every message
// whose size has a list or string in it.
//
// Header-only so that it stays out of the pmm::proto library.
//
// Usage:
//   for (const proto::Message& m : proto::testing_samples()) { ... }
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "proto/messages.h"

namespace pmm::proto {

inline PoolInfo testing_pool(uint32_t index, size_t name_len = 7) {
  return PoolInfo{.index = index,
                  .name = std::string(name_len, static_cast<char>('a' + index % 26)),
                  .type = static_cast<PoolType>(index % 3),
                  .size = 256ull << 20,
                  .page_size = 2ull << 20,
                  .bytes_used = 6ull << 20,
                  .bytes_free = 250ull << 20,
                  .largest_free = 200ull << 20,
                  .free_extents = 3,
                  .live_blocks = 4,
                  .has_physical = index % 2 == 1,
                  .strategy = "best_fit",
                  .accessible = true,
                  .state = index % 2 == 1 ? "degraded: 1 huge page punched" : "ok"};
}

inline Token testing_token(uint8_t seed) {
  Token t{};
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint8_t>(seed + i * 17);
  return t;
}

inline std::vector<Message> testing_samples() {
  uint32_t id = 1;
  std::vector<Message> out;
  auto add = [&](Body b) { out.push_back(Message{.request_id = id++ * 0x01010101u, .body = b}); };
  add(Hello{.protocol_version = kProtocolVersion, .device = "decoder", .pid = 4242});
  add(ListPools{});
  add(Allocate{.pools = {"dma", "general"},
               .size = 1 << 20,
               .alignment = 4096,
               .flags = kAllocContiguous | kAllocZero});
  add(Get{.block_id = 0x1122334455667788});
  add(Put{.block_id = 17});
  add(Export{.block_id = 17, .max_imports = 3, .lifetime_ms = 60000});
  add(Import{.token = testing_token(1)});
  add(Unexport{.token = testing_token(2)});
  add(SysvExport{.block_id = 18});
  add(SysvUnexport{.block_id = 18});
  add(StatsRequest{});
  add(ListBlocks{.after_id = 100, .limit = 10});
  add(ListSessions{.after_id = 2, .limit = 0});
  add(ListDevices{.after_id = 0, .limit = kMaxDevicesPerPage});
  add(ErrorReply{.code = Errc::kNoMemory,
                 .message = "pool general: no free extent of 1048576 bytes; largest is 65536"});
  add(Welcome{
      .protocol_version = kProtocolVersion, .session_id = 99, .daemon_version = "pmmd 0.1.0"});
  add(Ok{});
  add(PoolList{.pools = {testing_pool(0), testing_pool(1), testing_pool(2)}});
  add(BlockInfo{.block_id = 17,
                .pool_index = 1,
                .pool_name = "dma",
                .offset = 2 << 20,
                .size = 1 << 20,
                .phys = 0x1'2340'0000,
                .memory = {.type = PoolType::kHugetlb,
                           .fd_attached = true,
                           .pool_size = 64 << 20,
                           .page_size = 2 << 20,
                           .shmid = -1}});
  add(BlockInfo{.block_id = 18,
                .pool_index = 2,
                .pool_name = "x11",
                .offset = 4096,
                .size = 8192,
                .phys = 0,
                .memory = {.type = PoolType::kSysv,
                           .fd_attached = false,
                           .pool_size = 16 << 20,
                           .page_size = 4096,
                           .shmid = 32769}});
  add(TokenReply{.token = testing_token(3)});
  add(SysvSegment{.shmid = 32769, .offset = 4096, .size = 8192});
  add(StatsReply{.sessions = 3,
                 .blocks = 12,
                 .bytes = 48 << 20,
                 .exports = 2,
                 .pools = {testing_pool(0), testing_pool(4)},
                 .refused = {RefusalCount{.cause = "sessions_per_uid", .count = 7}}});
  add(BlockList{
      .blocks = {BlockEntry{.id = 5,
                            .pool_index = 0,
                            .offset = 0,
                            .size = 4096,
                            .phys = 0,
                            .refcount = 3,
                            .holders = {Holder{.kind = HolderKind::kSession,
                                               .id = 1,
                                               .pid = 100,
                                               .device = "decoder",
                                               .references = 2},
                                        Holder{.kind = HolderKind::kExport,
                                               .id = 0xdeadbeefcafef00d,
                                               .pid = 100,
                                               .device = "decoder",
                                               .references = 1,
                                               .uid = 1000,
                                               .token_shown = true,
                                               .imports_left = 2,
                                               .expires_ms = 59'000}},
                            .holders_omitted = 0},
                 BlockEntry{.id = 9, .phys_hidden = true, .refcount = 1, .holders_omitted = 1}},
      .next_after_id = 9,
      .more = true});
  add(SessionList{.sessions = {SessionEntry{.id = 1,
                                            .pid = 100,
                                            .uid = 1000,
                                            .gid = 1000,
                                            .device = "decoder",
                                            .blocks_held = 2,
                                            .references = 3,
                                            .bytes_held = 8192}},
                  .next_after_id = 1,
                  .more = false});
  add(DeviceList{.devices = {DeviceEntry{.id = 1,
                                         .name = "decoder",
                                         .max = 64 << 20,
                                         .min = 16 << 20,
                                         .used = 8 << 20,
                                         .headroom = 56 << 20,
                                         .sessions = 1},
                             DeviceEntry{.id = 2, .name = "default", .max = UINT64_MAX}},
                 .next_after_id = 2,
                 .more = false});
  add(CheckRequest{});
  add(CheckReply{.violation = "invariant: block 3 counts 2 references but holders add to 1",
                 .pools = 2,
                 .blocks = 7,
                 .sessions = 3,
                 .exports = 1,
                 .micros = 42});
  add(MetricsRequest{});
  add(MetricsReply{.uptime_ms = 1234,
                   .requests = {RequestCount{.type = 3, .count = 10, .errors = 2},
                                RequestCount{.type = 5, .count = 8, .errors = 0}},
                   .latency_bounds_ns = {1000, 10000},
                   .latency_counts = {12, 5, 1},
                   .latency_sum_ns = 99000,
                   .latency_count = 18});
  add(PoolMapRequest{.pool = "general",
                     .max_entries = 512,
                     .mode = MapMode::kBuckets,
                     .after_id = 77,
                     .limit = 1000});
  add(PoolMapReply{.pool_index = 1,
                   .pool = "general",
                   .strategy = "tlsf",
                   .size = 16 << 20,
                   .page_size = 4096,
                   .blocks = 1,
                   .bytes_used = 1 << 20,
                   .bytes_free = 15 << 20,
                   .free_extents = 1,
                   .largest_free = 15 << 20,
                   .bucket_size = 0,
                   .devices = {"decoder"},
                   .extents = {MapExtent{.size = 1 << 20, .used = 1 << 20, .device = 0, .uid = 7},
                               MapExtent{.offset = 1 << 20, .size = 15 << 20}},
                   .barriers = {MapBarrier{.offset = 2 << 20, .phys = 0x40000000}},
                   .barriers_omitted = 3,
                   .next_after_id = 9,
                   .more = true,
                   .micros = 5});
  add(AllocateWait{
      .pools = {"frames"}, .size = 8 << 20, .alignment = 4096, .flags = 2, .wait_ms = 250});
  add(WatchRelease{.block_id = 12});
  add(Released{.block_id = 12, .watches = 2});
  return out;
}

// The biggest message of each type whose size varies.
inline std::vector<Message> testing_largest_messages() {
  const std::string name(kMaxNameLength, 'n');
  std::vector<Message> out;
  out.push_back({1, Hello{.device = name}});
  out.push_back({2, Allocate{.pools = std::vector<std::string>(kMaxAllocatePools, name)}});
  out.push_back({3, ErrorReply{.code = Errc::kLimit, .message = std::string(kMaxTextLength, 'e')}});
  out.push_back({4, Welcome{.daemon_version = name}});
  std::vector<PoolInfo> pools;
  for (uint32_t i = 0; i < kMaxPools; ++i) {
    pools.push_back(testing_pool(i, kMaxNameLength));
    pools.back().strategy = name;
  }
  out.push_back({5, PoolList{.pools = pools}});
  out.push_back({6, StatsReply{.pools = pools,
                               .refused = std::vector<RefusalCount>(kMaxRefusalCauses,
                                                                    RefusalCount{.cause = name})}});
  out.push_back({7, BlockInfo{.pool_name = name}});
  BlockEntry block{.id = 1,
                   .holders = std::vector<Holder>(kMaxHoldersPerBlock, Holder{.device = name})};
  out.push_back({8, BlockList{.blocks = std::vector<BlockEntry>(kMaxBlocksPerPage, block)}});
  out.push_back({9, SessionList{.sessions = std::vector<SessionEntry>(
                                    kMaxSessionsPerPage, SessionEntry{.device = name})}});
  out.push_back({11, CheckReply{.violation = std::string(kMaxTextLength, 'v')}});
  out.push_back({10, DeviceList{.devices = std::vector<DeviceEntry>(kMaxDevicesPerPage,
                                                                    DeviceEntry{.name = name})}});
  out.push_back(
      {12, MetricsReply{.requests = std::vector<RequestCount>(kMaxRequestTypes),
                        .latency_bounds_ns =
                            [] {
                              std::vector<uint64_t> b;
                              for (uint64_t i = 1; i <= kMaxLatencyBuckets; ++i) b.push_back(i);
                              return b;
                            }(),
                        .latency_counts = std::vector<uint64_t>(kMaxLatencyBuckets + 1)}});
  {
    PoolMapReply map{.pool = name,
                     .strategy = name,
                     .size = kMaxMapEntries,
                     .devices = std::vector<std::string>(kMaxMapDevices, name),
                     .barriers = std::vector<MapBarrier>(kMaxMapBarriers)};
    for (uint64_t i = 0; i < kMaxMapEntries; ++i)
      map.extents.push_back(
          MapExtent{.offset = i, .size = 1, .used = 1, .device = 0, .mixed = true});
    out.push_back({13, std::move(map)});
  }
  return out;
}

}  // namespace pmm::proto
