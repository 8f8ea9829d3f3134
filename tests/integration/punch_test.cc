// Integration: a client punches holes in a pool through the pool fd it was
// given (fallocate(FALLOC_FL_PUNCH_HOLE), as uid 65534 through setpriv),
// then another client asks for a zeroed block over the hole. Before the fix
// pmmd died of SIGBUS in its memset and kept reporting the punched page's
// old physical address. Now: pmmd lives, the block is refilled and zeroed
// or refused with a reason, its physical address is the page's real one or
// unknown (0), `pmmctl pools` says the pool is degraded, the log says why,
// and the root client's own block elsewhere is untouched.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "daemon_process.h"
#include "mem/region.h"
#include "mem/testing.h"
#include "os/kernel_info.h"
#include "pmm/pmm.h"

namespace pmm::testing {
namespace {

constexpr uint64_t k2M = 2ull << 20;

Child nobody_agent(const DaemonProcess& d) {
  return Child({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PMM_AGENT_PATH,
                d.socket(), "untrusted"});
}

// The physical address of the page at `p` in this (root) process, by hand.
uint64_t pagemap_phys(const void* p) {
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  uint64_t raw = 0;
  const auto off = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / 4096 * 8);
  const bool ok = fd >= 0 && ::pread(fd, &raw, 8, off) == 8;
  if (fd >= 0) ::close(fd);
  return ok && (raw >> 63) != 0 ? (raw & ((1ull << 55) - 1)) * 4096 : 0;
}

bool all_bytes(const pmm_block* b, unsigned char v) {
  const auto* p = static_cast<const unsigned char*>(pmm_block_ptr(b));
  for (uint64_t i = 0; i < pmm_block_size(b); ++i)
    if (p[i] != v) return false;
  return true;
}

std::string pools_table(const DaemonProcess& d) {
  return run_command({PMM_PMMCTL_PATH, "--socket", d.socket(), "pools"}).out;
}

// nobody allocates a 2 MiB block, punches it through the pool fd and lets
// it go; returns the block's offset.
uint64_t punch_a_block_as_nobody(const DaemonProcess& d, const std::string& pool) {
  Child nobody = nobody_agent(d);
  EXPECT_EQ(nobody.read_line(), "ready") << d.log();
  nobody.write_line("alloc " + pool + " 2097152");
  EXPECT_EQ(nobody.read_line(), "ok 0");
  nobody.write_line("info 0");
  const std::string info = nobody.read_line();  // ok ID SIZE OFFSET PHYS POOL
  uint64_t id = 0, size = 0, offset = 0;
  EXPECT_EQ(std::sscanf(info.c_str(), "ok %lu %lu %lu", &id, &size, &offset), 3) << info;
  nobody.write_line("punch 0");
  EXPECT_EQ(nobody.read_line(), "ok");
  nobody.write_line("put 0 last");
  EXPECT_EQ(nobody.read_line(), "ok");
  nobody.close_stdin();
  EXPECT_EQ(nobody.wait(), 0);
  return offset;
}

TEST(Punched, HugetlbPoolRefusesOrRefillsAndNeverReportsAStaleAddress) {
  mem::testing::HugePages hp(k2M, 4);
  ASSERT_EQ(hp.unavailable(), "");
  DaemonProcess d(R"(
[pools.dma]
type = "hugetlb"
size = "8MiB"
uids = [0, 65534]
)");
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* root = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "trusted", &root), PMM_OK) << pmm_last_error();
  pmm_block* mine = nullptr;
  ASSERT_EQ(pmm_alloc(root, "dma", k2M, 0, 0, &mine), PMM_OK) << pmm_last_error();
  std::memset(pmm_block_ptr(mine), 0xab, k2M);
  const uint64_t punched = punch_a_block_as_nobody(d, "dma");
  EXPECT_NE(punched, pmm_block_offset(mine));
  EXPECT_NE(pools_table(d).find("degraded: 1 huge page punched"), std::string::npos)
      << pools_table(d);

  // With no huge page free, the zeroed block over the hole is refused.
  std::unique_ptr<mem::Region> thief;
  if (const uint64_t n = os::huge_page_counts(k2M).value().available(); n > 0) {
    auto r = mem::make_region("thief", {.type = mem::MemoryType::kHugetlb, .size = n * k2M});
    ASSERT_TRUE(r) << r.error().describe();
    thief = std::move(*r);
  }
  pmm_block* b = nullptr;
  EXPECT_EQ(pmm_alloc(root, "dma", k2M, 0, PMM_ALLOC_ZERO, &b), PMM_E_NO_MEMORY);
  const std::string why = pmm_last_error();
  EXPECT_NE(why.find("cannot be faulted in"), std::string::npos) << why;
  EXPECT_NE(why.find("would raise SIGBUS"), std::string::npos) << why;
  EXPECT_EQ(::kill(d.pid(), 0), 0) << "pmmd died:\n" << d.log();
  EXPECT_NE(pools_table(d).find("degraded: 1 huge page punched; 1 allocation refused for it"),
            std::string::npos)
      << pools_table(d);
  EXPECT_NE(d.log().find("pool dma: refused a block of 2 MiB at offset"), std::string::npos)
      << d.log();

  // With pages free again: refilled and zeroed, or refused for having moved
  // (contiguous); never handed out at the old address.
  thief.reset();
  const pmm_status s = pmm_alloc(root, "dma", k2M, 0, PMM_ALLOC_ZERO | PMM_ALLOC_CONTIGUOUS, &b);
  if (s == PMM_OK) {
    EXPECT_TRUE(all_bytes(b, 0));
    EXPECT_EQ(pmm_block_phys(b), pagemap_phys(pmm_block_ptr(b)));
    EXPECT_EQ(pmm_block_put(b), PMM_OK);
  } else {
    EXPECT_EQ(s, PMM_E_NO_MEMORY);
    EXPECT_NE(std::string(pmm_last_error()).find("cannot be promised"), std::string::npos)
        << pmm_last_error();
  }
  ASSERT_EQ(pmm_alloc(root, "dma", k2M, 0, PMM_ALLOC_ZERO, &b), PMM_OK) << pmm_last_error();
  EXPECT_TRUE(all_bytes(b, 0));
  const uint64_t phys = pmm_block_phys(b);
  EXPECT_TRUE(phys == 0 || phys == pagemap_phys(pmm_block_ptr(b)))
      << "pmmd reports " << phys << ", the pagemap " << pagemap_phys(pmm_block_ptr(b));
  EXPECT_NE(pools_table(d).find("dma"), std::string::npos);
  EXPECT_EQ(pools_table(d).find("huge page punched"), std::string::npos) << pools_table(d);
  // The root client's own block never changed.
  EXPECT_TRUE(all_bytes(mine, 0xab));
  pmm_disconnect(root);
  EXPECT_EQ(d.stop(), 0) << d.log();
}

