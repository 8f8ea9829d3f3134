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

#define PMM_API_VERSION 1

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

/* A 128-bit export token. Its text form is 32 lowercase hex digits. */
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
} pmm_connect_options;

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

/* Adds one reference. */
pmm_status pmm_block_get(pmm_block* block);
/* Drops one reference; the put that drops this process's last one frees the
 * handle (and the block, if nothing else holds it). NULL is ignored. */
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

/* Token text form: 32 lowercase hex digits; `out` has PMM_TOKEN_STRLEN bytes. */
void pmm_token_format(const pmm_token* token, char out[PMM_TOKEN_STRLEN]);
/* PMM_E_INVALID unless `text` is exactly 32 hex digits. */
pmm_status pmm_token_parse(const char* text, pmm_token* out);

#ifdef __cplusplus
}
#endif

#endif /* PMM_PMM_H_ */
