/* pmmsink (pmm_sink.h): the element. Consumers and the frame ledger are
 * PmmPublisher's (publisher.c); this file negotiates (caps, allocation
 * query), finds the block behind each buffer (or copies into one) and
 * describes the frame. */
#include "pmm_sink.h"

#include <gst/video/video.h>

#include "pmm_allocator.h"
#include "pmm_buffer_pool.h"
#include "publisher.h"

GST_DEBUG_CATEGORY_STATIC(pmm_sink_debug);
#define GST_CAT_DEFAULT pmm_sink_debug

#define DEFAULT_EXPORT_LIFETIME 5000u
#define DEFAULT_MAX_BUFFERS 8u

struct _GstPmmSink {
  GstBaseSink parent;
  /* properties (object lock) */
  gchar* socket_path;
  gchar* pmm_socket;
  gchar* device;
  gchar* pools;
  guint export_lifetime;
  gboolean wait_for_connection;
  guint max_buffers;
  guint64 copies;
  /* between start and stop */
  GstAllocator* allocator;
  PmmPublisher* publisher;
  /* Copies of buffers that are not a pmm block come from this pool (a
   * GstPmmBufferPool, so a pmm_bufpool) of copy_size-byte buffers, made at
   * the first copy and again when the size changes; the pointer is read
   * under the object lock by unlock, which flushes it. */
  GstBufferPool* copy_pool;
  gsize copy_size;
  gboolean is_video;
  GstVideoInfo info;
};

enum {
  PROP_0,
  PROP_SOCKET_PATH,
  PROP_PMM_SOCKET,
  PROP_DEVICE,
  PROP_POOLS,
  PROP_EXPORT_LIFETIME,
  PROP_WAIT_FOR_CONNECTION,
  PROP_MAX_BUFFERS,
  PROP_COPIES,
  PROP_CONSUMERS,
};

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

G_DEFINE_TYPE(GstPmmSink, gst_pmm_sink, GST_TYPE_BASE_SINK)

static gboolean sink_start(GstBaseSink* bsink) {
  GstPmmSink* self = GST_PMM_SINK(bsink);
  GError* error = NULL;
  GST_OBJECT_LOCK(self);
  gchar* path = g_strdup(self->socket_path);
  self->allocator = gst_pmm_allocator_new(self->pmm_socket, self->device, self->pools, &error);
  GST_OBJECT_UNLOCK(self);
  if (self->allocator) self->publisher = pmm_publisher_new(path, &error);
  g_free(path);
  if (self->publisher == NULL) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ_WRITE, ("%s", error->message), (NULL));
    g_clear_error(&error);
    gst_clear_object(&self->allocator);
    return FALSE;
  }
  return TRUE;
}

static gboolean sink_stop(GstBaseSink* bsink) {
  GstPmmSink* self = GST_PMM_SINK(bsink);
  if (self->publisher) pmm_publisher_free(self->publisher);
  self->publisher = NULL;
  GST_OBJECT_LOCK(self);
  GstBufferPool* copy_pool = g_steal_pointer(&self->copy_pool);
  GST_OBJECT_UNLOCK(self);
  if (copy_pool != NULL) {
    gst_buffer_pool_set_active(copy_pool, FALSE);
    gst_object_unref(copy_pool);
  }
  gst_clear_object(&self->allocator);
  return TRUE;
}

static gboolean sink_set_caps(GstBaseSink* bsink, GstCaps* caps) {
  GstPmmSink* self = GST_PMM_SINK(bsink);
  self->is_video = gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-raw") &&
                   gst_video_info_from_caps(&self->info, caps);
  gchar* text = gst_caps_to_string(caps);
  if (strlen(text) >= PMM_WIRE_MAX_CAPS) {
    GST_ELEMENT_ERROR(
        self, STREAM, FORMAT,
        ("caps of %zu bytes: at most %u can be sent", strlen(text), PMM_WIRE_MAX_CAPS - 1), (NULL));
    g_free(text);
    return FALSE;
  }
  pmm_publisher_set_caps(self->publisher, text);
  g_free(text);
  return TRUE;
}

