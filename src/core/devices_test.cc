// Device rules on shared pools: max caps a device, min is kept back for it,
// and the proposal's case — ten devices, five active at once, one pool.
#include "core/devices.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/ledger_testing.h"

namespace pmm::core {
namespace {

using testing::kKiB;
using testing::kMiB;
using testing::make_ledger;

const std::vector<std::string> kShared{"shared"};

DeviceConfig device(std::string name, std::optional<uint64_t> max, uint64_t min = 0) {
  DeviceConfig d;
  d.name = std::move(name);
  d.pools = {"shared"};
  d.max_bytes = max;
  d.min_bytes = min;
  d.access.everyone = true;  // tests of identity set their own
  return d;
}

// Opens session `id` for device `name` and returns whether it could
// allocate `size` from "shared"; the refusal, if any, lands in *why.
struct Rig {
  std::unique_ptr<Ledger> l;
  SessionId next = 1;
  SessionId open(const std::string& name) {
    SessionId s = next++;
    EXPECT_TRUE(l->open_session({.id = s, .pid = 1, .uid = 1000, .gid = 1000, .device = name}));
    return s;
  }
  Result<BlockInfo> alloc(SessionId s, uint64_t size) {
    auto r = l->allocate(s, kShared, size, 0, {});
    EXPECT_TRUE(l->check_invariants());
    return r;
  }
};

TEST(Devices, MaxCapsADeviceEvenWhenThePoolHasRoomAndSaysTheHeadroom) {
  Rig r{make_ledger({{.name = "shared", .size = 64 * kMiB}}, {device("cam", 8 * kMiB)})};
  ASSERT_NE(r.l, nullptr);
  SessionId s = r.open("cam");
  SessionId t = r.open("cam");  // max counts the device, not the session
  ASSERT_TRUE(r.alloc(s, 5 * kMiB));
  auto no = r.alloc(t, 4 * kMiB);
  ASSERT_FALSE(no);
  EXPECT_EQ(no.error().code, Errc::kLimit);
  EXPECT_NE(no.error().message.find("max is 8 MiB"), std::string::npos) << no.error().message;
  EXPECT_NE(no.error().message.find("3 MiB would fit"), std::string::npos) << no.error().message;
  EXPECT_TRUE(r.alloc(t, 3 * kMiB));
  EXPECT_EQ(r.l->devices()[0].headroom(), 0u);
}

TEST(Devices, ABlockStaysChargedToItsAllocatorUntilItIsFreed) {
  Rig r{make_ledger({{.name = "shared", .size = 64 * kMiB}},
                    {device("decoder", 8 * kMiB), device("display", std::nullopt)})};
  ASSERT_NE(r.l, nullptr);
  SessionId dec = r.open("decoder");
  SessionId disp = r.open("display");
  auto b = r.alloc(dec, 8 * kMiB);
  ASSERT_TRUE(b);
  auto t = r.l->export_block(dec, b->id, 1, {}, SteadyTime{});
  ASSERT_TRUE(t);
  ASSERT_TRUE(r.l->import_block(disp, *t, SteadyTime{}));
  ASSERT_TRUE(r.l->close_session(dec));
  // The decoder's frame is still in flight at the display: still charged.
  EXPECT_EQ(r.l->devices()[0].used_bytes, 8 * kMiB);
  SessionId dec2 = r.open("decoder");
  EXPECT_EQ(r.alloc(dec2, 1 * kMiB).error().code, Errc::kLimit);
  ASSERT_TRUE(r.l->put(disp, b->id));
  EXPECT_EQ(r.l->devices()[0].used_bytes, 0u);
  EXPECT_TRUE(r.alloc(dec2, 8 * kMiB));
}

// The proposal: ten accelerators of 1 MiB each, at most five in use at once,
// so the pool holds five, not ten. Five of them are critical and carry a
// guarantee (min = their 1 MiB, half the pool in all); five are best effort.
// A greedy bulk device with no limits shares the same pool.
TEST(Devices, TenDevicesFiveActiveGuaranteesHoldAgainstASixthAndAGreedyOne) {
  std::vector<DeviceConfig> devs;
  for (int i = 0; i < 10; ++i) {
    devs.push_back(device("accel" + std::to_string(i), 1 * kMiB, i < 5 ? 1 * kMiB : 0));
  }
  devs.push_back(device("bulk", std::nullopt));
  Rig r{make_ledger({{.name = "shared", .size = 10 * kMiB}}, devs)};
  ASSERT_NE(r.l, nullptr);
  EXPECT_EQ(r.l->pools()[0].reserved, 5 * kMiB);

  // The greedy device takes all it can: everything but the guarantees.
  SessionId bulk = r.open("bulk");
  std::vector<BlockId> bulk_blocks;
  for (;;) {
    auto b = r.alloc(bulk, 512 * kKiB);
    if (!b) {
      EXPECT_EQ(b.error().code, Errc::kLimit) << b.error().message;
      EXPECT_NE(b.error().message.find("accel0 (1 MiB)"), std::string::npos) << b.error().message;
      break;
    }
    bulk_blocks.push_back(b->id);
  }
  EXPECT_EQ(bulk_blocks.size() * 512 * kKiB, 5 * kMiB);

  // A best-effort accelerator is refused: what is free is promised.
  SessionId s5 = r.open("accel5");
  auto starved = r.alloc(s5, 1 * kMiB);
  ASSERT_FALSE(starved);
  EXPECT_EQ(starved.error().code, Errc::kLimit);
  EXPECT_NE(starved.error().message.find("guarantees"), std::string::npos);

  // Every critical accelerator still gets its share, in any order.
  std::vector<SessionId> critical;
  for (int i : {3, 0, 4, 1, 2}) {
    critical.push_back(r.open("accel" + std::to_string(i)));
    auto b = r.alloc(critical.back(), 1 * kMiB);
    EXPECT_TRUE(b) << "accel" << i << ": " << b.error().message;
  }
  EXPECT_EQ(r.l->pools()[0].free, 0u);
  EXPECT_EQ(r.l->pools()[0].reserved, 0u);

  // When bulk lets go, best-effort devices share what it gave back: any
  // five of the ten run at once (five critical ones are running now, so the
  // five best-effort ones fit in bulk's 5 MiB together).
  for (BlockId b : bulk_blocks) ASSERT_TRUE(r.l->put(bulk, b));
  for (int i = 5; i < 10; ++i) {
    SessionId s = i == 5 ? s5 : r.open("accel" + std::to_string(i));
    auto b = r.alloc(s, 1 * kMiB);
    EXPECT_TRUE(b) << "accel" << i << ": " << b.error().message;
  }
  // When two critical devices stop, their guarantees are kept again: the
  // bulk device cannot take that memory back.
  ASSERT_TRUE(r.l->close_session(critical[0]));
  ASSERT_TRUE(r.l->close_session(critical[1]));
  EXPECT_EQ(r.l->pools()[0].free, 2 * kMiB);
  EXPECT_EQ(r.alloc(bulk, 512 * kKiB).error().code, Errc::kLimit);
  EXPECT_TRUE(r.alloc(r.open("accel3"), 1 * kMiB));
}

TEST(Devices, ADeviceBelowItsMinMayUseItsReserveAndTheFreeSpaceBeyondIt) {
  Rig r{make_ledger({{.name = "shared", .size = 8 * kMiB}},
                    {device("display", std::nullopt, 2 * kMiB), device("cam", std::nullopt)})};
  ASSERT_NE(r.l, nullptr);
  SessionId disp = r.open("display");
  SessionId cam = r.open("cam");
  ASSERT_TRUE(r.alloc(disp, 5 * kMiB));  // its 2 MiB and 3 MiB more
  ASSERT_TRUE(r.alloc(cam, 3 * kMiB));   // the min is met: nothing is kept back
  EXPECT_EQ(r.l->pools()[0].free, 0u);
  // A request the pool cannot meet at all is the pool's refusal, with the
  // largest free extent, not a device rule.
  auto full = r.alloc(cam, 1 * kMiB);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, Errc::kNoMemory);
}

TEST(Devices, UnknownDeviceNamesGetTheDefaultDevice) {
  Rig r{make_ledger({{.name = "shared", .size = 8 * kMiB}}, {device("cam", 1 * kMiB)})};
  ASSERT_NE(r.l, nullptr);
  auto name = r.l->open_session({.id = 1, .pid = 1, .uid = 1, .gid = 1, .device = "whatever"});
  ASSERT_TRUE(name);
  EXPECT_EQ(*name, "default");
  auto none = r.l->open_session({.id = 2, .pid = 1, .uid = 1, .gid = 1, .device = ""});
  EXPECT_EQ(none.value_or(""), "default");
  EXPECT_TRUE(r.l->allocate(1, {}, 4 * kMiB, 0, {}));  // no limits
  // A declared default applies its rules to every unknown name.
  Rig d{make_ledger({{.name = "shared", .size = 8 * kMiB}}, {device("default", 1 * kMiB)})};
  ASSERT_NE(d.l, nullptr);
  SessionId s = d.open("stranger");
  EXPECT_EQ(d.alloc(s, 2 * kMiB).error().code, Errc::kLimit);
}

TEST(Devices, DevicePoolListsAreEnforced) {
  auto l = make_ledger({{.name = "shared", .size = 8 * kMiB}, {.name = "dma", .size = 8 * kMiB}},
                       {device("cam", std::nullopt)});
  ASSERT_NE(l, nullptr);
  ASSERT_TRUE(l->open_session({.id = 1, .pid = 1, .uid = 1, .gid = 1, .device = "cam"}));
  std::vector<std::string> dma{"dma"};
  auto no = l->allocate(1, dma, 4096, 0, {});
  ASSERT_FALSE(no);
  EXPECT_EQ(no.error().code, Errc::kPermission);
  EXPECT_NE(no.error().message.find("device cam may use only pools shared"), std::string::npos)
      << no.error().message;
  auto yes = l->allocate(1, {}, 4096, 0, {});
  ASSERT_TRUE(yes);
  EXPECT_EQ(yes->pool_name, "shared");
}

TEST(Devices, ConfigsThatCannotHoldAreRefusedWithTheRule) {
  std::vector<std::string> names{"shared"};
  std::vector<uint64_t> sizes{8 * kMiB};
  auto check = [&](std::vector<DeviceConfig> c, std::string_view expect) {
    auto t = DeviceTable::create(std::move(c), names, sizes);
    ASSERT_FALSE(t) << expect;
    EXPECT_NE(t.error().message.find(expect), std::string::npos) << t.error().message;
  };
  DeviceConfig unknown = device("cam", std::nullopt);
  unknown.pools = {"nonexistent"};
  check({unknown}, "unknown pool 'nonexistent'");
  check({device("a", std::nullopt, 5 * kMiB), device("b", std::nullopt, 4 * kMiB)},
        "add up to 9 MiB, more than its size 8 MiB");
  check({device("a", 1 * kMiB, 2 * kMiB)}, "min 2 MiB is above its max 1 MiB");
  check({device("a", std::nullopt), device("a", std::nullopt)}, "declared twice");
  DeviceConfig homeless = device("a", std::nullopt, 1 * kMiB);
  homeless.pools.clear();
  check({homeless}, "needs a home pool");
  DeviceConfig odd = device("a", std::nullopt);
  odd.default_alignment = 3;
  check({odd}, "not a power of two");
  auto ok = DeviceTable::create({device("a", std::nullopt, 8 * kMiB)}, names, sizes);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->device(ok->resolve("zzz")).config.name, "default");
  EXPECT_FALSE(ok->device(ok->resolve("zzz")).declared);
}

}  // namespace
}  // namespace pmm::core

