/* The `pmm` GStreamer plugin: pmmsink and pmmsrc (gst/README.md). */
#include <gst/gst.h>

#include "pmm_sink.h"
#include "pmm_src.h"

static gboolean plugin_init(GstPlugin* plugin) {
  return gst_element_register(plugin, "pmmsink", GST_RANK_NONE, GST_TYPE_PMM_SINK) &&
         gst_element_register(plugin, "pmmsrc", GST_RANK_NONE, GST_TYPE_PMM_SRC);
}

#define PACKAGE "pmm"
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, pmm,
                  "Zero-copy buffers between processes through pmm, the physical memory manager",
                  plugin_init, PMM_VERSION, "unknown", "pmm", "the pmm project")
