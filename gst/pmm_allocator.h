/* GstPmmAllocator: GstMemory whose bytes are pmm blocks.
 *
 *   GError *err = NULL;
 *   GstAllocator *a = gst_pmm_allocator_new(NULL, "camera", NULL, &err);
 *   GstMemory *m = gst_allocator_alloc(a, 1 << 20, NULL);  // one pmm block
 *   pmm_block *b = gst_pmm_memory_get_block(m);            // its fd, offset...
 *   gst_memory_unref(m);                                   // puts the block
 *
 * The allocator owns one libpmm connection (pmm_conn), opened by
 * gst_pmm_allocator_new and closed when the last reference to the allocator
 * goes; every memory holds a reference to its allocator, so a block never
 * outlives its connection.
 *
 * A memory is a GstFdMemory as far as other elements can tell: the
 * allocator derives from GstFdAllocator, so gst_is_fd_memory() is TRUE,
 * gst_fd_memory_get_fd() gives the pool's memory fd (owned by the
 * connection: dup() it to keep it) and the memory's `offset` is the block's
 * offset in that fd, exactly what fd/dmabuf importers (waylandsink's wl_shm
 * path, v4l2 USERPTR/DMABUF importers) read. Its `maxsize` therefore runs
 * from the start of the pool to the block's end; mapping gives libpmm's
 * mapping of the whole pool (never a new mmap), so data + offset is
 * pmm_block_ptr(). The block's handle is also reachable directly through
 * gst_pmm_memory_get_block().
 *
 * Memories may be used from any thread (libpmm's connection is thread-safe).
 */
#ifndef PMM_GST_PMM_ALLOCATOR_H_
#define PMM_GST_PMM_ALLOCATOR_H_

#include <gst/allocators/allocators.h>
#include <gst/gst.h>
#include <pmm/pmm.h>

G_BEGIN_DECLS

#define GST_ALLOCATOR_PMM "pmm"

#define GST_TYPE_PMM_ALLOCATOR (gst_pmm_allocator_get_type())
G_DECLARE_FINAL_TYPE(GstPmmAllocator, gst_pmm_allocator, GST, PMM_ALLOCATOR, GstFdAllocator)

/* Connects to pmmd at `pmm_socket` (NULL: libpmm's default, $PMM_SOCKET,
 * then $XDG_RUNTIME_DIR/pmm/pmm.sock, then /run/pmm/pmm.sock) as `device`
 * (NULL: "default"); blocks come from `pools` (NULL: the device's default
 * pools). NULL and `error` set (domain GST_RESOURCE_ERROR) with libpmm's
 * message when the daemon cannot be reached or refuses. */
GstAllocator* gst_pmm_allocator_new(const gchar* pmm_socket, const gchar* device,
                                    const gchar* pools, GError** error);

/* A new block of `size` bytes as a memory covering exactly the block. */
GstMemory* gst_pmm_allocator_alloc_block(GstAllocator* allocator, gsize size, GError** error);
/* A memory covering exactly `block`, a block of this allocator's
 * connection that is not the caller's to put (a pmm_bufpool buffer): when
 * the memory is freed, `release(release_data)` gives it back (the block
 * must stay valid until then). If wrapping fails, `release` is called at
 * once and NULL returned with `error` set. */
GstMemory* gst_pmm_allocator_wrap_block(GstAllocator* allocator, pmm_block* block,
                                        GDestroyNotify release, gpointer release_data,
                                        GError** error);
/* Imports an export token: a memory covering the whole imported block. */
GstMemory* gst_pmm_allocator_import(GstAllocator* allocator, const pmm_token* token,
                                    GError** error);

/* The allocator's libpmm connection (for pmm_export/pmm_unexport of its
 * blocks); valid while the allocator lives. */
pmm_conn* gst_pmm_allocator_get_connection(GstAllocator* allocator);

/* The pools the allocator's blocks come from, as given to
 * gst_pmm_allocator_new (NULL: the device's default pools). */
const gchar* gst_pmm_allocator_get_pools(GstAllocator* allocator);

/* TRUE when `mem` (or the memory it was shared from) is a pmm block. */
gboolean gst_is_pmm_memory(GstMemory* mem);
/* The block behind `mem`, owned by the memory; NULL if not a pmm memory. */
pmm_block* gst_pmm_memory_get_block(GstMemory* mem);

G_END_DECLS

#endif /* PMM_GST_PMM_ALLOCATOR_H_ */
