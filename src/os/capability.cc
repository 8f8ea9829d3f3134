// Implementation of os/capability.h with raw capget/capset (version 3:
// two 32-bit words per set).
#include "os/capability.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "os/sys_error.h"

namespace pmm::os {
namespace {

bool read_caps(__user_cap_data_struct (&data)[2]) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capget, &hdr, data) == 0;
}

}  // namespace

bool has_capability(int cap) {
  __user_cap_data_struct data[2] = {};
  if (cap < 0 || cap >= 64 || !read_caps(data)) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

Status drop_capability(int cap) {
  if (cap < 0 || cap >= 64)
    return fail(Errc::kInvalidArgument, "capability {} is out of range 0..63", cap);
  __user_cap_data_struct data[2] = {};
  if (!read_caps(data)) return sys_fail(errno, "capget()");
  const unsigned bit = 1u << (cap % 32);
  auto& d = data[cap / 32];
  d.effective &= ~bit;
  d.permitted &= ~bit;
  d.inheritable &= ~bit;
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  if (::syscall(SYS_capset, &hdr, data) != 0) return sys_fail(errno, "capset(drop {})", cap);
  return {};
}

}  // namespace pmm::os
