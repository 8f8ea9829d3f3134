/* c_api_test — libpmm's C API used from C, compiled as C11 and linked
 * against libpmm.so, as an installed program would use it.
 *
 *   client_c_api_test [PMMD]
 *
 * Without arguments it checks what needs no daemon: PMM_E_NO_DAEMON with a
 * useful message, tokens, NULL arguments. With the path of the pmmd binary
 * it also starts real daemons on private sockets (a config in a mkdtemp
 * directory) and checks allocation, sharing across connections, reference
 * counting, exports, SysV export, and what a client sees when pmmd is killed.
 * Prints one line per failed check; exit status 1 if any failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pmm/pmm.h"

static int failures;

#define CHECK(cond)                                                                               \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; pmm_last_error: %s\n", __FILE__, __LINE__, #cond, \
              pmm_last_error());                                                                  \
      ++failures;                                                                                 \
    }                                                                                             \
  } while (0)
#define CHECK_OK(call) CHECK((call) == PMM_OK)

static const unsigned long long kMiB = 1ull << 20;

/* ---- a real pmmd on a private socket ------------------------------------ */

struct daemon {
  pid_t pid;
  char dir[64];
  char socket[128];
};

static const char kConfig[] =
    "[pools.general]\n"
    "type = \"shmem\"\n"
    "size = \"16MiB\"\n"
    "[pools.display]\n"
    "type = \"sysv\"\n"
    "size = \"4MiB\"\n";

static int start_daemon(const char* pmmd, struct daemon* d) {
  char config[128];
  FILE* f;
  int i;
  strcpy(d->dir, "/tmp/pmm-c-api-XXXXXX");
  if (mkdtemp(d->dir) == NULL) return -1;
  snprintf(d->socket, sizeof d->socket, "%s/pmm.sock", d->dir);
  snprintf(config, sizeof config, "%s/pmmd.toml", d->dir);
  f = fopen(config, "w");
  if (f == NULL) return -1;
  fputs(kConfig, f);
  fclose(f);
  d->pid = fork();
  if (d->pid == 0) {
    char log[128];
    int fd;
    snprintf(log, sizeof log, "%s/pmmd.log", d->dir);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 2);
    execl(pmmd, pmmd, "--socket", d->socket, "--config", config, (char*)NULL);
    fprintf(stderr, "exec %s: %s\n", pmmd, strerror(errno));
    _exit(127);
  }
  /* Ready when a connection succeeds; 20 s at most. */
  for (i = 0; i < 2000; ++i) {
    pmm_conn* c;
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    if (pmm_connect(d->socket, "probe", &c) == PMM_OK) {
      pmm_disconnect(c);
      return 0;
    }
    if (waitpid(d->pid, NULL, WNOHANG) == d->pid) return -1;
    nanosleep(&ten_ms, NULL);
  }
  return -1;
}

/* Stops the daemon; when a check failed, shows its log. */
static void stop_daemon(struct daemon* d, int sig) {
  char cmd[160];
  if (d->pid > 0) {
    kill(d->pid, sig);
    waitpid(d->pid, NULL, 0);
    d->pid = -1;
  }
  if (failures) {
    snprintf(cmd, sizeof cmd, "cat '%s/pmmd.log' >&2", d->dir);
    if (system(cmd) != 0) fprintf(stderr, "no log in %s\n", d->dir);
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d->dir);
}

/* ---- without a daemon ---------------------------------------------------- */

static void test_no_daemon(void) {
  pmm_conn* c = (pmm_conn*)0x1; /* must stay untouched on failure */
  CHECK(pmm_connect("/tmp/pmm-c-api-nowhere/pmm.sock", "dev", &c) == PMM_E_NO_DAEMON);
  CHECK(c == (pmm_conn*)0x1);
  CHECK(strstr(pmm_last_error(), "/tmp/pmm-c-api-nowhere/pmm.sock") != NULL);
  CHECK(strstr(pmm_last_error(), "is pmmd running?") != NULL);
  CHECK(strcmp(pmm_status_name(PMM_E_NO_DAEMON), "daemon not running") == 0);
  CHECK(strcmp(pmm_status_name(PMM_OK), "ok") == 0);
}

