// The frame line that passes between the pipeline's stages (examples/common/frame.h):
// what a stage prints is what the next one parses, and every malformed line
// is refused with a message that says what was wrong.
#include "common/frame.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace examples {
namespace {

TEST(PipelineFrameLine, RoundTripsWithToken) {
  Frame frame;
  frame.token = "00112233445566778899aabbccddeeff";
  frame.width = 1920;
  frame.height = 1080;
  frame.stride = stride_for_width(1920);
  const std::string line = format_frame_line("pmm-frame", frame);
  EXPECT_EQ(line,
            "pmm-frame token=00112233445566778899aabbccddeeff width=1920 height=1080 "
            "stride=7680 format=BGRX");
  auto parsed = parse_frame_line(line, "pmm-frame");
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->token, frame.token);
  EXPECT_EQ(parsed->width, 1920u);
  EXPECT_EQ(parsed->height, 1080u);
  EXPECT_EQ(parsed->stride, 7680u);
  EXPECT_EQ(parsed->bytes(), 7680u * 1080u);
}

TEST(PipelineFrameLine, StrideIsRoundedTo64Bytes) {
  EXPECT_EQ(stride_for_width(1), 64u);
  EXPECT_EQ(stride_for_width(17), 128u);
  EXPECT_EQ(stride_for_width(3840), 15360u);
}

TEST(PipelineFrameLine, KeysInAnyOrderAndUnknownKeysIgnored) {
  auto parsed =
      parse_frame_line("copy-frame format=BGRX height=2 extra=1 stride=64 width=3", "copy-frame");
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->width, 3u);
  EXPECT_TRUE(parsed->token.empty());
}

TEST(PipelineFrameLine, RefusesWhatIsWrongAndSaysWhy) {
  auto expect_error = [](std::string_view line, std::string_view words) {
    auto parsed = parse_frame_line(line, "pmm-frame");
    ASSERT_FALSE(parsed) << line;
    EXPECT_NE(parsed.error().find(words), std::string::npos) << parsed.error();
  };
  expect_error("copy-frame width=1 height=1 stride=64 format=BGRX", "expected a line starting");
  expect_error("pmm-framez width=1 height=1 stride=64 format=BGRX", "expected a line starting");
  expect_error("pmm-frame width=1 height=1 format=BGRX", "lacks one of");
  expect_error("pmm-frame width=x1 height=1 stride=64 format=BGRX", "not a decimal");
  expect_error("pmm-frame width=99999999999 height=1 stride=64 format=BGRX", "not a decimal");
  expect_error("pmm-frame width=4000 height=1 stride=16000 format=BGRX", "out of range");
  expect_error("pmm-frame width=3840 height=2161 stride=15360 format=BGRX", "out of range");
  expect_error("pmm-frame width=0 height=1 stride=64 format=BGRX", "out of range");
  expect_error("pmm-frame width=16 height=1 stride=63 format=BGRX", "multiple of 4");
  expect_error("pmm-frame width=16 height=1 stride=60 format=BGRX", "multiple of 4");
  expect_error("pmm-frame width=16 height=1 stride=64 format=NV12", "format 'NV12'");
  expect_error("pmm-frame width=16 height=1 stride=64 format=BGRX junk", "key=value");
}

TEST(PipelineParseSize, AcceptsUpTo4kEitherWayRound) {
  auto s = parse_size("3840x2160");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->width, 3840u);
  EXPECT_EQ(s->height, 2160u);
  EXPECT_TRUE(parse_size("2160x3840"));
  EXPECT_TRUE(parse_size("1x1"));
  for (const char* bad : {"", "1920", "1920x", "x1080", "0x10", "3841x10", "3840x2161",
                          "1920x1080x3", "-1x5", " 1x1"}) {
    auto r = parse_size(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_FALSE(r.error().empty());
    }
  }
}

TEST(PipelineReadLine, SplitsLinesAndKeepsTheRestOfTheStream) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  std::fputs("first line\nsecond\n\x01\x02", f);
  std::rewind(f);
  EXPECT_EQ(read_line(f).value(), "first line");
  EXPECT_EQ(read_line(f).value(), "second");
  EXPECT_EQ(std::fgetc(f), 1);
  EXPECT_EQ(std::fgetc(f), 2);
  auto end = read_line(f);
  ASSERT_FALSE(end);
  EXPECT_NE(end.error().find("wrote nothing"), std::string::npos);
  std::fclose(f);
}

}  // namespace
}  // namespace examples
