/* pmmsrc (pmm_src.h): the element.
 *
 * The connection to the producer is a PmmLink, reference-counted: the
 * element holds one reference while connected and every imported memory
 * holds one (in its qdata) to send its RELEASE on the same connection when
 * it is freed — possibly after the element reconnected or stopped, so the
 * producer always hears about the frames it lent on the connection it lent
 * them on. The socket is closed when the last reference goes, which tells
 * the producer that this consumer holds nothing any more.
 */
#include "pmm_src.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gst/video/video.h>

#include "pmm_allocator.h"
#include "wire.h"

GST_DEBUG_CATEGORY_STATIC(pmm_src_debug);
#define GST_CAT_DEFAULT pmm_src_debug

#define RECONNECT_INTERVAL_MS 100
#define MAX_MESSAGE (sizeof(PmmWireCaps) + PMM_WIRE_MAX_CAPS)

typedef struct {
  gint refs;
  int fd;
} PmmLink;

static void link_unref(PmmLink* link) {
  if (link && g_atomic_int_dec_and_test(&link->refs)) {
    close(link->fd);
    g_free(link);
  }
}

typedef struct {
  PmmLink* link;
  guint64 seq;
} Release;

static void send_release(PmmLink* link, guint64 seq, gboolean imported) {
  PmmWireRelease msg = {
      .header = {PMM_WIRE_MAGIC, PMM_WIRE_RELEASE}, .seq = seq, .imported = imported ? 1 : 0};
  /* The socket is blocking with a send timeout (connect_link): a producer
   * that stops reading holds this thread for at most that long. */
  if (send(link->fd, &msg, sizeof msg, MSG_NOSIGNAL) != (ssize_t)sizeof msg)
    GST_DEBUG("release of frame %" G_GUINT64_FORMAT " not sent: %s", seq, g_strerror(errno));
}

static void release_notify(gpointer data) {
  Release* r = data;
  send_release(r->link, r->seq, TRUE);
  link_unref(r->link);
  g_free(r);
}

static GQuark release_quark(void) {
  static gsize q;
  if (g_once_init_enter(&q)) g_once_init_leave(&q, g_quark_from_static_string("GstPmmSrcRelease"));
  return (GQuark)q;
}

struct _GstPmmSrc {
  GstPushSrc parent;
  /* properties (object lock) */
  gchar* socket_path;
  gchar* pmm_socket;
  gchar* device;
  gboolean reconnect;
  /* between start and stop (streaming thread) */
  GstAllocator* allocator;
  PmmLink* link;
  int wake_fd;
  gint flushing;
  GstCaps* caps;
  gboolean is_video;
  GstVideoInfo info;
  guint8* msg;
};

enum { PROP_0, PROP_SOCKET_PATH, PROP_PMM_SOCKET, PROP_DEVICE, PROP_RECONNECT, PROP_IS_LIVE };

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

G_DEFINE_TYPE(GstPmmSrc, gst_pmm_src, GST_TYPE_PUSH_SRC)

/* Connects to the pmmsink; FALSE (and `why`) when nothing accepts there. */
static gboolean connect_link(GstPmmSrc* self, gchar** why) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  GST_OBJECT_LOCK(self);
  gchar* path = g_strdup(self->socket_path);
  GST_OBJECT_UNLOCK(self);
  if (path == NULL || *path == '\0' || strlen(path) >= sizeof addr.sun_path) {
    *why = g_strdup_printf("socket-path must be set to a path of 1 to %zu bytes",
                           sizeof addr.sun_path - 1);
    g_free(path);
    return FALSE;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) < 0) {
    *why = g_strdup_printf("cannot connect to a pmmsink at %s: %s", path, g_strerror(errno));
    if (fd >= 0) close(fd);
    g_free(path);
    return FALSE;
  }
  struct timeval timeout = {.tv_sec = 1};
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  PmmLink* link = g_new0(PmmLink, 1);
  link->refs = 1;
  link->fd = fd;
  self->link = link;
  GST_INFO_OBJECT(self, "connected to the pmmsink at %s", path);
  g_free(path);
  return TRUE;
}

static void drop_link(GstPmmSrc* self) {
  link_unref(self->link);
  self->link = NULL;
}

/* Waits until `fd` is readable (or `timeout_ms` passed, -1: no bound):
 * FALSE when the element is flushing. */
