// pmm-show-wayland on a real compositor: a private headless Weston 10
// (pixman renderer) and a real pmmd (embedded default config, private
// socket), each stage its own process.
//
// What a user would notice, checked here:
// - the compositor shows the frame: the screenshot matches an independent
//   decode + area-average scale of the test card (tests/pipeline's
//   reference), and a synthetic frame at an offset inside the pool, with a
//   padded stride, pixel for pixel;
// - no copy: Weston maps the pmm pool's own memory (the memfd's inode is in
//   /proc/<weston>/maps) and composites from it;
// - SIGKILL of the stage while the frame is on screen: every block returns
//   to its pool (pmmctl status: no block, no export, no byte), the frame
//   leaves the screen, Weston unmaps the pool and keeps running;
// - a block the compositor cannot take (a SysV pool) and a missing
//   compositor get messages that say what to do.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "child_process.h"
#include "mem/testing.h"
#include "pmm/pmm.h"
#include "reference.h"
#include "weston.h"

namespace {

using namespace std::chrono_literals;
using tests::ChildProcess;

std::string bin(const std::string& name) { return std::string(WAYLAND_BIN_DIR) + "/" + name; }

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// pmmd's books as pmmctl reports them.
struct Books {
  long blocks = -1;
  long exports = -1;
  long bytes = -1;
};

long json_number(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": ";
  const size_t at = json.find(needle);  // the first one is the top level's
  return at == std::string::npos ? -1 : std::atol(json.c_str() + at + needle.size());
}

// Lines of /proc/PID/maps that map the file with inode `ino`.
int mappings_of(pid_t pid, ino_t ino) {
  std::ifstream maps(fmt::format("/proc/{}/maps", pid));
  int n = 0;
  for (std::string line; std::getline(maps, line);) {
    // address perms offset dev inode path
    std::istringstream fields(line);
    std::string addr, perms, offset, dev;
    unsigned long inode = 0;
    fields >> addr >> perms >> offset >> dev >> inode;
    n += inode == ino;
  }
  return n;
}

class WaylandShow : public ::testing::Test {
 protected:
  // Weston with one output of width x height, and pmmd with `config` (empty:
  // its embedded default, pools `general` (shmem) and `display` (sysv)).
  void start(uint32_t width, uint32_t height, const std::string& config = "") {
    weston_ = std::make_unique<tests::Weston>(width, height);
    ASSERT_TRUE(weston_->ok()) << weston_->error();
    char tmpl[] = "/tmp/pmm-wayland-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_ = dir_ + "/pmm.sock";
    std::vector<std::string> argv{WAYLAND_PMMD, "--socket", socket_};
    if (!config.empty()) {
      std::ofstream(dir_ + "/pmmd.toml") << config;
      argv.insert(argv.end(), {"--config", dir_ + "/pmmd.toml"});
    }
    pmmd_ = std::make_unique<ChildProcess>(argv, ChildProcess::Env{});
    for (int i = 0; i < 200 && !conn_; ++i) {
      if (pmm_connect(socket_.c_str(), "wayland-test", &conn_) != PMM_OK) {
        conn_ = nullptr;
        std::this_thread::sleep_for(50ms);
      }
    }
    ASSERT_NE(conn_, nullptr) << "pmmd did not answer on " << socket_ << " within 10 s";
  }

