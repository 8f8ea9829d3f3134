// Tests of the shmem memory type on real memfds, with a second process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "mem/region.h"
#include "os/capability.h"
#include "os/memory.h"
#include "os/numa.h"
#include "os/test_child.h"

namespace pmm::mem {
namespace {

constexpr uint64_t kSize = 1 << 20;

// Pages of [p, p+len) resident in memory (mincore).
size_t resident_pages(const std::byte* p, size_t len) {
  const size_t page = 4096;
  std::vector<unsigned char> vec(len / page);
  if (::mincore(const_cast<std::byte*>(p), len, vec.data()) != 0) return 0;
  size_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}

// VmLck from /proc/self/status, in KiB.
uint64_t locked_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmLck:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

TEST(MemShmem, AnotherProcessMapsTheSameMemoryThroughItsOwnMapping) {
  auto r = make_region("shmem-share", RegionOptions{.size = kSize + 1});
  ASSERT_TRUE(r) << r.error().describe();
  const Region& region = **r;
  EXPECT_EQ(region.type(), MemoryType::kShmem);
  EXPECT_EQ(region.size(), kSize + 4096);  // rounded up to the page size
  EXPECT_EQ(region.page_size(), 4096u);
  EXPECT_GE(region.fd(), 0);
  EXPECT_EQ(region.shmid(), -1);
  EXPECT_TRUE(region.runs().empty());
  std::memcpy(region.data() + 100000, "from the daemon", 15);

  // The child opens the memfd afresh through /proc/<pid>/fd, as a process
  // that received it would, and maps it: a separate mapping of the same pages.
  const std::string path = fmt::format("/proc/{}/fd/{}", ::getpid(), region.fd());
  const uint64_t size = region.size();
  auto child = os::testing::run_in_child([&] {
    os::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) return std::string("cannot open ") + path;
    auto m = os::map_shared(fd.get(), size);
    if (!m) return m.error().describe();
    if (std::memcmp(m->data() + 100000, "from the daemon", 15) != 0)
      return std::string("child read other bytes");
    std::memcpy(m->data() + size - 16, "from the child", 14);
    return std::string();
  });
  ASSERT_EQ(child, "");
  EXPECT_EQ(std::memcmp(region.data() + size - 16, "from the child", 14), 0);
}

TEST(MemShmem, NoClientCanResizeThePool) {
  auto r = make_region("shmem-seal", RegionOptions{.size = kSize});
  ASSERT_TRUE(r);
  EXPECT_EQ(os::get_seals((*r)->fd()).value(), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  auto shrink = os::resize((*r)->fd(), kSize / 2);
  ASSERT_FALSE(shrink);
  EXPECT_EQ(shrink.error().sys_errno, EPERM);
  auto grow = os::resize((*r)->fd(), kSize * 2);
  ASSERT_FALSE(grow);
  EXPECT_EQ(grow.error().sys_errno, EPERM);
  EXPECT_FALSE(os::add_seals((*r)->fd(), F_SEAL_WRITE));  // F_SEAL_SEAL: no more seals
}

TEST(MemShmem, PagesComeOnFirstTouchUnlessPopulated) {
  auto lazy = make_region("shmem-lazy", RegionOptions{.size = kSize});
  ASSERT_TRUE(lazy);
  EXPECT_EQ(resident_pages((*lazy)->data(), kSize), 0u);
  auto eager = make_region("shmem-eager", RegionOptions{.size = kSize, .populate = true});
  ASSERT_TRUE(eager);
  EXPECT_EQ(resident_pages((*eager)->data(), kSize), kSize / 4096);
}

TEST(MemShmem, LockKeepsEveryPageInRam) {
  const uint64_t before = locked_kib();
  auto r = make_region("shmem-lock", RegionOptions{.size = kSize, .lock = true});
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(resident_pages((*r)->data(), kSize), kSize / 4096);
  EXPECT_EQ(locked_kib(), before + kSize / 1024);
  r->reset();
  EXPECT_EQ(locked_kib(), before);
}

TEST(MemShmem, LockBeyondRlimitMemlockNamesTheLimit) {
  // As a daemon without CAP_IPC_LOCK and with a 64 KiB allowance would.
  auto child = os::testing::run_in_child([] {
    if (auto s = os::drop_capability(CAP_IPC_LOCK); !s) return s.error().describe();
    rlimit rl{64 << 10, 64 << 10};
    if (::setrlimit(RLIMIT_MEMLOCK, &rl) != 0) return std::string("setrlimit failed");
    auto r = make_region("shmem-rlimit", RegionOptions{.size = kSize, .lock = true});
    if (r) return std::string("locking 1 MiB succeeded under a 64 KiB RLIMIT_MEMLOCK");
    return r.error().message;
  });
  EXPECT_NE(child.find("shmem pool shmem-rlimit: mlock("), std::string::npos) << child;
  EXPECT_NE(child.find(", 1048576) failed: Cannot allocate memory (errno 12); locking needs "
                       "1048576 bytes within RLIMIT_MEMLOCK, which is 65536 bytes (raise it "
                       "with `ulimit -l`, LimitMEMLOCK= in the systemd unit, or give pmmd "
                       "CAP_IPC_LOCK)"),
            std::string::npos)
      << child;
}

TEST(MemShmem, BindsToANumaNodeAndRefusesOneThatDoesNotExist) {
  const auto nodes = os::online_numa_nodes().value();
  auto r = make_region("shmem-numa",
                       RegionOptions{.size = kSize, .numa_node = nodes.back(), .populate = true});
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(os::node_of_address((*r)->data()).value(), nodes.back());
  EXPECT_EQ(os::node_of_address((*r)->data() + kSize - 1).value(), nodes.back());

  auto bad = make_region("shmem-numa", RegionOptions{.size = kSize, .numa_node = 64});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message,
            fmt::format("shmem pool shmem-numa: NUMA node 64 does not exist; the nodes online "
                        "are {} (/sys/devices/system/node/online)",
                        os::format_node_list(nodes)));
  auto neg = make_region("shmem-numa", RegionOptions{.size = kSize, .numa_node = -1});
  ASSERT_FALSE(neg);
  EXPECT_NE(neg.error().message.find("NUMA node -1 is negative"), std::string::npos);
}

}  // namespace
}  // namespace pmm::mem
