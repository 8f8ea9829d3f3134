/* pmmsrc: receives the buffers a pmmsink in another process publishes, as
 * pmm blocks imported into this process — no copy.
 *
 *   gst-launch-1.0 pmmsrc socket-path=/tmp/cam.sock ! videoconvert ! ximagesink
 *
 * Caps come from the producer (its CAPS message), so no capsfilter is
 * needed. Each FRAME's token is imported (pmm_import) into a GstPmmAllocator
 * memory narrowed to the payload, with the producer's timestamps and video
 * meta; when the last reference to that memory goes, the block is put and
 * the producer is told (RELEASE), so its pool may reuse the block.
 *
 * When the producer ends the stream or goes away (exit, crash): EOS, or
 * with reconnect=true wait for a pmmsink at socket-path and carry on. A
 * producer that sends something malformed is an error (the message says
 * what was wrong). gst/README.md has the details. Threading is
 * GstPushSrc's; the release of a buffer may happen on any thread.
 */
#ifndef PMM_GST_PMM_SRC_H_
#define PMM_GST_PMM_SRC_H_

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_PMM_SRC (gst_pmm_src_get_type())
G_DECLARE_FINAL_TYPE(GstPmmSrc, gst_pmm_src, GST, PMM_SRC, GstPushSrc)

G_END_DECLS

#endif /* PMM_GST_PMM_SRC_H_ */
