// Integration: per-device limits (`max`) and guarantees (`min`) on a shared
// pool — capability 2 of DESIGN.md, with the proposal's own case: ten
// devices of which at most five run at once share memory for five.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon_process.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::string ten_devices_config(bool with_display_guarantee) {
  // Ten accelerators, each may use up to 8 MiB; the pool holds five of them
  // (40 MiB) — plus 8 MiB guaranteed to the display when asked.
  std::string c = "[pools.shared]\ntype = \"shmem\"\n";
  c += with_display_guarantee ? "size = \"48MiB\"\n" : "size = \"40MiB\"\n";
  for (int i = 0; i < 10; ++i) {
    c += "[devices.accel" + std::to_string(i) + "]\npools = [\"shared\"]\nmax = \"8MiB\"\n";
  }
  if (with_display_guarantee) {
    c += "[devices.display]\npools = [\"shared\"]\nmin = \"8MiB\"\n";
  }
  return c;
}

struct Client {
  pmm_conn* c = nullptr;
  std::vector<pmm_block*> held;
  Client(const DaemonProcess& d, const std::string& device) {
    EXPECT_EQ(pmm_connect(d.socket().c_str(), device.c_str(), &c), PMM_OK) << pmm_last_error();
  }
  ~Client() { pmm_disconnect(c); }
  pmm_status alloc(uint64_t size) {
    pmm_block* b = nullptr;
    pmm_status s = pmm_alloc(c, "shared", size, 0, 0, &b);
    if (s == PMM_OK) held.push_back(b);
    return s;
  }
};

TEST(Devices, TenDevicesFiveActiveShareMemoryForFive) {
  DaemonProcess d(ten_devices_config(false));
  ASSERT_TRUE(d.ok()) << d.log();
  // Any five may run at once, each with its full 8 MiB.
  std::vector<std::unique_ptr<Client>> active;
  for (int i = 0; i < 5; ++i) {
    active.push_back(std::make_unique<Client>(d, "accel" + std::to_string(i)));
    ASSERT_EQ(active.back()->alloc(8 * kMiB), PMM_OK) << pmm_last_error();
  }
  // A sixth finds the pool full and is told what would have fit.
  Client sixth(d, "accel5");
  EXPECT_EQ(sixth.alloc(8 * kMiB), PMM_E_NO_MEMORY);
  EXPECT_NE(std::string(pmm_last_error()).find("largest free"), std::string::npos)
      << pmm_last_error();
  // When one finishes (its process goes away), another one runs.
  active.erase(active.begin() + 2);
  EXPECT_EQ(sixth.alloc(8 * kMiB), PMM_OK) << pmm_last_error();
  // Every device reaches its max, whichever five they are.
  for (int i = 6; i < 10; ++i) {
    active.pop_back();
    Client next(d, "accel" + std::to_string(i));
    EXPECT_EQ(next.alloc(8 * kMiB), PMM_OK) << "accel" << i << ": " << pmm_last_error();
  }
}

TEST(Devices, MaxCapsADeviceEvenWhenThePoolHasRoom) {
  DaemonProcess d(ten_devices_config(false));
  ASSERT_TRUE(d.ok()) << d.log();
  Client a(d, "accel0");
  ASSERT_EQ(a.alloc(6 * kMiB), PMM_OK) << pmm_last_error();
  EXPECT_EQ(a.alloc(4 * kMiB), PMM_E_LIMIT);
  std::string why = pmm_last_error();
  EXPECT_NE(why.find("max"), std::string::npos) << why;
  EXPECT_NE(why.find("accel0"), std::string::npos) << why;
  EXPECT_EQ(a.alloc(2 * kMiB), PMM_OK) << pmm_last_error();  // the headroom it was told
  // Freeing gives the headroom back.
  pmm_block_put(a.held.front());
  EXPECT_EQ(a.alloc(6 * kMiB), PMM_OK) << pmm_last_error();
}

TEST(Devices, MinIsKeptBackForItsDevice) {
  DaemonProcess d(ten_devices_config(true));
  ASSERT_TRUE(d.ok()) << d.log();
  std::vector<std::unique_ptr<Client>> active;
  for (int i = 0; i < 5; ++i) {
    active.push_back(std::make_unique<Client>(d, "accel" + std::to_string(i)));
    ASSERT_EQ(active.back()->alloc(8 * kMiB), PMM_OK) << pmm_last_error();
  }
  // 8 MiB are still free, but they are the display's guarantee.
  Client greedy(d, "accel5");
  EXPECT_EQ(greedy.alloc(4 * kMiB), PMM_E_LIMIT);
  std::string why = pmm_last_error();
  EXPECT_NE(why.find("display"), std::string::npos) << why;
  // The display still always gets its share.
  Client display(d, "display");
  EXPECT_EQ(display.alloc(8 * kMiB), PMM_OK) << pmm_last_error();
}

TEST(Devices, AnInvalidConfigIsRefusedWithFileLineAndReason) {
  DaemonProcess d(
      "[pools.shared]\ntype = \"shmem\"\nsize = \"40MiB\"\n"
      "[devices.cam]\npools = [\"nonexistent\"]\n");
  EXPECT_FALSE(d.ok());
  std::string log = d.log();
  EXPECT_NE(log.find("pmmd.toml"), std::string::npos) << log;
  EXPECT_NE(log.find("nonexistent"), std::string::npos) << log;
}

}  // namespace
}  // namespace pmm::testing
