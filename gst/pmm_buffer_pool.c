/* GstPmmBufferPool (pmm_buffer_pool.h): GstBufferPool recycles, this file
 * makes a buffer out of one pmm_bufpool buffer and describes its video
 * layout.
 *
 * Lifetime: a buffer's memory may outlive the GstBufferPool's stop (another
 * buffer can share the memory), so the pmm_bufpool lives in a refcounted
 * PmmRing held by the running pool and by every memory made from it; each
 * memory gives its block back to the ring's bufpool when it is freed, and
 * the last holder destroys the bufpool. The ring also holds the allocator,
 * whose connection must outlive the bufpool. */
#include "pmm_buffer_pool.h"

#include <gst/video/video.h>
#include <string.h>

#include "pmm_allocator.h"

GST_DEBUG_CATEGORY_STATIC(pmm_pool_debug);
#define GST_CAT_DEFAULT pmm_pool_debug

/* A started pool's pmm_bufpool, shared with the memories it made. */
typedef struct {
  gatomicrefcount refs;
  pmm_bufpool* bufpool;
  GstAllocator* allocator; /* keeps the connection open until the bufpool goes */
} PmmRing;

static PmmRing* ring_ref(PmmRing* ring) {
  g_atomic_ref_count_inc(&ring->refs);
  return ring;
}

static void ring_unref(PmmRing* ring) {
  if (!g_atomic_ref_count_dec(&ring->refs)) return;
  pmm_bufpool_destroy(ring->bufpool);
  gst_object_unref(ring->allocator);
  g_free(ring);
}

/* What a memory holds to give its block back when it is freed. */
typedef struct {
  PmmRing* ring;
  pmm_block* block;
} RingBuffer;

static void ring_buffer_release(gpointer data) {
  RingBuffer* rb = data;
  if (pmm_bufpool_release(rb->ring->bufpool, rb->block) != PMM_OK)
    GST_WARNING("pmm_bufpool_release: %s", pmm_last_error());
  ring_unref(rb->ring);
  g_free(rb);
}

/* How long alloc_buffer waits for a block that consumers still read (one
 * GstBufferPool discarded while it was exported), in ms. GstBufferPool only
 * asks for a buffer below its max, so this is a rare, bounded wait. */
#define ACQUIRE_WAIT_MS 1000u

struct _GstPmmBufferPool {
  GstBufferPool parent;
  GstAllocator* allocator; /* a GstPmmAllocator */
  PmmRing* ring;           /* between start and stop */
  gsize size;              /* bytes per buffer */
  guint min, max;          /* the config's buffer counts */
  gboolean is_video;
  gboolean add_video_meta;
  GstVideoInfo info;
};

G_DEFINE_TYPE(GstPmmBufferPool, gst_pmm_buffer_pool, GST_TYPE_BUFFER_POOL)

static const gchar** pool_get_options(GstBufferPool* pool) {
  (void)pool;
  static const gchar* options[] = {GST_BUFFER_POOL_OPTION_VIDEO_META, NULL};
  return options;
}

static gboolean pool_set_config(GstBufferPool* pool, GstStructure* config) {
  GstPmmBufferPool* self = GST_PMM_BUFFER_POOL(pool);
  GstCaps* caps = NULL;
  guint size = 0, min = 0, max = 0;
  if (!gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max) || caps == NULL) {
    GST_WARNING_OBJECT(pool, "config without caps");
    return FALSE;
  }
  self->is_video = FALSE;
  GstStructure* s = gst_caps_get_structure(caps, 0);
  if (gst_structure_has_name(s, "video/x-raw")) {
    if (!gst_video_info_from_caps(&self->info, caps)) {
      GST_WARNING_OBJECT(pool, "cannot read raw video caps");
      return FALSE;
    }
    self->is_video = TRUE;
    /* A frame of the caps' layout must fit, whatever upstream asked. */
    if (size < self->info.size) size = (guint)self->info.size;
  }
  if (size == 0) {
    GST_WARNING_OBJECT(pool, "config with buffer size 0");
    return FALSE;
  }
  /* pmm_bufpool holds at most PMM_BUFPOOL_MAX_BUFFERS; "unlimited" (0)
   * becomes that bound. */
  if (max == 0 || max > PMM_BUFPOOL_MAX_BUFFERS) max = PMM_BUFPOOL_MAX_BUFFERS;
  if (min > max) {
    GST_WARNING_OBJECT(pool, "config asks for at least %u buffers, more than the %u allowed", min,
                       max);
    return FALSE;
  }
  self->size = size;
  self->min = min;
  self->max = max;
  self->add_video_meta = self->is_video && gst_buffer_pool_config_has_option(
                                               config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  gst_buffer_pool_config_set_params(config, caps, size, min, max);
  return GST_BUFFER_POOL_CLASS(gst_pmm_buffer_pool_parent_class)->set_config(pool, config);
}

/* One pmm_bufpool of count = min, max_count = max buffers, then
 * GstBufferPool's start, which allocates the min buffers from it. */
