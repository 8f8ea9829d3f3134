// The link between two neighbouring stages of the streaming pmm pipeline:
// one SOCK_SEQPACKET Unix socket at a path, carrying short text messages
// (one per packet, at most kMaxMessage bytes). The producer listens and
// accepts one consumer; the consumer connects. Both directions are used:
// frames go down, freed ring slots come back up (see ring.h for the
// messages). A peer that exits or is killed closes the socket, which the
// other side reads as "the link closed" — no heartbeat needed.
//
//   auto down = examples::Link::accept_one("/tmp/x/decode.sock", 30s);   // producer
//   auto up = examples::Link::connect("/tmp/x/decode.sock", 30s);        // consumer
//   down->send("frame slot=1 seq=7");
//   auto msg = up->receive();
//
// One thread uses a Link at a time.
#ifndef EXAMPLES_STREAM_LINK_H_
#define EXAMPLES_STREAM_LINK_H_

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "common/frame.h"

namespace examples {

class Link {
 public:
  static constexpr size_t kMaxMessage = 4096;

  // Binds `path` (removing a stale socket there, nothing else), waits up to `timeout`
  // for one consumer, then removes the path again: the link is private to
  // the two processes from then on.
  [[nodiscard]] static Result<Link> accept_one(const std::string& path,
                                               std::chrono::milliseconds timeout);
  // Connects to `path`, retrying until the producer listens or `timeout`.
  [[nodiscard]] static Result<Link> connect(const std::string& path,
                                            std::chrono::milliseconds timeout);

  Link(Link&& other) noexcept : fd_(std::exchange(other.fd_, -1)), name_(std::move(other.name_)) {}
  Link& operator=(Link&&) = delete;
  Link(const Link&) = delete;
  ~Link();

  [[nodiscard]] Result<void> send(std::string_view message);
  // The next message; an error once the peer has closed the link.
  [[nodiscard]] Result<std::string> receive();

 private:
  Link(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int fd_;
  std::string name_;  // the path, for messages
};

// The value of `key=` in a message of space-separated fields, or "" if absent.
[[nodiscard]] std::string_view message_field(std::string_view message, std::string_view key);
// The same as a number; an error naming the key and message if absent or not one.
[[nodiscard]] Result<uint64_t> message_number(std::string_view message, std::string_view key);

}  // namespace examples

#endif  // EXAMPLES_STREAM_LINK_H_
