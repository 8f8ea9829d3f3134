// The renderers of `pmmctl map` and `metrics` on replies made up here: what
// a hostile pool or device name becomes (escaped, never markup or a broken
// sample), the fragmentation figure, and a bucketed map's partial cells.
#include <gtest/gtest.h>

#include "map.h"
#include "metrics.h"

namespace pmmctl {
namespace {

namespace proto = pmm::proto;

// A picture as the builder makes it from two exact pages.
PoolPicture two_blocks(std::string pool, std::string device) {
  proto::PoolMapReply first{
      .pool = std::move(pool),
      .strategy = "best_fit",
      .size = 8 << 20,
      .page_size = 4096,
      .blocks = 2,
      .bytes_used = 3 << 20,
      .bytes_free = 5 << 20,
      .free_extents = 2,
      .largest_free = 4 << 20,
      .devices = {std::move(device)},
      .extents = {{.offset = 0, .size = 2 << 20, .used = 2 << 20, .device = 0, .uid = 7}},
      .more = true};
  proto::PoolMapReply second = first;
  second.devices.clear();
  second.extents = {
      {.offset = 3 << 20, .size = 1 << 20, .used = 1 << 20, .device = proto::kMapDeviceHidden}};
  second.more = false;
  PictureBuilder b;
  b.add(first);
  b.add(second);
  return b.finish();
}

TEST(MapRender, PagesMakeOnePictureWithTheGapsBetweenBlocks) {
  PoolPicture m = two_blocks("p", "d");
  ASSERT_EQ(m.extents.size(), 4u);
  EXPECT_EQ(m.extents[1].used, 0u);
  EXPECT_EQ(m.extents[1].size, 1u << 20);
  EXPECT_EQ(m.extents[2].device, proto::kMapDeviceHidden);
  EXPECT_EQ(m.largest_offset, 4u << 20);
  EXPECT_EQ(m.largest_size, 4u << 20);
  EXPECT_EQ(m.pages, 2u);
}

TEST(MapRender, FragmentationIsOneMinusLargestOverFree) {
  PoolPicture m = two_blocks("p", "d");
  EXPECT_DOUBLE_EQ(fragmentation(m), 0.2);
  m.bytes_free = 0;
  m.largest_free = 0;
  EXPECT_DOUBLE_EQ(fragmentation(m), 0.0) << "a full pool is not fragmented";
}

TEST(MapRender, NamesAreEscapedInTheSvg) {
  const std::string svg =
      render_map_svg(two_blocks("<p&q>", "cam\"</text><script>"), MapStyle{.request = 5 << 20});
  EXPECT_EQ(svg.find("<p&q>"), std::string::npos);
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  EXPECT_NE(svg.find("pool &lt;p&amp;q&gt;"), std::string::npos);
  EXPECT_NE(svg.find("cam&quot;&lt;/text&gt;&lt;script&gt;"), std::string::npos);
  EXPECT_NE(svg.find("a request of 5 MiB is refused"), std::string::npos);
  // The hidden block carries no uid; the named one does.
  EXPECT_NE(svg.find("data-uid=\"7\""), std::string::npos);
  EXPECT_EQ(svg.find("data-uid=\"0\""), std::string::npos);
}

TEST(MapRender, BucketsPartlyUsedShowAsPartlyUsedCells) {
  PictureBuilder b;
  b.add(proto::PoolMapReply{.pool = "b",
                            .size = 4096,
                            .blocks = 3,
                            .bytes_used = 1024,
                            .bytes_free = 3072,
                            .free_extents = 2,
                            .largest_free = 2048,
                            .bucket_size = 2048,
                            .devices = {"d"},
                            .extents = {{.offset = 0, .size = 2048, .used = 1024, .device = 0}}});
  const PoolPicture m = b.finish();
  ASSERT_EQ(m.extents.size(), 2u) << "every bucket, touched or not";
  EXPECT_EQ(m.largest_offset, 2048u) << "the wholly free bucket is outlined";
  const std::string strip = render_map_term(m, MapStyle{.columns = 8, .rows = 1, .color = false});
  EXPECT_NE(strip.find("++++"), std::string::npos) << strip;
  EXPECT_NE(strip.find("coalesced by pmmd into buckets of 2 KiB"), std::string::npos) << strip;
}

TEST(Prometheus, LabelValuesAreEscaped) {
  EXPECT_EQ(prometheus_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  DaemonSample s;
  s.metrics = proto::MetricsReply{.latency_bounds_ns = {1000},
                                  .latency_counts = {1, 2},
                                  .latency_sum_ns = 5000,
                                  .latency_count = 3};
  s.devices = {proto::DeviceEntry{.id = 1, .name = "x\"y\nz", .max = UINT64_MAX}};
  const std::string text = render_prometheus(s);
  EXPECT_NE(text.find("pmm_device_max_bytes{device=\"x\\\"y\\nz\"} +Inf\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("pmm_request_duration_seconds_bucket{le=\"1e-06\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("pmm_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("pmm_request_duration_seconds_count 3\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace pmmctl