  void TearDown() override {
    for (pmm_block* b : held_) (void)pmm_block_put(b);
    if (conn_) pmm_disconnect(conn_);
    pmmd_.reset();
    weston_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  ChildProcess::Env env() const {
    auto e = weston_->env();
    e.emplace_back("PMM_SOCKET", socket_);
    return e;
  }

  Books books() {
    auto [status, out] =
        tests::run_to_end({WAYLAND_PMMCTL, "--socket", socket_, "--json", "status"}, {}, "", 10s);
    EXPECT_TRUE(exited_ok(status)) << out;
    return {json_number(out, "blocks"), json_number(out, "exports"), json_number(out, "bytes")};
  }

  // pmmd learns of a dead client when its socket closes, a moment after
  // the process is reaped: poll, within a bound.
  ::testing::AssertionResult books_reach(long blocks, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const Books b = books();
      if (b.blocks == blocks && b.exports == 0) return ::testing::AssertionSuccess();
      if (std::chrono::steady_clock::now() > deadline) {
        return ::testing::AssertionFailure()
               << "pmmctl status: " << b.blocks << " blocks (" << b.bytes << " bytes) and "
               << b.exports << " exports, expected " << blocks << " blocks";
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  // A block of `pool` held by the test (put in TearDown). Not zeroed: its
  // pages are touched only if the test writes them.
  pmm_block* alloc(const char* pool, uint64_t size) {
    pmm_block* b = nullptr;
    EXPECT_EQ(pmm_alloc(conn_, pool, size, 0, 0, &b), PMM_OK) << pmm_last_error();
    if (b) held_.push_back(b);
    return b;
  }

  // The inode of `pool`'s memory (its memfd), as this process received it.
  ino_t pool_inode(const char* pool) {
    pmm_block* b = alloc(pool, 4096);
    struct stat st {};
    EXPECT_EQ(::fstat(pmm_block_fd(b), &st), 0);
    return st.st_ino;
  }

  std::unique_ptr<tests::Weston> weston_;
  std::string dir_;
  std::string socket_;
  std::unique_ptr<ChildProcess> pmmd_;
  pmm_conn* conn_ = nullptr;
  std::vector<pmm_block*> held_;
};

TEST_F(WaylandShow, ShowsTheScaledTestCardAndKillingTheStageLeaksNothing) {
  constexpr uint32_t kWidth = 1920, kHeight = 1080;
  start(kWidth, kHeight);
  const ino_t general = pool_inode("general");
  EXPECT_EQ(mappings_of(weston_->pid(), general), 0);

  auto [dec_status, dec_out] = tests::run_to_end(
      {bin("pmm-jpegdec"), WAYLAND_TESTCARD, "--pool", "general"}, env(), "", 60s, true);
  ASSERT_TRUE(exited_ok(dec_status)) << dec_out;
  auto [scale_status, scale_out] = tests::run_to_end(
      {bin("pmm-scale"), "--to", fmt::format("{}x{}", kWidth, kHeight)}, env(), dec_out, 60s, true);
  ASSERT_TRUE(exited_ok(scale_status)) << scale_out;

  ChildProcess show({bin("pmm-show-wayland"), "--fullscreen", "--hold", "120"}, env());
  ASSERT_TRUE(show.write_stdin(scale_out));
  show.close_stdin();
  auto shown = show.read_line(30s);
  ASSERT_TRUE(shown) << "pmm-show-wayland printed nothing; weston's log:\n" << weston_->log();
  EXPECT_NE(shown->find("via=wl_shm"), std::string::npos) << *shown;
  EXPECT_TRUE(books_reach(2, 0ms));  // the shown frame (held by the stage) and the test's block

  // The compositor maps the pool's memory itself: the frame is not copied
  // into the compositor on the way.
  EXPECT_GE(mappings_of(weston_->pid(), general), 1);

  auto shot = weston_->screenshot();
  ASSERT_TRUE(shot) << shot.error();
  ASSERT_EQ(shot->width, kWidth);
  ASSERT_EQ(shot->height, kHeight);
  const tests::RgbImage ref = tests::reference_image(WAYLAND_TESTCARD, kWidth, kHeight);
  ASSERT_EQ(ref.width, kWidth);
  const tests::Difference diff = tests::compare_bgrx(shot->bgra, ref);
  std::printf("screenshot vs reference: mean %.3f, max %d, %.5f%% off by more than 24\n", diff.mean,
              diff.max, diff.over_24 * 100);
  // 3840x2160 -> 1920x1080 is an exact 2x2 box in libyuv, the reference's
  // average: only rounding differs.
  EXPECT_LT(diff.mean, 0.5) << "max " << diff.max;
  EXPECT_LE(diff.max, 3) << "mean " << diff.mean;

  show.kill(SIGKILL);
  auto status = show.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_TRUE(books_reach(1, 5s));  // the test's own block only
  for (pmm_block* b : held_) (void)pmm_block_put(b);
  held_.clear();
  EXPECT_TRUE(books_reach(0, 5s));
  const Books end = books();
  EXPECT_EQ(end.bytes, 0);

  // Weston dropped the dead client's window and the pool's mapping, and
  // still serves: the screen no longer shows the frame.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (mappings_of(weston_->pid(), general) != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(mappings_of(weston_->pid(), general), 0);
  auto after = weston_->screenshot();
  ASSERT_TRUE(after) << after.error();
  EXPECT_GT(tests::compare_bgrx(after->bgra, ref).mean, 20.0);
}

// A frame whose every pixel differs from its neighbours. Byte 3 (X) is
// 0xff, as the decoder writes it: Weston's screenshooter hands the X byte
// on as the PNG's alpha, and a zero there would read back as transparent.
void draw(uint8_t* base, uint32_t width, uint32_t height, uint32_t stride) {
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      uint8_t* p = base + size_t{y} * stride + size_t{x} * 4;
      p[0] = static_cast<uint8_t>(x * 7 + y);
      p[1] = static_cast<uint8_t>(y * 3);
      p[2] = static_cast<uint8_t>(x ^ y);
      p[3] = 0xff;
    }
  }
}

// Pixels of the screenshot that differ (B, G, R) from the frame at `base`.
size_t mismatches(const tests::Screenshot& shot, const uint8_t* base, uint32_t stride) {
  size_t bad = 0;
  for (uint32_t y = 0; y < shot.height; ++y) {
    for (uint32_t x = 0; x < shot.width; ++x) {
      const uint8_t* want = base + size_t{y} * stride + size_t{x} * 4;
      const uint8_t* got = shot.bgra.data() + (size_t{y} * shot.width + x) * 4;
      bad += std::memcmp(want, got, 3) != 0;
    }
  }
  return bad;
}

// Both kinds of pool that have an fd: shmem, and hugetlb, whose memfd the
// compositor maps to an end that is not a multiple of the huge page size
// (the kernel rounds a hugetlbfs mapping up).
class WaylandShowPool : public WaylandShow, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "huge") {
      huge_pages_ = std::make_unique<pmm::mem::testing::HugePages>(2 << 20, 8);
      if (!huge_pages_->unavailable().empty()) GTEST_SKIP() << huge_pages_->unavailable();
    }
  }
  std::string config() const {
    if (GetParam() != "huge") return "";
    return "[pools.huge]\ntype = \"hugetlb\"\nsize = \"16MiB\"\n";
  }
  std::unique_ptr<pmm::mem::testing::HugePages> huge_pages_;  // outlives pmmd (TearDown)
};

