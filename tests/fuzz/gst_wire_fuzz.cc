// Fuzz target: the messages a pmmsrc reads from a pmmsink (gst/wire.h),
// as hostile bytes from another local process.
//
// Input: a u32 block size (taken modulo 1 MiB), then messages, each a u16
// length and that many bytes. Each message goes the way gst/pmm_src.c
// takes it: pmm_wire_kind, then for CAPS pmm_wire_caps_text and GStreamer's
// own caps parser (the stream's video info), for FRAME pmm_wire_check_frame
// against the block size and the caps.
//
// The oracle for a FRAME the check accepts is GStreamer itself, used as a
// downstream element would: a buffer over a heap block of exactly the block
// size, with the payload's offset and size and the frame's video meta, as
// import_frame() builds it, mapped with gst_video_frame_map; then the first
// and last byte of every row of every plane is read. A frame the check
// passes but GStreamer cannot map, or whose rows reach outside the block,
// is a violation (ASan reports the read; the rest abort with what was
// wrong). A check that refuses must say why.
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "wire.h"

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "gst wire fuzz: %s\n", what);
  std::abort();
}

struct Stream {
  bool have_caps = false;
  bool is_video = false;
  GstVideoInfo info{};
};

// What import_frame() gives downstream, over a block of `block_size` bytes.
GstBuffer* frame_buffer(const PmmWireFrame& f, guint8* block, gsize block_size) {
  GstMemory* mem = gst_memory_new_wrapped(GST_MEMORY_FLAG_READONLY, block, block_size,
                                          static_cast<gsize>(f.offset), static_cast<gsize>(f.size),
                                          nullptr, nullptr);
  if (mem == nullptr) violated("an accepted payload does not fit its block");
  GstBuffer* buf = gst_buffer_new();
  gst_buffer_append_memory(buf, mem);
  if (f.has_video_meta) {
    gsize offsets[GST_VIDEO_MAX_PLANES] = {0};
    gint strides[GST_VIDEO_MAX_PLANES] = {0};
    for (guint p = 0; p < f.n_planes; ++p) {
      offsets[p] = static_cast<gsize>(f.plane_offset[p]);
      strides[p] = f.stride[p];
    }
    gst_buffer_add_video_meta_full(buf, static_cast<GstVideoFrameFlags>(f.video_flags),
                                   static_cast<GstVideoFormat>(f.video_format), f.width, f.height,
                                   f.n_planes, offsets, strides);
  }
  return buf;
}

volatile guint8 sink;

// Reads the frame as a downstream element would.
void read_frame(const Stream& s, const PmmWireFrame& f, gsize block_size) {
  std::unique_ptr<guint8[]> block(new guint8[block_size]);
  std::memset(block.get(), 0, block_size);
  GstBuffer* buf = frame_buffer(f, block.get(), block_size);
  if (!s.is_video) {
    GstMapInfo map;
    if (!gst_buffer_map(buf, &map, GST_MAP_READ)) violated("an accepted payload cannot be mapped");
    sink = map.data[0];
    sink = map.data[map.size - 1];
    gst_buffer_unmap(buf, &map);
    gst_buffer_unref(buf);
    return;
  }
  GstVideoInfo info = s.info;
  GstVideoFrame frame;
  if (!gst_video_frame_map(&frame, &info, buf, GST_MAP_READ))
    violated("an accepted video frame cannot be mapped by GStreamer");
  const GstVideoFormatInfo* finfo = frame.info.finfo;
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS(&frame); ++c) {
    const guint p = GST_VIDEO_FORMAT_INFO_PLANE(finfo, c);
    const auto* data = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, p));
    const gint stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, p);
    const gint rows = GST_VIDEO_FRAME_COMP_HEIGHT(&frame, c);
    const gint row_bytes =
        GST_VIDEO_FRAME_COMP_WIDTH(&frame, c) * GST_VIDEO_FRAME_COMP_PSTRIDE(&frame, c);
    for (gint r = 0; r < rows; ++r) {
      const guint8* row = data + static_cast<ptrdiff_t>(r) * stride;
      sink = row[0];
      if (row_bytes > 0) sink = row[row_bytes - 1];
    }
  }
  gst_video_frame_unmap(&frame);
  gst_buffer_unref(buf);
}

void take(Stream& s, const guint8* msg, gsize size, gsize block_size) {
  const gchar* why = nullptr;
  switch (pmm_wire_kind(msg, size, &why)) {
    case PMM_WIRE_CAPS: {
      const gchar* text = pmm_wire_caps_text(msg, size, &why);
      if (text == nullptr) {
        if (why == nullptr) violated("caps text refused without a reason");
        return;
      }
      GstCaps* caps = gst_caps_from_string(text);
      if (caps == nullptr || !gst_caps_is_fixed(caps)) {
        if (caps != nullptr) gst_caps_unref(caps);
        return;  // pmmsrc stops with an error here
      }
      s.have_caps = true;
      s.is_video = gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-raw") &&
                   gst_video_info_from_caps(&s.info, caps);
      gst_caps_unref(caps);
      return;
    }
    case PMM_WIRE_FRAME: {
      if (!s.have_caps) return;  // pmmsrc: "a frame before any caps"
      PmmWireFrame f;
      std::memcpy(&f, msg, sizeof f);
      gchar* reason = nullptr;
      if (!pmm_wire_check_frame(&f, block_size, s.is_video ? &s.info : nullptr, &reason)) {
        if (reason == nullptr || reason[0] == '\0') violated("a frame refused without a reason");
        g_free(reason);
        return;
      }
      read_frame(s, f, block_size);
      return;
    }
    case PMM_WIRE_EOS:
    case PMM_WIRE_RELEASE:
      return;
    default:
      if (why == nullptr) violated("a message refused without a reason");
      return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool initialised = [] {
    gst_init(nullptr, nullptr);
    return true;
  }();
  (void)initialised;
  if (size < 4) return 0;
  uint32_t raw_block = 0;
  std::memcpy(&raw_block, data, 4);
  const gsize block_size = raw_block % (1u << 20) + 1;
  Stream s;
  for (size_t at = 4; at + 2 <= size;) {
    uint16_t len = 0;
    std::memcpy(&len, data + at, 2);
    at += 2;
    if (len > size - at) len = static_cast<uint16_t>(size - at);
    // A copy of exactly the message, as recv() leaves it: reading past it
    // is ASan's to report.
    std::unique_ptr<guint8[]> msg(new guint8[len ? len : 1]);
    std::memcpy(msg.get(), data + at, len);
    take(s, msg.get(), len, block_size);
    at += len;
  }
  return 0;
}
