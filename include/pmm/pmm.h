/* libpmm — the C API of pmm, the physical memory manager for user space.
 *
 * A program connects to the pmm daemon (pmmd) as a named *device*, allocates
 * blocks from shared pools, writes them through a pointer, and shares them
 * with other processes without copying: by an export token (any process that
 * may use the pool imports it), by file descriptor + offset (anything that
 * takes an fd: MIT-SHM AttachFd, wl_shm, V4L2/DRM importers), or as a
 * System V segment (shmid + offset) for blocks of a `sysv` pool.
 *
 *   pmm_conn *c;
 *   pmm_block *b;
 *   if (pmm_connect(NULL, "decoder", &c) != PMM_OK) {
 *     fprintf(stderr, "pmm: %s\n", pmm_last_error());
 *     return 1;
 *   }
 *   if (pmm_alloc(c, "general", 1 << 20, 0, 0, &b) == PMM_OK) {
 *     memset(pmm_block_ptr(b), 0xab, pmm_block_size(b));
 *     pmm_block_put(b);              // last reference: back to the pool
 *   }
 *   pmm_disconnect(c);
 *
 * Conventions (they hold for every function below):
 * - Functions that can fail return a pmm_status; PMM_OK is 0. The failure's
 *   message — what was asked, which rule refused it, what would have fit —
 *   is then available from pmm_last_error() in the same thread until the
 *   next libpmm call in that thread.
 * - Out-parameters are written only on success.
 * - Handles are opaque. A pmm_conn is thread-safe: any thread may use it and
 *   the blocks made through it, concurrently. A pmm_block belongs to its
 *   connection and must not outlive it.
 * - Reference counting: a pmm_block stands for this process's references to
 *   one block (the daemon counts references per session). pmm_block_get
 *   adds one, pmm_block_put drops one; the handle is freed by the put that
 *   drops this process's last reference. When every holder (processes,
 *   exports) has let go the block returns to its pool. If the process exits
 *   or is killed, the daemon drops all of its references.
 * - Memory: each pool's fd is received once per connection and kept; the
 *   pool is mapped once, when a block of it is first used, and pmm_block_ptr
 *   points into that mapping. The mapping stays valid while the connection
 *   is open. A mapping that fails (e.g. PMM_E_SYSTEM with ENOMEM under
 *   RLIMIT_AS) fails that call only, gives its reference back, and is tried
 *   again by the next call. A pool fd that could not be received because the
 *   process's fd table was full is reported as such ("fd table is full
 *   (RLIMIT_NOFILE n)"); the daemon sends it once, so that pool cannot be
 *   used on that connection again (connect anew), while the connection and
 *   its other pools carry on.
 * - Bounded waits: every call that talks to the daemon, pmm_connect included,
 *   waits at most the connection's timeout (5 s by default; see
 *   pmm_connect_opts). A daemon that does not answer in time (stopped, hung)
 *   gives PMM_E_TIMEOUT, whose message names the request and the wait. The
 *   request is abandoned and the connection stays usable: if the daemon
 *   carries it out later, libpmm gives back what it gave (a reference from
 *   pmm_alloc, pmm_import or pmm_block_get is put; an export or SysV export
 *   is withdrawn), and never takes its late reply for another call's. A
 *   pmm_block_put, pmm_unexport or pmm_sysv_unexport that timed out is
 *   carried out when the daemon gets to it. Threads sharing a connection do
 *   not wait for each other's replies: requests are pipelined.
 * - fork(): a child does not inherit its parent's session. Every call on a
 *   pmm_conn (or its blocks) that the child inherited fails with
 *   PMM_E_INVALID and a message saying so: connect anew in the child.
 *   pmm_disconnect of an inherited pmm_conn in the child (also through the
 *   C++ destructors of pmm.hpp) frees the child's copies of the handles,
 *   mappings and socket fd only: the parent's session and blocks are
 *   untouched. Pointers into blocks stay readable in the child until then
 *   (the mapping is inherited), but the blocks remain the parent's.
 * - ABI: only functions and opaque handles cross it, plus the plain structs
 *   below, which only grow at the end and are passed with their size.
 */
