/* GstPmmAllocator (pmm_allocator.h): a GstFdAllocator whose memories are
 * pmm blocks.
 *
 * Design: GstFdAllocator makes the memory object (so gst_is_fd_memory and
 * gst_fd_memory_get_fd work for everyone), with the pool fd marked
 * DONT_CLOSE (libpmm owns it) and `maxsize` = block offset + size, then the
 * memory is narrowed to the block (offset, size). The block handle rides on
 * the memory as qdata whose destroy notify is pmm_block_put (or, for a
 * pmm_bufpool buffer, the pool's release), so the block is given back
 * exactly when the memory is freed; shared sub-memories hold their
 * parent, so the parent (and the block) outlive them. map/unmap are
 * replaced: they return libpmm's mapping of the pool (base = block pointer
 * minus block offset) instead of mmap()ing the fd again.
 */
#include "pmm_allocator.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC(pmm_allocator_debug);
#define GST_CAT_DEFAULT pmm_allocator_debug

struct _GstPmmAllocator {
  GstFdAllocator parent;
  pmm_conn* conn;
  gchar* pools;
};

G_DEFINE_TYPE(GstPmmAllocator, gst_pmm_allocator, GST_TYPE_FD_ALLOCATOR)

static GQuark block_quark(void) {
  static gsize q;
  if (g_once_init_enter(&q)) g_once_init_leave(&q, g_quark_from_static_string("GstPmmBlock"));
  return (GQuark)q;
}

static void put_block(gpointer block) { (void)pmm_block_put(block); }

static GstMemory* root_of(GstMemory* mem) { return mem->parent ? mem->parent : mem; }

static gpointer pmm_mem_map(GstMemory* mem, gsize maxsize, GstMapFlags flags) {
  (void)maxsize;
  (void)flags;
  pmm_block* b = gst_mini_object_get_qdata(GST_MINI_OBJECT(root_of(mem)), block_quark());
  if (b == NULL) return NULL;
  return (guint8*)pmm_block_ptr(b) - pmm_block_offset(b);
}

static void pmm_mem_unmap(GstMemory* mem) { (void)mem; }

static GQuark release_quark(void) {
  static gsize q;
  if (g_once_init_enter(&q)) g_once_init_leave(&q, g_quark_from_static_string("GstPmmRelease"));
  return (GQuark)q;
}

/* Wraps `block` into a memory. When the memory is freed (or wrapping
 * fails), `release(release_data)` gives the block back; without `release`
 * the block is this process's reference and is put. */
static GstMemory* wrap_block(GstPmmAllocator* self, pmm_block* block, GDestroyNotify release,
                             gpointer release_data, GError** error) {
  uint64_t offset = pmm_block_offset(block);
  uint64_t size = pmm_block_size(block);
  GstMemory* mem = NULL;
  if (offset > G_MAXSIZE - size) {
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT,
                "pmm block at offset %" G_GUINT64_FORMAT " does not fit this address space",
                offset);
  } else {
    mem = gst_fd_allocator_alloc(GST_ALLOCATOR(self), pmm_block_fd(block), (gsize)(offset + size),
                                 GST_FD_MEMORY_FLAG_DONT_CLOSE);
    if (mem == NULL)
      g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_FAILED,
                  "cannot make an fd memory for pmm block %" G_GUINT64_FORMAT, pmm_block_id(block));
  }
  if (mem == NULL) {
    if (release != NULL)
      release(release_data);
    else
      put_block(block);
    return NULL;
  }
  mem->offset = (gsize)offset;
  mem->size = (gsize)size;
  gst_mini_object_set_qdata(GST_MINI_OBJECT(mem), block_quark(), block,
                            release != NULL ? NULL : put_block);
  if (release != NULL)
    gst_mini_object_set_qdata(GST_MINI_OBJECT(mem), release_quark(), release_data, release);
  return mem;
}

GstMemory* gst_pmm_allocator_alloc_block(GstAllocator* allocator, gsize size, GError** error) {
  g_return_val_if_fail(GST_IS_PMM_ALLOCATOR(allocator), NULL);
  GstPmmAllocator* self = GST_PMM_ALLOCATOR(allocator);
  pmm_block* block = NULL;
  pmm_status st = pmm_alloc(self->conn, self->pools, size, 0, 0, &block);
  if (st != PMM_OK) {
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT,
                "pmm_alloc of %" G_GSIZE_FORMAT " bytes from %s: %s", size,
                self->pools ? self->pools : "the device's pools", pmm_last_error());
    return NULL;
  }
  return wrap_block(self, block, NULL, NULL, error);
}

GstMemory* gst_pmm_allocator_wrap_block(GstAllocator* allocator, pmm_block* block,
                                        GDestroyNotify release, gpointer release_data,
                                        GError** error) {
  g_return_val_if_fail(GST_IS_PMM_ALLOCATOR(allocator), NULL);
  g_return_val_if_fail(release != NULL, NULL);
  return wrap_block(GST_PMM_ALLOCATOR(allocator), block, release, release_data, error);
}