static gboolean wait_readable(GstPmmSrc* self, int fd, int timeout_ms) {
  struct pollfd pfd[2] = {{.fd = self->wake_fd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
  while (poll(pfd, fd >= 0 ? 2 : 1, timeout_ms) < 0 && errno == EINTR) {
  }
  return !g_atomic_int_get(&self->flushing);
}

static gboolean src_start(GstBaseSrc* bsrc) {
  GstPmmSrc* self = GST_PMM_SRC(bsrc);
  GError* error = NULL;
  GST_OBJECT_LOCK(self);
  self->allocator = gst_pmm_allocator_new(self->pmm_socket, self->device, NULL, &error);
  gboolean reconnect = self->reconnect;
  GST_OBJECT_UNLOCK(self);
  if (self->allocator == NULL) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ_WRITE, ("%s", error->message), (NULL));
    g_clear_error(&error);
    return FALSE;
  }
  self->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  self->msg = g_malloc(MAX_MESSAGE);
  gchar* why = NULL;
  if (!connect_link(self, &why) && !reconnect) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", why),
                      ("set reconnect=true to wait for the producer"));
    g_free(why);
    return FALSE;
  }
  g_free(why);
  return TRUE;
}

static gboolean src_stop(GstBaseSrc* bsrc) {
  GstPmmSrc* self = GST_PMM_SRC(bsrc);
  drop_link(self);
  gst_clear_object(&self->allocator);
  gst_clear_caps(&self->caps);
  if (self->wake_fd >= 0) close(self->wake_fd);
  self->wake_fd = -1;
  g_clear_pointer(&self->msg, g_free);
  return TRUE;
}

static gboolean src_unlock(GstBaseSrc* bsrc) {
  GstPmmSrc* self = GST_PMM_SRC(bsrc);
  g_atomic_int_set(&self->flushing, 1);
  guint64 one = 1;
  if (self->wake_fd >= 0 && write(self->wake_fd, &one, sizeof one) < 0)
    GST_DEBUG_OBJECT(self, "wake pending");
  return TRUE;
}

static gboolean src_unlock_stop(GstBaseSrc* bsrc) {
  GstPmmSrc* self = GST_PMM_SRC(bsrc);
  g_atomic_int_set(&self->flushing, 0);
  guint64 v;
  while (self->wake_fd >= 0 && read(self->wake_fd, &v, sizeof v) > 0) {
  }
  return TRUE;
}

static gboolean take_caps(GstPmmSrc* self, const gchar* text) {
  GstCaps* caps = gst_caps_from_string(text);
  if (caps == NULL || !gst_caps_is_fixed(caps)) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT,
                      ("the producer sent caps that are not fixed caps: %s", text), (NULL));
    gst_clear_caps(&caps);
    return FALSE;
  }
  if (self->caps && gst_caps_is_equal(caps, self->caps)) {
    gst_caps_unref(caps);
    return TRUE;
  }
  self->is_video = gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-raw") &&
                   gst_video_info_from_caps(&self->info, caps);
  gst_caps_replace(&self->caps, caps);
  gboolean ok = gst_base_src_set_caps(GST_BASE_SRC(self), caps);
  gst_caps_unref(caps);
  if (!ok)
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("downstream refuses the producer's caps %s", text),
                      (NULL));
  return ok;
}

/* The buffer for FRAME `f`, or NULL when it was skipped (import failed or
 * the frame does not fit its block; the producer has been told). */
