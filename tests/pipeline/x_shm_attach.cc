// x_shm_attach DISPLAY SHMID — asks the X server to attach SysV segment
// SHMID through MIT-SHM (read-only, as pmm-show does) and prints "ok" or
// the server's refusal; exit status 0 or 1. A separate program so a test
// can run it as another uid (setpriv): the X server checks the *client's*
// credentials against the segment's owner, group and mode.
#include <cstdio>
#include <cstdlib>

#include "common/x_display.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: x_shm_attach DISPLAY SHMID\n");
    return 2;
  }
  auto x = examples::XDisplay::connect(argv[1]);
  if (!x) {
    std::printf("cannot connect: %s\n", x.error().c_str());
    return 1;
  }
  auto seg = (*x)->attach_sysv(static_cast<int32_t>(std::strtol(argv[2], nullptr, 10)));
  if (!seg) {
    std::printf("%s\n", seg.error().c_str());
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
