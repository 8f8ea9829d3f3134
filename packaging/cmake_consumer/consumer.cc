// A C++ program outside the tree, built with find_package(pmm) against an
// installed libpmm: a real round trip through pmmd — allocate, write, export,
// import on a second connection, read back — with pmm.hpp.
#include <pmm/pmm.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>

int main() {
  try {
    pmm::Connection producer("cmake-consumer");
    pmm::Connection consumer("cmake-consumer");
    pmm::Block block = producer.alloc("general", 1 << 20);
    auto* bytes = block.as<std::uint8_t>();
    for (std::uint64_t i = 0; i < block.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
    const pmm::Token token = block.export_token();
    const pmm::Block same = consumer.import(pmm::Token::parse(token.str()));
    if (same.id() != block.id() || std::memcmp(same.data(), block.data(), block.size()) != 0) {
      std::fprintf(stderr, "cmake consumer: the imported block differs from the exported one\n");
      return 1;
    }
    std::printf("cmake consumer: %llu bytes round trip through %s\n",
                static_cast<unsigned long long>(same.size()), same.pool().c_str());
  } catch (const pmm::error& e) {
    std::fprintf(stderr, "cmake consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