GstMemory* gst_pmm_allocator_import(GstAllocator* allocator, const pmm_token* token,
                                    GError** error) {
  g_return_val_if_fail(GST_IS_PMM_ALLOCATOR(allocator), NULL);
  GstPmmAllocator* self = GST_PMM_ALLOCATOR(allocator);
  pmm_block* block = NULL;
  pmm_status st = pmm_import(self->conn, token, &block);
  if (st != PMM_OK) {
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ, "pmm_import: %s",
                pmm_last_error());
    return NULL;
  }
  return wrap_block(self, block, NULL, NULL, error);
}

/* gst_allocator_alloc(): prefix and padding lie inside the block, `align`
 * becomes the block's alignment (at least the pool's page size anyway). */
static GstMemory* pmm_alloc_vfunc(GstAllocator* allocator, gsize size,
                                  GstAllocationParams* params) {
  gsize prefix = params ? params->prefix : 0;
  gsize padding = params ? params->padding : 0;
  GError* error = NULL;
  GstMemory* mem = gst_pmm_allocator_alloc_block(allocator, prefix + size + padding, &error);
  if (mem == NULL) {
    GST_WARNING_OBJECT(allocator, "%s", error->message);
    g_clear_error(&error);
    return NULL;
  }
  mem->offset += prefix;
  mem->size = size;
  return mem;
}

static void gst_pmm_allocator_finalize(GObject* object) {
  GstPmmAllocator* self = GST_PMM_ALLOCATOR(object);
  if (self->conn) pmm_disconnect(self->conn);
  g_free(self->pools);
  G_OBJECT_CLASS(gst_pmm_allocator_parent_class)->finalize(object);
}

static void gst_pmm_allocator_class_init(GstPmmAllocatorClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = gst_pmm_allocator_finalize;
  GST_ALLOCATOR_CLASS(klass)->alloc = pmm_alloc_vfunc;
  GST_DEBUG_CATEGORY_INIT(pmm_allocator_debug, "pmmallocator", 0, "pmm block memory");
}

static void gst_pmm_allocator_init(GstPmmAllocator* self) {
  GstAllocator* alloc = GST_ALLOCATOR(self);
  /* GstFdAllocator's init set the fd map/unmap/share; share stays (it keeps
   * the parent and its fd), map/unmap use libpmm's mapping. */
  alloc->mem_type = GST_ALLOCATOR_PMM;
  alloc->mem_map = pmm_mem_map;
  alloc->mem_unmap = pmm_mem_unmap;
  /* gst_allocator_alloc works on this allocator, so it may be offered in
   * allocation queries like any general-purpose one. */
  GST_OBJECT_FLAGS(self) &= ~(guint32)GST_ALLOCATOR_FLAG_CUSTOM_ALLOC;
}

GstAllocator* gst_pmm_allocator_new(const gchar* pmm_socket, const gchar* device,
                                    const gchar* pools, GError** error) {
  pmm_conn* conn = NULL;
  if (pmm_connect(pmm_socket, device, &conn) != PMM_OK) {
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ_WRITE,
                "cannot connect to pmmd at %s as device '%s': %s",
                pmm_socket ? pmm_socket : "the default socket", device ? device : "default",
                pmm_last_error());
    return NULL;
  }
  GstPmmAllocator* self = g_object_new(GST_TYPE_PMM_ALLOCATOR, NULL);
  gst_object_ref_sink(self);
  self->conn = conn;
  self->pools = (pools && *pools) ? g_strdup(pools) : NULL;
  return GST_ALLOCATOR(self);
}

pmm_conn* gst_pmm_allocator_get_connection(GstAllocator* allocator) {
  g_return_val_if_fail(GST_IS_PMM_ALLOCATOR(allocator), NULL);
  return GST_PMM_ALLOCATOR(allocator)->conn;
}

const gchar* gst_pmm_allocator_get_pools(GstAllocator* allocator) {
  g_return_val_if_fail(GST_IS_PMM_ALLOCATOR(allocator), NULL);
  return GST_PMM_ALLOCATOR(allocator)->pools;
}

gboolean gst_is_pmm_memory(GstMemory* mem) {
  return mem != NULL && mem->allocator != NULL && GST_IS_PMM_ALLOCATOR(mem->allocator) &&
         gst_mini_object_get_qdata(GST_MINI_OBJECT(root_of(mem)), block_quark()) != NULL;
}

pmm_block* gst_pmm_memory_get_block(GstMemory* mem) {
  if (!gst_is_pmm_memory(mem)) return NULL;
  return gst_mini_object_get_qdata(GST_MINI_OBJECT(root_of(mem)), block_quark());
}
