/* gst_pmm_probe — one side of the GStreamer tests (tests/gst/gst_test.cc),
 * run as its own process. It prints facts, one line each, that the test
 * checks; it decides nothing about pmm itself.
 *
 *   gst_pmm_probe run DESC
 *     Runs the gst-launch-style pipeline DESC until EOS ("eos", exit 0) or
 *     an error ("error: ...", exit 1). For each buffer reaching the element
 *     named "sink": "buffer pts=P pool_offset=O size=S pmm=0|1" (pool_offset
 *     is the memory's offset in its fd, i.e. the block's offset in its pool
 *     plus the payload's). At the end, when "sink" has a `copies` property:
 *     "copies=N".
 *
 *   gst_pmm_probe compare DESC REFDESC N
 *     DESC ends in `appsink name=out`, REFDESC in `appsink name=ref`
 *     (the same pattern made here). Compares N frames byte for byte, plane
 *     by plane and row by row through their video meta; for each received
 *     frame also checks that its memory is a pmm fd memory and that the
 *     mapped bytes lie in this process's mapping of that fd at the memory's
 *     offset (/proc/self/maps). Prints "frame I pts=P pool_offset=O" per
 *     frame, then "compared N frames", and exits 0 only if every frame
 *     matched, was zero-copy and exactly N came before EOS.
 *
 *   gst_pmm_probe xshot DISPLAY REFDESC
 *     Takes the root window's top-left WxH pixels of DISPLAY (W, H from the
 *     caps of REFDESC's `appsink name=ref`, which must give BGRx) and prints
 *     "xshot mean=M max=X" (per-channel absolute difference).
 */
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <gst/allocators/allocators.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static GstElement* launch(const char* desc) {
  GError* error = NULL;
  GstElement* p = gst_parse_launch(desc, &error);
  if (p == NULL) {
    printf("error: cannot parse '%s': %s\n", desc, error->message);
    exit(1);
  }
  return p;
}

static gboolean is_pmm(GstMemory* mem) {
  return gst_is_fd_memory(mem) && mem->allocator->mem_type != NULL &&
         strcmp(mem->allocator->mem_type, "pmm") == 0;
}

static GstPadProbeReturn print_buffer(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
  (void)pad;
  (void)data;
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  GstMemory* mem = gst_buffer_peek_memory(buf, 0);
  printf("buffer pts=%" G_GUINT64_FORMAT " pool_offset=%zu size=%zu pmm=%d\n", GST_BUFFER_PTS(buf),
         mem->offset, gst_buffer_get_size(buf), gst_buffer_n_memory(buf) == 1 && is_pmm(mem));
  fflush(stdout);
  return GST_PAD_PROBE_OK;
}

static int run(const char* desc) {
  GstElement* p = launch(desc);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  if (sink) {
    GstPad* pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, print_buffer, NULL, NULL);
    gst_object_unref(pad);
  }
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  GstMessage* m =
      gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  int rc = 0;
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError* e = NULL;
    gst_message_parse_error(m, &e, NULL);
    printf("error: %s\n", e->message);
    g_error_free(e);
    rc = 1;
  } else {
    printf("eos\n");
  }
  gst_message_unref(m);
  gst_object_unref(bus);
  if (sink && g_object_class_find_property(G_OBJECT_GET_CLASS(sink), "copies")) {
    guint64 copies = 0;
    g_object_get(sink, "copies", &copies, NULL);
    printf("copies=%" G_GUINT64_FORMAT "\n", copies);
  }
  fflush(stdout);
  gst_element_set_state(p, GST_STATE_NULL);
  if (sink) gst_object_unref(sink);
  gst_object_unref(p);
  return rc;
}

/* TRUE when `data` lies in a mapping of the file `fd` refers to, at file
 * offset `offset`. */
static gboolean mapped_at(const void* data, int fd, gsize offset) {
  struct stat st;
  if (fstat(fd, &st) != 0) return FALSE;
  FILE* maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return FALSE;
  char line[512];
  gboolean found = FALSE;
  uintptr_t p = (uintptr_t)data;
  while (!found && fgets(line, sizeof line, maps)) {
    uintptr_t start, end;
    unsigned long long file_offset, inode;
    char perms[8];
    unsigned dev_major, dev_minor;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %llx %x:%x %llu", &start, &end, perms,
               &file_offset, &dev_major, &dev_minor, &inode) != 7)
      continue;
    if (p < start || p >= end) continue;
    found = inode == (unsigned long long)st.st_ino && file_offset + (p - start) == offset;
    if (!found) printf("note: %p lies in %s", data, line);
  }
  fclose(maps);
  return found;
}