#ifndef PMM_PMM_H_
#define PMM_PMM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: pmm_alloc_opts, pmm_bufpool_*, pmm_connect_options.flags, local
 * get/put (libpmm.so version node PMM_1.2). */
#define PMM_API_VERSION 2

/* Error codes: the same numbers as pmm::Errc inside and on the wire. */
typedef enum pmm_status {
  PMM_OK = 0,
  PMM_E_INVALID = 1,      /* the request is wrong: size 0, bad alignment, bad name */
  PMM_E_NO_MEMORY = 2,    /* no free extent in any requested pool fits */
  PMM_E_LIMIT = 3,        /* a device rule (its max, others' min) or a quota ([limits]) */
  PMM_E_NOT_FOUND = 4,    /* no such pool, block or token */
  PMM_E_PERMISSION = 5,   /* this uid/gid may not use the pool or claim the device */
  PMM_E_NO_DAEMON = 6,    /* nothing listens on the socket: is pmmd running? */
  PMM_E_DISCONNECTED = 7, /* the daemon went away; the connection is dead */
  PMM_E_PROTOCOL = 8,     /* the daemon and library disagree on the protocol */
  PMM_E_UNSUPPORTED = 9,  /* valid but not possible for this pool type */
  PMM_E_SYSTEM = 10,      /* a system call failed; the message names it */
  PMM_E_EXPIRED = 11,     /* an export token that ran out of imports or time */
  PMM_E_EXISTS = 12,      /* already done (e.g. a token withdrawn twice) */
  PMM_E_TIMEOUT = 13      /* the daemon did not answer within the connection's timeout */
} pmm_status;

/* Allocation flags. */
#define PMM_ALLOC_CONTIGUOUS 0x1u /* physically contiguous (hugetlb pools with known addresses) */
#define PMM_ALLOC_ZERO 0x2u       /* zero the block before returning it */

typedef struct pmm_conn pmm_conn;
typedef struct pmm_block pmm_block;

/* A 128-bit export token: 120 random bits, and a last byte naming the pool
 * of the exported block. Its text form is 32 lowercase hex digits. */
typedef struct pmm_token {
  uint8_t bytes[16];
} pmm_token;
#define PMM_TOKEN_STRLEN 33 /* 32 hex digits and the terminating NUL */

/* What a SysV export gives a SysV-aware program (e.g. an X server through
 * MIT-SHM): attach `shmid` and use `size` bytes from `offset`. */
typedef struct pmm_sysv_segment {
  int32_t shmid;
  uint64_t offset;
  uint64_t size;
} pmm_sysv_segment;

/* The message of the last failure in this thread ("" if none). */
const char* pmm_last_error(void);
/* A short name for a status: "out of pool memory", ... */
const char* pmm_status_name(pmm_status status);

/* ---- connection ---------------------------------------------------------- */

/* Connects to pmmd. `socket_path` NULL means the default: $PMM_SOCKET, else
 * $XDG_RUNTIME_DIR/pmm/pmm.sock, else /run/pmm/pmm.sock. `device` names this
 * client for the daemon's per-device limits (NULL or "" means "default",
 * charged per uid). PMM_E_NO_DAEMON when nothing listens there;
 * PMM_E_PERMISSION when the config does not let this uid/gid claim that
 * device (the message names who may). Waits at most 5 s (see
 * pmm_connect_opts for another bound). */
pmm_status pmm_connect(const char* socket_path, const char* device, pmm_conn** out);
/* Options of pmm_connect_opts. Set `size` to sizeof(pmm_connect_options)
 * (the struct only grows at the end; libpmm reads the fields `size` covers)
 * and zero what you leave to the defaults:
 *   pmm_connect_options o = {sizeof o};
 *   o.device = "decoder";
 *   o.timeout_ms = 500;
 *   pmm_connect_opts(&o, &conn); */
typedef struct pmm_connect_options {
  size_t size;
  const char* socket_path; /* NULL: the default, as for pmm_connect */
  const char* device;      /* NULL or "": "default" */
  /* Bound on every wait of this connection, in milliseconds: connecting and
   * the handshake, then each call's request and reply. 0: 5000 (5 s). */
  uint32_t timeout_ms;
  /* PMM_CONNECT_* bits (API 2). 0: none. 64 bits wide so that it lies past
   * the size of the API 1 struct (whose padding an old caller may not have
   * zeroed). */
  uint64_t flags;
} pmm_connect_options;

