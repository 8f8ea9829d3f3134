/* pmm_agent — a scriptable pmm client for the integration tests.
 *
 * Each agent is a real, separate process that talks to pmmd only through the
 * public C API (so this file is also the C API compiled as C). It connects
 * once, then reads one command per line from stdin and answers one line on
 * stdout: "ok ..." or "err CODE message". Blocks are named by small handle
 * numbers local to the agent.
 *
 *   pmm_agent SOCKET DEVICE
 *   alloc POOLS SIZE [ALIGN [FLAGS]]   -> ok H
 *   fill H BYTE | check H BYTE          -> ok            (every byte == BYTE)
 *   export H IMPORTS LIFETIME_MS        -> ok TOKEN
 *   import TOKEN                        -> ok H
 *   get H | put H | unexport TOKEN      -> ok
 *   sysv H                              -> ok SHMID OFFSET SIZE
 *   info H                              -> ok ID SIZE OFFSET PHYS POOL
 *   flood POOLS SIZE N                  -> ok N | err CODE after K: message
 *       (N more blocks, kept outside the handles, until the first refusal)
 *   exportall N LIFETIME_MS             -> ok N | err CODE after K: message
 *       (exports the flooded blocks in turn, one import each)
 *   sysvall                             -> ok K | err CODE after K: message
 *       (a SysV export of every flooded block)
 *   punch H                             -> ok   (fallocate PUNCH_HOLE of the block's
 *                                                range through the pool fd: what any
 *                                                client of a memfd pool can do)
 *   allocwait POOLS SIZE WAIT_MS        -> ok H   (pmm_alloc_opts: the daemon may queue it)
 *   getn H N                            -> ok     (N more local references)
 *   getput H THREADS ITERS              -> ok     (THREADS threads, each ITERS get+put pairs)
 *   quit                                -> (exits 0; EOF does the same)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmm/pmm.h"

#define MAX_BLOCKS 1024

static pmm_block* blocks[MAX_BLOCKS];
static int n_blocks;

static void reply_err(pmm_status s) { printf("err %d %s\n", (int)s, pmm_last_error()); }

/* Blocks of "flood": as many as the daemon lends, for the quota tests. */
static pmm_block** flooded;
static size_t n_flooded, cap_flooded;

static void reply_count(pmm_status s, unsigned long long done) {
  if (s == PMM_OK)
    printf("ok %llu\n", done);
  else
    printf("err %d after %llu: %s\n", (int)s, done, pmm_last_error());
}

static void flood(pmm_conn* conn, const char* pools, uint64_t size, unsigned long long n) {
  pmm_status s = PMM_OK;
  unsigned long long done = 0;
  for (; done < n; done++) {
    pmm_block* b = NULL;
    if (n_flooded == cap_flooded) {
      size_t cap = cap_flooded ? cap_flooded * 2 : 1024;
      pmm_block** grown = realloc(flooded, cap * sizeof *grown);
      if (grown == NULL) {
        printf("err -1 after %llu: out of memory in the agent\n", done);
        return;
      }
      flooded = grown;
      cap_flooded = cap;
    }
    s = pmm_alloc(conn, pools, size, 0, 0, &b);
    if (s != PMM_OK) break;
    flooded[n_flooded++] = b;
  }
  reply_count(s, done);
}

static void export_all(unsigned long long n, uint32_t lifetime_ms) {
  pmm_status s = PMM_OK;
  unsigned long long done = 0;
  for (; done < n && n_flooded > 0; done++) {
    pmm_token t;
    s = pmm_export(flooded[done % n_flooded], 1, lifetime_ms, &t);
    if (s != PMM_OK) break;
  }
  reply_count(s, done);
}

static void sysv_all(void) {
  pmm_status s = PMM_OK;
  unsigned long long done = 0;
  for (; done < n_flooded; done++) {
    pmm_sysv_segment seg;
    s = pmm_sysv_export(flooded[done], &seg);
    if (s != PMM_OK) break;
  }
  reply_count(s, done);
}