static gboolean same_frame(GstSample* got, GstSample* want, guint index) {
  GstVideoInfo gi, wi;
  if (!gst_video_info_from_caps(&gi, gst_sample_get_caps(got)) ||
      !gst_video_info_from_caps(&wi, gst_sample_get_caps(want)) ||
      GST_VIDEO_INFO_FORMAT(&gi) != GST_VIDEO_INFO_FORMAT(&wi) ||
      GST_VIDEO_INFO_WIDTH(&gi) != GST_VIDEO_INFO_WIDTH(&wi) ||
      GST_VIDEO_INFO_HEIGHT(&gi) != GST_VIDEO_INFO_HEIGHT(&wi)) {
    printf("frame %u: caps differ\n", index);
    return FALSE;
  }
  GstVideoFrame g, w;
  if (!gst_video_frame_map(&g, &gi, gst_sample_get_buffer(got), GST_MAP_READ)) return FALSE;
  if (!gst_video_frame_map(&w, &wi, gst_sample_get_buffer(want), GST_MAP_READ)) {
    gst_video_frame_unmap(&g);
    return FALSE;
  }
  gboolean same = TRUE;
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS(&g) && same; ++c) {
    guint plane = GST_VIDEO_FORMAT_INFO_PLANE(gi.finfo, c);
    gint rows = GST_VIDEO_FRAME_COMP_HEIGHT(&g, c);
    gsize bytes =
        (gsize)GST_VIDEO_FRAME_COMP_WIDTH(&g, c) * (gsize)GST_VIDEO_FRAME_COMP_PSTRIDE(&g, c);
    for (gint r = 0; r < rows && same; ++r) {
      const guint8* a = (const guint8*)GST_VIDEO_FRAME_PLANE_DATA(&g, plane) +
                        r * GST_VIDEO_FRAME_PLANE_STRIDE(&g, plane);
      const guint8* b = (const guint8*)GST_VIDEO_FRAME_PLANE_DATA(&w, plane) +
                        r * GST_VIDEO_FRAME_PLANE_STRIDE(&w, plane);
      if (memcmp(a, b, bytes) != 0) {
        printf("frame %u: component %u row %d differs\n", index, c, r);
        same = FALSE;
      }
    }
  }
  gst_video_frame_unmap(&w);
  gst_video_frame_unmap(&g);
  return same;
}

static int compare(const char* desc, const char* refdesc, guint n) {
  GstElement* p = launch(desc);
  GstElement* r = launch(refdesc);
  GstElement* out = gst_bin_get_by_name(GST_BIN(p), "out");
  GstElement* ref = gst_bin_get_by_name(GST_BIN(r), "ref");
  if (out == NULL || ref == NULL) {
    printf("error: need appsink name=out and appsink name=ref\n");
    return 1;
  }
  gst_element_set_state(p, GST_STATE_PLAYING);
  gst_element_set_state(r, GST_STATE_PLAYING);
  guint count = 0, good = 0;
  for (;;) {
    GstSample* got = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 10 * GST_SECOND);
    if (got == NULL) break;
    GstSample* want = gst_app_sink_try_pull_sample(GST_APP_SINK(ref), 10 * GST_SECOND);
    GstBuffer* buf = gst_sample_get_buffer(got);
    GstMemory* mem = gst_buffer_peek_memory(buf, 0);
    gboolean zero_copy = FALSE;
    if (gst_buffer_n_memory(buf) == 1 && is_pmm(mem)) {
      GstMapInfo map;
      if (gst_memory_map(mem, &map, GST_MAP_READ)) {
        zero_copy = mapped_at(map.data, gst_fd_memory_get_fd(mem), mem->offset);
        gst_memory_unmap(mem, &map);
      }
    }
    gboolean same = want != NULL && same_frame(got, want, count);
    printf("frame %u pts=%" G_GUINT64_FORMAT " pool_offset=%zu zero_copy=%d same=%d\n", count,
           GST_BUFFER_PTS(buf), mem->offset, zero_copy, same);
    fflush(stdout);
    if (zero_copy && same) ++good;
    ++count;
    gst_sample_unref(got);
    if (want) gst_sample_unref(want);
  }
  gboolean eos = gst_app_sink_is_eos(GST_APP_SINK(out));
  printf("compared %u frames, %u good, eos=%d\n", count, good, eos);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_element_set_state(r, GST_STATE_NULL);
  gst_object_unref(out);
  gst_object_unref(ref);
  gst_object_unref(p);
  gst_object_unref(r);
  return count == n && good == n && eos ? 0 : 1;
}