static void test_tokens(void) {
  pmm_token t, back;
  char text[PMM_TOKEN_STRLEN];
  int i;
  for (i = 0; i < 16; ++i) t.bytes[i] = (uint8_t)(i * 17);
  pmm_token_format(&t, text);
  CHECK(strcmp(text, "00112233445566778899aabbccddeeff") == 0);
  CHECK_OK(pmm_token_parse(text, &back));
  CHECK(memcmp(&t, &back, sizeof t) == 0);
  CHECK_OK(pmm_token_parse("00112233445566778899AABBCCDDEEFF", &back));
  CHECK(memcmp(&t, &back, sizeof t) == 0);

  CHECK(pmm_token_parse("0123", &back) == PMM_E_INVALID);
  CHECK(strstr(pmm_last_error(), "32 hex digits") != NULL);
  CHECK(pmm_token_parse("00112233445566778899aabbccddeeff0", &back) == PMM_E_INVALID);
  CHECK(pmm_token_parse("00112233445566778899aabbccddeefg", &back) == PMM_E_INVALID);
  CHECK(strstr(pmm_last_error(), "('g') is not a hex digit") != NULL);
  CHECK(pmm_token_parse(NULL, &back) == PMM_E_INVALID);
}

static void test_null_arguments(void) {
  pmm_block* b = NULL;
  CHECK(pmm_alloc(NULL, "general", 4096, 0, 0, &b) == PMM_E_INVALID);
  CHECK(pmm_block_get(NULL) == PMM_E_INVALID);
  CHECK_OK(pmm_block_put(NULL)); /* documented: ignored */
  CHECK(pmm_block_ptr(NULL) == NULL);
  CHECK(pmm_block_fd(NULL) == -1);
  pmm_disconnect(NULL);
}

/* ---- with a real daemon -------------------------------------------------- */

static void test_alloc_share_and_references(const char* sock) {
  pmm_conn *a, *b;
  pmm_block *x, *y, *y2, *big;
  pmm_token token;
  unsigned char* p;
  unsigned char* q;
  void* via_fd;
  CHECK_OK(pmm_connect(sock, "producer", &a));
  CHECK_OK(pmm_connect(sock, "consumer", &b));
  if (failures) return;

  CHECK_OK(pmm_alloc(a, "general", kMiB, 0, PMM_ALLOC_ZERO, &x));
  if (failures) return;
  p = pmm_block_ptr(x);
  CHECK(pmm_block_size(x) >= kMiB);
  CHECK(p[0] == 0 && p[kMiB - 1] == 0);
  CHECK(strcmp(pmm_block_pool(x), "general") == 0);
  memset(p, 0xab, kMiB);

  /* The fd + offset reach the same memory (what MIT-SHM AttachFd uses). */
  via_fd = mmap(NULL, kMiB, PROT_READ, MAP_SHARED, pmm_block_fd(x), (off_t)pmm_block_offset(x));
  CHECK(via_fd != MAP_FAILED);
  if (via_fd != MAP_FAILED) {
    CHECK(((unsigned char*)via_fd)[kMiB - 1] == 0xab);
    munmap(via_fd, kMiB);
  }

  /* Shared with a second connection: two imports allowed. */
  CHECK_OK(pmm_export(x, 2, 0, &token));
  CHECK_OK(pmm_import(b, &token, &y));
  if (failures) return;
  q = pmm_block_ptr(y);
  CHECK(pmm_block_id(y) == pmm_block_id(x));
  CHECK(q[12345] == 0xab);
  q[0] = 0x11;
  CHECK(p[0] == 0x11);
  /* A second import on the same connection is the same handle, +1. */
  CHECK_OK(pmm_import(b, &token, &y2));
  CHECK(y2 == y);
  /* The third import is refused: the export allowed two. */
  CHECK(pmm_import(b, &token, &y2) != PMM_OK);
  CHECK_OK(pmm_block_put(y));
  CHECK(((unsigned char*)pmm_block_ptr(y))[0] == 0x11); /* one reference left */
  CHECK_OK(pmm_block_put(y));

  /* References keep a block: fill the pool with one, drop it, fill again. */
  CHECK_OK(pmm_alloc(a, "general", 12 * kMiB, 0, 0, &big));
  CHECK(pmm_alloc(b, "general", 12 * kMiB, 0, 0, &y) == PMM_E_NO_MEMORY);
  CHECK(strlen(pmm_last_error()) > 0);
  CHECK_OK(pmm_block_get(big));
  CHECK_OK(pmm_block_put(big));
  CHECK(pmm_alloc(b, "general", 12 * kMiB, 0, 0, &y) == PMM_E_NO_MEMORY); /* still held */
  CHECK_OK(pmm_block_put(big));
  /* That last put went without waiting for the daemon, so another
   * connection may get there first: it waits (bounded) for the memory. */
  {
    pmm_alloc_options wait;
    memset(&wait, 0, sizeof wait);
    wait.size = sizeof wait;
    wait.pools = "general";
    wait.wait_ms = 5000;
    CHECK_OK(pmm_alloc_opts(b, 12 * kMiB, &wait, &y));
  }
  /* pmm_disconnect drops what b still holds: the pool has room again. */
  pmm_disconnect(b);
  CHECK_OK(pmm_alloc(a, "general", 12 * kMiB, 0, 0, &big));

  /* A withdrawn export cannot be imported. */
  CHECK_OK(pmm_export(x, 1, 0, &token));
  CHECK_OK(pmm_unexport(a, &token));
  CHECK(pmm_import(a, &token, &y) != PMM_OK);
  CHECK(pmm_unexport(a, &token) != PMM_OK);

  CHECK(pmm_alloc(a, "general,,display", 4096, 0, 0, &y) == PMM_E_INVALID);
  CHECK(strstr(pmm_last_error(), "empty") != NULL);
  CHECK(pmm_alloc(a, "general", 4096, 0, 0x80, &y) == PMM_E_INVALID);
  pmm_disconnect(a); /* frees x and big without a put */
}

