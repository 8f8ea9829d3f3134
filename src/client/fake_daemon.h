// FakeDaemon — an in-test server that speaks the pmm protocol over a real
// SOCK_SEQPACKET socket, for protocol-level tests of libpmm (what the client
// does with odd, hostile or dying daemons, which the real pmmd never is).
// The behaviours a user relies on are tested against the real pmmd in
// api_test.cc and c_api_test.c; this fake only covers the failure paths.
//
// Usage:
//   FakeDaemon d([](const proto::Message& m) -> std::optional<FakeDaemon::Answer> {
//     if (std::holds_alternative<proto::Get>(m.body)) return FakeDaemon::Reply{proto::Ok{}};
//     if (std::holds_alternative<proto::Put>(m.body)) return FakeDaemon::Close{};  // "crash"
//     if (std::holds_alternative<proto::Export>(m.body)) return FakeDaemon::Ignore{};  // wedged
//     return std::nullopt;   // the default: Welcome for Hello, hang up otherwise
//   });
//   auto c = client::Connection::connect(d.path(), "dev");
//
// The handler runs on the fake's own thread, one connection at a time;
// A handler that returns nullopt gets the default answer: Welcome to Hello,
// hang up on anything else.
#pragma once

#include <poll.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "os/socket.h"
#include "os/unique_fd.h"
#include "proto/channel.h"
#include "proto/messages.h"

namespace pmm::client::testing {

class FakeDaemon {
 public:
  struct Close {};   // hang up
  struct Ignore {};  // send nothing back, keep serving (a wedged request)
  struct Reply {
    // NOLINTNEXTLINE(google-explicit-constructor): handlers return bodies.
    Reply(proto::Body b, int f = -1, std::optional<uint32_t> id = std::nullopt)
        : body(std::move(b)), fd(f), request_id(id) {}
    proto::Body body;
    int fd = -1;                         // sent with the reply (not owned)
    std::optional<uint32_t> request_id;  // override the echoed id
  };
  // Several messages in a row (e.g. a late reply to an ignored request,
  // then this request's own).
  using Replies = std::vector<Reply>;
  using Answer = std::variant<Reply, Close, Ignore, Replies>;
  using Handler = std::function<std::optional<Answer>(const proto::Message&)>;

  explicit FakeDaemon(Handler handler) : handler_(std::move(handler)) {
    char tmpl[] = "/tmp/pmm-client-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    dir_ = tmpl;
    path_ = dir_ + "/pmm.sock";
    auto l = os::listen_unix(path_);
    if (!l) std::abort();
    listen_ = std::move(*l);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeDaemon() {
    stop_ = true;
    thread_.join();
    listen_.reset();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  [[nodiscard]] const std::string& path() const { return path_; }
  // Requests seen (Hello included), by every connection so far.
  [[nodiscard]] int requests() const { return requests_; }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listen_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      auto c = os::accept_unix(listen_.get());
      if (!c || !*c) continue;
      serve(std::move(**c));
    }
  }

  void serve(os::UniqueFd sock) {
    while (!stop_) {
      pollfd p{sock.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      auto in = proto::receive_request(sock.get());
      if (!in) return;  // the client went away
      if (!*in) continue;
      const proto::Message& m = (*in)->message;
      ++requests_;
      std::optional<Answer> h = handler_ ? handler_(m) : std::nullopt;
      Answer a = h ? std::move(*h)
                 : std::holds_alternative<proto::Hello>(m.body)
                     ? Answer{Reply{proto::Welcome{.protocol_version = proto::kProtocolVersion,
                                                   .session_id = 42,
                                                   .daemon_version = "fake"}}}
                     : Answer{Close{}};
      if (std::holds_alternative<Close>(a)) return;
      if (std::holds_alternative<Ignore>(a)) continue;
      Replies replies = std::holds_alternative<Reply>(a) ? Replies{std::get<Reply>(a)}
                                                         : std::get<Replies>(std::move(a));
      for (const Reply& r : replies) {
        proto::Message out{.request_id = r.request_id.value_or(m.request_id), .body = r.body};
        if (!proto::send(sock.get(), out, r.fd)) return;
      }
    }
  }

  Handler handler_;
  std::string dir_;
  std::string path_;
  os::UniqueFd listen_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// The size of the shmem pool the tests' fake daemons lend from.
inline constexpr uint64_t kPoolSize = 1 << 20;

// A BlockInfo of an 8 KiB block of that pool ("general", index 0).
inline proto::BlockInfo block_info(uint64_t id, uint64_t offset, bool fd_attached) {
  return proto::BlockInfo{.block_id = id,
                          .pool_index = 0,
                          .pool_name = "general",
                          .offset = offset,
                          .size = 8192,
                          .memory = {.type = proto::PoolType::kShmem,
                                     .fd_attached = fd_attached,
                                     .pool_size = kPoolSize,
                                     .page_size = 4096}};
}

}  // namespace pmm::client::testing
