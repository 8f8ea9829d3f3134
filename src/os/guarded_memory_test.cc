// Tests of os/guarded_memory.h on real memory that really goes away: a
// shared mapping of a memfd that is then truncated under it raises a real
// SIGBUS on touch, as a punched hugetlb page does when none is free (the
// hugetlb case itself is tested in core/pool_test.cc and the integration
// tests, which need huge pages).
#include "os/guarded_memory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "os/memory.h"
#include "os/test_child.h"

namespace pmm::os {
namespace {

constexpr size_t kPage = 4096;

// Four pages of a memfd mapped shared; then the file is cut to `keep`
// pages, so the rest of the mapping raises SIGBUS when touched.
struct CutMapping {
  UniqueFd fd;
  Mapping map;
  explicit CutMapping(size_t keep) {
    fd = memfd_create("guard-test", MFD_CLOEXEC).value();
    EXPECT_TRUE(resize(fd.get(), 4 * kPage));
    map = map_shared(fd.get(), 4 * kPage).value();
    std::memset(map.data(), 0x5a, 4 * kPage);
    EXPECT_TRUE(resize(fd.get(), keep * kPage));
  }
};

TEST(OsGuardedMemory, AWriteThatWouldSigbusIsAnError) {
  CutMapping m(2);
  auto s = fill_guarded(m.map.data() + kPage, 0, 2 * kPage);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kNoMemory);
  EXPECT_NE(s.error().message.find("raised SIGBUS at "), std::string::npos) << s.error().message;
  // The part that was there got written; the process is alive and the guard
  // is reusable.
  EXPECT_EQ(m.map.data()[kPage], std::byte{0});
  EXPECT_EQ(m.map.data()[0], std::byte{0x5a});
  EXPECT_TRUE(fill_guarded(m.map.data(), 1, 2 * kPage));
  EXPECT_EQ(m.map.data()[2 * kPage - 1], std::byte{1});
  EXPECT_FALSE(fill_guarded(m.map.data() + 3 * kPage, 0, 1));
}

TEST(OsGuardedMemory, FaultInReportsAPageThatCannotBeHad) {
  CutMapping m(2);
  EXPECT_TRUE(fault_in(m.map.data(), 2 * kPage));
  auto s = fault_in(m.map.data() + kPage, 2 * kPage);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kNoMemory);
  EXPECT_NE(s.error().message.find("MADV_POPULATE_WRITE"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("would raise SIGBUS"), std::string::npos) << s.error().message;
}

TEST(OsGuardedMemory, FaultInPutsBackAPunchedPage) {
  CutMapping m(4);
  ASSERT_EQ(file_resident_bytes(m.fd.get()).value(), 4 * kPage);
  ASSERT_EQ(::fallocate(m.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, kPage, kPage), 0);
  EXPECT_EQ(file_resident_bytes(m.fd.get()).value(), 3 * kPage);
  ASSERT_TRUE(fault_in(m.map.data(), 4 * kPage));
  EXPECT_EQ(file_resident_bytes(m.fd.get()).value(), 4 * kPage);
  EXPECT_EQ(m.map.data()[kPage], std::byte{0});  // a punched page reads back as zeros
  EXPECT_EQ(m.map.data()[2 * kPage], std::byte{0x5a});
}

TEST(OsGuardedMemory, ASigbusOutsideTheGuardStillKills) {
  // The handler the guard installs must not swallow a real fault elsewhere.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    CutMapping m(1);
    (void)fill_guarded(m.map.data(), 0, kPage);  // installs the handler
    *reinterpret_cast<volatile char*>(m.map.data() + 2 * kPage) = 1;
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
#if defined(__SANITIZE_ADDRESS__)
  // The handler chains to AddressSanitizer's, which reports the SIGBUS and
  // ends the process (exit 1, or SIGABRT with abort_on_error).
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
#else
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGBUS);
#endif
}

}  // namespace
}  // namespace pmm::os