static GstBuffer* import_frame(GstPmmSrc* self, const PmmWireFrame* f) {
  GError* error = NULL;
  GstMemory* mem = gst_pmm_allocator_import(self->allocator, &f->token, &error);
  if (mem == NULL) {
    GST_ELEMENT_WARNING(self, RESOURCE, READ,
                        ("frame %" G_GUINT64_FORMAT " skipped: %s", f->seq, error->message),
                        (NULL));
    g_clear_error(&error);
    send_release(self->link, f->seq, FALSE);
    return NULL;
  }
  gchar* why = NULL;
  if (!pmm_wire_check_frame(f, pmm_block_size(gst_pmm_memory_get_block(mem)),
                            self->is_video ? &self->info : NULL, &why)) {
    GST_ELEMENT_WARNING(self, STREAM, DECODE,
                        ("frame %" G_GUINT64_FORMAT " skipped: %s", f->seq, why), (NULL));
    g_free(why);
    gst_memory_unref(mem);
    send_release(self->link, f->seq, TRUE);
    return NULL;
  }
  mem->offset += (gsize)f->offset;
  mem->size = (gsize)f->size;
  Release* r = g_new(Release, 1);
  r->link = self->link;
  g_atomic_int_inc(&self->link->refs);
  r->seq = f->seq;
  gst_mini_object_set_qdata(GST_MINI_OBJECT(mem), release_quark(), r, release_notify);

  GstBuffer* buf = gst_buffer_new();
  gst_buffer_append_memory(buf, mem);
  GST_BUFFER_PTS(buf) = f->pts;
  GST_BUFFER_DTS(buf) = f->dts;
  GST_BUFFER_DURATION(buf) = f->duration;
  GST_BUFFER_OFFSET(buf) = f->buf_offset;
  GST_BUFFER_OFFSET_END(buf) = f->buf_offset_end;
  GST_BUFFER_FLAGS(buf) = f->buffer_flags & (GST_BUFFER_FLAG_LIVE | GST_BUFFER_FLAG_DISCONT |
                                             GST_BUFFER_FLAG_DELTA_UNIT | GST_BUFFER_FLAG_HEADER |
                                             GST_BUFFER_FLAG_GAP | GST_BUFFER_FLAG_DROPPABLE |
                                             GST_BUFFER_FLAG_MARKER | GST_BUFFER_FLAG_CORRUPTED);
  if (f->has_video_meta) {
    gsize offsets[GST_VIDEO_MAX_PLANES] = {0};
    gint strides[GST_VIDEO_MAX_PLANES] = {0};
    for (guint p = 0; p < f->n_planes; ++p) {
      offsets[p] = (gsize)f->plane_offset[p];
      strides[p] = f->stride[p];
    }
    gst_buffer_add_video_meta_full(buf, (GstVideoFrameFlags)f->video_flags,
                                   (GstVideoFormat)f->video_format, f->width, f->height,
                                   f->n_planes, offsets, strides);
  }
  return buf;
}

/* The producer ended the stream or went away. */
static GstFlowReturn producer_gone(GstPmmSrc* self, const gchar* how) {
  drop_link(self);
  GST_OBJECT_LOCK(self);
  gboolean reconnect = self->reconnect;
  GST_OBJECT_UNLOCK(self);
  GST_INFO_OBJECT(self, "producer %s; %s", how,
                  reconnect ? "waiting for it to come back" : "end of stream");
  return reconnect ? GST_FLOW_OK : GST_FLOW_EOS;
}

