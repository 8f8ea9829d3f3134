// See commands.h. pmmctl uses the internal C++ client rather than the C API
// because the admin listings (stats, blocks, sessions, devices) are not part
// of the public ABI.
#include "commands.h"

#include <fmt/format.h>

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "client/connection.h"
#include "metrics.h"
#include "pmm/pmm.h"

namespace pmmctl {
namespace {

using nlohmann::json;
using pmm::client::Connection;

pmm::Result<std::unique_ptr<Connection>> connect(const Target& t) {
  return Connection::connect(t.socket, t.device);
}

std::string finish(const json& j) { return j.dump(2) + "\n"; }

}  // namespace

pmm::Result<std::vector<std::string>> split_pools(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string name = text.substr(start, comma == std::string::npos ? comma : comma - start);
    if (name.empty())
      return pmm::fail(pmm::Errc::kInvalidArgument,
                       "pool list '{}' has an empty name; write one pool or several separated "
                       "by commas, tried in order: general or dma,general",
                       text);
    out.push_back(std::move(name));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

pmm::Result<pmm::proto::Token> parse_token(const std::string& text) {
  pmm_token t;
  if (pmm_token_parse(text.c_str(), &t) != PMM_OK)
    return pmm::fail(pmm::Errc::kInvalidArgument, "{}", pmm_last_error());
  pmm::proto::Token out;
  std::memcpy(out.data(), t.bytes, out.size());
  return out;
}

std::string format_token(const pmm::proto::Token& token) {
  pmm_token t;
  std::memcpy(t.bytes, token.data(), token.size());
  char text[PMM_TOKEN_STRLEN];
  pmm_token_format(&t, text);
  return text;
}

pmm::Result<std::string> status(const Target& t) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto st = (*c)->stats();
  if (!st) return std::unexpected(st.error());
  return render_status({(*c)->socket_path(), (*c)->daemon_version(), std::move(*st)}, t.format);
}

pmm::Result<std::string> pools(const Target& t) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto p = (*c)->list_pools();
  if (!p) return std::unexpected(p.error());
  return render_pools(*p, t.format);
}

pmm::Result<std::string> blocks(const Target& t) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto p = (*c)->list_pools();
  if (!p) return std::unexpected(p.error());
  auto b = (*c)->list_blocks();
  if (!b) return std::unexpected(b.error());
  return render_blocks(*b, *p, t.format);
}

pmm::Result<std::string> sessions(const Target& t) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto s = (*c)->list_sessions();
  if (!s) return std::unexpected(s.error());
  return render_sessions(*s, t.format);
}

pmm::Result<std::string> devices(const Target& t) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto d = (*c)->list_devices();
  if (!d) return std::unexpected(d.error());
  return render_devices(*d, t.format);
}

pmm::Result<std::string> alloc(const Target& t, const AllocArgs& a) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto b = (*c)->allocate(a.pools, a.size, a.alignment, a.flags);
  if (!b) return std::unexpected(b.error());
  auto token = (*c)->export_block(b->id, a.imports, a.lifetime_ms);
  if (!token) return std::unexpected(token.error());
  // pmmctl's own reference goes with its connection; the export keeps the
  // block until it is imported, withdrawn (pmmctl free) or expires.
  if (t.format == Format::kHuman) return format_token(*token) + "\n";
  return finish(json{{"token", format_token(*token)},
                     {"block", b->id},
                     {"pool", b->pool},
                     {"offset", b->offset},
                     {"size", b->size},
                     {"phys", b->phys ? json(b->phys) : json(nullptr)},
                     {"imports", a.imports},
                     {"lifetime_ms", a.lifetime_ms ? json(a.lifetime_ms) : json(nullptr)}});
}

pmm::Result<std::string> free_export(const Target& t, const pmm::proto::Token& token) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  if (auto s = (*c)->unexport(token); !s) return std::unexpected(s.error());
  if (t.format == Format::kHuman) return std::string();
  return finish(json{{"token", format_token(token)}, {"withdrawn", true}});
}

pmm::Result<std::string> reexport(const Target& t, const ExportArgs& a) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto b = (*c)->import(a.token);
  if (!b) return std::unexpected(b.error());
  auto token = (*c)->export_block(b->id, a.imports, a.lifetime_ms);
  if (!token) return std::unexpected(token.error());
  if (t.format == Format::kHuman) return format_token(*token) + "\n";
  return finish(json{{"token", format_token(*token)},
                     {"block", b->id},
                     {"pool", b->pool},
                     {"size", b->size},
                     {"imports", a.imports},
                     {"lifetime_ms", a.lifetime_ms ? json(a.lifetime_ms) : json(nullptr)}});
}

