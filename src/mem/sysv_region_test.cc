// Tests of the sysv memory type on real System V segments.
#include "mem/sysv_region.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "mem/region.h"
#include "mem/testing.h"
#include "os/capability.h"
#include "os/kernel_info.h"
#include "os/sysv.h"
#include "os/test_child.h"

namespace pmm::mem {
namespace {

constexpr uint64_t k2M = 2ull << 20;

RegionOptions sysv(uint64_t size) { return RegionOptions{.type = MemoryType::kSysv, .size = size}; }

// A pool name no parallel test process shares.
std::string unique_name(std::string_view base) { return fmt::format("{}-{}", base, ::getpid()); }

TEST(MemSysv, AnotherProcessAttachesByShmidAndSeesTheBytes) {
  auto r = make_region("sysv-share", sysv(1 << 20));
  ASSERT_TRUE(r) << r.error().describe();
  const Region& region = **r;
  EXPECT_EQ(region.type(), MemoryType::kSysv);
  EXPECT_EQ(region.fd(), -1);
  ASSERT_GE(region.shmid(), 0);
  EXPECT_EQ(region.size(), 1u << 20);
  EXPECT_EQ(region.page_size(), 4096u);
  EXPECT_TRUE(region.runs().empty());
  const shmid_ds ds = os::shm_stat(region.shmid()).value();
  EXPECT_EQ(ds.shm_perm.mode & 0777, 0600);
  EXPECT_EQ(ds.shm_perm.uid, ::geteuid());
  EXPECT_EQ(ds.shm_perm.gid, ::getegid());
  // Marked for destruction at once: it goes with its last attachment.
  EXPECT_NE(ds.shm_perm.mode & SHM_DEST, 0);

  std::memcpy(region.data() + 777777, "block bytes", 11);
  // A fresh process (exec'd, so nothing inherited) attaches by shmid, as
  // the X server does for MIT-SHM.
  const int shmid = region.shmid();
  // python3 is part of the build image (scripts/install-deps); its ctypes
  // gives a process that shares nothing with this one but the shmid.
  ASSERT_EQ(::access("/usr/bin/python3", X_OK), 0) << "python3 is needed for this test";
  auto child = os::testing::run_in_child([shmid] {
    const std::string script = fmt::format(
        "import ctypes,sys; libc=ctypes.CDLL(None); libc.shmat.restype=ctypes.c_void_p; "
        "p=libc.shmat({}, None, 0); sys.exit(0 if p not in (None, 2**64-1) and "
        "ctypes.string_at(p+777777, 11)==b'block bytes' else 3)",
        shmid);
    ::execl("/usr/bin/python3", "python3", "-c", script.c_str(), nullptr);
    return std::string("exec python3 failed");
  });
  EXPECT_EQ(child, "");
  auto forked = os::testing::run_in_child([shmid] {
    auto at = os::shm_attach(shmid);
    if (!at) return at.error().describe();
    if (std::memcmp(at->data() + 777777, "block bytes", 11) != 0)
      return std::string("forked child saw other bytes");
    std::memcpy(at->data(), "reply", 5);
    return std::string();
  });
  EXPECT_EQ(forked, "");
  EXPECT_EQ(std::memcmp(region.data(), "reply", 5), 0);
  r->reset();
  auto gone = os::shm_stat(shmid);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().sys_errno, EINVAL);
}

TEST(MemSysv, OwnerGroupAndModeFromOptions) {
  RegionOptions o = sysv(64 << 10);
  o.sysv_uid = 65534;
  o.sysv_gid = 65534;
  o.sysv_mode = 0640;
  auto r = make_region("sysv-owner", o);
  ASSERT_TRUE(r) << r.error().describe();
  const shmid_ds ds = os::shm_stat((*r)->shmid()).value();
  EXPECT_EQ(ds.shm_perm.uid, 65534u);
  EXPECT_EQ(ds.shm_perm.gid, 65534u);
  EXPECT_EQ(ds.shm_perm.mode & 0777, 0640);
  EXPECT_EQ(ds.shm_perm.cuid, ::geteuid());  // created by the daemon

  o.sysv_mode = 01777;
  auto bad = make_region("sysv-owner", o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "sysv pool sysv-owner: mode 1777 has bits beyond permissions; use an octal mode up "
            "to 0777 such as 0600 or 0660");
}

TEST(MemSysv, KeysArePmmsAndStable) {
  const key_t a = sysv_key_for("x11");
  EXPECT_EQ(a, sysv_key_for("x11"));
  EXPECT_NE(a, sysv_key_for("x12"));
  EXPECT_EQ(static_cast<uint32_t>(a) & 0xffff0000u, 0x706d0000u);
}

TEST(MemSysv, SegmentLeftByACrashedDaemonIsRemovedAtTheNextStart) {
  const std::string name = unique_name("sysv-crash");
  const key_t key = sysv_key_for(name);
  // The "daemon" makes its segment and dies before marking it.
  int leftover = -1;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto id = os::shm_create(key, 1 << 20, 0600);
    ::_exit(id ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  leftover = os::shm_find(key).value();
  const shmid_ds before = os::shm_stat(leftover).value();
  EXPECT_EQ(before.shm_cpid, pid);
  EXPECT_EQ(before.shm_perm.mode & SHM_DEST, 0);  // nobody will ever remove it

  auto r = make_region(name, sysv(1 << 20));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_NE((*r)->shmid(), leftover);
  auto old = os::shm_stat(leftover);
  ASSERT_FALSE(old);  // nothing attached: removed means gone
  EXPECT_EQ(old.error().sys_errno, EINVAL);
}

TEST(MemSysv, SegmentOfALiveCreatorIsNotTouched) {
  const std::string name = unique_name("sysv-live");
  const key_t key = sysv_key_for(name);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto id = os::shm_create(key, 1 << 20, 0600);
    char c = id ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  const int theirs = os::shm_find(key).value();
  auto r = make_region(name, sysv(1 << 20));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kExists);
  EXPECT_EQ(r.error().message,
            fmt::format("sysv pool {}: SysV key {:#010x} already names segment shmid {} created "
                        "by pid {}, which is still running (another pmmd making a pool of this "
                        "name?)",
                        name, static_cast<unsigned>(key), theirs, pid));
  EXPECT_TRUE(os::shm_stat(theirs));  // still there
  EXPECT_TRUE(os::shm_remove(theirs));
}

TEST(MemSysv, SizeBeyondShmmaxNamesTheLimit) {
  // shmmax belongs to the IPC namespace: lower it in a private one.
  auto child = os::testing::run_in_child([] {
    if (::unshare(CLONE_NEWIPC) != 0) return std::string("unshare(CLONE_NEWIPC) failed");
    if (auto s = os::write_number_file("/proc/sys/kernel/shmmax", 1 << 20); !s)
      return s.error().describe();
    auto r = make_region("sysv-big", sysv(4 << 20));
    if (r) return std::string("4 MiB segment made under a 1 MiB shmmax");
    if (r.error().code != Errc::kUnsupported) return r.error().describe();
    return r.error().message;
  });
  EXPECT_EQ(child,
            "sysv pool sysv-big: 4194304 bytes is more than kernel.shmmax (1048576 bytes, "
            "/proc/sys/kernel/shmmax); raise it (sysctl kernel.shmmax) or make the pool smaller");
}

TEST(MemSysv, OnHugePagesWithPhysicalRuns) {
  testing::HugePages hp(k2M, 4);
  ASSERT_EQ(hp.unavailable(), "");
  const uint64_t mapped_before = testing::hugetlb_bytes_mapped();
  RegionOptions o = sysv(4 * k2M);
  o.sysv_huge_pages = true;
  auto r = make_region("sysv-huge", o);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ((*r)->page_size(), k2M);
  // Faulted in at creation: this process maps 4 more huge pages.
  EXPECT_EQ(testing::hugetlb_bytes_mapped(), mapped_before + 4 * k2M);
  if (os::has_capability(CAP_SYS_ADMIN)) {
    ASSERT_FALSE((*r)->runs().empty());
    uint64_t covered = 0;
    for (const PhysicalRun& run : (*r)->runs()) covered += run.length;
    EXPECT_EQ(covered, 4 * k2M);
  }
  std::memcpy((*r)->data() + 3 * k2M, "huge sysv", 9);
  const int shmid = (*r)->shmid();
  auto child = os::testing::run_in_child([shmid] {
    auto at = os::shm_attach(shmid);
    if (!at) return at.error().describe();
    return std::memcmp(at->data() + 3 * k2M, "huge sysv", 9) == 0 ? std::string()
                                                                  : std::string("other bytes");
  });
  EXPECT_EQ(child, "");
}

TEST(MemSysv, TooManyHugePagesNamesTheFreeCount) {
  testing::HugePageLock lock;
  // Far beyond what is free, whatever another program does meanwhile.
  const uint64_t want = os::huge_page_counts(k2M).value().available() + 100000;
  RegionOptions o = sysv(want * k2M);
  o.sysv_huge_pages = true;
  auto r = make_region("sysv-huge-big", o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kNoMemory);
  EXPECT_EQ(r.error().message.rfind(
                fmt::format("sysv pool sysv-huge-big needs {} pages of 2 MiB; ", want), 0),
            0u)
      << r.error().message;
  EXPECT_NE(r.error().message.find(" free (free_hugepages "), std::string::npos);
}

}  // namespace
}  // namespace pmm::mem
