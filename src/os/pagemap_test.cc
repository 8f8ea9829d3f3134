// Tests of os/pagemap.h: real physical addresses as root, "unknown" (0)
// without CAP_SYS_ADMIN.
#include "os/pagemap.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/mman.h>

#include "os/capability.h"
#include "os/memory.h"
#include "os/test_child.h"

namespace pmm::os {
namespace {

TEST(OsPagemap, DecodesEntries) {
  EXPECT_FALSE(decode_pagemap_entry(0).present);
  EXPECT_EQ(decode_pagemap_entry(0x1234).pfn, 0u);  // not present: no PFN
  const PagemapEntry e = decode_pagemap_entry((1ull << 63) | (1ull << 61) | 0x1234);
  EXPECT_TRUE(e.present);
  EXPECT_EQ(e.pfn, 0x1234u);
}

TEST(OsPagemap, PresentPagesHaveDistinctAddressesWithCapSysAdmin) {
  if (!has_capability(CAP_SYS_ADMIN)) GTEST_SKIP() << "needs CAP_SYS_ADMIN (run as root)";
  const size_t page = base_page_size();
  auto fd = memfd_create("pmm-test-pagemap", MFD_CLOEXEC);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(resize(fd->get(), 8 * page));
  auto map = map_shared(fd->get(), 8 * page);
  ASSERT_TRUE(map);
  // Only the first 4 pages are faulted in.
  ASSERT_TRUE(populate(map->data(), 4 * page, page));
  auto phys = physical_addresses(map->data(), map->size(), page);
  ASSERT_TRUE(phys) << phys.error().describe();
  ASSERT_EQ(phys->size(), 8u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NE((*phys)[i], 0u) << "page " << i;
    EXPECT_EQ((*phys)[i] % page, 0u);
    for (size_t j = 0; j < i; ++j) EXPECT_NE((*phys)[i], (*phys)[j]);
  }
  for (size_t i = 4; i < 8; ++i) EXPECT_EQ((*phys)[i], 0u) << "page " << i << " never faulted";
  EXPECT_TRUE(pagemap_shows_physical());
}

TEST(OsPagemap, WithoutCapSysAdminAddressesReadAsUnknown) {
  auto r = testing::run_in_child([] {
    if (auto s = drop_capability(CAP_SYS_ADMIN); !s) return s.error().describe();
    if (has_capability(CAP_SYS_ADMIN)) return std::string("capability still there");
    if (pagemap_shows_physical()) return std::string("PFNs visible without CAP_SYS_ADMIN");
    return std::string();
  });
  EXPECT_EQ(r, "");
}

TEST(OsPagemap, RejectsUnalignedInput) {
  auto r = physical_addresses(reinterpret_cast<const void*>(0x1001), 1, base_page_size());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("must be multiples of the page size"), std::string::npos);
}

}  // namespace
}  // namespace pmm::os
