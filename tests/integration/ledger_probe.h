// What a running pmmd's books say, asked the way an admin would: through a
// fresh connection of the test process (root), so that a test can check
// that nothing was lost or left behind after a fault, a timeout or a fork.
//
// Usage: EXPECT_EQ(blocks_in_ledger(d), 0u);
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "client/connection.h"
#include "daemon_process.h"

namespace pmm::testing {

// Live blocks in the daemon (Stats); ~0 after a failed test assertion.
inline uint64_t blocks_in_ledger(const DaemonProcess& d) {
  auto admin = client::Connection::connect(d.socket(), "admin");
  EXPECT_TRUE(admin) << admin.error().describe();
  if (!admin) return ~0ull;
  auto s = (*admin)->stats();
  EXPECT_TRUE(s) << s.error().describe();
  return s ? s->blocks : ~0ull;
}

}  // namespace pmm::testing