static int xshot(const char* display_name, const char* refdesc) {
  GstElement* r = launch(refdesc);
  GstElement* ref = gst_bin_get_by_name(GST_BIN(r), "ref");
  gst_element_set_state(r, GST_STATE_PLAYING);
  GstSample* want = gst_app_sink_try_pull_sample(GST_APP_SINK(ref), 10 * GST_SECOND);
  GstVideoInfo wi;
  if (want == NULL || !gst_video_info_from_caps(&wi, gst_sample_get_caps(want)) ||
      GST_VIDEO_INFO_FORMAT(&wi) != GST_VIDEO_FORMAT_BGRx) {
    printf("error: the reference must give BGRx frames\n");
    return 1;
  }
  Display* dpy = XOpenDisplay(display_name);
  if (dpy == NULL) {
    printf("error: cannot open display %s\n", display_name);
    return 1;
  }
  guint w = (guint)GST_VIDEO_INFO_WIDTH(&wi), h = (guint)GST_VIDEO_INFO_HEIGHT(&wi);
  XImage* img = XGetImage(dpy, DefaultRootWindow(dpy), 0, 0, w, h, AllPlanes, ZPixmap);
  GstVideoFrame f;
  gst_video_frame_map(&f, &wi, gst_sample_get_buffer(want), GST_MAP_READ);
  double sum = 0;
  int max = 0;
  for (guint y = 0; y < h; ++y) {
    const guint8* row = (const guint8*)GST_VIDEO_FRAME_PLANE_DATA(&f, 0) +
                        y * (guint)GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0);
    for (guint x = 0; x < w; ++x) {
      unsigned long px = XGetPixel(img, (int)x, (int)y);
      int got[3] = {(int)(px & 0xff), (int)((px >> 8) & 0xff),
                    (int)((px >> 16) & 0xff)}; /* B G R */
      for (int c = 0; c < 3; ++c) {
        int d = abs(got[c] - (int)row[x * 4 + (guint)c]);
        sum += d;
        if (d > max) max = d;
      }
    }
  }
  printf("xshot mean=%.3f max=%d\n", sum / (3.0 * w * h), max);
  /* For a person looking into a failure: the screenshot as a PPM file. */
  const char* ppm = getenv("GST_PMM_XSHOT_PPM");
  FILE* out = ppm ? fopen(ppm, "wb") : NULL;
  if (out) {
    fprintf(out, "P6 %u %u 255\n", w, h);
    for (guint y = 0; y < h; ++y)
      for (guint x = 0; x < w; ++x) {
        unsigned long px = XGetPixel(img, (int)x, (int)y);
        fputc((int)((px >> 16) & 0xff), out);
        fputc((int)((px >> 8) & 0xff), out);
        fputc((int)(px & 0xff), out);
      }
    fclose(out);
  }
  gst_video_frame_unmap(&f);
  XDestroyImage(img);
  XCloseDisplay(dpy);
  gst_sample_unref(want);
  gst_element_set_state(r, GST_STATE_NULL);
  gst_object_unref(ref);
  gst_object_unref(r);
  return 0;
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 3 && strcmp(argv[1], "run") == 0) return run(argv[2]);
  if (argc == 5 && strcmp(argv[1], "compare") == 0)
    return compare(argv[2], argv[3], (guint)strtoul(argv[4], NULL, 10));
  if (argc == 4 && strcmp(argv[1], "xshot") == 0) return xshot(argv[2], argv[3]);
  fprintf(stderr, "usage: %s run DESC | compare DESC REFDESC N | xshot DISPLAY REFDESC\n", argv[0]);
  return 2;
}
