/* PmmPublisher (publisher.h).
 *
 * Ledger: `frames` maps a sequence number to the buffer, its export token
 * and how many consumers still hold it; each consumer keeps the set of
 * sequence numbers it was sent and has not released. A RELEASE for a number
 * not in the sender's set is a protocol error (a consumer cannot release
 * another's frame, nor one twice). When a frame's last holder lets go, an
 * export that was not imported by everyone it was meant for is withdrawn,
 * then the buffer is unreffed (back to its pool).
 *
 * Only the thread adds or removes consumers; the streaming thread marks a
 * consumer dead when a send fails and the thread drops it on its hang-up.
 * One mutex guards everything.
 */
#define _GNU_SOURCE /* accept4 */
#include "publisher.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

GST_DEBUG_CATEGORY_STATIC(pmm_publisher_debug);
#define GST_CAT_DEFAULT pmm_publisher_debug

typedef struct {
  int fd;
  gboolean dead;
  GHashTable* held; /* guint64 seq (boxed) -> NULL */
} Consumer;

typedef struct {
  GstBuffer* buffer;
  pmm_conn* conn; /* valid while `buffer` is held: it holds the block's allocator */
  pmm_token token;
  guint max_imports;
  guint pending;
  guint imported;
} Frame;

struct PmmPublisher {
  gchar* path;
  int listen_fd;
  int wake_fd;
  GThread* thread;
  GMutex lock;
  GCond cond;
  gboolean stopping;
  gboolean flushing;
  GPtrArray* consumers; /* Consumer* */
  GHashTable* frames;   /* guint64 seq (boxed) -> Frame* */
  guint64 next_seq;
  gchar* caps_text;
};

static void frame_free(gpointer data) {
  Frame* f = data;
  gst_buffer_unref(f->buffer);
  g_free(f);
}

/* One holder of `seq` let go. Called with the lock held. */
static void frame_release(PmmPublisher* p, guint64 seq, gboolean imported) {
  Frame* f = g_hash_table_lookup(p->frames, &seq);
  if (f == NULL) return;
  if (imported) f->imported++;
  if (--f->pending > 0) return;
  if (f->imported < f->max_imports) (void)pmm_unexport(f->conn, &f->token);
  g_hash_table_remove(p->frames, &seq);
}

static void consumer_drop(PmmPublisher* p, Consumer* c) {
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init(&it, c->held);
  while (g_hash_table_iter_next(&it, &key, NULL)) frame_release(p, *(guint64*)key, FALSE);
  g_hash_table_destroy(c->held);
  close(c->fd);
  g_ptr_array_remove(p->consumers, c);
  g_free(c);
  GST_INFO("consumer gone; %u left", p->consumers->len);
}

static void consumer_accept(PmmPublisher* p) {
  int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  if (p->consumers->len >= PMM_PUBLISHER_MAX_CONSUMERS) {
    GST_WARNING("refusing a consumer: %u are connected already", PMM_PUBLISHER_MAX_CONSUMERS);
    close(fd);
    return;
  }
  Consumer* c = g_new0(Consumer, 1);
  c->fd = fd;
  c->held = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
  if (p->caps_text && !pmm_wire_send_caps(fd, p->caps_text)) c->dead = TRUE;
  g_ptr_array_add(p->consumers, c);
  g_cond_broadcast(&p->cond);
  GST_INFO("consumer connected; %u now", p->consumers->len);
}

