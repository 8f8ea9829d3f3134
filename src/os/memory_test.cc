// Tests of os/memory.h on real memfds and mappings.
#include "os/memory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>

#include "os/test_child.h"

namespace pmm::os {
namespace {

constexpr uint64_t kSize = 1 << 20;

TEST(OsMemory, MemfdResizeMapAndShareWithChild) {
  auto fd = memfd_create("pmm-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_TRUE(fd) << fd.error().describe();
  ASSERT_TRUE(resize(fd->get(), kSize));
  EXPECT_EQ(file_size(fd->get()).value(), kSize);
  auto map = map_shared(fd->get(), kSize);
  ASSERT_TRUE(map) << map.error().describe();
  ASSERT_TRUE(populate(map->data(), map->size(), base_page_size()));
  std::memcpy(map->data() + 12345, "through the daemon mapping", 26);
  // The child maps the same fd again: a second mapping, same pages.
  const int raw = fd->get();
  auto r = testing::run_in_child([raw] {
    auto m = map_shared(raw, kSize, 0, PROT_READ);
    if (!m) return m.error().describe();
    return std::memcmp(m->data() + 12345, "through the daemon mapping", 26) == 0
               ? std::string()
               : std::string("child read other bytes");
  });
  EXPECT_EQ(r, "");
}

TEST(OsMemory, SealsStopShrinkingAndAreNamed) {
  auto fd = memfd_create("pmm-test-seal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(resize(fd->get(), kSize));
  ASSERT_TRUE(add_seals(fd->get(), F_SEAL_SHRINK | F_SEAL_SEAL));
  EXPECT_EQ(get_seals(fd->get()).value(), F_SEAL_SHRINK | F_SEAL_SEAL);
  EXPECT_EQ(seal_names(F_SEAL_SHRINK | F_SEAL_SEAL), "F_SEAL_SEAL|F_SEAL_SHRINK");
  EXPECT_EQ(seal_names(0), "0");
  auto s = resize(fd->get(), kSize / 2);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kSystem);
  EXPECT_EQ(s.error().sys_errno, EPERM);
  EXPECT_EQ(s.error().message, fmt::format("ftruncate(fd {}, {}) failed: Operation not "
                                           "permitted (errno 1)",
                                           fd->get(), kSize / 2));
  auto more = add_seals(fd->get(), F_SEAL_GROW);
  ASSERT_FALSE(more);
  EXPECT_NE(more.error().message.find("F_ADD_SEALS, F_SEAL_GROW) failed"), std::string::npos)
      << more.error().message;
}

TEST(OsMemory, MapOfBadFdNamesTheCall) {
  auto m = map_shared(-1, kSize);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().sys_errno, EBADF);
  EXPECT_EQ(m.error().message,
            "mmap(NULL, 1048576, prot 0x3, MAP_SHARED|0x0, fd -1, 0) failed: Bad file "
            "descriptor (errno 9)");
}

TEST(OsMemory, MappingIsMoveOnlyAndUnmapsOnce) {
  auto fd = memfd_create("pmm-test-move", MFD_CLOEXEC);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(resize(fd->get(), kSize));
  auto map = map_shared(fd->get(), kSize);
  ASSERT_TRUE(map);
  Mapping a = std::move(*map);
  EXPECT_FALSE(*map);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  Mapping b;
  b = std::move(a);
  ASSERT_TRUE(b);
  b.data()[0] = std::byte{7};
  void* addr = b.data();
  b.reset();
  // The range is unmapped: mincore() on it fails with ENOMEM.
  unsigned char vec = 0;
  EXPECT_EQ(::mincore(addr, base_page_size(), &vec), -1);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(OsMemory, LockAndAdvise) {
  auto fd = memfd_create("pmm-test-lock", MFD_CLOEXEC);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(resize(fd->get(), kSize));
  auto map = map_shared(fd->get(), kSize);
  ASSERT_TRUE(map);
  auto l = lock(map->data(), map->size());
  ASSERT_TRUE(l) << l.error().describe();
  auto a = advise(map->data(), map->size(), 12345, "MADV_NONSENSE");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().message.find("madvise("), 0u);
  EXPECT_NE(a.error().message.find("MADV_NONSENSE) failed: Invalid argument"), std::string::npos)
      << a.error().message;
}

}  // namespace
}  // namespace pmm::os
