// Tests of the sysv memory type on real System V segments.
#include "mem/sysv_region.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

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

// Runs python3 as uid/gid (setpriv, no supplementary groups) to shmat()
// `shmid` and write a byte: "" when it could, else what shmat said.
std::string attach_as(uint32_t uid, uint32_t gid, int shmid) {
  const std::string cmd = fmt::format(
      "setpriv --reuid={} --regid={} --clear-groups /usr/bin/python3 -c \"import ctypes,sys; "
      "libc=ctypes.CDLL(None,use_errno=True); libc.shmat.restype=ctypes.c_void_p; "
      "p=libc.shmat({}, None, 0); ok=p not in (None, 2**64-1); "
      "ok and ctypes.memset(p, 7, 1); "
      "print('' if ok else __import__('os').strerror(ctypes.get_errno()), end='')\" 2>&1",
      uid, gid, shmid);
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return "popen failed";
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  const int status = ::pclose(f);
  if (status != 0 && out.empty()) return fmt::format("exit status {}", status);
  return out;
}

std::unique_ptr<Region> segment_for(const SysvAccess& access) {
  auto perm = sysv_permissions("sysv-perm", access);
  EXPECT_TRUE(perm) << perm.error().describe();
  RegionOptions o = sysv(64 << 10);
  o.sysv_uid = perm->uid;
  o.sysv_gid = perm->gid;
  o.sysv_mode = perm->mode;
  auto r = make_region("sysv-perm", o);
  EXPECT_TRUE(r) << r.error().describe();
  return r ? std::move(*r) : nullptr;
}

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

TEST(MemSysv, PermissionsFollowThePoolsAccess) {
  const std::vector<uint32_t> none, root{0}, nobody{65534}, two{1000, 1001}, video{44},
      groups{44, 45}, with_daemon{0, 999, 1000};
  auto perm = [](std::span<const uint32_t> u, std::span<const uint32_t> g, bool everyone) {
    return sysv_permissions(
        "display",
        {.uids = u, .gids = g, .everyone = everyone, .daemon_uid = 999, .daemon_gid = 998});
  };
  auto is = [](const Result<SysvPermissions>& p, uint32_t uid, uint32_t gid, uint32_t mode) {
    return p && p->uid == uid && p->gid == gid && p->mode == mode;
  };
  EXPECT_TRUE(is(perm(none, none, true), 999, 998, 0666));
  EXPECT_TRUE(is(perm(none, none, false), 999, 998, 0600));  // only the daemon (and root)
  EXPECT_TRUE(is(perm(root, none, false), 999, 998, 0600));
  EXPECT_TRUE(is(perm(nobody, none, false), 65534, 998, 0600));
  EXPECT_TRUE(is(perm(none, video, false), 999, 44, 0660));
  EXPECT_TRUE(is(perm(nobody, video, false), 65534, 44, 0660));
  EXPECT_TRUE(is(perm(with_daemon, video, false), 1000, 44, 0660));
  auto many = perm(two, none, false);
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(many.error().message,
            "sysv pool display: uids 1000, 1001 cannot all be given a SysV segment: its "
            "permissions name one owner uid and one group; give these users a common group and "
            "list it in gids (e.g. gids = [44]) instead, or use a shmem pool (access checked on "
            "the socket only)");
  auto groups_too = perm(none, groups, false);
  ASSERT_FALSE(groups_too);
  EXPECT_NE(groups_too.error().message.find("gids 44, 45 cannot all be given"), std::string::npos);
}

TEST(MemSysv, ExactlyTheAllowedUidOrGroupCanAttach) {
  ASSERT_EQ(::access("/usr/bin/python3", X_OK), 0) << "python3 is needed for this test";
  const uint32_t uid = ::geteuid(), gid = ::getegid();
  const std::vector<uint32_t> nobody{65534}, group{65533};
  auto for_nobody = segment_for({.uids = nobody, .daemon_uid = uid, .daemon_gid = gid});
  ASSERT_TRUE(for_nobody);
  EXPECT_EQ(attach_as(65534, 65534, for_nobody->shmid()), "");
  EXPECT_EQ(attach_as(65533, 65533, for_nobody->shmid()), "Permission denied");
  EXPECT_EQ(for_nobody->data()[0], std::byte{7});  // the allowed uid wrote it

  auto for_group = segment_for({.gids = group, .daemon_uid = uid, .daemon_gid = gid});
  ASSERT_TRUE(for_group);
  EXPECT_EQ(attach_as(65532, 65533, for_group->shmid()), "");
  EXPECT_EQ(attach_as(65534, 65534, for_group->shmid()), "Permission denied");

  auto daemon_only = segment_for({.daemon_uid = uid, .daemon_gid = gid});
  ASSERT_TRUE(daemon_only);
  EXPECT_EQ(attach_as(65534, 65534, daemon_only->shmid()), "Permission denied");

  auto everyone = segment_for({.everyone = true, .daemon_uid = uid, .daemon_gid = gid});
  ASSERT_TRUE(everyone);
  EXPECT_EQ(attach_as(65534, 65534, everyone->shmid()), "");
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