/* pmm_connect_options.flags: populate each pool's mapping once, when it is
 * first mapped (MADV_POPULATE_WRITE; on kernels before 5.14 each page is
 * touched), so that no access to any block of that pool ever page-faults
 * afterwards: a stage that imports a new frame every 16 ms pays no fault
 * per 4 KiB on it. The cost is paid once per pool per connection, in the
 * call that first maps the pool (pmm_alloc, pmm_import...): page tables for
 * the WHOLE pool (about 2 MiB of them per GiB of 4 KiB pages) and, for a
 * shmem or sysv pool, every page of the pool that nobody has touched yet
 * becomes resident RAM now rather than when first written (roughly 1 ms per
 * 100 MiB on today's machines). So use it for pools sized to the frames
 * that circulate in them, not for a large general pool. hugetlb pools are
 * resident already (pmmd faults them in) and populate in a few page-table
 * entries per 2 MiB. A failure to populate (e.g. ENOMEM) fails that call as
 * a failed mapping does (see "Memory" above). */
#define PMM_CONNECT_POPULATE 0x1u

/* pmm_connect with options. PMM_E_TIMEOUT when the daemon does not accept
 * or answer the handshake within options->timeout_ms. */
pmm_status pmm_connect_opts(const pmm_connect_options* options, pmm_conn** out);

/* Closes the connection: every reference it still holds is dropped, every
 * block handle made through it is freed, the pool mappings are unmapped.
 * It returns once the daemon has closed the session (or after 2 s, or the
 * connection's timeout if shorter), so what the connection held is back in
 * its pools by then. In a fork() child, on an inherited connection, it only
 * frees the child's copies (see the conventions above). */
void pmm_disconnect(pmm_conn* conn);

/* ---- blocks -------------------------------------------------------------- */

/* Allocates `size` bytes from the first of `pools` (a comma-separated list,
 * tried in order: "dma,general"; NULL means the device's default pools) that
 * can give them, at a multiple of `alignment` (a power of two; 0 means the
 * device's default, else the pool's page size). `flags`: PMM_ALLOC_*. */
pmm_status pmm_alloc(pmm_conn* conn, const char* pools, uint64_t size, uint64_t alignment,
                     uint32_t flags, pmm_block** out);

/* Options of pmm_alloc_opts (API 2). Set `size` to sizeof(pmm_alloc_options)
 * and zero what you leave to the defaults, as for pmm_connect_options. */
typedef struct pmm_alloc_options {
  size_t size;
  const char* pools;  /* as pmm_alloc: "dma,general"; NULL: the device's default pools */
  uint64_t alignment; /* as pmm_alloc; 0: the default */
  uint32_t flags;     /* PMM_ALLOC_* */
  /* How long the daemon may keep the request waiting for memory, in
   * milliseconds; 0: do not wait (as pmm_alloc). At most
   * PMM_ALLOC_MAX_WAIT_MS. See pmm_alloc_opts. */
  uint32_t wait_ms;
} pmm_alloc_options;
#define PMM_ALLOC_MAX_WAIT_MS 60000u

/* Allocates `bytes` bytes as pmm_alloc does, but when the pools have no room
 * (PMM_E_NO_MEMORY) or a device rule or quota refuses it for now
 * (PMM_E_LIMIT), the daemon queues the request for up to options->wait_ms
 * and serves it as soon as blocks are freed, instead of refusing at once.
 * Waiting requests are served first come, first served across every
 * session: a request that still does not fit when memory is freed keeps the
 * requests behind it waiting (so a large request is not starved by a
 * stream of small ones); one refused by its own device's limits does not.
 * At the deadline the request is refused with the same code and message a
 * plain pmm_alloc would give then (what was asked, which rule refused it,
 * what would have fit), saying how long it waited. Other refusals (bad
 * size, unknown pool, no permission) come at once. The daemon bounds the
 * queue: at most 16 waiting requests per session and 1024 in all; past
 * that the request is refused with PMM_E_LIMIT saying so. A client that
 * disconnects or dies while waiting leaves the queue. The calling thread
 * waits (wait_ms plus the connection's timeout at most); other threads keep
 * using the connection meanwhile. */
