// The proposal's three use cases end to end: pmm-jpegdec | pmm-scale |
// pmm-show as separate processes, with the real pmmd (embedded default
// config, private socket) and a private Xvfb, once through each default
// pool: `display` (sysv: the X server attaches the block's SysV segment)
// and `general` (shmem: the X server maps the pool's memfd).
//
// What a user would notice, checked here:
// - the X server shows the scaled test card: pixels read back with GetImage
//   match an independent decode + area-average scale within JPEG/filter
//   tolerance;
// - a producer may exit before its consumer starts (the export holds the
//   block), and only the blocks still needed are alive between stages;
// - every block returns to its pool when the last stage exits — normally, or
//   SIGKILLed while it holds the frame on screen — and an export nobody
//   imports expires; the daemon's stats then count zero blocks and exports;
// - bad input gets a message saying what was wrong.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <png.h>

#include <filesystem>
#include <thread>

#include "child_process.h"
#include "common/frame.h"
#include "common/x_display.h"
#include "pipeline_fixture.h"
#include "reference.h"

namespace {

using namespace std::chrono_literals;
using tests::ChildProcess;

std::string bin(const std::string& name) { return std::string(PIPELINE_BIN_DIR) + "/" + name; }

class PipelineTest : public tests::PipelineFixture {
 protected:
  // Live blocks in the pool under test.
  uint64_t pool_blocks() {
    for (const auto& p : stats().pools) {
      if (p.name == GetParam()) return p.live_blocks;
    }
    ADD_FAILURE() << "pmmd has no pool " << GetParam();
    return ~0ull;
  }

  // Runs a stage to completion; returns its stdout (+ stderr) and status.
  std::pair<int, std::string> stage(const std::vector<std::string>& argv,
                                    const std::string& stdin_text = "") {
    return tests::run_to_end(argv, env(), stdin_text, 60s, /*merge_stderr=*/true);
  }
};

// A PNG's pixels as BGRA, or nothing if it cannot be read.
std::vector<uint8_t> read_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) return {};
  image.format = PNG_FORMAT_BGRA;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) return {};
  return pixels;
}

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

TEST_P(PipelineTest, ShowsTheScaledFrameAndKillingTheDisplayLeaksNothing) {
  auto [dec_status, dec_out] = stage({bin("pmm-jpegdec"), PIPELINE_TESTCARD, "--pool", GetParam()});
  ASSERT_TRUE(exited_ok(dec_status)) << dec_out;
  auto decoded = examples::parse_frame_line(dec_out.substr(0, dec_out.find('\n')), "pmm-frame");
  ASSERT_TRUE(decoded) << decoded.error();
  EXPECT_EQ(decoded->width, 3840u);
  EXPECT_EQ(decoded->height, 2160u);
  // The decoder has exited; its export alone keeps the frame.
  EXPECT_EQ(stats().blocks, 1u);
  EXPECT_EQ(stats().exports, 1u);
  EXPECT_EQ(pool_blocks(), 1u);

  auto [scale_status, scale_out] =
      stage({bin("pmm-scale"), "--to", fmt::format("{}x{}", kOutWidth, kOutHeight)}, dec_out);
  ASSERT_TRUE(exited_ok(scale_status)) << scale_out;
  // The decoded frame went back to the pool; the scaled one waits for its import.
  EXPECT_EQ(stats().blocks, 1u);
  EXPECT_EQ(stats().bytes, examples::stride_for_width(kOutWidth) * uint64_t{kOutHeight});
  EXPECT_EQ(pool_blocks(), 1u);

  ChildProcess show({bin("pmm-show"), "--hold", "120"}, env());
  ASSERT_TRUE(show.write_stdin(scale_out));
  show.close_stdin();
  auto shown = show.read_line(30s);
  ASSERT_TRUE(shown) << "pmm-show printed nothing";
  const std::string via = GetParam() == "display" ? "via=sysv" : "via=fd";
  EXPECT_NE(shown->find(via), std::string::npos) << *shown;
  EXPECT_EQ(stats().blocks, 1u);  // held by pmm-show now, not by an export token
  EXPECT_EQ(stats().exports, GetParam() == "display" ? 1u : 0u);  // its SysV export

  // What the X server shows — read back through our own connection.
  auto x = examples::XDisplay::connect(xvfb_.display().c_str());
  ASSERT_TRUE(x) << x.error();
  auto pixels = (*x)->get_image((*x)->root(), 0, 0, kOutWidth, kOutHeight);
  ASSERT_TRUE(pixels) << pixels.error();
  const tests::RgbImage ref = tests::reference_image(PIPELINE_TESTCARD, kOutWidth, kOutHeight);
  ASSERT_EQ(ref.width, kOutWidth);
  const tests::Difference diff = tests::compare_bgrx(*pixels, ref);
  std::printf("screen vs reference: mean %.3f, max %d, %.5f%% off by more than 24\n", diff.mean,
              diff.max, diff.over_24 * 100);
  // 3840x2160 -> 1920x1080 is an exact 2x2 box in libyuv, the same average
  // as the reference's: only rounding differs.
  EXPECT_LT(diff.mean, 0.5) << "max " << diff.max;
  EXPECT_LE(diff.max, 3) << "mean " << diff.mean;

  // SIGKILL while the frame is on screen: the daemon drops pmm-show's
  // reference and its SysV export when the socket closes.
  show.kill(SIGKILL);
  auto status = show.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_TRUE(all_returned(5s));
}