/* Reads what `c` sent; FALSE when it must be dropped. */
static gboolean consumer_read(PmmPublisher* p, Consumer* c) {
  for (;;) {
    PmmWireRelease msg;
    ssize_t n = recv(c->fd, &msg, sizeof msg, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    if (n == 0) return FALSE;
    const gchar* why = NULL;
    if (pmm_wire_kind(&msg, (gsize)n, &why) != PMM_WIRE_RELEASE) {
      GST_WARNING("dropping a consumer: %s", why ? why : "it may only send RELEASE");
      return FALSE;
    }
    if (!g_hash_table_remove(c->held, &msg.seq)) {
      GST_WARNING("dropping a consumer: it released frame %" G_GUINT64_FORMAT
                  ", which it does not hold",
                  msg.seq);
      return FALSE;
    }
    frame_release(p, msg.seq, msg.imported == 1);
  }
}

static gpointer publisher_thread(gpointer data) {
  PmmPublisher* p = data;
  GArray* fds = g_array_new(FALSE, TRUE, sizeof(struct pollfd));
  GPtrArray* who = g_ptr_array_new();
  for (;;) {
    g_mutex_lock(&p->lock);
    if (p->stopping) {
      g_mutex_unlock(&p->lock);
      break;
    }
    g_array_set_size(fds, 2);
    g_array_index(fds, struct pollfd, 0) = (struct pollfd){.fd = p->wake_fd, .events = POLLIN};
    g_array_index(fds, struct pollfd, 1) = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
    g_ptr_array_set_size(who, 0);
    for (guint i = 0; i < p->consumers->len; ++i) {
      Consumer* c = g_ptr_array_index(p->consumers, i);
      struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
      g_array_append_val(fds, pfd);
      g_ptr_array_add(who, c);
    }
    g_mutex_unlock(&p->lock);

    if (poll((struct pollfd*)(void*)fds->data, fds->len, -1) < 0 && errno != EINTR) break;

    g_mutex_lock(&p->lock);
    struct pollfd* pf = (struct pollfd*)(void*)fds->data;
    if (pf[0].revents) {
      guint64 v;
      while (read(p->wake_fd, &v, sizeof v) > 0) {
      }
    }
    /* Only this thread removes consumers, so `who` is still valid. */
    for (guint i = 0; i < who->len; ++i) {
      Consumer* c = g_ptr_array_index(who, i);
      short rev = pf[i + 2].revents;
      if (rev == 0 && !c->dead) continue;
      if (c->dead || !consumer_read(p, c) || (rev & (POLLHUP | POLLERR))) consumer_drop(p, c);
    }
    if (pf[1].revents & POLLIN) consumer_accept(p);
    g_mutex_unlock(&p->lock);
  }
  g_array_free(fds, TRUE);
  g_ptr_array_free(who, TRUE);
  return NULL;
}

static void wake(PmmPublisher* p) {
  guint64 one = 1;
  ssize_t n = write(p->wake_fd, &one, sizeof one);
  (void)n; /* a full eventfd is awake already */
}

static int listen_at(const gchar* path, GError** error) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (path == NULL || *path == '\0' || strlen(path) >= sizeof addr.sun_path) {
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
                "socket-path must be set to a path of 1 to %zu bytes", sizeof addr.sun_path - 1);
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) goto fail;
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0) {
    if (errno != EADDRINUSE) goto fail;
    /* In use: a live pmmsink, or the file a killed one left. */
    int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    gboolean live = probe >= 0 && connect(probe, (struct sockaddr*)&addr, sizeof addr) == 0;
    if (probe >= 0) close(probe);
    if (live) {
      close(fd);
      g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_BUSY,
                  "another pmmsink is publishing at %s", path);
      return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0) goto fail;
  }
  if (listen(fd, 16) < 0) goto fail;
  return fd;
fail:;
  int err = errno;
  if (fd >= 0) close(fd);
  g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_WRITE, "cannot listen on %s: %s",
              path, g_strerror(err));
  return -1;
}

PmmPublisher* pmm_publisher_new(const gchar* socket_path, GError** error) {
  static gsize debug_once;
  if (g_once_init_enter(&debug_once)) {
    GST_DEBUG_CATEGORY_INIT(pmm_publisher_debug, "pmmpublisher", 0, "pmmsink's consumers");
    g_once_init_leave(&debug_once, 1);
  }
  int listen_fd = listen_at(socket_path, error);
  if (listen_fd < 0) return NULL;
  PmmPublisher* p = g_new0(PmmPublisher, 1);
  p->path = g_strdup(socket_path);
  p->listen_fd = listen_fd;
  p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  g_mutex_init(&p->lock);
  g_cond_init(&p->cond);
  p->consumers = g_ptr_array_new();
  p->frames = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, frame_free);
  p->thread = g_thread_new("pmmsink", publisher_thread, p);
  return p;
}

void pmm_publisher_free(PmmPublisher* p) {
  g_mutex_lock(&p->lock);
  p->stopping = TRUE;
  p->flushing = TRUE;
  g_cond_broadcast(&p->cond);
  g_mutex_unlock(&p->lock);
  wake(p);
  g_thread_join(p->thread);
  /* Pending frames keep their exports for consumers still to import them;
   * only our buffer references go. */
  for (guint i = 0; i < p->consumers->len; ++i) {
    Consumer* c = g_ptr_array_index(p->consumers, i);
    g_hash_table_destroy(c->held);
    close(c->fd);
    g_free(c);
  }
  g_ptr_array_free(p->consumers, TRUE);
  g_hash_table_destroy(p->frames);
  close(p->listen_fd);
  close(p->wake_fd);
  unlink(p->path);
  g_free(p->path);
  g_free(p->caps_text);
  g_mutex_clear(&p->lock);
  g_cond_clear(&p->cond);
  g_free(p);
}

