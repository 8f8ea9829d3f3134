// Tests of os/sysv.h on real System V segments. Segments are IPC_PRIVATE
// (no key clashes between parallel tests) and removed by each test.
#include "os/sysv.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/shm.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "os/kernel_info.h"
#include "os/test_child.h"

namespace pmm::os {
namespace {

TEST(OsSysv, AttachByShmidInAnotherProcessAfterIpcRmid) {
  auto id = shm_create(IPC_PRIVATE, 1 << 20, 0600);
  ASSERT_TRUE(id) << id.error().describe();
  auto at = shm_attach(*id);
  ASSERT_TRUE(at) << at.error().describe();
  EXPECT_EQ(at->size(), 1u << 20);
  std::memcpy(at->data() + 4096, "sysv bytes", 10);
  // Marked for removal, still attached by us: Linux lets others attach by id.
  ASSERT_TRUE(shm_remove(*id));
  const int shmid = *id;
  auto r = testing::run_in_child([shmid] {
    // The fork inherited our attachment; detach every inherited mapping by
    // attaching afresh at a new address and comparing there.
    auto mine = shm_attach(shmid);
    if (!mine) return mine.error().describe();
    return std::memcmp(mine->data() + 4096, "sysv bytes", 10) == 0
               ? std::string()
               : std::string("child saw other bytes");
  });
  EXPECT_EQ(r, "");
  auto ds = shm_stat(shmid);
  ASSERT_TRUE(ds);
  EXPECT_NE(ds->shm_perm.mode & SHM_DEST, 0);
  at->reset();
  // Last attachment gone: the segment is destroyed.
  auto gone = shm_stat(shmid);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().sys_errno, EINVAL);
}

TEST(OsSysv, ListShowsSegmentAndOwnerCanBeSet) {
  auto id = shm_create(IPC_PRIVATE, 65536, 0600);
  ASSERT_TRUE(id);
  ASSERT_TRUE(shm_set_owner(*id, 65534, 65534, 0640));
  auto ds = shm_stat(*id).value();
  EXPECT_EQ(ds.shm_perm.uid, 65534u);
  EXPECT_EQ(ds.shm_perm.gid, 65534u);
  EXPECT_EQ(ds.shm_perm.mode & 0777, 0640);
  auto list = shm_list();
  ASSERT_TRUE(list) << list.error().describe();
  auto it =
      std::find_if(list->begin(), list->end(), [&](const ShmSegment& s) { return s.shmid == *id; });
  ASSERT_NE(it, list->end());
  EXPECT_EQ(it->size, 65536u);
  EXPECT_EQ(it->creator_pid, ::getpid());
  EXPECT_EQ(it->uid, 65534u);
  EXPECT_EQ(it->mode & 0777, 0640u);
  EXPECT_EQ(it->attached, 0u);
  ASSERT_TRUE(shm_remove(*id));
  EXPECT_FALSE(shm_stat(*id));
}

TEST(OsSysv, APrivateSegmentIsNewEachTime) {
  // IPC_PRIVATE: every create is a new segment; no key to collide on.
  auto a = shm_create(IPC_PRIVATE, 4096, 0600);
  ASSERT_TRUE(a) << a.error().describe();
  auto b = shm_create(IPC_PRIVATE, 4096, 0600);
  ASSERT_TRUE(b) << b.error().describe();
  EXPECT_NE(*a, *b);
  EXPECT_EQ(shm_stat(*a).value().shm_perm.__key, IPC_PRIVATE);
  EXPECT_TRUE(shm_remove(*a));
  EXPECT_TRUE(shm_remove(*b));
}

TEST(OsSysv, SizeBeyondShmmaxNamesTheLimit) {
  // shmmax is per IPC namespace: lower it in a private one.
  auto r = testing::run_in_child([] {
    if (::unshare(CLONE_NEWIPC) != 0) return std::string("unshare(CLONE_NEWIPC) failed");
    if (auto s = write_number_file("/proc/sys/kernel/shmmax", 1 << 20); !s)
      return s.error().describe();
    auto id = shm_create(IPC_PRIVATE, 4 << 20, 0600);
    if (id) return std::string("4 MiB segment created despite shmmax 1 MiB");
    return id.error().message;
  });
  EXPECT_EQ(r,
            "shmget(key 0x00000000, 4194304, IPC_CREAT|IPC_EXCL|0600) failed: Invalid argument "
            "(errno 22); 4194304 bytes is more than kernel.shmmax (1048576 bytes, "
            "/proc/sys/kernel/shmmax)");
}

}  // namespace
}  // namespace pmm::os