static gboolean sink_propose_allocation(GstBaseSink* bsink, GstQuery* query) {
  GstPmmSink* self = GST_PMM_SINK(bsink);
  GstCaps* caps = NULL;
  gboolean need_pool = FALSE;
  gst_query_parse_allocation(query, &caps, &need_pool);
  if (caps == NULL || self->allocator == NULL) return FALSE;
  GstVideoInfo info;
  gboolean video = gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-raw") &&
                   gst_video_info_from_caps(&info, caps);
  GST_OBJECT_LOCK(self);
  guint max = self->max_buffers;
  GST_OBJECT_UNLOCK(self);
  if (need_pool && video) {
    GstBufferPool* pool = gst_pmm_buffer_pool_new(self->allocator);
    GstStructure* config = gst_buffer_pool_get_config(pool);
    gst_buffer_pool_config_set_params(config, caps, (guint)info.size, 2, max);
    gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
    gst_buffer_pool_config_set_allocator(config, self->allocator, NULL);
    if (gst_buffer_pool_set_config(pool, config))
      gst_query_add_allocation_pool(query, pool, (guint)info.size, 2, max);
    gst_object_unref(pool);
  }
  gst_query_add_allocation_param(query, self->allocator, NULL);
  gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
  return TRUE;
}

/* The block `buf` lies in when it is one pmm memory inside one block, with
 * the payload's offset in that block; NULL otherwise. */
static pmm_block* block_of(GstBuffer* buf, guint64* offset) {
  if (gst_buffer_n_memory(buf) != 1) return NULL;
  GstMemory* mem = gst_buffer_peek_memory(buf, 0);
  pmm_block* block = gst_pmm_memory_get_block(mem);
  if (block == NULL) return NULL;
  guint64 start = pmm_block_offset(block);
  if (mem->offset < start || mem->offset - start > pmm_block_size(block) ||
      mem->size > pmm_block_size(block) - (mem->offset - start))
    return NULL;
  *offset = mem->offset - start;
  return block;
}

/* The copy pool for buffers of `size` bytes, made (and the old one let
 * go: buffers still out keep it alive) when there is none of that size.
 * NULL with an element error when it cannot be made. */
static GstBufferPool* copy_pool_for(GstPmmSink* self, gsize size) {
  GST_OBJECT_LOCK(self);
  GstBufferPool* pool = self->copy_pool ? gst_object_ref(self->copy_pool) : NULL;
  guint max = self->max_buffers;
  GST_OBJECT_UNLOCK(self);
  if (pool != NULL && self->copy_size == size) return pool;
  if (pool != NULL) gst_object_unref(pool);
  GstCaps* caps = gst_pad_get_current_caps(GST_BASE_SINK_PAD(self));
  if (caps == NULL) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("a buffer to copy before any caps"), (NULL));
    return NULL;
  }
  pool = gst_pmm_buffer_pool_new(self->allocator);
  GstStructure* config = gst_buffer_pool_get_config(pool);
  /* No VIDEO_META option: a copy keeps its source's layout and meta. */
  gst_buffer_pool_config_set_params(config, caps, (guint)size, 1, max);
  gst_caps_unref(caps);
  if (!gst_buffer_pool_set_config(pool, config) || !gst_buffer_pool_set_active(pool, TRUE)) {
    GST_ELEMENT_ERROR(
        self, RESOURCE, NO_SPACE_LEFT,
        ("cannot make a pool of %u buffers of %" G_GSIZE_FORMAT " bytes to copy into", max, size),
        (NULL));
    gst_object_unref(pool);
    return NULL;
  }
  GST_OBJECT_LOCK(self);
  GstBufferPool* old = self->copy_pool;
  self->copy_pool = gst_object_ref(pool);
  self->copy_size = size;
  GST_OBJECT_UNLOCK(self);
  if (old != NULL) {
    gst_buffer_pool_set_active(old, FALSE);
    gst_object_unref(old);
  }
  return pool;
}

/* `buf` copied once into a buffer of the copy pool, with its timestamps
 * and metas. Waits, as upstream would on the offered pool, while every
 * copy is still held by consumers; GST_FLOW_FLUSHING when unlocked. */