pmm_status pmm_alloc_opts(pmm_conn* conn, uint64_t bytes, const pmm_alloc_options* options,
                          pmm_block** out);

/* Adds one reference. Counted in this process: no call to the daemon (the
 * daemon holds one reference for the whole process, whatever the count). */
pmm_status pmm_block_get(pmm_block* block);
/* Drops one reference; the put that drops this process's last one frees the
 * handle (and the block, if nothing else holds it). NULL is ignored. Only
 * that last put talks to the daemon, and it does not wait for the answer:
 * the Put is sent and the call returns. Should the daemon refuse it (it
 * never does for a handle libpmm made, unless the connection is lost), a
 * later call on this connection that talks to the daemon fails with that
 * error, names the block, and is not carried out: the first to start after
 * the refusal was read (the next call that waits for the daemon reads it
 * before its own answer, so it is at latest the call after). Requests of one
 * connection reach the daemon in order, so this connection's next
 * pmm_alloc finds the memory free; another connection or process told
 * "done" right after may get to the daemon first and find it still in
 * use: it can wait for it with pmm_alloc_opts (wait_ms). */
pmm_status pmm_block_put(pmm_block* block);

void* pmm_block_ptr(const pmm_block* block); /* this process's mapping */
uint64_t pmm_block_size(const pmm_block* block);
uint64_t pmm_block_id(const pmm_block* block); /* daemon-wide id, for logs and pmmctl */
/* The pool's memory fd and the block's offset in it. The fd belongs to the
 * connection: dup() it to keep it past pmm_disconnect. */
int pmm_block_fd(const pmm_block* block);
uint64_t pmm_block_offset(const pmm_block* block);
/* Physical address of the first byte, or 0 when the pool does not know it
 * or this process may not see it: pmmd tells it only to a client that could
 * read it from /proc/self/pagemap itself (uid 0 with CAP_SYS_ADMIN when it
 * connected), as the kernel does (docs/security.md). */
uint64_t pmm_block_phys(const pmm_block* block);
/* Prefaults the block in this process: fills its page tables now, in one
 * system call, so that the first writes through pmm_block_ptr do not fault
 * page by page. A stage that is about to write a whole frame calls it after
 * pmm_alloc or pmm_import; a stage that only hands the block on (to the X
 * server, to a device) should not. Contents are untouched. */
pmm_status pmm_block_prefault(pmm_block* block);
/* Name of the pool the block came from. Valid while the handle lives. */
const char* pmm_block_pool(const pmm_block* block);

/* ---- sharing ------------------------------------------------------------- */

/* Exports a block: the export holds a reference of its own until the token
 * has been imported `max_imports` times (0 means 1), is withdrawn, or
 * `lifetime_ms` has passed (0 means the daemon's default, 60 s). So a
 * producer may exit before its consumer starts. */
pmm_status pmm_export(pmm_block* block, uint32_t max_imports, uint32_t lifetime_ms, pmm_token* out);
/* Imports a token: the importer gets a reference of its own. */
pmm_status pmm_import(pmm_conn* conn, const pmm_token* token, pmm_block** out);
/* Withdraws an export and drops its reference. */
pmm_status pmm_unexport(pmm_conn* conn, const pmm_token* token);

/* Exports a block of a `sysv` pool as (shmid, offset, size); the export holds
 * a reference until pmm_sysv_unexport. PMM_E_UNSUPPORTED for other pools. */
pmm_status pmm_sysv_export(pmm_block* block, pmm_sysv_segment* out);
pmm_status pmm_sysv_unexport(pmm_block* block);

/* ---- buffer pools (API 2) ------------------------------------------------ */