INSTANTIATE_TEST_SUITE_P(Pools, WaylandShowPool, ::testing::Values("general", "huge"));

TEST_P(WaylandShowPool, ShowsAFrameAtAnOffsetWithAPaddedStrideInPlace) {
  constexpr uint32_t kWidth = 633, kHeight = 411;  // odd sizes, as the output's
  constexpr uint32_t kStride = kWidth * 4 + 92;
  start(kWidth, kHeight, config());
  const char* pool = GetParam().c_str();
  ASSERT_NE(alloc(pool, 1 << 20), nullptr);  // so the frame is not at offset 0
  pmm_block* frame = alloc(pool, uint64_t{kStride} * kHeight);
  ASSERT_NE(frame, nullptr);
  ASSERT_GT(pmm_block_offset(frame), 0u);
  auto* px = static_cast<uint8_t*>(pmm_block_ptr(frame));
  draw(px, kWidth, kHeight, kStride);
  pmm_token token{};
  ASSERT_EQ(pmm_export(frame, 1, 0, &token), PMM_OK) << pmm_last_error();
  char text[PMM_TOKEN_STRLEN];
  pmm_token_format(&token, text);

  // The token and geometry on the command line, the socket by --display.
  ChildProcess show(
      {bin("pmm-show-wayland"), text, fmt::format("{}x{}", kWidth, kHeight), "--stride",
       std::to_string(kStride), "--display", weston_->socket(), "--fullscreen", "--hold", "120"},
      {{"XDG_RUNTIME_DIR", weston_->runtime_dir()}, {"PMM_SOCKET", socket_}});
  auto shown = show.read_line(30s);
  ASSERT_TRUE(shown) << "pmm-show-wayland printed nothing; weston's log:\n" << weston_->log();
  EXPECT_NE(shown->find(fmt::format("offset={} ", pmm_block_offset(frame))), std::string::npos)
      << *shown;
  auto shot = weston_->screenshot();
  ASSERT_TRUE(shot) << shot.error();
  ASSERT_EQ(shot->width, kWidth);
  ASSERT_EQ(shot->height, kHeight);
  EXPECT_EQ(mismatches(*shot, px, kStride), 0u);

  // In place: the compositor reads the pool's own memory. (Rewriting the
  // block and taking another screenshot proves nothing either way: Weston
  // repaints only damaged regions, and a screenshot damages none.)
  struct stat st {};
  ASSERT_EQ(::fstat(pmm_block_fd(frame), &st), 0);
  EXPECT_GE(mappings_of(weston_->pid(), st.st_ino), 1);

  show.kill(SIGKILL);
  ASSERT_TRUE(show.wait(10s));
  EXPECT_TRUE(books_reach(2, 5s));  // the test's two blocks; the stage's reference is gone
}