pmm::Result<std::string> sysv_export(const Target& t, const pmm::proto::Token& token,
                                     const std::function<void(const std::string&)>& emit) {
  // Blocked before anything happens, so a signal sent right after the
  // output appears is waited for, not lost (and does not kill us midway).
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop, sig);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto b = (*c)->import(token);
  if (!b) return std::unexpected(b.error());
  auto seg = (*c)->sysv_export(b->id);
  if (!seg) return std::unexpected(seg.error());
  // The SysV export alone holds the block now, as `blocks` will show.
  if (auto p = (*c)->put(b->id); !p) return std::unexpected(p.error());
  if (t.format == Format::kHuman)
    emit(fmt::format("{} {} {}\n", seg->shmid, seg->offset, seg->size));
  else
    emit(finish(json{{"shmid", seg->shmid},
                     {"offset", seg->offset},
                     {"size", seg->size},
                     {"block", b->id},
                     {"pool", b->pool}}));

  for (;;) {
    timespec one_second{1, 0};
    if (sigtimedwait(&stop, nullptr, &one_second) > 0) break;
    // Every second: is the daemon (and so the export) still there?
    if (auto alive = (*c)->list_pools(); !alive)
      return pmm::fail(alive.error().code, "the SysV export of block {} ended: {}", b->id,
                       alive.error().message);
  }
  if (auto s = (*c)->sysv_unexport(b->id); !s) return std::unexpected(s.error());
  return std::string();
}

pmm::Result<CheckOutcome> check(const Target& t) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto r = (*c)->check();
  if (!r) return std::unexpected(r.error());
  const bool clean = r->violation.empty();
  if (t.format == Format::kJson) {
    return CheckOutcome{
        .text = finish(json{{"clean", clean},
                            {"violation", clean ? json(nullptr) : json(r->violation)},
                            {"pools", r->pools},
                            {"blocks", r->blocks},
                            {"sessions", r->sessions},
                            {"exports", r->exports},
                            {"micros", r->micros}}),
        .clean = clean};
  }
  std::string walked =
      fmt::format("{} pools, {} blocks, {} sessions, {} exports walked in {:.3f} ms", r->pools,
                  r->blocks, r->sessions, r->exports, static_cast<double>(r->micros) / 1000.0);
  if (clean)
    return CheckOutcome{.text = "clean: every invariant holds (" + walked + ")\n", .clean = true};
  return CheckOutcome{.text = fmt::format("VIOLATION: {}\n({})\n", r->violation, walked),
                      .clean = false};
}

pmm::Result<std::string> map(const Target& t, const MapArgs& a) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  // Page after page until the daemon says there is no more; each page
  // costs it a bounded walk (docs/protocol.md, PoolMap).
  PictureBuilder builder;
  pmm::proto::PoolMapRequest req{.pool = a.pool};
  for (;;) {
    auto page = (*c)->pool_map(req);
    if (!page) return std::unexpected(page.error());
    builder.add(*page);
    if (!page->more) break;
    if (page->next_after_id <= req.after_id)
      return pmm::fail(pmm::Errc::kProtocol, "map: the daemon's cursor did not advance past {}",
                       req.after_id);
    req.after_id = page->next_after_id;
    req.mode = page->bucket_size == 0 ? pmm::proto::MapMode::kExact : pmm::proto::MapMode::kBuckets;
  }
  const PoolPicture m = builder.finish();
  std::string text = a.term ? render_map_term(m, a.style) : render_map_svg(m, a.style);
  if (a.output.empty()) return text;
  std::FILE* f = std::fopen(a.output.c_str(), "w");
  if (f == nullptr)
    return pmm::fail(pmm::Errc::kSystem, "cannot write {}: {}", a.output, std::strerror(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok)
    return pmm::fail(pmm::Errc::kSystem, "writing {} failed: {}", a.output, std::strerror(errno));
  return std::string();
}

pmm::Result<std::string> metrics(const Target& t) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto s = take_sample(**c);
  if (!s) return std::unexpected(s.error());
  if (!s->metrics) return pmm::fail(pmm::Errc::kPermission, "{}", s->metrics_refused);
  return render_prometheus(*s);
}

pmm::Result<std::string> top(const Target& t, const TopArgs& a,
                             const std::function<void(const std::string&)>& emit) {
  auto c = connect(t);
  if (!c) return std::unexpected(c.error());
  auto before = take_sample(**c);
  if (!before) return std::unexpected(before.error());
  if (a.live) emit("\x1b[H\x1b[2J" + render_top(nullptr, *before));
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
    auto now = take_sample(**c);
    if (!now) return std::unexpected(now.error());
    std::string screen = render_top(&*before, *now);
    if (a.once) return screen;
    emit("\x1b[H\x1b[2J" + screen);
    before = std::move(now);
  }
}

}  // namespace pmmctl
