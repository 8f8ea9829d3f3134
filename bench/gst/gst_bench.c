/* pmm_gst_bench — one process of the GStreamer transport benchmark
 * (bench/gst/run): runs a gst-launch-style pipeline and measures, at the
 * element named "sink", from its first buffer to end of stream: the
 * buffers, the wall time and this process's CPU time (user + system,
 * getrusage). Prints one line:
 *
 *   frames=N seconds=S cpu_seconds=C
 *
 * and exits 0 at EOS, 1 on an error. Startup (plugin loading, connecting)
 * is outside the measured span, so both sides of a transport are measured
 * over the same frames.
 */
#include <gst/gst.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

/* SIGTERM ends the run as EOS would (shmsrc may never see its producer
 * go); the span measured so far is printed. */
static volatile sig_atomic_t stop_requested;
static void on_sigterm(int sig) {
  (void)sig;
  stop_requested = 1;
}

typedef struct {
  guint64 frames;
  gint64 first_us, last_us;
  double cpu_first, cpu_last;
} Span;

static double cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static GstPadProbeReturn on_data(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
  (void)pad;
  Span* s = data;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    gint64 now = g_get_monotonic_time();
    double cpu = cpu_now();
    if (s->frames++ == 0) {
      s->first_us = now;
      s->cpu_first = cpu;
    }
    s->last_us = now;
    s->cpu_last = cpu;
  }
  return GST_PAD_PROBE_OK;
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  if (argc != 2) {
    fprintf(stderr, "usage: %s 'PIPELINE ... ! <sink> name=sink'\n", argv[0]);
    return 2;
  }
  GError* error = NULL;
  GstElement* p = gst_parse_launch(argv[1], &error);
  if (p == NULL) {
    fprintf(stderr, "cannot parse the pipeline: %s\n", error->message);
    return 1;
  }
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  if (sink == NULL) {
    fprintf(stderr, "the pipeline has no element named \"sink\"\n");
    return 1;
  }
  Span span = {0};
  GstPad* pad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_data, &span, NULL);
  gst_object_unref(pad);
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  signal(SIGTERM, on_sigterm);
  /* shmsink writes to consumers that went without MSG_NOSIGNAL. */
  signal(SIGPIPE, SIG_IGN);
  GstMessage* m = NULL;
  while (m == NULL && !stop_requested)
    m = gst_bus_timed_pop_filtered(bus, 50 * GST_MSECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  int rc = 0;
  if (m != NULL && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    gst_message_parse_error(m, &error, NULL);
    fprintf(stderr, "error: %s\n", error->message);
    rc = 1;
  }
  printf("frames=%" G_GUINT64_FORMAT " seconds=%.6f cpu_seconds=%.6f\n", span.frames,
         (double)(span.last_us - span.first_us) / 1e6, span.cpu_last - span.cpu_first);
  fflush(stdout);
  if (m != NULL) gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(p);
  return rc;
}