static void test_sysv_export(const char* sock) {
  pmm_conn* c;
  pmm_block *s, *m;
  pmm_sysv_segment seg;
  unsigned char* at;
  CHECK_OK(pmm_connect(sock, "display", &c));
  if (failures) return;
  CHECK_OK(pmm_alloc(c, "display", 64 * 1024, 0, 0, &s));
  if (failures) return;
  memset(pmm_block_ptr(s), 0x5c, 64 * 1024);
  CHECK_OK(pmm_sysv_export(s, &seg));
  CHECK(seg.shmid >= 0 && seg.offset == pmm_block_offset(s) && seg.size == pmm_block_size(s));
  at = shmat(seg.shmid, NULL, SHM_RDONLY);
  CHECK(at != (void*)-1);
  if (at != (void*)-1) {
    CHECK(at[seg.offset] == 0x5c && at[seg.offset + seg.size - 1] == 0x5c);
    shmdt(at);
  }
  CHECK_OK(pmm_sysv_unexport(s));
  CHECK_OK(pmm_block_put(s));

  CHECK_OK(pmm_alloc(c, "general", 4096, 0, 0, &m));
  CHECK(pmm_sysv_export(m, &seg) == PMM_E_UNSUPPORTED);
  CHECK_OK(pmm_block_put(m));
  pmm_disconnect(c);
}

static void test_daemon_killed(const char* pmmd) {
  struct daemon d;
  pmm_conn* c;
  pmm_block *b, *b2;
  char first[1024];
  if (start_daemon(pmmd, &d) != 0) {
    fprintf(stderr, "could not start %s\n", pmmd);
    ++failures;
    return;
  }
  CHECK_OK(pmm_connect(d.socket, "victim", &c));
  CHECK_OK(pmm_alloc(c, "general", 4096, 0, 0, &b));
  if (failures) return;
  kill(d.pid, SIGKILL);
  waitpid(d.pid, NULL, 0);
  d.pid = -1;
  /* Not SIGPIPE: the call returns, and says what happened. */
  CHECK(pmm_alloc(c, "general", 4096, 0, 0, &b2) == PMM_E_DISCONNECTED);
  CHECK(strstr(pmm_last_error(), d.socket) != NULL);
  snprintf(first, sizeof first, "%s", pmm_last_error());
  CHECK(pmm_block_get(b) == PMM_E_DISCONNECTED);
  CHECK(strcmp(first, pmm_last_error()) == 0);
  CHECK(pmm_block_put(b) == PMM_E_DISCONNECTED); /* and the handle is freed */
  pmm_disconnect(c);
  stop_daemon(&d, SIGTERM);
}

