// Integration: a real pmmd's sysv pool gets the segment owner, group and
// mode its uids/gids say, so exactly the pool's users can shmat() it by
// shmid: an allowed uid (65534) attaches, another (65533) is refused, both
// real processes under setpriv. The segment is IPC_PRIVATE (key 0): there
// is no key for anyone to take first.
#include <gtest/gtest.h>
#include <sys/shm.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "daemon_process.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

// shmat(shmid) as uid/gid through python3 (no supplementary groups): "" when
// attached and written, else strerror.
std::string shmat_as(uint32_t uid, uint32_t gid, int shmid) {
  const std::string cmd =
      "setpriv --reuid=" + std::to_string(uid) + " --regid=" + std::to_string(gid) +
      " --clear-groups /usr/bin/python3 -c \"import ctypes,os; "
      "libc=ctypes.CDLL(None,use_errno=True); libc.shmat.restype=ctypes.c_void_p; "
      "p=libc.shmat(" +
      std::to_string(shmid) +
      ", None, 0); ok=p not in (None, 2**64-1); ok and ctypes.memset(p, 7, 1); "
      "print('' if ok else os.strerror(ctypes.get_errno()), end='')\" 2>&1";
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return "popen failed";
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  ::pclose(f);
  return out;
}

TEST(SysvAccess, ExactlyThePoolsUsersCanAttachItsSegment) {
  DaemonProcess d(R"(
[pools.display]
type = "sysv"
size = "4MiB"
uids = [65534]

[pools.private]
type = "sysv"
size = "4MiB"
uids = [0]
)");
  ASSERT_TRUE(d.ok()) << d.log();
  EXPECT_NE(d.log().find("pool display: sysv 4 MiB, best_fit, for root; uids 65534; segment "
                         "owner uid 65534, gid 0, mode 0600"),
            std::string::npos)
      << d.log();
  pmm_conn* root = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "trusted", &root), PMM_OK) << pmm_last_error();
  for (const char* pool : {"display", "private"}) {
    SCOPED_TRACE(pool);
    pmm_block* b = nullptr;
    ASSERT_EQ(pmm_alloc(root, pool, 4096, 0, 0, &b), PMM_OK) << pmm_last_error();
    pmm_sysv_segment seg;
    ASSERT_EQ(pmm_sysv_export(b, &seg), PMM_OK) << pmm_last_error();
    shmid_ds ds{};
    ASSERT_EQ(::shmctl(seg.shmid, IPC_STAT, &ds), 0);
    EXPECT_EQ(ds.shm_perm.__key, IPC_PRIVATE);
    if (std::string(pool) == "display") {
      EXPECT_EQ(shmat_as(65534, 65534, seg.shmid), "");
      // It wrote byte 0 of the segment: the first byte of this first block.
      ASSERT_EQ(pmm_block_offset(b), 0u);
      EXPECT_EQ(static_cast<const unsigned char*>(pmm_block_ptr(b))[0], 7);
    } else {
      EXPECT_EQ(shmat_as(65534, 65534, seg.shmid), "Permission denied");
    }
    EXPECT_EQ(shmat_as(65533, 65533, seg.shmid), "Permission denied");
  }
  pmm_disconnect(root);
}

TEST(SysvAccess, AnAccessListSysvCannotExpressStopsTheStart) {
  char dir[] = "/tmp/pmm-sysv-check-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/pmmd.toml";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("[pools.display]\ntype = \"sysv\"\nsize = \"4MiB\"\nuids = [1000, 1001]\n", f);
  std::fclose(f);
  const pmm::testing::Run check = run_command({PMM_PMMD_PATH, "--check-config", "--config", path});
  EXPECT_NE(check.status, 0);
  EXPECT_NE((check.out + check.err).find("uids 1000, 1001 cannot all be given a SysV segment"),
            std::string::npos)
      << check.out << check.err;
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace pmm::testing