static GstFlowReturn copy_into_block(GstPmmSink* self, GstBuffer* buf, GstBuffer** result) {
  gsize size = gst_buffer_get_size(buf);
  GstBufferPool* pool = copy_pool_for(self, size ? size : 1);
  if (pool == NULL) return GST_FLOW_ERROR;
  GstBuffer* out = NULL;
  GstFlowReturn ret = gst_buffer_pool_acquire_buffer(pool, &out, NULL);
  gst_object_unref(pool);
  if (ret != GST_FLOW_OK) {
    if (ret != GST_FLOW_FLUSHING)
      GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT,
                        ("no buffer to copy into: %s", gst_flow_get_name(ret)), (NULL));
    return ret;
  }
  gst_buffer_peek_memory(out, 0)->size = size; /* the pool's size may be larger */
  gst_buffer_copy_into(out, buf, GST_BUFFER_COPY_METADATA, 0, (gsize)-1);
  /* GstVideoMeta is a memory meta, which COPY_METADATA leaves out; the
   * bytes are copied as they lie, so their layout is the source's. */
  const GstVideoMeta* meta = gst_buffer_get_video_meta(buf);
  if (meta != NULL && gst_buffer_get_video_meta(out) == NULL)
    gst_buffer_add_video_meta_full(out, meta->flags, meta->format, meta->width, meta->height,
                                   meta->n_planes, (gsize*)meta->offset, (gint*)meta->stride);
  GstMapInfo map;
  if (gst_buffer_map(out, &map, GST_MAP_WRITE)) {
    gst_buffer_extract(buf, 0, map.data, size);
    gst_buffer_unmap(out, &map);
  }
  GST_OBJECT_LOCK(self);
  self->copies++;
  GST_OBJECT_UNLOCK(self);
  *result = out;
  return GST_FLOW_OK;
}

static void describe(GstPmmSink* self, GstBuffer* buf, guint64 offset, PmmWireFrame* f) {
  memset(f, 0, sizeof *f);
  f->offset = offset;
  f->size = gst_buffer_get_size(buf);
  f->pts = GST_BUFFER_PTS(buf);
  f->dts = GST_BUFFER_DTS(buf);
  f->duration = GST_BUFFER_DURATION(buf);
  f->buf_offset = GST_BUFFER_OFFSET(buf);
  f->buf_offset_end = GST_BUFFER_OFFSET_END(buf);
  f->buffer_flags = GST_BUFFER_FLAGS(buf);
  if (!self->is_video) return;
  const GstVideoMeta* meta = gst_buffer_get_video_meta(buf);
  const GstVideoInfo* info = &self->info;
  f->has_video_meta = 1;
  f->video_format = (guint32)GST_VIDEO_INFO_FORMAT(info);
  f->width = (guint32)GST_VIDEO_INFO_WIDTH(info);
  f->height = (guint32)GST_VIDEO_INFO_HEIGHT(info);
  f->n_planes = GST_VIDEO_INFO_N_PLANES(info);
  f->video_flags = meta ? (guint32)meta->flags : 0;
  for (guint p = 0; p < f->n_planes && p < PMM_WIRE_MAX_PLANES; ++p) {
    f->plane_offset[p] = meta ? meta->offset[p] : info->offset[p];
    f->stride[p] = meta ? meta->stride[p] : info->stride[p];
  }
}

