// The streaming pipeline end to end: pmm-stream-decode | pmm-stream-scale |
// pmm-stream-show as long-lived processes with the real pmmd (embedded
// default config, private socket) and a private Xvfb, the scaler's ring in
// each default pool (`display`: the X server attaches the SysV segment;
// `general`: it maps the pool's memfd).
//
// What a user would notice, checked here:
// - every frame differs and the X server shows each one right: frames
//   first, middle and last, read back from the server, match an independent
//   decode + pan + area-average scale of the test card, and not a
//   neighbouring frame's;
// - the stream runs on its rings alone: the daemon holds the same six
//   blocks however many frames have passed (no allocation per frame);
// - no block is left after the stages exit, normally or when the middle
//   stage is SIGKILLed mid-stream (its neighbours stop with a message).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "child_process.h"
#include "pipeline_fixture.h"
#include "reference.h"

namespace {

using namespace std::chrono_literals;
using tests::ChildProcess;

// Even steps keep the 2x2 boxes of a 4K -> 1080p reduction on the card's own
// pixel pairs, so libyuv's box filter and the reference average the same.
constexpr uint32_t kPanX = 64, kPanY = 16;
constexpr uint32_t kCardWidth = 3840, kCardHeight = 2160;

std::string bin(const std::string& name) { return std::string(PIPELINE_BIN_DIR) + "/" + name; }

class StreamTest : public tests::PipelineFixture {
 protected:
  // The three stages, started together; show's stdout is the test's.
  struct Stages {
    std::unique_ptr<ChildProcess> decode, scale, show;
  };
  Stages start(uint64_t frames, const std::vector<std::string>& show_args) {
    Stages s;
    s.decode = std::make_unique<ChildProcess>(
        std::vector<std::string>{bin("pmm-stream-decode"), PIPELINE_TESTCARD, "--frames",
                                 std::to_string(frames), "--pan",
                                 std::to_string(kPanX) + "x" + std::to_string(kPanY), "--out",
                                 dir_ + "/decode.sock"},
        env());
    s.scale = std::make_unique<ChildProcess>(
        std::vector<std::string>{bin("pmm-stream-scale"), "--in", dir_ + "/decode.sock", "--out",
                                 dir_ + "/scale.sock", "--to",
                                 std::to_string(kOutWidth) + "x" + std::to_string(kOutHeight),
                                 "--pool", GetParam()},
        env());
    std::vector<std::string> argv{bin("pmm-stream-show"), "--in", dir_ + "/scale.sock"};
    argv.insert(argv.end(), show_args.begin(), show_args.end());
    s.show = std::make_unique<ChildProcess>(argv, env(), -1, /*merge_stderr=*/true);
    return s;
  }
};

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

bool exited_ok(std::optional<int> status) {
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

TEST_P(StreamTest, EveryCheckedFrameOnScreenMatchesAnIndependentDecodeAndScale) {
  constexpr uint64_t kFrames = 24;
  const std::vector<uint64_t> checked = {0, 11, 23};
  Stages s = start(kFrames, {"--capture", "0,11,23", "--capture-dir", dir_});
  std::string last;
  while (auto line = s.show->read_line(30s)) last = *line;
  EXPECT_TRUE(exited_ok(s.show->wait(10s))) << last;
  EXPECT_TRUE(exited_ok(s.scale->wait(10s)));
  EXPECT_TRUE(exited_ok(s.decode->wait(10s)));
  const std::string via = GetParam() == "display" ? "via=sysv" : "via=fd";
  EXPECT_NE(last.find("shown frames=24"), std::string::npos) << last;
  EXPECT_NE(last.find(via), std::string::npos) << last;
  EXPECT_TRUE(all_returned(5s));

  const tests::RgbSource card = tests::decode_reference(PIPELINE_TESTCARD);
  ASSERT_EQ(card.width, kCardWidth);
  for (uint64_t k : checked) {
    const auto shown = read_all(fmt::format("{}/frame-{:06}.bgrx", dir_, k));
    ASSERT_EQ(shown.size(), size_t{kOutWidth} * kOutHeight * 4) << "no capture of frame " << k;
    const auto ref = tests::scale_reference(card, kOutWidth, kOutHeight,
                                            static_cast<uint32_t>(k * kPanX % kCardWidth),
                                            static_cast<uint32_t>(k * kPanY % kCardHeight));
    const tests::Difference diff = tests::compare_bgrx(shown, ref);
    std::printf("frame %lu vs reference: mean %.3f, max %d\n", static_cast<unsigned long>(k),
                diff.mean, diff.max);
    EXPECT_LT(diff.mean, 0.5) << "frame " << k << ", max " << diff.max;
    EXPECT_LE(diff.max, 3) << "frame " << k << ", mean " << diff.mean;
    // The check tells frames apart: the previous frame's picture is far off.
    if (k != checked[1]) continue;  // once is enough, and each reference costs ~0.5 s
    const auto before = tests::scale_reference(
        card, kOutWidth, kOutHeight,
        static_cast<uint32_t>((k + kCardWidth / kPanX - 1) * kPanX % kCardWidth),
        static_cast<uint32_t>((k + kCardHeight / kPanY - 1) * kPanY % kCardHeight));
    EXPECT_GT(tests::compare_bgrx(shown, before).mean, 5.0) << "frame " << k;
  }
}

TEST_P(StreamTest, SigkillOfTheScalerMidStreamLeaksNoBlock) {
  Stages s = start(1'000'000, {"--progress"});
  auto wait_for_frame = [&](uint64_t want) {
    while (auto line = s.show->read_line(30s)) {
      uint64_t seq = 0;
      if (std::sscanf(line->c_str(), "frame seq=%lu", &seq) == 1 && seq >= want) return true;
    }
    return false;
  };
  ASSERT_TRUE(wait_for_frame(3)) << "no frame shown";
  // Two rings of three, held by the stages: nothing allocated per frame.
  EXPECT_EQ(stats().blocks, 6u);
  ASSERT_TRUE(wait_for_frame(20));
  EXPECT_EQ(stats().blocks, 6u);

  s.scale->kill(SIGKILL);
  auto status = s.scale->wait(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFSIGNALED(*status));
  // Its neighbours see the link close and stop with a message, not a hang.
  std::string said;
  while (auto line = s.show->read_line(10s)) said += *line + "\n";
  auto show_status = s.show->wait(10s);
  ASSERT_TRUE(show_status);
  EXPECT_TRUE(WIFEXITED(*show_status) && WEXITSTATUS(*show_status) == 1) << said;
  EXPECT_NE(said.find("closed"), std::string::npos) << said;
  auto decode_status = s.decode->wait(10s);
  ASSERT_TRUE(decode_status);
  EXPECT_TRUE(WIFEXITED(*decode_status) && WEXITSTATUS(*decode_status) == 1);
  EXPECT_TRUE(all_returned(5s));
}

INSTANTIATE_TEST_SUITE_P(DefaultPools, StreamTest, ::testing::Values("display", "general"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
