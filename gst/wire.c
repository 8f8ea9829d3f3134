/* The pmmsink <-> pmmsrc messages: sending, and the checks a receiver makes
 * before it believes anything in one (wire.h says why they are strict). */
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

gboolean pmm_wire_send(int fd, const void* msg, gsize size) {
  ssize_t n;
  do {
    n = send(fd, msg, size, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n >= 0 && (gsize)n == size;
}

gboolean pmm_wire_send_caps(int fd, const gchar* caps_text) {
  gsize length = strlen(caps_text) + 1;
  if (length > PMM_WIRE_MAX_CAPS) {
    errno = EMSGSIZE;
    return FALSE;
  }
  gsize total = sizeof(PmmWireCaps) + length;
  guint8* msg = g_malloc0(total);
  PmmWireCaps* caps = (PmmWireCaps*)msg;
  caps->header.magic = PMM_WIRE_MAGIC;
  caps->header.kind = PMM_WIRE_CAPS;
  caps->length = (guint32)length;
  memcpy(msg + sizeof(PmmWireCaps), caps_text, length);
  gboolean ok = pmm_wire_send(fd, msg, total);
  g_free(msg);
  return ok;
}

PmmWireKind pmm_wire_kind(const void* msg, gsize size, const gchar** why) {
  PmmWireHeader h;
  if (size < sizeof h) {
    *why = "message shorter than its header";
    return 0;
  }
  memcpy(&h, msg, sizeof h);
  if (h.magic != PMM_WIRE_MAGIC) {
    *why = "bad magic: the peer is not a pmmsink/pmmsrc of this version";
    return 0;
  }
  switch (h.kind) {
    case PMM_WIRE_CAPS:
      if (size > sizeof(PmmWireCaps)) return PMM_WIRE_CAPS;
      break;
    case PMM_WIRE_FRAME:
      if (size == sizeof(PmmWireFrame)) return PMM_WIRE_FRAME;
      break;
    case PMM_WIRE_EOS:
      if (size == sizeof(PmmWireHeader)) return PMM_WIRE_EOS;
      break;
    case PMM_WIRE_RELEASE:
      if (size == sizeof(PmmWireRelease)) return PMM_WIRE_RELEASE;
      break;
    default:
      *why = "unknown message kind (expected CAPS, FRAME, EOS or RELEASE)";
      return 0;
  }
  *why = "message of the wrong size for its kind";
  return 0;
}

const gchar* pmm_wire_caps_text(const void* msg, gsize size, const gchar** why) {
  PmmWireCaps caps;
  memcpy(&caps, msg, sizeof caps);
  if (caps.length == 0 || caps.length > PMM_WIRE_MAX_CAPS ||
      caps.length != size - sizeof(PmmWireCaps)) {
    *why = "caps length does not match the message (at most 16384 bytes)";
    return NULL;
  }
  const gchar* text = (const gchar*)msg + sizeof(PmmWireCaps);
  if (text[caps.length - 1] != '\0' || strlen(text) != caps.length - 1) {
    *why = "caps text is not one NUL-terminated string";
    return NULL;
  }
  return text;
}

gboolean pmm_wire_check_frame(const PmmWireFrame* f, guint64 block_size,
                              const GstVideoInfo* caps_info, gchar** why) {
  if (f->size == 0 || f->offset > block_size || f->size > block_size - f->offset) {
    *why = g_strdup_printf("payload of %" G_GUINT64_FORMAT " bytes at %" G_GUINT64_FORMAT
                           " does not lie inside its block of %" G_GUINT64_FORMAT " bytes",
                           f->size, f->offset, block_size);
    return FALSE;
  }
  if (!f->has_video_meta) {
    /* Without meta, downstream reads the caps' default layout. */
    if (caps_info != NULL && f->size < GST_VIDEO_INFO_SIZE(caps_info)) {
      *why = g_strdup_printf(
          "payload of %" G_GUINT64_FORMAT " bytes is smaller than a %s frame of %" G_GSIZE_FORMAT,
          f->size, GST_VIDEO_INFO_NAME(caps_info), GST_VIDEO_INFO_SIZE(caps_info));
      return FALSE;
    }
    return TRUE;
  }
  if (f->has_video_meta != 1 || caps_info == NULL) {
    *why = g_strdup("video meta on a stream whose caps are not raw video");
    return FALSE;
  }
  if (f->video_format != (guint32)GST_VIDEO_INFO_FORMAT(caps_info) ||
      f->width != (guint32)GST_VIDEO_INFO_WIDTH(caps_info) ||
      f->height != (guint32)GST_VIDEO_INFO_HEIGHT(caps_info) ||
      f->n_planes != GST_VIDEO_INFO_N_PLANES(caps_info) || f->n_planes == 0 ||
      f->n_planes > PMM_WIRE_MAX_PLANES) {
    *why = g_strdup_printf(
        "video meta %ux%u format %u with %u planes does not match the caps (%dx%d %s)", f->width,
        f->height, f->video_format, f->n_planes, GST_VIDEO_INFO_WIDTH(caps_info),
        GST_VIDEO_INFO_HEIGHT(caps_info), GST_VIDEO_INFO_NAME(caps_info));
    return FALSE;
  }
  const GstVideoFormatInfo* finfo = caps_info->finfo;
  for (guint p = 0; p < f->n_planes; ++p) {
    /* Rows of plane p: the height of a component that lives in it. */
    guint comp = 0;
    for (guint c = 0; c < GST_VIDEO_FORMAT_INFO_N_COMPONENTS(finfo); ++c) {
      if (GST_VIDEO_FORMAT_INFO_PLANE(finfo, c) == p) {
        comp = c;
        break;
      }
    }
    guint64 rows = (guint64)GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT(finfo, comp, (gint)f->height);
    /* A row holds at least its pixels (formats with no whole-byte pixel
     * stride, pstride 0, are only bounded by the payload). */
    guint64 row = (guint64)GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, comp) *
                  (guint64)GST_VIDEO_FORMAT_INFO_SCALE_WIDTH(finfo, comp, (gint)f->width);
    if (f->stride[p] <= 0 || (guint64)f->stride[p] < row || f->plane_offset[p] > f->size ||
        rows * (guint64)f->stride[p] > f->size - f->plane_offset[p]) {
      *why =
          g_strdup_printf("plane %u (offset %" G_GUINT64_FORMAT ", stride %d, %" G_GUINT64_FORMAT
                          " rows) does not lie inside the payload of %" G_GUINT64_FORMAT " bytes",
                          p, f->plane_offset[p], f->stride[p], rows, f->size);
      return FALSE;
    }
  }
  return TRUE;
}