static GstFlowReturn sink_render(GstBaseSink* bsink, GstBuffer* buf) {
  GstPmmSink* self = GST_PMM_SINK(bsink);
  GST_OBJECT_LOCK(self);
  gboolean wait = self->wait_for_connection;
  guint lifetime = self->export_lifetime;
  GST_OBJECT_UNLOCK(self);
  if (wait && !pmm_publisher_wait_consumer(self->publisher)) return GST_FLOW_FLUSHING;
  if (!wait && pmm_publisher_consumers(self->publisher) == 0) return GST_FLOW_OK;

  guint64 offset = 0;
  GstBuffer* held;
  pmm_block* block = block_of(buf, &offset);
  if (block != NULL) {
    held = gst_buffer_ref(buf);
  } else {
    GST_LOG_OBJECT(self, "copying a buffer of %u memories, the first %s", gst_buffer_n_memory(buf),
                   gst_buffer_peek_memory(buf, 0)->allocator
                       ? gst_buffer_peek_memory(buf, 0)->allocator->mem_type
                       : "without allocator");
    GstFlowReturn ret = copy_into_block(self, buf, &held);
    if (ret != GST_FLOW_OK) return ret;
    block = block_of(held, &offset);
  }
  PmmWireFrame frame;
  describe(self, held, offset, &frame);
  GstMemory* mem = gst_buffer_peek_memory(held, 0);
  pmm_conn* conn = gst_pmm_allocator_get_connection(mem->allocator);
  GError* error = NULL;
  if (!pmm_publisher_publish(self->publisher, held, block, conn, &frame, lifetime, &error)) {
    GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("%s", error->message), (NULL));
    g_clear_error(&error);
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

static gboolean sink_event(GstBaseSink* bsink, GstEvent* event) {
  GstPmmSink* self = GST_PMM_SINK(bsink);
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS && self->publisher)
    pmm_publisher_send_eos(self->publisher);
  return GST_BASE_SINK_CLASS(gst_pmm_sink_parent_class)->event(bsink, event);
}

static gboolean sink_unlock(GstBaseSink* bsink) {
  GstPmmSink* self = GST_PMM_SINK(bsink);
  if (self->publisher) pmm_publisher_set_flushing(self->publisher, TRUE);
  GST_OBJECT_LOCK(self);
  GstBufferPool* copy_pool = self->copy_pool ? gst_object_ref(self->copy_pool) : NULL;
  GST_OBJECT_UNLOCK(self);
  if (copy_pool != NULL) {
    gst_buffer_pool_set_flushing(copy_pool, TRUE);
    gst_object_unref(copy_pool);
  }
  return TRUE;
}

static gboolean sink_unlock_stop(GstBaseSink* bsink) {
  GstPmmSink* self = GST_PMM_SINK(bsink);
  if (self->publisher) pmm_publisher_set_flushing(self->publisher, FALSE);
  GST_OBJECT_LOCK(self);
  GstBufferPool* copy_pool = self->copy_pool ? gst_object_ref(self->copy_pool) : NULL;
  GST_OBJECT_UNLOCK(self);
  if (copy_pool != NULL) {
    gst_buffer_pool_set_flushing(copy_pool, FALSE);
    gst_object_unref(copy_pool);
  }
  return TRUE;
}

static void set_string(GstPmmSink* self, gchar** field, const GValue* value) {
  GST_OBJECT_LOCK(self);
  g_free(*field);
  *field = g_value_dup_string(value);
  GST_OBJECT_UNLOCK(self);
}