static int add_block(pmm_block* b) {
  if (n_blocks == MAX_BLOCKS) return -1;
  blocks[n_blocks] = b;
  return n_blocks++;
}

static pmm_block* block_arg(const char* s) {
  long h = s ? strtol(s, NULL, 10) : -1;
  if (h < 0 || h >= n_blocks || blocks[h] == NULL) return NULL;
  return blocks[h];
}

/* getput: threads hammering local get/put on one handle. */
struct getput_arg {
  pmm_block* block;
  unsigned long iters;
  int failures;
};

static void* getput_thread(void* p) {
  struct getput_arg* a = p;
  for (unsigned long i = 0; i < a->iters; i++) {
    if (pmm_block_get(a->block) != PMM_OK) a->failures++;
    if (pmm_block_put(a->block) != PMM_OK) a->failures++;
  }
  return NULL;
}

static void getput(pmm_block* b, int threads, unsigned long iters) {
  pthread_t tid[64];
  struct getput_arg args[64];
  int failures = 0;
  if (threads < 1 || threads > 64) {
    printf("err -1 threads must be 1 to 64\n");
    return;
  }
  for (int i = 0; i < threads; i++) {
    args[i] = (struct getput_arg){b, iters, 0};
    pthread_create(&tid[i], NULL, getput_thread, &args[i]);
  }
  for (int i = 0; i < threads; i++) {
    pthread_join(tid[i], NULL);
    failures += args[i].failures;
  }
  if (failures == 0)
    printf("ok\n");
  else
    printf("err -1 %d get/put calls failed\n", failures);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: pmm_agent SOCKET DEVICE\n");
    return 2;
  }
  pmm_conn* conn = NULL;
  pmm_status s = pmm_connect(argv[1], argv[2], &conn);
  if (s != PMM_OK) {
    reply_err(s);
    return 3;
  }
  printf("ready\n");
  fflush(stdout);

  char line[512];
  while (fgets(line, sizeof line, stdin) != NULL) {
    char* save = NULL;
    const char* cmd = strtok_r(line, " \n", &save);
    const char* a1 = strtok_r(NULL, " \n", &save);
    const char* a2 = strtok_r(NULL, " \n", &save);
    const char* a3 = strtok_r(NULL, " \n", &save);
    const char* a4 = strtok_r(NULL, " \n", &save);
    if (cmd == NULL) continue;
    if (strcmp(cmd, "quit") == 0) break;

    if (strcmp(cmd, "flood") == 0 && a1 && a2 && a3) {
      flood(conn, a1, strtoull(a2, NULL, 0), strtoull(a3, NULL, 0));
    } else if (strcmp(cmd, "exportall") == 0 && a1 && a2) {
      export_all(strtoull(a1, NULL, 0), (uint32_t)strtoul(a2, NULL, 0));
    } else if (strcmp(cmd, "sysvall") == 0) {
      sysv_all();
    } else if (strcmp(cmd, "alloc") == 0 && a1 && a2) {
      pmm_block* b = NULL;
      s = pmm_alloc(conn, a1, strtoull(a2, NULL, 0), a3 ? strtoull(a3, NULL, 0) : 0,
                    a4 ? (uint32_t)strtoul(a4, NULL, 0) : 0, &b);
      if (s == PMM_OK)
        printf("ok %d\n", add_block(b));
      else
        reply_err(s);
    } else if (strcmp(cmd, "allocwait") == 0 && a1 && a2 && a3) {
      pmm_block* b = NULL;
      pmm_alloc_options o;
      memset(&o, 0, sizeof o);
      o.size = sizeof o;
      o.pools = a1;
      o.wait_ms = (uint32_t)strtoul(a3, NULL, 0);
      s = pmm_alloc_opts(conn, strtoull(a2, NULL, 0), &o, &b);
      if (s == PMM_OK)
        printf("ok %d\n", add_block(b));
      else
        reply_err(s);
    } else if (strcmp(cmd, "import") == 0 && a1) {
      pmm_token t;
      pmm_block* b = NULL;
      s = pmm_token_parse(a1, &t);
      if (s == PMM_OK) s = pmm_import(conn, &t, &b);
      if (s == PMM_OK)
        printf("ok %d\n", add_block(b));
      else
        reply_err(s);
    } else if (strcmp(cmd, "unexport") == 0 && a1) {
      pmm_token t;
      s = pmm_token_parse(a1, &t);
      if (s == PMM_OK) s = pmm_unexport(conn, &t);
      if (s == PMM_OK)
        printf("ok\n");
      else
        reply_err(s);
    } else {
      pmm_block* b = block_arg(a1);
      if (b == NULL) {
        printf("err -1 no such handle or unknown command: %s\n", cmd);
      } else if (strcmp(cmd, "fill") == 0 && a2) {
        memset(pmm_block_ptr(b), (int)strtol(a2, NULL, 0), pmm_block_size(b));
        printf("ok\n");
      } else if (strcmp(cmd, "check") == 0 && a2) {
        const unsigned char* p = pmm_block_ptr(b);
        unsigned char want = (unsigned char)strtol(a2, NULL, 0);
        uint64_t i, n = pmm_block_size(b);
        for (i = 0; i < n && p[i] == want; i++) {
        }
        if (i == n)
          printf("ok\n");
        else
          printf("err -1 byte %llu is %u, not %u\n", (unsigned long long)i, p[i], want);
      } else if (strcmp(cmd, "export") == 0 && a2 && a3) {
        pmm_token t;
        char text[PMM_TOKEN_STRLEN];
        s = pmm_export(b, (uint32_t)strtoul(a2, NULL, 0), (uint32_t)strtoul(a3, NULL, 0), &t);
        if (s == PMM_OK) {
          pmm_token_format(&t, text);
          printf("ok %s\n", text);
        } else {
          reply_err(s);
        }
      } else if (strcmp(cmd, "get") == 0) {
        s = pmm_block_get(b);
        if (s == PMM_OK)
          printf("ok\n");
        else
          reply_err(s);
      } else if (strcmp(cmd, "getn") == 0 && a2) {
        unsigned long n = strtoul(a2, NULL, 0);
        s = PMM_OK;
        for (unsigned long i = 0; i < n && s == PMM_OK; i++) s = pmm_block_get(b);
        if (s == PMM_OK)
          printf("ok\n");
        else
          reply_err(s);
      } else if (strcmp(cmd, "getput") == 0 && a2 && a3) {
        getput(b, atoi(a2), strtoul(a3, NULL, 0));
      } else if (strcmp(cmd, "put") == 0) {
        /* The handle dies with this process's last reference; the test
         * tracks counts, so forget it only when told to with "put H last". */
        s = pmm_block_put(b);
        if (s == PMM_OK && a2 && strcmp(a2, "last") == 0) blocks[strtol(a1, NULL, 10)] = NULL;
        if (s == PMM_OK)
          printf("ok\n");
        else
          reply_err(s);
      } else if (strcmp(cmd, "sysv") == 0) {
        pmm_sysv_segment seg;
        s = pmm_sysv_export(b, &seg);
        if (s == PMM_OK)
          printf("ok %d %llu %llu\n", seg.shmid, (unsigned long long)seg.offset,
                 (unsigned long long)seg.size);
        else
          reply_err(s);
      } else if (strcmp(cmd, "punch") == 0) {
        if (fallocate(pmm_block_fd(b), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)pmm_block_offset(b), (off_t)pmm_block_size(b)) == 0)
          printf("ok\n");
        else
          printf("err -1 fallocate: %s\n", strerror(errno));
      } else if (strcmp(cmd, "info") == 0) {
        printf("ok %llu %llu %llu %llu %s\n", (unsigned long long)pmm_block_id(b),
               (unsigned long long)pmm_block_size(b), (unsigned long long)pmm_block_offset(b),
               (unsigned long long)pmm_block_phys(b), pmm_block_pool(b));
      } else {
        printf("err -1 unknown command: %s\n", cmd);
      }
    }
    fflush(stdout);
  }
  pmm_disconnect(conn);
  return 0;
}
