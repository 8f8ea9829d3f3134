// pmm.hpp promises C++17: this file is compiled with -std=c++17 (see
// CMakeLists.txt) and linked against libpmm.so like an outside program.
// It checks the parts that need no daemon; api_test.cc covers the rest.
#include <cstdio>
#include <cstring>

#include "pmm/pmm.hpp"

static_assert(__cplusplus == 201703L, "this test must be compiled as C++17");

int main() {
  int failures = 0;
  try {
    pmm::Connection c("cxx17", "/tmp/pmm-cxx17-test-nowhere/pmm.sock");
    std::fprintf(stderr, "connected to nothing\n");
    ++failures;
  } catch (const pmm::error& e) {
    if (e.status() != PMM_E_NO_DAEMON || std::strstr(e.what(), "is pmmd running?") == nullptr) {
      std::fprintf(stderr, "unexpected error %d: %s\n", e.status(), e.what());
      ++failures;
    }
  }
  pmm::Token t = pmm::Token::parse("ffeeddccbbaa99887766554433221100");
  if (t.str() != "ffeeddccbbaa99887766554433221100") ++failures;
  pmm::Block empty;
  if (empty || empty.data() != nullptr || empty.size() != 0) ++failures;
  pmm::Connection none;
  try {
    (void)none.alloc("general", 4096);
    ++failures;
  } catch (const pmm::error& e) {
    if (e.status() != PMM_E_INVALID) ++failures;
  }
  std::printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
