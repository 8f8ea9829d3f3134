/* GstPmmBufferPool (pmm_buffer_pool.h): GstBufferPool recycles, this file
 * makes a buffer out of one pmm block and describes its video layout. */
#include "pmm_buffer_pool.h"

#include <gst/video/video.h>

#include "pmm_allocator.h"

GST_DEBUG_CATEGORY_STATIC(pmm_pool_debug);
#define GST_CAT_DEFAULT pmm_pool_debug

struct _GstPmmBufferPool {
  GstBufferPool parent;
  GstAllocator* allocator; /* a GstPmmAllocator */
  gsize size;              /* bytes per buffer */
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
  self->size = size;
  self->add_video_meta = self->is_video && gst_buffer_pool_config_has_option(
                                               config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  gst_buffer_pool_config_set_params(config, caps, size, min, max);
  return GST_BUFFER_POOL_CLASS(gst_pmm_buffer_pool_parent_class)->set_config(pool, config);
}

/* One block per buffer. With pmm_bufpool this becomes "take a block from
 * the libpmm buffer pool" (made in start, destroyed in stop). */
static GstFlowReturn pool_alloc_buffer(GstBufferPool* pool, GstBuffer** out,
                                       GstBufferPoolAcquireParams* params) {
  (void)params;
  GstPmmBufferPool* self = GST_PMM_BUFFER_POOL(pool);
  GError* error = NULL;
  GstMemory* mem = gst_pmm_allocator_alloc_block(self->allocator, self->size, &error);
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
  gst_clear_object(&self->allocator);
  G_OBJECT_CLASS(gst_pmm_buffer_pool_parent_class)->finalize(object);
}

static void gst_pmm_buffer_pool_class_init(GstPmmBufferPoolClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = gst_pmm_buffer_pool_finalize;
  GstBufferPoolClass* pool_class = GST_BUFFER_POOL_CLASS(klass);
  pool_class->get_options = pool_get_options;
  pool_class->set_config = pool_set_config;
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