namespace pmm::core {
namespace {

// Identity: a declared device names who may claim it; the default device is
// open to all and charged per uid.
TEST(DeviceIdentity, ADeviceOnlyItsUidsGidsRootAndPmmdsOwnUidMayClaim) {
  DeviceConfig cam = device("cam", 4 * kMiB);
  cam.access = Access{.uids = {1000}, .gids = {44}, .owner = 500};
  DeviceConfig display = device("display", std::nullopt, 2 * kMiB);
  display.access = Access{.uids = {0}};
  auto l = make_ledger({{.name = "shared", .size = 64 * kMiB}}, {cam, display});
  ASSERT_NE(l, nullptr);
  EXPECT_TRUE(l->open_session({.id = 1, .uid = 1000, .gid = 1000, .device = "cam"}));
  EXPECT_TRUE(l->open_session({.id = 2, .uid = 2000, .gid = 44, .device = "cam"}));  // by gid
  EXPECT_TRUE(l->open_session({.id = 3, .uid = 0, .gid = 0, .device = "cam"}));
  EXPECT_TRUE(l->open_session({.id = 4, .uid = 500, .gid = 500, .device = "cam"}));  // pmmd's uid
  auto no = l->open_session({.id = 5, .uid = 65534, .gid = 65534, .device = "cam"});
  ASSERT_FALSE(no);
  EXPECT_EQ(no.error().code, Errc::kPermission);
  EXPECT_EQ(no.error().message,
            "device cam: uid 65534 gid 65534 may not claim it; who may: root, uid 500 (pmmd's "
            "own); uids 1000; gids 44");
  auto disp = l->open_session({.id = 6, .uid = 1000, .gid = 1000, .device = "display"});
  ASSERT_FALSE(disp);
  EXPECT_NE(disp.error().message.find("device display"), std::string::npos);
  EXPECT_NE(disp.error().message.find("who may: root"), std::string::npos);
  // A refused claim left nothing behind.
  EXPECT_EQ(l->devices()[1].sessions, 0u);
  EXPECT_TRUE(l->check_invariants());
}

TEST(DeviceIdentity, TheDefaultDeviceIsChargedPerUidSoNoUserSpendsAnothersBudget) {
  auto l = make_ledger({{.name = "shared", .size = 64 * kMiB}}, {device("default", 4 * kMiB)});
  ASSERT_NE(l, nullptr);
  // Unknown names, the empty name and "default" are all the uid's default.
  ASSERT_TRUE(l->open_session({.id = 1, .uid = 1000, .gid = 1000, .device = "cam"}));
  ASSERT_TRUE(l->open_session({.id = 2, .uid = 1000, .gid = 1000, .device = ""}));
  ASSERT_TRUE(l->open_session({.id = 3, .uid = 2000, .gid = 2000, .device = "default"}));
  ASSERT_TRUE(l->allocate(1, kShared, 3 * kMiB, 0, {}));
  auto no = l->allocate(2, kShared, 2 * kMiB, 0, {});  // same uid, another name
  ASSERT_FALSE(no);
  EXPECT_EQ(no.error().code, Errc::kLimit);
  EXPECT_NE(no.error().message.find("device default (uid 1000)"), std::string::npos)
      << no.error().message;
  EXPECT_NE(no.error().message.find("max is 4 MiB and it holds 3 MiB"), std::string::npos)
      << no.error().message;
  EXPECT_TRUE(l->allocate(3, kShared, 4 * kMiB, 0, {})) << "uid 2000 has its own 4 MiB";
  // One row per uid, after the default's own (which is never charged).
  ASSERT_EQ(l->devices().size(), 3u);
  EXPECT_EQ(l->devices()[0].used_bytes, 0u);
  EXPECT_EQ(l->devices()[1].label(), "default (uid 1000)");
  EXPECT_EQ(l->devices()[1].used_bytes, 3 * kMiB);
  EXPECT_EQ(l->devices()[2].used_bytes, 4 * kMiB);
  EXPECT_TRUE(l->check_invariants());
}

TEST(DeviceIdentity, TheDefaultDeviceCannotHoldAGuarantee) {
  std::vector<std::string> names{"shared"};
  std::vector<uint64_t> sizes{8 * kMiB};
  auto t = DeviceTable::create({device("default", std::nullopt, 1 * kMiB)}, names, sizes);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("once for every uid"), std::string::npos) << t.error().message;
}

}  // namespace
}  // namespace pmm::core