TEST_P(PipelineTest, ShellPipelineRunsAndReturnsEveryBlock) {
  // The proposal's shell pipeline, at a 3:1 reduction (libyuv filters
  // bilinearly there, the reference averages areas: thin lines differ).
  const uint32_t width = 1280, height = 720;
  const std::string png = dir_ + "/screen.png";
  const std::string cmd = fmt::format(
      "'{}' '{}' --pool {} | '{}' --to {}x{} | '{}' --screenshot '{}'", bin("pmm-jpegdec"),
      PIPELINE_TESTCARD, GetParam(), bin("pmm-scale"), width, height, bin("pmm-show"), png);
  auto [status, out] = stage({"/bin/sh", "-c", "set -e; " + cmd});
  ASSERT_TRUE(exited_ok(status)) << out;
  EXPECT_NE(out.find("shown window="), std::string::npos) << out;
  EXPECT_TRUE(all_returned(5s));

  auto pixels = read_png(png);
  ASSERT_EQ(pixels.size(), size_t{width} * height * 4)
      << "no " << width << "x" << height << " screenshot at " << png;
  const tests::Difference diff =
      tests::compare_bgrx(pixels, tests::reference_image(PIPELINE_TESTCARD, width, height));
  std::printf("screenshot vs reference: mean %.3f, max %d, %.3f%% off by more than 24\n", diff.mean,
              diff.max, diff.over_24 * 100);
  EXPECT_LT(diff.mean, 2.0);
  EXPECT_LT(diff.over_24, 0.03);

  // The copying baseline runs the same decoder and scaler code: the screen
  // must be the same, pixel for pixel, whichever way the frame travelled.
  const std::string base_png = dir_ + "/baseline.png";
  auto [base_status, base_out] =
      stage({"/bin/sh", "-c",
             fmt::format("set -e; '{}' '{}' | '{}' --to {}x{} | '{}' --screenshot '{}'",
                         bin("baseline-jpegdec"), PIPELINE_TESTCARD, bin("baseline-scale"), width,
                         height, bin("baseline-show"), base_png)});
  ASSERT_TRUE(exited_ok(base_status)) << base_out;
  EXPECT_TRUE(read_png(base_png) == pixels) << "pmm and the baseline showed different pixels";
}

TEST_P(PipelineTest, AnExportNobodyImportsExpires) {
  auto [status, out] =
      stage({bin("pmm-jpegdec"), PIPELINE_TESTCARD, "--pool", GetParam(), "--lifetime-ms", "300"});
  ASSERT_TRUE(exited_ok(status)) << out;
  EXPECT_EQ(pool_blocks(), 1u);
  EXPECT_TRUE(all_returned(5s));
  // Too late now: the consumer is told so.
  auto [late_status, late_out] = stage({bin("pmm-scale"), "--to", "640x360"}, out);
  EXPECT_EQ(WEXITSTATUS(late_status), 1);
  EXPECT_NE(late_out.find("cannot import token"), std::string::npos) << late_out;
  EXPECT_TRUE(all_returned(5s));
}

INSTANTIATE_TEST_SUITE_P(DefaultPools, PipelineTest, ::testing::Values("display", "general"),
                         [](const auto& param_info) { return param_info.param; });

using PipelineErrors = PipelineTest;

TEST_P(PipelineErrors, BadInputIsRefusedWithAReason) {
  struct Case {
    std::vector<std::string> argv;
    std::string stdin_text;
    std::string says;
  };
  const std::string bogus_token = "0123456789abcdef0123456789abcdef";
  const std::vector<Case> cases = {
      {{bin("pmm-scale"), "--to", "640x360"}, "hello\n", "expected a line starting"},
      {{bin("pmm-scale"), "--to", "640x360"}, "", "wrote nothing"},
      {{bin("pmm-scale"), "--to", "640x360"},
       "pmm-frame token=" + bogus_token + " width=64 height=64 stride=256 format=BGRX\n",
       "cannot import token"},
      {{bin("pmm-scale"), "--to", "9999x1"}, "", "out of range"},
      {{bin("pmm-scale"), bogus_token, "--to", "64x64"}, "", "without its size"},
      {{bin("pmm-show"), "nothex", "64x64"}, "", "bad token"},
      {{bin("pmm-jpegdec"), PIPELINE_BIN_DIR "/pmm-scale"}, "", "not a JPEG"},
      {{bin("pmm-jpegdec"), "/nonexistent.jpg"}, "", "cannot open"},
      {{bin("pmm-jpegdec"), PIPELINE_TESTCARD, "--pool", "nosuchpool"}, "", "nosuchpool"},
  };
  for (const Case& c : cases) {
    auto [status, out] = stage(c.argv, c.stdin_text);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << c.argv[0] << ": " << out;
    EXPECT_NE(out.find(c.says), std::string::npos)
        << c.argv[0] << " should say '" << c.says << "', said: " << out;
  }
  EXPECT_TRUE(all_returned(5s));
}

INSTANTIATE_TEST_SUITE_P(Daemon, PipelineErrors, ::testing::Values("general"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