void pmm_publisher_set_caps(PmmPublisher* p, const gchar* caps_text) {
  g_mutex_lock(&p->lock);
  g_free(p->caps_text);
  p->caps_text = g_strdup(caps_text);
  for (guint i = 0; i < p->consumers->len; ++i) {
    Consumer* c = g_ptr_array_index(p->consumers, i);
    if (!c->dead && !pmm_wire_send_caps(c->fd, caps_text)) c->dead = TRUE;
  }
  g_mutex_unlock(&p->lock);
  wake(p);
}

void pmm_publisher_send_eos(PmmPublisher* p) {
  PmmWireHeader eos = {.magic = PMM_WIRE_MAGIC, .kind = PMM_WIRE_EOS};
  g_mutex_lock(&p->lock);
  for (guint i = 0; i < p->consumers->len; ++i) {
    Consumer* c = g_ptr_array_index(p->consumers, i);
    if (!c->dead && !pmm_wire_send(c->fd, &eos, sizeof eos)) c->dead = TRUE;
  }
  g_mutex_unlock(&p->lock);
  wake(p);
}

guint pmm_publisher_consumers(PmmPublisher* p) {
  g_mutex_lock(&p->lock);
  guint n = p->consumers->len;
  g_mutex_unlock(&p->lock);
  return n;
}

gboolean pmm_publisher_wait_consumer(PmmPublisher* p) {
  g_mutex_lock(&p->lock);
  while (p->consumers->len == 0 && !p->flushing) g_cond_wait(&p->cond, &p->lock);
  gboolean ok = !p->flushing;
  g_mutex_unlock(&p->lock);
  return ok;
}

void pmm_publisher_set_flushing(PmmPublisher* p, gboolean flushing) {
  g_mutex_lock(&p->lock);
  p->flushing = flushing;
  g_cond_broadcast(&p->cond);
  g_mutex_unlock(&p->lock);
}

gboolean pmm_publisher_publish(PmmPublisher* p, GstBuffer* buffer, pmm_block* block, pmm_conn* conn,
                               PmmWireFrame* frame, guint lifetime_ms, GError** error) {
  g_mutex_lock(&p->lock);
  guint takers = 0;
  for (guint i = 0; i < p->consumers->len; ++i) {
    Consumer* c = g_ptr_array_index(p->consumers, i);
    if (!c->dead && g_hash_table_size(c->held) < PMM_PUBLISHER_MAX_HELD) ++takers;
  }
  if (takers == 0) {
    g_mutex_unlock(&p->lock);
    gst_buffer_unref(buffer);
    return TRUE;
  }
  Frame* f = g_new0(Frame, 1);
  if (pmm_export(block, takers, lifetime_ms, &f->token) != PMM_OK) {
    g_mutex_unlock(&p->lock);
    g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_WRITE,
                "pmm_export of block %" G_GUINT64_FORMAT ": %s", pmm_block_id(block),
                pmm_last_error());
    g_free(f);
    gst_buffer_unref(buffer);
    return FALSE;
  }
  f->buffer = buffer;
  f->conn = conn;
  f->max_imports = takers;
  guint64 seq = p->next_seq++;
  frame->header.magic = PMM_WIRE_MAGIC;
  frame->header.kind = PMM_WIRE_FRAME;
  frame->seq = seq;
  frame->token = f->token;
  for (guint i = 0; i < p->consumers->len; ++i) {
    Consumer* c = g_ptr_array_index(p->consumers, i);
    if (c->dead || g_hash_table_size(c->held) >= PMM_PUBLISHER_MAX_HELD) continue;
    if (!pmm_wire_send(c->fd, frame, sizeof *frame)) {
      /* A full queue means a consumer that does not keep up: it misses
       * this frame. Anything else means it has gone. */
      if (errno != EAGAIN) c->dead = TRUE;
      continue;
    }
    guint64* key = g_new(guint64, 1);
    *key = seq;
    g_hash_table_add(c->held, key);
    f->pending++;
  }
  if (f->pending == 0) {
    (void)pmm_unexport(conn, &f->token);
    frame_free(f);
  } else {
    guint64* key = g_new(guint64, 1);
    *key = seq;
    g_hash_table_insert(p->frames, key, f);
  }
  g_mutex_unlock(&p->lock);
  wake(p); /* a consumer marked dead is dropped now, not at its next message */
  return TRUE;
}