TEST(Punched, ShmemPoolsRefaultAndNothingBreaks) {
  DaemonProcess d(R"(
[pools.general]
type = "shmem"
size = "8MiB"
uids = [0, 65534]

[pools.ready]
type = "shmem"
size = "8MiB"
populate = true
uids = [0, 65534]
)");
  ASSERT_TRUE(d.ok()) << d.log();
  pmm_conn* root = nullptr;
  ASSERT_EQ(pmm_connect(d.socket().c_str(), "trusted", &root), PMM_OK) << pmm_last_error();
  for (const char* pool : {"general", "ready"}) {
    SCOPED_TRACE(pool);
    pmm_block* mine = nullptr;
    ASSERT_EQ(pmm_alloc(root, pool, k2M, 0, 0, &mine), PMM_OK) << pmm_last_error();
    std::memset(pmm_block_ptr(mine), 0xab, k2M);
    const uint64_t punched = punch_a_block_as_nobody(d, pool);
    pmm_block* b = nullptr;
    ASSERT_EQ(pmm_alloc(root, pool, k2M, 0, PMM_ALLOC_ZERO, &b), PMM_OK) << pmm_last_error();
    EXPECT_EQ(pmm_block_offset(b), punched);
    EXPECT_TRUE(all_bytes(b, 0));
    EXPECT_TRUE(all_bytes(mine, 0xab));
    EXPECT_EQ(pmm_block_put(b), PMM_OK);
    EXPECT_EQ(pmm_block_put(mine), PMM_OK);
  }
  EXPECT_EQ(::kill(d.pid(), 0), 0) << "pmmd died:\n" << d.log();
  EXPECT_EQ(pools_table(d).find("degraded"), std::string::npos) << pools_table(d);
  pmm_disconnect(root);
  EXPECT_EQ(d.stop(), 0) << d.log();
}

}  // namespace
}  // namespace pmm::testing