/* A pmm_bufpool recycles N blocks of one size, alignment and pool list in
 * this process, as GStreamer's GstBufferPool or V4L2's REQBUFS do: acquire
 * and release are local (no daemon round trip, well under a microsecond),
 * so a stage that passes frames through a small ring never pays for an
 * allocation per frame.
 *
 *   pmm_bufpool_options o = {sizeof o};
 *   o.pools = "frames"; o.buffer_size = 1920 * 1080 * 4; o.count = 4; o.max_count = 8;
 *   pmm_bufpool *pool;
 *   pmm_bufpool_create(conn, &o, &pool);
 *   pmm_block *frame;
 *   pmm_bufpool_acquire(pool, 100, &frame);        // wait up to 100 ms for a free one
 *   ... write pmm_block_ptr(frame) ...
 *   pmm_export(frame, 1, 0, &token);               // hand it to the next stage
 *   pmm_bufpool_release(pool, frame);              // back once the importer has put it
 *
 * A buffer is a pmm_block like any other (pointer, fd, token, SysV export),
 * owned by the pool: do not pmm_block_put the reference acquire gave you
 * (extra pmm_block_get/put pairs are fine); give it back with
 * pmm_bufpool_release. A buffer exported with pmm_export after it was
 * acquired returns to the free list only when it has been released AND
 * every importer has put it and the export is gone (imported its
 * max_imports times, withdrawn or expired): the daemon tells this
 * connection when the buffer's last other holder lets go (a release
 * notification, docs/protocol.md), and the next acquire picks it up. An
 * importer that crashes drops its references as always, which counts as
 * letting go. A buffer shared by other means (its fd, a SysV export) is
 * this process's to keep track of: release it when they are done.
 *
 * Threads: a pool may be used from any thread; it belongs to its connection
 * and must be destroyed before pmm_disconnect. */
typedef struct pmm_bufpool pmm_bufpool;

typedef struct pmm_bufpool_options {
  size_t size;          /* sizeof(pmm_bufpool_options) */
  const char* pools;    /* as pmm_alloc; NULL: the device's default pools */
  uint64_t buffer_size; /* bytes per buffer (> 0) */
  uint64_t alignment;   /* as pmm_alloc; 0: the default */
  uint32_t flags;       /* PMM_ALLOC_* for every buffer */
  uint32_t count;       /* buffers allocated by pmm_bufpool_create (>= 1) */
  /* The pool grows by one buffer when acquire finds none free, up to this
   * many; 0 or count: no growth. At most PMM_BUFPOOL_MAX_BUFFERS. */
  uint32_t max_count;
} pmm_bufpool_options;
#define PMM_BUFPOOL_MAX_BUFFERS 256u

/* Allocates options->count buffers now (all or none). */
pmm_status pmm_bufpool_create(pmm_conn* conn, const pmm_bufpool_options* options,
                              pmm_bufpool** out);
/* Takes a free buffer. When none is free: grows the pool if it may (one
 * pmm_alloc), else waits up to `wait_ms` for one to be released or to come
 * back from its importers. PMM_E_TIMEOUT when none came in time (0: do not
 * wait), naming how many buffers are held here and how many by importers. */
pmm_status pmm_bufpool_acquire(pmm_bufpool* pool, uint32_t wait_ms, pmm_block** out);
/* Gives an acquired buffer back (see above for exported ones).
 * PMM_E_INVALID for a block that is not an acquired buffer of this pool. */
pmm_status pmm_bufpool_release(pmm_bufpool* pool, pmm_block* buffer);

typedef struct pmm_bufpool_stats {
  size_t size;       /* sizeof(pmm_bufpool_stats), set by the caller */
  uint32_t buffers;  /* allocated */
  uint32_t free;     /* ready for acquire */
  uint32_t acquired; /* taken and not released */
  uint32_t shared;   /* released, waiting for their importers to put them */
} pmm_bufpool_stats;
pmm_status pmm_bufpool_get_stats(pmm_bufpool* pool, pmm_bufpool_stats* out);

/* Puts every buffer of the pool (importers keep theirs: the daemon frees
 * each block when its last holder lets go) and frees the pool. Buffers
 * still acquired are freed with it: release them first. NULL is ignored. */
void pmm_bufpool_destroy(pmm_bufpool* pool);

/* Token text form: 32 lowercase hex digits; `out` has PMM_TOKEN_STRLEN bytes. */
void pmm_token_format(const pmm_token* token, char out[PMM_TOKEN_STRLEN]);
/* PMM_E_INVALID unless `text` is exactly 32 hex digits. */
pmm_status pmm_token_parse(const char* text, pmm_token* out);

#ifdef __cplusplus
}
#endif

#endif /* PMM_PMM_H_ */
