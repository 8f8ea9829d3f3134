// Tests of the fault-injection seam: armed faults reach the wrappers'
// normal error paths, count as planned, and leave other calls alone.
#include "os/fault.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <vector>

#include "os/memory.h"
#include "os/socket.h"

namespace pmm::os {
namespace {

TEST(OsFault, TheNthMmapFailsWithTheArmedErrnoAndOnlyIt) {
  auto fd = memfd_create("fault", MFD_CLOEXEC);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(resize(fd->get(), 4096));
  ScopedFault f(Call::kMmap, ENOMEM, /*nth=*/2);
  EXPECT_TRUE(map_shared(fd->get(), 4096));
  auto second = map_shared(fd->get(), 4096);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::kSystem);
  EXPECT_EQ(second.error().sys_errno, ENOMEM);
  EXPECT_NE(second.error().message.find("mmap("), std::string::npos) << second.error().message;
  EXPECT_TRUE(map_shared(fd->get(), 4096));
  EXPECT_EQ(f.hits(), 1u);
}

TEST(OsFault, ClearedFaultsNoLongerFire) {
  inject_fault(Call::kMemfdCreate, {.err = EMFILE}, 1, 100);
  clear_faults();
  EXPECT_TRUE(memfd_create("after-clear", MFD_CLOEXEC));
}

TEST(OsFault, EintrIsRetriedByTheWrapper) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair);
  const std::vector<std::byte> bytes(16, std::byte{7});
  ScopedFault f(Call::kSendmsg, EINTR);
  EXPECT_TRUE(send_message(pair->first.get(), bytes, {}));
  EXPECT_EQ(f.hits(), 1u);
  auto m = receive_message(pair->second.get(), 64, 0);
  ASSERT_TRUE(m && *m);
  EXPECT_EQ((*m)->bytes, bytes);
}

TEST(OsFault, AShortReceiveIsReportedAsATruncatedMessage) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair);
  const std::vector<std::byte> bytes(16, std::byte{7});
  ASSERT_TRUE(send_message(pair->first.get(), bytes, {}));
  ScopedFault f(Call::kRecvmsg, Fault{.short_count = true});
  auto m = receive_message(pair->second.get(), 64, 0);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kProtocol);
}

TEST(OsFault, AShortSendIsReportedWithTheCounts) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair);
  const std::vector<std::byte> bytes(16, std::byte{7});
  ScopedFault f(Call::kSendmsg, Fault{.short_count = true});
  auto s = send_message(pair->first.get(), bytes, {});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("sent 8 of 16"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace pmm::os
