// Fuzz target: bytes -> requests -> the daemon's service and ledger.
//
// Each input is a script (service_input.h) run against a fresh Service over
// real pools, exactly as pmmd's loop drives it but without sockets: the
// strict codec decodes each datagram, Service::handle answers it, a reply
// that asks to close (or a datagram that does not decode) closes that
// session. After every frame the whole pool and ledger state is checked
// (Pool/Ledger::check_invariants), and every reply must encode as a reply
// with the right fd count. At the end every client leaves and time runs
// past every export's lifetime: every pool must be empty again, no block,
// no export left. Any violation aborts with what was wrong, which the fuzzer
// reports as a crash.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "daemon/config.h"
#include "daemon/service.h"
#include "proto/codec.h"
#include "service_input.h"

namespace pmm::fuzz {
namespace {

[[noreturn]] void violated(const std::string& what) {
  std::fprintf(stderr, "service fuzz: %s\n", what.c_str());
  std::abort();
}

void check_all(const core::Ledger& l, const char* after) {
  for (size_t i = 0; i < l.pool_count(); ++i) {
    if (auto s = l.pool(i).check_invariants(); !s) {
      violated(fmt::format("after {}: {}", after, s.error().describe()));
    }
  }
  if (auto s = l.check_invariants(); !s) {
    violated(fmt::format("after {}: {}", after, s.error().describe()));
  }
}

std::unique_ptr<daemon::Service> make_service(const daemon::Log& log) {
  auto config = daemon::parse_config(kServiceConfig, "fuzz");
  if (!config) violated("config: " + config.error().describe());
  std::vector<core::LedgerPool> pools;
  for (auto& pc : config->pools) {
    auto pool = core::Pool::create(std::move(pc.options));
    if (!pool) violated("pool: " + pool.error().describe());
    pools.push_back(core::LedgerPool{.pool = std::move(*pool), .access = std::move(pc.access)});
  }
  auto ledger = core::Ledger::create(std::move(pools), config->devices, config->ledger);
  if (!ledger) violated("ledger: " + ledger.error().describe());
  return std::make_unique<daemon::Service>(std::move(*ledger), log);
}

class Run {
 public:
  Run() : svc_(make_service(log_)) {
    for (int i = 0; i < kSlots; ++i) reopen(i);
  }

  void request(int slot, std::span<const std::byte> datagram) {
    daemon::SessionState& s = slots_[slot];
    auto m = proto::decode_request(datagram);
    if (!m) return disconnect(slot);  // pmmd refuses and drops the session
    resolve_token(*m);
    daemon::Reply r = svc_->handle(s, *m, now_);
    if (r.deferred) {
      // A waiting allocation: its answer comes through take_outgoing.
      if (proto::type_of(m->body) != proto::MessageType::kAllocateWait)
        violated("a deferred reply to something other than AllocateWait");
      return flush();
    }
    if (r.message.request_id != m->request_id) violated("a reply with another request id");
    check_reply(r);
    if (const auto* t = std::get_if<proto::TokenReply>(&r.message.body)) {
      tokens_.push_back(t->token);
    }
    if (verbose_) {
      const auto* e = std::get_if<proto::ErrorReply>(&r.message.body);
      std::fprintf(stderr, "slot %d %s -> %s%s%s\n", slot,
                   std::string(proto::message_type_name(proto::type_of(m->body))).c_str(),
                   std::string(proto::message_type_name(proto::type_of(r.message.body))).c_str(),
                   e ? ": " : "", e ? e->message.c_str() : "");
    }
    if (r.fd_pool) s.fd_sent[*r.fd_pool] = true;
    if (r.close_after) return disconnect(slot);
    flush();
  }

  // What the service sends unasked or late (waiting allocations, release
  // events), as the loop does after each round.
  void flush() {
    auto out = svc_->take_outgoing(now_, [this](core::SessionId id) -> daemon::SessionState* {
      for (auto& s : slots_)
        if (s.id == id && s.greeted) return &s;
      return nullptr;
    });
    for (const daemon::Outgoing& o : out) check_reply(o.reply);
  }

