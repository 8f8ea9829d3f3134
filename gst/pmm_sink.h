/* pmmsink: publishes buffers as pmm blocks to pmmsrc consumers in other
 * processes, over a Unix socket (like shmsink, without its copy).
 *
 *   gst-launch-1.0 videotestsrc ! video/x-raw,width=1920,height=1080 ! \
 *       pmmsink socket-path=/tmp/cam.sock
 *
 * Upstream is offered a GstPmmBufferPool in the allocation query, so it
 * writes each frame straight into a pmm block; a buffer that is not one pmm
 * block is copied once into a buffer of a GstPmmBufferPool of the sink's own
 * (at most max-buffers copies out) and counted in `copies`. For every
 * buffer the sink exports the block (one import per connected consumer) and
 * sends the token, caps, video meta and timestamps to each consumer; it
 * keeps the buffer (so the pool does not reuse the block) until each
 * consumer says it let go, or disconnects. gst/README.md has the rest:
 * properties, crash behaviour, trust. Element threading is GstBaseSink's
 * plus one thread of its own that accepts consumers and reads their
 * releases.
 */
#ifndef PMM_GST_PMM_SINK_H_
#define PMM_GST_PMM_SINK_H_

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_PMM_SINK (gst_pmm_sink_get_type())
G_DECLARE_FINAL_TYPE(GstPmmSink, gst_pmm_sink, GST, PMM_SINK, GstBaseSink)

G_END_DECLS

#endif /* PMM_GST_PMM_SINK_H_ */
