// The display half of the pipeline without pmm: MIT-SHM from a SysV segment
// and from a memfd that the test makes itself, at an offset inside the
// memory, with a padded stride — exactly how pmm-show hands a block to the X
// server — and plain PutImage in bands (the baseline). Pixels are read back
// from a private Xvfb and must be identical.
#include <gtest/gtest.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/x_display.h"
#include "mem/region.h"
#include "mem/sysv_region.h"
#include "xvfb.h"

namespace {

using examples::Frame;

// A frame whose every pixel differs from its neighbours; X ignores byte 3.
void draw(uint8_t* base, const Frame& f) {
  for (uint32_t y = 0; y < f.height; ++y) {
    for (uint32_t x = 0; x < f.width; ++x) {
      uint8_t* p = base + size_t{y} * f.stride + size_t{x} * 4;
      p[0] = static_cast<uint8_t>(x * 7 + y);
      p[1] = static_cast<uint8_t>(y * 3);
      p[2] = static_cast<uint8_t>(x ^ y);
      p[3] = 0;
    }
  }
}

// Number of pixels of `shown` (stride width*4) that differ from `f` at `base`.
size_t mismatches(const std::vector<uint8_t>& shown, const uint8_t* base, const Frame& f) {
  size_t bad = 0;
  for (uint32_t y = 0; y < f.height; ++y) {
    for (uint32_t x = 0; x < f.width; ++x) {
      const uint8_t* want = base + size_t{y} * f.stride + size_t{x} * 4;
      const uint8_t* got = shown.data() + (size_t{y} * f.width + x) * 4;
      bad += std::memcmp(want, got, 3) != 0;
    }
  }
  return bad;
}

Frame odd_frame() {
  Frame f;
  f.width = 633;  // not a multiple of anything, and a padded stride
  f.height = 411;
  f.stride = 633 * 4 + 92;
  return f;
}

class PipelineXShm : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(xvfb_.ok()) << xvfb_.error();
    auto x = examples::XDisplay::connect(xvfb_.display().c_str());
    ASSERT_TRUE(x) << x.error();
    x_ = std::move(*x);
  }
  tests::Xvfb xvfb_{1280, 1024};
  std::unique_ptr<examples::XDisplay> x_;
};

TEST_F(PipelineXShm, SysvSegmentAtAnOffset) {
  const Frame f = odd_frame();
  const size_t offset = (1 << 20) + 4096;  // as a block that is not the first in its pool
  const int shmid = ::shmget(IPC_PRIVATE, offset + f.bytes(), IPC_CREAT | 0600);
  ASSERT_GE(shmid, 0) << std::strerror(errno);
  auto* mem = static_cast<uint8_t*>(::shmat(shmid, nullptr, 0));
  ::shmctl(shmid, IPC_RMID, nullptr);  // goes when the last attacher detaches
  ASSERT_NE(mem, reinterpret_cast<uint8_t*>(-1));
  draw(mem + offset, f);

  auto window = x_->create_window(f.width, f.height);
  ASSERT_TRUE(window) << window.error();
  auto seg = x_->attach_sysv(shmid);
  ASSERT_TRUE(seg) << seg.error();
  ASSERT_TRUE(x_->put_shm(*window, *seg, offset, f));
  auto synced = x_->sync();
  ASSERT_TRUE(synced) << synced.error();
  auto shown = x_->get_image(*window, 0, 0, f.width, f.height);
  ASSERT_TRUE(shown) << shown.error();
  EXPECT_EQ(mismatches(*shown, mem + offset, f), 0u);
  x_->detach(*seg);
  ::shmdt(mem);
}

TEST_F(PipelineXShm, MemfdAtAnOffset) {
  const Frame f = odd_frame();
  const size_t offset = 3 << 20;
  const int fd = ::memfd_create("x_shm_test", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(offset + f.bytes() + 8192)), 0);
  auto* mem = static_cast<uint8_t*>(
      ::mmap(nullptr, offset + f.bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(mem, MAP_FAILED);
  draw(mem + offset, f);

  auto window = x_->create_window(f.width, f.height);
  ASSERT_TRUE(window) << window.error();
  auto seg = x_->attach_fd(::dup(fd));
  ASSERT_TRUE(seg) << seg.error();
  ASSERT_TRUE(x_->put_shm(*window, *seg, offset, f));
  auto synced = x_->sync();
  ASSERT_TRUE(synced) << synced.error();
  auto shown = x_->get_image(*window, 0, 0, f.width, f.height);
  ASSERT_TRUE(shown) << shown.error();
  EXPECT_EQ(mismatches(*shown, mem + offset, f), 0u);

  // No copy: the server reads the memory when asked to draw, so a change
  // made after attaching shows on the next draw.
  std::memset(mem + offset, 0x5a, f.bytes());
  ASSERT_TRUE(x_->put_shm(*window, *seg, offset, f));
  ASSERT_TRUE(x_->sync());
  shown = x_->get_image(*window, 0, 0, f.width, f.height);
  ASSERT_TRUE(shown);
  EXPECT_EQ(mismatches(*shown, mem + offset, f), 0u);
  EXPECT_EQ((*shown)[0], 0x5a);

  x_->detach(*seg);
  ::munmap(mem, offset + f.bytes());
  ::close(fd);
}

TEST_F(PipelineXShm, ServerRefusesAFrameBeyondTheSegment) {
  const Frame f = odd_frame();
  const int fd = ::memfd_create("x_shm_short", MFD_CLOEXEC);
  ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);  // smaller than offset + frame
  auto window = x_->create_window(f.width, f.height);
  ASSERT_TRUE(window);
  auto seg = x_->attach_fd(::dup(fd));
  ASSERT_TRUE(seg) << seg.error();
  ASSERT_TRUE(x_->put_shm(*window, *seg, 512 << 10, f));
  auto synced = x_->sync();
  EXPECT_FALSE(synced);  // BadValue from the server, reported, not ignored
  auto too_far = x_->put_shm(*window, *seg, uint64_t{5} << 32, f);
  ASSERT_FALSE(too_far);
  EXPECT_NE(too_far.error().find("4 GiB"), std::string::npos);
  ::close(fd);
}