  static void check_reply(const daemon::Reply& r) {
    auto bytes = proto::encode(r.message);
    if (!bytes) violated("a reply that does not encode: " + bytes.error().describe());
    if (!proto::is_reply(proto::type_of(r.message.body))) violated("a reply that is a request");
    if (proto::fds_expected(r.message.body) != (r.fd >= 0 ? 1u : 0u)) {
      violated("a reply whose fd does not match its memory.fd_attached");
    }
  }

  void disconnect(int slot) {
    svc_->close(slots_[slot], "fuzz disconnect");
    reopen(slot);
    flush();
  }

  void wait(int half_seconds) {
    now_ += std::chrono::milliseconds(500) * half_seconds;
    svc_->expire(now_);
    flush();
  }

  void check(const char* after) { check_all(svc_->ledger(), after); }

  // Everybody leaves and every export's lifetime runs out.
  void finish() {
    for (int i = 0; i < kSlots; ++i) svc_->close(slots_[i], "fuzz end");
    now_ += std::chrono::hours(2);  // past max_export_lifetime
    svc_->expire(now_);
    check("the end");
    const core::Ledger& l = svc_->ledger();
    if (!l.blocks().empty() || l.export_count() != 0) {
      violated(fmt::format("{} blocks and {} exports left after everyone left", l.blocks().size(),
                           l.export_count()));
    }
    for (size_t i = 0; i < l.pool_count(); ++i) {
      if (l.pool(i).stats().alloc.bytes_used != 0) {
        violated(fmt::format("pool {} still has {} bytes in use after everyone left",
                             l.pool(i).name(), l.pool(i).stats().alloc.bytes_used));
      }
    }
  }

 private:
  void reopen(int slot) {
    slots_[slot] = daemon::SessionState{
        .id = next_session_++,
        .peer = {.pid = 1000 + slot, .uid = kSlotUid[slot], .gid = kSlotUid[slot]}};
  }

  void resolve_token(proto::Message& m) {
    proto::Token* t = nullptr;
    if (auto* i = std::get_if<proto::Import>(&m.body)) t = &i->token;
    if (auto* u = std::get_if<proto::Unexport>(&m.body)) t = &u->token;
    if (t == nullptr || tokens_.empty()) return;
    for (size_t i = 0; i + 1 < t->size(); ++i) {
      if ((*t)[i] != 0) return;
    }
    *t = tokens_[(*t)[15] % tokens_.size()];
  }

  daemon::Log log_{.quiet = true};
  std::unique_ptr<daemon::Service> svc_;
  daemon::SessionState slots_[kSlots];
  core::SessionId next_session_ = 1;
  core::SteadyTime now_ = core::SteadyTime{} + std::chrono::hours(1);
  std::vector<proto::Token> tokens_;
  // PMM_FUZZ_VERBOSE=1: each request and its answer on stderr, to read
  // what an input does.
  bool verbose_ = std::getenv("PMM_FUZZ_VERBOSE") != nullptr;
};

}  // namespace
}  // namespace pmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pmm::fuzz;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  Run run;
  size_t at = 0;
  while (at < in.size()) {
    const auto op = static_cast<uint8_t>(in[at++]);
    if (op < 0x80) {
      size_t len = 0;
      if (at + 2 <= in.size()) {
        len = static_cast<size_t>(in[at]) | static_cast<size_t>(in[at + 1]) << 8;
        at += 2;
      } else {
        at = in.size();
      }
      len = std::min(len, in.size() - at);
      run.request(op & 3, in.subspan(at, len));
      at += len;
      run.check("a request");
    } else if (op < 0xc0) {
      run.disconnect(op & 3);
      run.check("a disconnect");
    } else {
      run.wait(op & 0x3f);
      run.check("expiry");
    }
  }
  run.finish();
  return 0;
}
