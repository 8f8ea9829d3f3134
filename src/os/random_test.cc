// os::random_bytes: every draw is new, in every thread and in a fork()
// child, whose first draw must not be its parent's next (the buffered page
// is wiped on fork).
#include "os/random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <set>
#include <thread>
#include <vector>

#include "os/test_child.h"

namespace pmm::os {
namespace {

using Token = std::array<uint8_t, 16>;

Token draw() {
  Token t{};
  EXPECT_TRUE(random_bytes(t));
  return t;
}

TEST(RandomBytes, DrawsNeverRepeatAcrossManyRefills) {
  // 5,000 tokens: about twenty refills of the page.
  std::set<Token> seen;
  for (int i = 0; i < 5000; ++i) EXPECT_TRUE(seen.insert(draw()).second) << "draw " << i;
  // Every byte value shows up: the page is not handed out zeroed or stale.
  std::array<bool, 256> values{};
  for (const Token& t : seen)
    for (uint8_t b : t) values[b] = true;
  EXPECT_TRUE(std::all_of(values.begin(), values.end(), [](bool v) { return v; }));
}

TEST(RandomBytes, SizesFromOneByteToLargerThanThePage) {
  for (size_t n : {size_t{1}, size_t{15}, size_t{255}, size_t{256}, size_t{5000}}) {
    std::vector<uint8_t> a(n), b(n);
    ASSERT_TRUE(random_bytes(a));
    ASSERT_TRUE(random_bytes(b));
    if (n >= 15) {
      EXPECT_NE(a, b) << n << " bytes";
    }
  }
  std::vector<uint8_t> none;
  EXPECT_TRUE(random_bytes(none));
}

TEST(RandomBytes, AForkChildDoesNotRepeatItsParentsNextBytes) {
  (void)draw();  // the parent's page is now full of bytes not yet handed out
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string r = testing::run_in_child([&] {
    Token t = draw();
    return ::write(fds[1], t.data(), t.size()) == static_cast<ssize_t>(t.size())
               ? ""
               : "could not write the child's draw";
  });
  ASSERT_EQ(r, "");
  Token child{};
  ASSERT_EQ(::read(fds[0], child.data(), child.size()), static_cast<ssize_t>(child.size()));
  ::close(fds[0]);
  ::close(fds[1]);
  // Without MADV_WIPEONFORK the child's first draw is exactly the parent's
  // next one: the same page, copied.
  std::set<Token> parents;
  for (int i = 0; i < 300; ++i) parents.insert(draw());
  EXPECT_FALSE(parents.contains(child)) << "a fork() child repeated its parent's bytes";
}

TEST(RandomBytes, ThreadsDrawDifferentBytes) {
  std::array<std::vector<Token>, 4> drawn;
  std::vector<std::thread> threads;
  for (auto& d : drawn)
    threads.emplace_back([&d] {
      for (int i = 0; i < 1000; ++i) d.push_back(draw());
    });
  for (auto& t : threads) t.join();
  std::set<Token> all;
  for (const auto& d : drawn) all.insert(d.begin(), d.end());
  EXPECT_EQ(all.size(), 4000u);
}

}  // namespace
}  // namespace pmm::os