TEST_F(WaylandShow, ShellPipelineExitsAfterItsHoldAndReturnsTheBlock) {
  start(640, 480);
  const std::string cmd =
      fmt::format("'{}' '{}' --pool general | '{}' --to 640x360 | '{}' --hold 0.3 --timing",
                  bin("pmm-jpegdec"), WAYLAND_TESTCARD, bin("pmm-scale"), bin("pmm-show-wayland"));
  auto [status, out] = tests::run_to_end({"/bin/sh", "-c", "set -e; " + cmd}, env(), "", 60s, true);
  EXPECT_TRUE(exited_ok(status)) << out;
  EXPECT_NE(out.find("shown surface width=640 height=360 via=wl_shm"), std::string::npos) << out;
  EXPECT_NE(out.find("timing stage=show-wayland "), std::string::npos) << out;
  EXPECT_TRUE(books_reach(0, 5s));
}

TEST_F(WaylandShow, RefusesABlockOfASysvPoolSayingWhatWouldWork) {
  start(640, 480);
  const std::string cmd =
      fmt::format("'{}' '{}' --pool display | '{}' --to 640x360 | '{}'", bin("pmm-jpegdec"),
                  WAYLAND_TESTCARD, bin("pmm-scale"), bin("pmm-show-wayland"));
  auto [status, out] = tests::run_to_end({"/bin/sh", "-c", cmd}, env(), "", 60s, true);
  EXPECT_FALSE(exited_ok(status)) << out;
  EXPECT_NE(out.find("SysV segment, which has no fd for wl_shm"), std::string::npos) << out;
  EXPECT_NE(out.find("--pool general"), std::string::npos) << out;
  EXPECT_TRUE(books_reach(0, 5s));
}

TEST_F(WaylandShow, RefusesAFrameBeyondTheFirst2GiBOfItsPoolSayingWhy) {
  // wl_shm sizes and offsets are int32: a frame past 2 GiB cannot be named.
  // The pool's pages are never touched (shmem fills on first touch).
  start(320, 240, "[pools.big]\ntype = \"shmem\"\nsize = \"3GiB\"\n");
  ASSERT_NE(alloc("big", uint64_t{2} << 30), nullptr);
  pmm_block* frame = alloc("big", 64 * 64 * 4);
  ASSERT_NE(frame, nullptr);
  ASSERT_GE(pmm_block_offset(frame), uint64_t{2} << 30);
  pmm_token token{};
  ASSERT_EQ(pmm_export(frame, 1, 0, &token), PMM_OK) << pmm_last_error();
  char text[PMM_TOKEN_STRLEN];
  pmm_token_format(&token, text);
  auto [status, out] =
      tests::run_to_end({bin("pmm-show-wayland"), text, "64x64"}, env(), "", 30s, true);
  EXPECT_FALSE(exited_ok(status)) << out;
  EXPECT_NE(out.find("wl_shm addresses only the first 2 GiB of a pool"), std::string::npos) << out;
  EXPECT_TRUE(books_reach(2, 5s));  // the test's two blocks; the stage let go of the frame
}

TEST_F(WaylandShow, SaysWhenThereIsNoCompositorAndWhatToRun) {
  start(320, 240);
  pmm_block* frame = alloc("general", 64 * 64 * 4);
  ASSERT_NE(frame, nullptr);
  pmm_token token{};
  ASSERT_EQ(pmm_export(frame, 1, 0, &token), PMM_OK) << pmm_last_error();
  char text[PMM_TOKEN_STRLEN];
  pmm_token_format(&token, text);
  auto [status, out] =
      tests::run_to_end({bin("pmm-show-wayland"), text, "64x64", "--display", "no-such-compositor"},
                        env(), "", 30s, true);
  EXPECT_FALSE(exited_ok(status)) << out;
  EXPECT_NE(out.find("cannot connect to the Wayland compositor no-such-compositor in " +
                     weston_->runtime_dir()),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("weston --backend=headless-backend.so"), std::string::npos) << out;
}

}  // namespace
