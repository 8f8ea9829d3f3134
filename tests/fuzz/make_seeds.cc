// Writes the fuzz targets' seed corpora by encoding real messages:
//   corpus/codec/    one file per sample message of every type
//                    (proto/test_messages.h), and the largest of each
//   corpus/service/  scripts (service_input.h) of what clients really do:
//                    hello, allocate in each pool, share by token, get and
//                    put, SysV export, listings, check, crash, expiry
// `make fuzz` runs it before fuzzing, so the seeds follow the protocol; the
// checked-in copies under tests/fuzz/corpus are its output plus every input
// that once crashed a target (crash-*), replayed by `make test`.
//
//   pmm_fuzz_seeds tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "proto/test_messages.h"
#include "service_input.h"

namespace {

using namespace pmm;
using fuzz::Script;

bool write(const std::filesystem::path& p, const std::vector<std::byte>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

proto::Message msg(uint32_t id, proto::Body b) { return {.request_id = id, .body = std::move(b)}; }

// The id of a fresh daemon's n-th block, while none has been freed: the
// allocation count above a 24-bit slot (docs/protocol.md, Pagination).
constexpr uint64_t nth_block(uint64_t n) { return (n << 24) | (n - 1); }

// Hello from every slot, each as a device of the config.
void greet(Script& s) {
  const char* devices[fuzz::kSlots] = {"cam", "gpu", "gpu", "stranger"};
  for (int i = 0; i < fuzz::kSlots; ++i) {
    s.request(i, msg(1, proto::Hello{.device = devices[i], .pid = 1000 + i}));
  }
}

std::vector<std::pair<std::string, Script>> service_scripts() {
  std::vector<std::pair<std::string, Script>> out;
  {
    Script s;  // allocate in each pool, share by token, get/put, listings
    greet(s);
    s.request(0, msg(2, proto::Allocate{.pools = {"general"}, .size = 65536}));
    s.request(2, msg(2, proto::Allocate{.pools = {"fast"}, .size = 4096, .alignment = 64}));
    s.request(3, msg(2, proto::Allocate{.pools = {"display"}, .size = 8192, .flags = 0x2}));
    s.request(
        0, msg(3, proto::Export{.block_id = nth_block(1), .max_imports = 2, .lifetime_ms = 1000}));
    s.request(2, msg(3, proto::Import{.token = Script::issued(0)}));
    s.request(3, msg(3, proto::Import{.token = Script::issued(0)}));
    s.request(2, msg(4, proto::Get{.block_id = nth_block(1)}));
    s.request(2, msg(5, proto::Put{.block_id = nth_block(1)}));
    s.request(0, msg(6, proto::Put{.block_id = nth_block(1)}));
    s.request(3, msg(7, proto::SysvExport{.block_id = nth_block(3)}));
    s.request(1, msg(8, proto::StatsRequest{}));
    s.request(1, msg(9, proto::ListBlocks{.after_id = 0, .limit = 2}));
    s.request(1, msg(10, proto::ListSessions{}));
    s.request(1, msg(11, proto::ListDevices{}));
    s.request(1, msg(12, proto::ListPools{}));
    s.request(0, msg(13, proto::CheckRequest{}));
    s.request(3, msg(13, proto::CheckRequest{}));
    s.request(3, msg(14, proto::SysvUnexport{.block_id = nth_block(3)}));
    out.emplace_back("share", s);
  }
  {
    Script s;  // an exporter dies; the token outlives it, then expires
    greet(s);
    s.request(1, msg(2, proto::Allocate{.size = 4096}));
    s.request(
        1, msg(3, proto::Export{.block_id = nth_block(1), .max_imports = 3, .lifetime_ms = 2000}));
    s.disconnect(1);
    s.request(2, msg(4, proto::Import{.token = Script::issued(0)}));
    s.wait(2);
    s.request(3, msg(5, proto::Import{.token = Script::issued(0)}));
    s.request(2, msg(6, proto::Unexport{.token = Script::issued(0)}));
    s.wait(4);
    s.request(0, msg(7, proto::CheckRequest{}));
    out.emplace_back("exporter-dies", s);
  }
  {
    Script s;  // device limits and guarantees, access refusals, bad requests
    greet(s);
    s.request(0, msg(2, proto::Allocate{.pools = {"general"}, .size = 200 << 10}));
    s.request(0, msg(3, proto::Allocate{.pools = {"general"}, .size = 100 << 10}));
    s.request(3, msg(4, proto::Allocate{.pools = {"fast", "general"}, .size = 900 << 10}));
    s.request(2, msg(5, proto::Allocate{.pools = {"fast"}, .size = 1 << 20, .alignment = 4096}));
    s.request(1, msg(6, proto::Allocate{.pools = {"nope"}, .size = 1}));
    s.request(1, msg(7, proto::Allocate{.size = 0}));
    s.request(1, msg(8, proto::Allocate{.size = 1, .alignment = 3}));
    s.request(1, msg(9, proto::Allocate{.pools = {"general"}, .size = 1, .flags = 0x1}));
    s.request(0, msg(10, proto::SysvExport{.block_id = nth_block(1)}));
    s.request(0, msg(11, proto::Put{.block_id = nth_block(1)}));
    s.request(0, msg(12, proto::Put{.block_id = nth_block(1)}));
    s.request(0, msg(13, proto::Hello{}));
    s.request(2, msg(14, proto::Get{.block_id = 999}));
    out.emplace_back("limits-and-refusals", s);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc != 2) {
    std::fprintf(stderr, "usage: pmm_fuzz_seeds CORPUS_DIR (writes CORPUS_DIR/codec, /service)\n");
    return 2;
  }
  const fs::path root(argv[1]);
  fs::create_directories(root / "codec");
  fs::create_directories(root / "service");
  size_t n = 0;
  auto all = proto::testing_samples();
  for (auto& m : proto::testing_largest_messages()) all.push_back(std::move(m));
  for (size_t i = 0; i < all.size(); ++i) {
    auto bytes = proto::encode(all[i]);
    if (!bytes) {
      std::fprintf(stderr, "pmm_fuzz_seeds: %s\n", bytes.error().describe().c_str());
      return 1;
    }
    std::string name =
        fmt::format("seed-{:02}-{}", i, proto::message_type_name(proto::type_of(all[i].body)));
    if (!write(root / "codec" / name, *bytes)) return 1;
    ++n;
  }
  for (const auto& [name, script] : service_scripts()) {
    if (!write(root / "service" / ("seed-" + name), script.bytes())) return 1;
    ++n;
  }
  std::printf("pmm_fuzz_seeds: wrote %zu seeds under %s\n", n, root.c_str());
  return 0;
}
