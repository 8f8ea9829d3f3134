/* PmmPublisher: pmmsink's side of the socket — the listening Unix socket,
 * the connected consumers, and the ledger of frames they still hold.
 *
 *   PmmPublisher *p = pmm_publisher_new("/tmp/cam.sock", &error);
 *   pmm_publisher_set_caps(p, "video/x-raw,...");
 *   pmm_publisher_publish(p, buffer, block, conn, &frame, 5000, &error);
 *   pmm_publisher_free(p);
 *
 * A thread of its own accepts consumers (sending them the current caps)
 * and reads their RELEASE messages, so a frame goes back to its pool as
 * soon as the last consumer lets go even while the streaming thread waits
 * for a buffer. A consumer that disconnects (exit, crash) releases every
 * frame it held; one that breaks the protocol is disconnected. Consumers
 * are never waited on: a send that would block skips that consumer for
 * that frame. All functions may be called from any thread.
 */
#ifndef PMM_GST_PUBLISHER_H_
#define PMM_GST_PUBLISHER_H_

#include <gst/gst.h>
#include <pmm/pmm.h>

#include "wire.h"

G_BEGIN_DECLS

#define PMM_PUBLISHER_MAX_CONSUMERS 32u
/* Frames one consumer may hold at once; beyond that it misses frames. */
#define PMM_PUBLISHER_MAX_HELD 64u

typedef struct PmmPublisher PmmPublisher;

/* Listens at `socket_path`. A stale socket file (nothing accepts on it) is
 * replaced; a live one is an error (another pmmsink publishes there). */
PmmPublisher* pmm_publisher_new(const gchar* socket_path, GError** error);
/* Disconnects every consumer, removes the socket file. Frames consumers
 * had not imported yet keep their exports (the daemon holds the blocks
 * until imported or `lifetime_ms` passes), so a consumer still reads the
 * frames it was sent after the producer is gone. */
void pmm_publisher_free(PmmPublisher* p);

/* The caps every consumer gets now and on connecting. */
void pmm_publisher_set_caps(PmmPublisher* p, const gchar* caps_text);
/* Tells every consumer the stream ended. */
void pmm_publisher_send_eos(PmmPublisher* p);
guint pmm_publisher_consumers(PmmPublisher* p);
/* Blocks until a consumer is connected: TRUE; FALSE once flushing. */
gboolean pmm_publisher_wait_consumer(PmmPublisher* p);
void pmm_publisher_set_flushing(PmmPublisher* p, gboolean flushing);

/* Exports `block` (held through `conn`) with one import per consumer that
 * can take the frame, sends `frame` (seq and token filled in here) to each,
 * and keeps `buffer` (transfer full) until they all released it. TRUE also
 * when no consumer took it (the buffer is then dropped); FALSE with
 * `error` when the export failed. */
gboolean pmm_publisher_publish(PmmPublisher* p, GstBuffer* buffer, pmm_block* block, pmm_conn* conn,
                               PmmWireFrame* frame, guint lifetime_ms, GError** error);

G_END_DECLS

#endif /* PMM_GST_PUBLISHER_H_ */