static void sink_set_property(GObject* object, guint id, const GValue* value, GParamSpec* pspec) {
  GstPmmSink* self = GST_PMM_SINK(object);
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
    case PROP_POOLS:
      set_string(self, &self->pools, value);
      break;
    case PROP_EXPORT_LIFETIME:
      GST_OBJECT_LOCK(self);
      self->export_lifetime = g_value_get_uint(value);
      GST_OBJECT_UNLOCK(self);
      break;
    case PROP_WAIT_FOR_CONNECTION:
      GST_OBJECT_LOCK(self);
      self->wait_for_connection = g_value_get_boolean(value);
      GST_OBJECT_UNLOCK(self);
      break;
    case PROP_MAX_BUFFERS:
      GST_OBJECT_LOCK(self);
      self->max_buffers = g_value_get_uint(value);
      GST_OBJECT_UNLOCK(self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
}

static void sink_get_property(GObject* object, guint id, GValue* value, GParamSpec* pspec) {
  GstPmmSink* self = GST_PMM_SINK(object);
  if (id == PROP_CONSUMERS) {
    /* The publisher has its own lock; taking it under the object lock
     * would order the two locks against the streaming thread's. */
    PmmPublisher* p = self->publisher;
    g_value_set_uint(value, p ? pmm_publisher_consumers(p) : 0);
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
    case PROP_POOLS:
      g_value_set_string(value, self->pools);
      break;
    case PROP_EXPORT_LIFETIME:
      g_value_set_uint(value, self->export_lifetime);
      break;
    case PROP_WAIT_FOR_CONNECTION:
      g_value_set_boolean(value, self->wait_for_connection);
      break;
    case PROP_MAX_BUFFERS:
      g_value_set_uint(value, self->max_buffers);
      break;
    case PROP_COPIES:
      g_value_set_uint64(value, self->copies);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
  GST_OBJECT_UNLOCK(self);
}

static void sink_finalize(GObject* object) {
  GstPmmSink* self = GST_PMM_SINK(object);
  g_free(self->socket_path);
  g_free(self->pmm_socket);
  g_free(self->device);
  g_free(self->pools);
  G_OBJECT_CLASS(gst_pmm_sink_parent_class)->finalize(object);
}

static void gst_pmm_sink_class_init(GstPmmSinkClass* klass) {
  GObjectClass* gobject = G_OBJECT_CLASS(klass);
  GstElementClass* element = GST_ELEMENT_CLASS(klass);
  GstBaseSinkClass* base = GST_BASE_SINK_CLASS(klass);
  gobject->set_property = sink_set_property;
  gobject->get_property = sink_get_property;
  gobject->finalize = sink_finalize;
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
  g_object_class_install_property(
      gobject, PROP_SOCKET_PATH,
      g_param_spec_string("socket-path", "Socket path",
                          "Unix socket pmmsrc consumers connect to (required)", NULL, rw));
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
      gobject, PROP_POOLS,
      g_param_spec_string(
          "pools", "pmm pools",
          "Pools to allocate from, tried in order, e.g. \"dma,general\" (NULL: the device's)", NULL,
          rw));
  g_object_class_install_property(
      gobject, PROP_EXPORT_LIFETIME,
      g_param_spec_uint("export-lifetime", "Export lifetime",
                        "Milliseconds a frame's export waits for its consumers to import it; a "
                        "frame sent before a crash of this process is freed after this",
                        100, 600000, DEFAULT_EXPORT_LIFETIME, rw));
  g_object_class_install_property(
      gobject, PROP_WAIT_FOR_CONNECTION,
      g_param_spec_boolean(
          "wait-for-connection", "Wait for connection",
          "Block the stream while no consumer is connected (else drop its buffers)", TRUE, rw));
  g_object_class_install_property(
      gobject, PROP_MAX_BUFFERS,
      g_param_spec_uint(
          "max-buffers", "Max buffers",
          "Blocks the offered pool holds at most; bounds what slow consumers can hold back", 2, 64,
          DEFAULT_MAX_BUFFERS, rw));
  g_object_class_install_property(
      gobject, PROP_COPIES,
      g_param_spec_uint64("copies", "Copies",
                          "Buffers that were not one pmm block and were copied into one", 0,
                          G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property(
      gobject, PROP_CONSUMERS,
      g_param_spec_uint("consumers", "Consumers", "pmmsrc consumers connected now", 0, G_MAXUINT, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_add_static_pad_template(element, &sink_template);
  gst_element_class_set_static_metadata(
      element, "pmm sink", "Sink",
      "Publishes buffers as pmm blocks to pmmsrc elements in other processes, without copying",
      "pmm project");
  base->start = sink_start;
  base->stop = sink_stop;
  base->set_caps = sink_set_caps;
  base->propose_allocation = sink_propose_allocation;
  base->render = sink_render;
  base->event = sink_event;
  base->unlock = sink_unlock;
  base->unlock_stop = sink_unlock_stop;
  GST_DEBUG_CATEGORY_INIT(pmm_sink_debug, "pmmsink", 0, "pmm sink");
}

static void gst_pmm_sink_init(GstPmmSink* self) {
  self->export_lifetime = DEFAULT_EXPORT_LIFETIME;
  self->wait_for_connection = TRUE;
  self->max_buffers = DEFAULT_MAX_BUFFERS;
  /* The last sample would hold a block (and a pool buffer) for nothing. */
  gst_base_sink_set_last_sample_enabled(GST_BASE_SINK(self), FALSE);
}
