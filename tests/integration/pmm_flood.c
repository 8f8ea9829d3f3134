/* pmm_flood — an attacker for the exhaustion tests: many connections from
 * one process (run it as uid 65534 with setpriv).
 *
 *   pmm_flood SOCKET idle N       N raw connections that never say Hello
 *   pmm_flood SOCKET sessions N   N sessions through pmm_connect
 *
 * It raises its own fd limit to the hard limit, opens what it can, prints one
 * line "connected K refused R last: MESSAGE" (MESSAGE: the last refusal's
 * text, or "-") and holds everything until its stdin closes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pmm/pmm.h"

/* The sessions it holds, until exit (a global, so LeakSanitizer sees them
 * as still in use: an attacker leaves without disconnecting on purpose). */
static pmm_conn** held;

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: pmm_flood SOCKET idle|sessions N\n");
    return 2;
  }
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
    r.rlim_cur = r.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &r);
  }
  const int idle = strcmp(argv[2], "idle") == 0;
  const int n = atoi(argv[3]);
  int connected = 0, refused = 0;
  held = calloc(n > 0 ? (size_t)n : 1, sizeof *held);
  if (held == NULL) return 2;
  char last[1100] = "-";
  for (int i = 0; i < n; ++i) {
    if (idle) {
      int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
      struct sockaddr_un a;
      memset(&a, 0, sizeof a);
      a.sun_family = AF_UNIX;
      strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
      if (fd >= 0 && connect(fd, (struct sockaddr*)&a, sizeof a) == 0) {
        ++connected; /* held, never written to */
      } else {
        ++refused;
        snprintf(last, sizeof last, "connect: %s", strerror(errno));
        if (fd >= 0) close(fd);
      }
    } else {
      pmm_conn* c = NULL;
      if (pmm_connect(argv[1], "flood", &c) == PMM_OK) {
        held[connected++] = c; /* held until exit */
      } else {
        ++refused;
        snprintf(last, sizeof last, "%s", pmm_last_error());
      }
    }
  }
  printf("connected %d refused %d last: %s\n", connected, refused, last);
  fflush(stdout);
  char buf[64];
  while (fgets(buf, sizeof buf, stdin) != NULL) {
  }
  return 0;
}