TEST_F(PipelineXShm, PutImageInBandsWithPaddedStride) {
  Frame f;
  f.width = 1200;  // 4.9 MB: two PutImage bands at the 4 MiB cap,
  f.height = 1000;
  f.stride = 1200 * 4 + 64;  // and padded rows, which put_image packs
  std::vector<uint8_t> px(f.bytes());
  draw(px.data(), f);
  auto window = x_->create_window(f.width, f.height);
  ASSERT_TRUE(window);
  ASSERT_TRUE(x_->put_image(*window, px.data(), f));
  auto synced = x_->sync();
  ASSERT_TRUE(synced) << synced.error();
  auto shown = x_->get_image(*window, 0, 0, f.width, f.height);
  ASSERT_TRUE(shown) << shown.error();
  EXPECT_EQ(mismatches(*shown, px.data(), f), 0u);
}

// Runs x_shm_attach as uid/gid (setpriv, no supplementary groups): "ok" or
// the X server's refusal.
std::string x_attach_as(uint32_t uid, uint32_t gid, const std::string& display, int shmid) {
  const std::string cmd = "setpriv --reuid=" + std::to_string(uid) +
                          " --regid=" + std::to_string(gid) + " --clear-groups " + X_SHM_ATTACH +
                          " " + display + " " + std::to_string(shmid) + " 2>&1";
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return "popen failed";
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  ::pclose(f);
  return out;
}

// A segment made as pmmd makes a sysv pool's, for a pool whose access is
// `uids`/`gids`.
std::unique_ptr<pmm::mem::Region> pool_segment(std::vector<uint32_t> uids,
                                               std::vector<uint32_t> gids) {
  auto perm = pmm::mem::sysv_permissions(
      "display",
      {.uids = uids, .gids = gids, .daemon_uid = ::geteuid(), .daemon_gid = ::getegid()});
  EXPECT_TRUE(perm) << perm.error().describe();
  pmm::mem::RegionOptions o{.type = pmm::mem::MemoryType::kSysv, .size = 1 << 20};
  o.sysv_uid = perm->uid;
  o.sysv_gid = perm->gid;
  o.sysv_mode = perm->mode;
  auto r = pmm::mem::make_region("display", o);
  EXPECT_TRUE(r) << r.error().describe();
  return r ? std::move(*r) : nullptr;
}

TEST_F(PipelineXShm, TheServerAttachesAPoolSegmentOnlyForItsUsers) {
  // Xvfb runs as root (this test); its clients run as other uids. The
  // server checks each client's credentials against the segment's mode.
  auto for_nobody = pool_segment({65534}, {});
  ASSERT_TRUE(for_nobody);
  EXPECT_EQ(x_attach_as(65534, 65534, xvfb_.display(), for_nobody->shmid()), "ok\n");
  const std::string refused = x_attach_as(65533, 65533, xvfb_.display(), for_nobody->shmid());
  EXPECT_NE(refused.find("the X server could not attach SysV segment"), std::string::npos)
      << refused;
  EXPECT_NE(refused.find("X error 10 "), std::string::npos) << refused;  // BadAccess

  auto for_group = pool_segment({}, {65533});
  ASSERT_TRUE(for_group);
  EXPECT_EQ(x_attach_as(65532, 65533, xvfb_.display(), for_group->shmid()), "ok\n");
  EXPECT_NE(x_attach_as(65534, 65534, xvfb_.display(), for_group->shmid()).find("X error 10 "),
            std::string::npos);

  auto daemon_only = pool_segment({0}, {});
  ASSERT_TRUE(daemon_only);
  EXPECT_NE(x_attach_as(65534, 65534, xvfb_.display(), daemon_only->shmid()).find("X error 10 "),
            std::string::npos);
  EXPECT_EQ(x_attach_as(0, 0, xvfb_.display(), daemon_only->shmid()), "ok\n");
}

TEST(PipelineXDisplay, SaysWhenThereIsNoServer) {
  auto x = examples::XDisplay::connect(":54321");
  ASSERT_FALSE(x);
  EXPECT_NE(x.error().find("Xvfb"), std::string::npos) << x.error();
}

}  // namespace
