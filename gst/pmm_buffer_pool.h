/* GstPmmBufferPool: a GstBufferPool of pmm blocks, with GstVideoMeta.
 *
 *   GstBufferPool *pool = gst_pmm_buffer_pool_new(pmm_allocator);
 *   GstStructure *config = gst_buffer_pool_get_config(pool);
 *   gst_buffer_pool_config_set_params(config, caps, size, 2, 8);
 *   gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
 *   gst_buffer_pool_set_config(pool, config);
 *
 * Each buffer is one memory of the GstPmmAllocator given at creation over
 * one buffer of a libpmm pmm_bufpool (created when the pool starts with
 * count = the config's min buffers and max_count = its max buffers, 0 or
 * more than PMM_BUFPOOL_MAX_BUFFERS meaning that bound); with raw video caps and the VIDEO_META
 * option each buffer carries a GstVideoMeta with the frame's plane offsets and strides (GStreamer's
 * default layout for the caps). Buffers are recycled by GstBufferPool itself: a released buffer
 * keeps its block, so the steady state costs no daemon round trip. When GStreamer frees a buffer
 * (its free_buffer, the pool's stop, or later where another buffer shared the memory) the block
 * goes back to the pmm_bufpool, which hands it out again only once every importer of an export of
 * it has put it; the bufpool is destroyed when the pool has stopped and the last such memory is
 * gone. max-buffers bounds the blocks the pool holds, which is what makes a slow consumer hold back
 * its producer. Thread-safety is GstBufferPool's.
 */
#ifndef PMM_GST_PMM_BUFFER_POOL_H_
#define PMM_GST_PMM_BUFFER_POOL_H_

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_PMM_BUFFER_POOL (gst_pmm_buffer_pool_get_type())
G_DECLARE_FINAL_TYPE(GstPmmBufferPool, gst_pmm_buffer_pool, GST, PMM_BUFFER_POOL, GstBufferPool)

/* A pool whose blocks come from `pmm_allocator` (a GstPmmAllocator, which
 * the pool keeps a reference to). */
GstBufferPool* gst_pmm_buffer_pool_new(GstAllocator* pmm_allocator);

G_END_DECLS

#endif /* PMM_GST_PMM_BUFFER_POOL_H_ */
