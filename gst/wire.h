/* The messages between a pmmsink and its pmmsrc consumers.
 *
 * One SOCK_SEQPACKET connection per consumer, on the sink's `socket-path`.
 * Every message starts with a PmmWireHeader; each kind has a fixed layout
 * (CAPS carries its text after the fixed part). Both ends run on one
 * machine, so fields are in host order.
 *
 *   sink -> src  CAPS     the stream's caps (sent on connect and on change)
 *   sink -> src  FRAME    one buffer: an export token for its block, where
 *                         the payload lies in the block, timestamps, video meta
 *   sink -> src  EOS      the stream ended
 *   src  -> sink RELEASE  the consumer is done with FRAME `seq` (its last
 *                         GstBuffer reference went, or the import failed)
 *
 * The peer is another local process and is not trusted: pmm_wire_check_*
 * validate a received message completely (size, kind, every offset against
 * the block it names) and say what was wrong. Functions here are pure and
 * may be called from any thread.
 */
#ifndef PMM_GST_WIRE_H_
#define PMM_GST_WIRE_H_

#include <gst/gst.h>
#include <gst/video/video.h>
#include <pmm/pmm.h>

G_BEGIN_DECLS

#define PMM_WIRE_MAGIC 0x31736d70u /* "pms1" */
#define PMM_WIRE_MAX_CAPS 16384u   /* caps text, NUL included */
#define PMM_WIRE_MAX_PLANES 4u

typedef enum {
  PMM_WIRE_CAPS = 1,
  PMM_WIRE_FRAME = 2,
  PMM_WIRE_EOS = 3,
  PMM_WIRE_RELEASE = 4,
} PmmWireKind;

typedef struct {
  guint32 magic;
  guint32 kind; /* PmmWireKind */
} PmmWireHeader;

typedef struct {
  PmmWireHeader header;
  guint32 length; /* bytes of text that follow, NUL included */
  guint32 reserved;
  /* char text[length]; */
} PmmWireCaps;

typedef struct {
  PmmWireHeader header;
  guint64 seq;     /* the sink's number for this frame, echoed in RELEASE */
  pmm_token token; /* export of the block; one import per consumer */
  guint64 offset;  /* payload: `size` bytes from `offset` in the block */
  guint64 size;
  guint64 pts, dts, duration; /* GST_CLOCK_TIME_NONE when unset */
  guint64 buf_offset, buf_offset_end;
  guint32 buffer_flags;
  guint32 has_video_meta; /* 0 or 1: the fields below are meaningful */
  guint32 video_format;   /* GstVideoFormat */
  guint32 video_flags;    /* GstVideoFrameFlags */
  guint32 width, height;
  guint32 n_planes;
  gint32 stride[PMM_WIRE_MAX_PLANES];
  guint64 plane_offset[PMM_WIRE_MAX_PLANES]; /* from the payload's start */
} PmmWireFrame;

typedef struct {
  PmmWireHeader header;
  guint64 seq;
  guint32 imported; /* 1: the consumer imported the token; 0: it could not */
  guint32 reserved;
} PmmWireRelease;

/* Sends one message without blocking and without SIGPIPE. FALSE when it
 * could not be sent whole (errno says why: EAGAIN when the peer's queue is
 * full, EPIPE/ECONNRESET when it has gone). */
gboolean pmm_wire_send(int fd, const void* msg, gsize size);
/* Sends CAPS with `caps_text`. */
gboolean pmm_wire_send_caps(int fd, const gchar* caps_text);

/* The kind of a received message of `size` bytes, or 0 when it is not one
 * of ours (bad magic, unknown kind, wrong size); `why` then says what. */
PmmWireKind pmm_wire_kind(const void* msg, gsize size, const gchar** why);
/* The caps text of a CAPS message whose kind was checked; NULL (and `why`)
 * when the length is out of range or the text is not NUL-terminated. */
const gchar* pmm_wire_caps_text(const void* msg, gsize size, const gchar** why);
/* Checks a FRAME against the block it names (imported: `block_size` is its
 * real size) and, when the frame carries video meta, against `caps_info`
 * (NULL when the caps are not raw video): payload inside the block, format
 * and size as the caps say, every plane inside the payload. */
gboolean pmm_wire_check_frame(const PmmWireFrame* f, guint64 block_size,
                              const GstVideoInfo* caps_info, gchar** why);

G_END_DECLS

#endif /* PMM_GST_WIRE_H_ */