/* pmm_bufpool from C: create, acquire, release, stats, the wait, destroy. */
static void test_bufpool(const char* sock) {
  pmm_conn* c;
  pmm_bufpool* pool = NULL;
  pmm_bufpool_options o;
  pmm_bufpool_stats st;
  pmm_block *a, *b, *none;
  CHECK_OK(pmm_connect(sock, "bufpool", &c));
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.pools = "general";
  o.buffer_size = 65536;
  o.count = 2;
  CHECK(pmm_bufpool_create(c, &o, NULL) == PMM_E_INVALID);
  o.count = PMM_BUFPOOL_MAX_BUFFERS + 1;
  CHECK(pmm_bufpool_create(c, &o, &pool) == PMM_E_INVALID);
  CHECK(strstr(pmm_last_error(), "PMM_BUFPOOL_MAX_BUFFERS") != NULL);
  o.count = 2;
  CHECK_OK(pmm_bufpool_create(c, &o, &pool));
  CHECK_OK(pmm_bufpool_acquire(pool, 0, &a));
  CHECK_OK(pmm_bufpool_acquire(pool, 0, &b));
  CHECK(a != b && pmm_block_size(a) == 65536);
  CHECK(pmm_bufpool_acquire(pool, 10, &none) == PMM_E_TIMEOUT);
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  CHECK_OK(pmm_bufpool_get_stats(pool, &st));
  CHECK(st.buffers == 2 && st.acquired == 2 && st.free == 0);
  CHECK_OK(pmm_bufpool_release(pool, b));
  CHECK_OK(pmm_bufpool_acquire(pool, 0, &none));
  CHECK(none == b);
  CHECK_OK(pmm_bufpool_release(pool, a));
  CHECK_OK(pmm_bufpool_release(pool, b));
  pmm_bufpool_destroy(pool);
  pmm_disconnect(c);
}

/* pmm_connect_opts from C: the size convention, and the options in use. */
static void test_connect_opts(const char* sock) {
  pmm_conn* c = (pmm_conn*)0x1;
  pmm_connect_options o;
  memset(&o, 0, sizeof o);
  CHECK(pmm_connect_opts(&o, &c) == PMM_E_INVALID); /* size left 0 */
  CHECK(strstr(pmm_last_error(), "sizeof(pmm_connect_options)") != NULL);
  CHECK(pmm_connect_opts(NULL, &c) == PMM_E_INVALID);
  CHECK(c == (pmm_conn*)0x1);
  o.size = sizeof o;
  o.socket_path = "/tmp/pmm-c-api-nowhere/pmm.sock";
  CHECK(pmm_connect_opts(&o, &c) == PMM_E_NO_DAEMON);
  CHECK(strcmp(pmm_status_name(PMM_E_TIMEOUT), "timed out") == 0);
  if (sock == NULL) return;
  o.socket_path = sock;
  o.device = "opts";
  o.timeout_ms = 1000;
  CHECK_OK(pmm_connect_opts(&o, &c));
  pmm_block* b;
  CHECK_OK(pmm_alloc(c, "general", 4096, 0, 0, &b));
  CHECK_OK(pmm_block_put(b));
  pmm_disconnect(c);
  /* A caller built against a header whose struct ended after socket_path:
   * the fields it does not know of take their defaults. */
  o.size = offsetof(pmm_connect_options, device);
  o.device = (const char*)0x1; /* beyond `size`: never read */
  CHECK_OK(pmm_connect_opts(&o, &c));
  pmm_disconnect(c);
}

int main(int argc, char** argv) {
  test_no_daemon();
  test_tokens();
  test_null_arguments();
  test_connect_opts(NULL);
  if (argc > 1) {
    struct daemon d;
    if (start_daemon(argv[1], &d) != 0) {
      fprintf(stderr, "could not start %s on %s\n", argv[1], d.socket);
      return 1;
    }
    test_alloc_share_and_references(d.socket);
    test_sysv_export(d.socket);
    test_connect_opts(d.socket);
    test_bufpool(d.socket);
    stop_daemon(&d, SIGTERM);
    test_daemon_killed(argv[1]);
  } else {
    printf("no pmmd given: only the checks that need no daemon ran\n");
  }
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}