static gboolean pool_start(GstBufferPool* pool) {
  GstPmmBufferPool* self = GST_PMM_BUFFER_POOL(pool);
  pmm_bufpool_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.pools = gst_pmm_allocator_get_pools(self->allocator);
  o.buffer_size = self->size;
  o.count = MAX(self->min, 1u);
  o.max_count = MAX(self->max, o.count);
  pmm_bufpool* bufpool = NULL;
  if (pmm_bufpool_create(gst_pmm_allocator_get_connection(self->allocator), &o, &bufpool) !=
      PMM_OK) {
    GST_ERROR_OBJECT(pool, "pmm_bufpool_create of %u-%u buffers of %" G_GSIZE_FORMAT " bytes: %s",
                     o.count, o.max_count, self->size, pmm_last_error());
    return FALSE;
  }
  PmmRing* ring = g_new0(PmmRing, 1);
  g_atomic_ref_count_init(&ring->refs);
  ring->bufpool = bufpool;
  ring->allocator = gst_object_ref(self->allocator);
  self->ring = ring;
  if (!GST_BUFFER_POOL_CLASS(gst_pmm_buffer_pool_parent_class)->start(pool)) {
    ring_unref(g_steal_pointer(&self->ring));
    return FALSE;
  }
  return TRUE;
}

/* GstBufferPool's stop frees the buffers it holds (their memories give
 * their blocks back); the bufpool goes with the last memory still alive. */
static gboolean pool_stop(GstBufferPool* pool) {
  GstPmmBufferPool* self = GST_PMM_BUFFER_POOL(pool);
  gboolean ok = GST_BUFFER_POOL_CLASS(gst_pmm_buffer_pool_parent_class)->stop(pool);
  if (self->ring != NULL) ring_unref(g_steal_pointer(&self->ring));
  return ok;
}

/* One pmm_bufpool buffer per GstBuffer, given back when its memory is
 * freed (GstBufferPool's free_buffer, its stop, or later if the memory was
 * shared). */
static GstFlowReturn pool_alloc_buffer(GstBufferPool* pool, GstBuffer** out,
                                       GstBufferPoolAcquireParams* params) {
  (void)params;
  GstPmmBufferPool* self = GST_PMM_BUFFER_POOL(pool);
  if (self->ring == NULL) return GST_FLOW_FLUSHING;
  pmm_block* block = NULL;
  if (pmm_bufpool_acquire(self->ring->bufpool, ACQUIRE_WAIT_MS, &block) != PMM_OK) {
    GST_ERROR_OBJECT(pool, "pmm_bufpool_acquire: %s", pmm_last_error());
    return GST_FLOW_ERROR;
  }
  RingBuffer* rb = g_new(RingBuffer, 1);
  rb->ring = ring_ref(self->ring);
  rb->block = block;
  GError* error = NULL;
  GstMemory* mem =
      gst_pmm_allocator_wrap_block(self->allocator, block, ring_buffer_release, rb, &error);
  if (mem == NULL) {
    GST_ERROR_OBJECT(pool, "%s", error->message);
    g_clear_error(&error);
    return GST_FLOW_ERROR;
  }
  mem->size = self->size; /* the block may be rounded up to a page */
  GstBuffer* buf = gst_buffer_new();
  gst_buffer_append_memory(buf, mem);
  if (self->add_video_meta) {
    gst_buffer_add_video_meta_full(
        buf, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(&self->info),
        (guint)GST_VIDEO_INFO_WIDTH(&self->info), (guint)GST_VIDEO_INFO_HEIGHT(&self->info),
        GST_VIDEO_INFO_N_PLANES(&self->info), self->info.offset, self->info.stride);
  }
  *out = buf;
  return GST_FLOW_OK;
}

/* GstBufferPool's reset moves a buffer's memory back to offset 0, taking a
 * pristine memory to start at 0; ours starts at the block's offset in the
 * pool fd (pmm_allocator.h), so it is put back on its block. */
static void pool_reset_buffer(GstBufferPool* pool, GstBuffer* buffer) {
  GST_BUFFER_POOL_CLASS(gst_pmm_buffer_pool_parent_class)->reset_buffer(pool, buffer);
  GstPmmBufferPool* self = GST_PMM_BUFFER_POOL(pool);
  if (gst_buffer_n_memory(buffer) != 1) return;
  GstMemory* mem = gst_buffer_peek_memory(buffer, 0);
  pmm_block* block = gst_pmm_memory_get_block(mem);
  if (block == NULL) return;
  mem->offset = (gsize)pmm_block_offset(block);
  mem->size = self->size;
}

static void gst_pmm_buffer_pool_finalize(GObject* object) {
  GstPmmBufferPool* self = GST_PMM_BUFFER_POOL(object);
  if (self->ring != NULL) ring_unref(g_steal_pointer(&self->ring));
  gst_clear_object(&self->allocator);
  G_OBJECT_CLASS(gst_pmm_buffer_pool_parent_class)->finalize(object);
}

static void gst_pmm_buffer_pool_class_init(GstPmmBufferPoolClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = gst_pmm_buffer_pool_finalize;
  GstBufferPoolClass* pool_class = GST_BUFFER_POOL_CLASS(klass);
  pool_class->get_options = pool_get_options;
  pool_class->set_config = pool_set_config;
  pool_class->start = pool_start;
  pool_class->stop = pool_stop;
  pool_class->alloc_buffer = pool_alloc_buffer;
  pool_class->reset_buffer = pool_reset_buffer;
  GST_DEBUG_CATEGORY_INIT(pmm_pool_debug, "pmmbufferpool", 0, "pmm buffer pool");
}

static void gst_pmm_buffer_pool_init(GstPmmBufferPool* self) { (void)self; }

GstBufferPool* gst_pmm_buffer_pool_new(GstAllocator* pmm_allocator) {
  g_return_val_if_fail(GST_IS_PMM_ALLOCATOR(pmm_allocator), NULL);
  GstPmmBufferPool* self = g_object_new(GST_TYPE_PMM_BUFFER_POOL, NULL);
  gst_object_ref_sink(self);
  self->allocator = gst_object_ref(pmm_allocator);
  return GST_BUFFER_POOL(self);
}