static GstFlowReturn src_create(GstPushSrc* psrc, GstBuffer** out) {
  GstPmmSrc* self = GST_PMM_SRC(psrc);
  for (;;) {
    if (self->link == NULL) {
      gchar* why = NULL;
      if (!connect_link(self, &why)) {
        GST_OBJECT_LOCK(self);
        gboolean reconnect = self->reconnect;
        GST_OBJECT_UNLOCK(self);
        if (!reconnect) {
          GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", why), (NULL));
          g_free(why);
          return GST_FLOW_ERROR;
        }
        g_free(why);
        if (!wait_readable(self, -1, RECONNECT_INTERVAL_MS)) return GST_FLOW_FLUSHING;
        continue;
      }
    }
    if (!wait_readable(self, self->link->fd, -1)) return GST_FLOW_FLUSHING;
    ssize_t n = recv(self->link->fd, self->msg, MAX_MESSAGE, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    GstFlowReturn ret;
    if (n <= 0) {
      ret = producer_gone(self, "went away");
      if (ret != GST_FLOW_OK) return ret;
      continue;
    }
    const gchar* why = NULL;
    switch (pmm_wire_kind(self->msg, (gsize)n > MAX_MESSAGE ? 0 : (gsize)n, &why)) {
      case PMM_WIRE_CAPS: {
        const gchar* text = pmm_wire_caps_text(self->msg, (gsize)n, &why);
        if (text == NULL) break;
        if (!take_caps(self, text)) return GST_FLOW_NOT_NEGOTIATED;
        continue;
      }
      case PMM_WIRE_EOS:
        ret = producer_gone(self, "ended the stream");
        if (ret != GST_FLOW_OK) return ret;
        continue;
      case PMM_WIRE_FRAME: {
        if (self->caps == NULL) {
          why = "a frame before any caps";
          break;
        }
        PmmWireFrame f;
        memcpy(&f, self->msg, sizeof f);
        GstBuffer* buf = import_frame(self, &f);
        if (buf == NULL) continue;
        *out = buf;
        return GST_FLOW_OK;
      }
      default:
        if (why == NULL) why = "a message a pmmsink does not send (RELEASE)";
        break;
    }
    GST_ELEMENT_ERROR(self, STREAM, DECODE, ("the pmmsink sent a bad message: %s", why), (NULL));
    drop_link(self);
    return GST_FLOW_ERROR;
  }
}

static void set_string(GstPmmSrc* self, gchar** field, const GValue* value) {
  GST_OBJECT_LOCK(self);
  g_free(*field);
  *field = g_value_dup_string(value);
  GST_OBJECT_UNLOCK(self);
}

static void src_set_property(GObject* object, guint id, const GValue* value, GParamSpec* pspec) {
  GstPmmSrc* self = GST_PMM_SRC(object);
  switch (id) {
    case PROP_SOCKET_PATH:
      set_string(self, &self->socket_path, value);
      break;
    case PROP_PMM_SOCKET:
      set_string(self, &self->pmm_socket, value);
      break;
    case PROP_DEVICE:
      set_string(self, &self->device, value);
      break;
    case PROP_RECONNECT:
      GST_OBJECT_LOCK(self);
      self->reconnect = g_value_get_boolean(value);
      GST_OBJECT_UNLOCK(self);
      break;
    case PROP_IS_LIVE:
      gst_base_src_set_live(GST_BASE_SRC(self), g_value_get_boolean(value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
}

static void src_get_property(GObject* object, guint id, GValue* value, GParamSpec* pspec) {
  GstPmmSrc* self = GST_PMM_SRC(object);
  if (id == PROP_IS_LIVE) {
    g_value_set_boolean(value, gst_base_src_is_live(GST_BASE_SRC(self)));
    return;
  }
  GST_OBJECT_LOCK(self);
  switch (id) {
    case PROP_SOCKET_PATH:
      g_value_set_string(value, self->socket_path);
      break;
    case PROP_PMM_SOCKET:
      g_value_set_string(value, self->pmm_socket);
      break;
    case PROP_DEVICE:
      g_value_set_string(value, self->device);
      break;
    case PROP_RECONNECT:
      g_value_set_boolean(value, self->reconnect);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
  GST_OBJECT_UNLOCK(self);
}

static void src_finalize(GObject* object) {
  GstPmmSrc* self = GST_PMM_SRC(object);
  g_free(self->socket_path);
  g_free(self->pmm_socket);
  g_free(self->device);
  G_OBJECT_CLASS(gst_pmm_src_parent_class)->finalize(object);
}

static void gst_pmm_src_class_init(GstPmmSrcClass* klass) {
  GObjectClass* gobject = G_OBJECT_CLASS(klass);
  GstElementClass* element = GST_ELEMENT_CLASS(klass);
  GstBaseSrcClass* base = GST_BASE_SRC_CLASS(klass);
  gobject->set_property = src_set_property;
  gobject->get_property = src_get_property;
  gobject->finalize = src_finalize;
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
  g_object_class_install_property(
      gobject, PROP_SOCKET_PATH,
      g_param_spec_string("socket-path", "Socket path", "The pmmsink's socket-path (required)",
                          NULL, rw));
  g_object_class_install_property(
      gobject, PROP_PMM_SOCKET,
      g_param_spec_string("pmm-socket", "pmmd socket",
                          "pmmd's socket (NULL: $PMM_SOCKET, else $XDG_RUNTIME_DIR/pmm/pmm.sock, "
                          "else /run/pmm/pmm.sock)",
                          NULL, rw));
  g_object_class_install_property(
      gobject, PROP_DEVICE,
      g_param_spec_string("device", "pmm device",
                          "Device name this element claims at pmmd (NULL: \"default\")", NULL, rw));
  g_object_class_install_property(
      gobject, PROP_RECONNECT,
      g_param_spec_boolean(
          "reconnect", "Reconnect",
          "When the producer ends the stream, exits or crashes (and before it first comes), wait "
          "for a pmmsink at socket-path instead of ending the stream (EOS)",
          FALSE, rw));
  g_object_class_install_property(
      gobject, PROP_IS_LIVE,
      g_param_spec_boolean("is-live", "Is live", "Act as a live source", FALSE, rw));
  gst_element_class_add_static_pad_template(element, &src_template);
  gst_element_class_set_static_metadata(element, "pmm source", "Source",
                                        "Receives buffers a pmmsink in another process publishes, "
                                        "as imported pmm blocks, without copying",
                                        "pmm project");
  base->start = src_start;
  base->stop = src_stop;
  base->unlock = src_unlock;
  base->unlock_stop = src_unlock_stop;
  GST_PUSH_SRC_CLASS(klass)->create = src_create;
  GST_DEBUG_CATEGORY_INIT(pmm_src_debug, "pmmsrc", 0, "pmm source");
}

static void gst_pmm_src_init(GstPmmSrc* self) {
  self->wake_fd = -1;
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}
