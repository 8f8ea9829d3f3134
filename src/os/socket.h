// pmm::os sockets — AF_UNIX SOCK_SEQPACKET endpoints, fd passing, peer
// credentials: the transport of the pmm protocol.
//
// SEQPACKET keeps message boundaries, so one send is one protocol message and
// one receive returns exactly it (or reports it did not fit). File
// descriptors travel beside a message as SCM_RIGHTS. Every failing call
// returns an Error naming the system call, the path where there is one, and
// errno; EINTR is retried everywhere.
//
// Usage (daemon):
//   auto l = os::listen_unix(os::default_socket_path());   // refuses a live socket
//   auto c = os::accept_unix(l->get());                     // nullopt: none pending
//   auto m = os::receive_message(c->get(), 64 << 10, 1);   // bytes + UniqueFds
//   auto cred = os::peer_credentials(c->get());
// Usage (client):
//   auto s = os::connect_unix(path);   // Errc::kNoDaemon: "... is pmmd running?"
//   os::send_message(s->get(), bytes, {});
//
// Thread safety: free functions on fds; a UniqueFd is a plain value that one
// thread owns at a time. Sending and receiving on one socket from two threads
// at once is the caller's business (the kernel keeps each datagram whole).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "os/fault.h"
#include "os/unique_fd.h"

namespace pmm::os {

// $PMM_SOCKET, else $XDG_RUNTIME_DIR/pmm/pmm.sock, else /run/pmm/pmm.sock.
// Empty variables count as unset.
[[nodiscard]] std::string default_socket_path();

// Binds and listens on `path` (SOCK_SEQPACKET, CLOEXEC, NONBLOCK). Creates the
// parent directory with mode 0755 when missing. When a socket file is already
// there: if something accepts a connection on it, kExists ("a daemon already
// listens on PATH"); otherwise it is stale and is replaced. kInvalidArgument
// for a path longer than sun_path allows. The file appears at `path` only
// once the socket listens (bound under a temporary name beside it, then
// linked), so a client that sees it can connect.
[[nodiscard]] Result<UniqueFd> listen_unix(const std::string& path, int backlog = 128);

// Socket activation (systemd's LISTEN_FDS protocol, sd_listen_fds(3)): when
// $LISTEN_PID is this process and $LISTEN_FDS is 1, fd 3 is a listening
// socket opened for us (pmmd.socket). It is checked to be an AF_UNIX
// SOCK_SEQPACKET socket in the listening state (anything else:
// kInvalidArgument saying what it is), made CLOEXEC and NONBLOCK, and the
// LISTEN_* variables are removed so that children do not take it too.
// nullopt when the environment passes nothing to this process.
[[nodiscard]] Result<std::optional<UniqueFd>> inherited_listener();

// The path an AF_UNIX socket is bound to; "" for an unnamed one.
[[nodiscard]] std::string bound_path(int fd);

// Accepts one connection (CLOEXEC, NONBLOCK). nullopt when none is pending.
[[nodiscard]] Result<std::optional<UniqueFd>> accept_unix(int listen_fd);

// Connects to `path` (a blocking, CLOEXEC socket). ENOENT or ECONNREFUSED ->
// kNoDaemon: "no daemon listens on PATH (...): is pmmd running?".
[[nodiscard]] Result<UniqueFd> connect_unix(const std::string& path);

// A connected SEQPACKET pair (CLOEXEC, blocking): tests, in-process links.
[[nodiscard]] Result<std::pair<UniqueFd, UniqueFd>> socket_pair();

// Sends one message of `bytes` with `fds` (at most kMaxFdsPerSend) as
// SCM_RIGHTS; the fds stay owned by the caller. MSG_NOSIGNAL: a closed peer
// is kDisconnected, not SIGPIPE. On a non-blocking socket with a full buffer
// this fails with kSystem and sys_errno EAGAIN. `flags` are added to
// sendmsg's (MSG_DONTWAIT: that on a blocking socket too).
inline constexpr size_t kMaxFdsPerSend = 16;
[[nodiscard]] Status send_message(int fd, std::span<const std::byte> bytes,
                                  std::span<const int> fds, int flags = 0);

// send_message without fds for a hot path (libpmm's every request), in
// two halves: send_datagram makes the one send() (inline: the fault seam's
// one load and the system call), and any result but the whole message
// sent is handed, with errno, to send_outcome, which returns what
// send_message would have (it retries an EINTR, and takes a fault armed
// meanwhile). kNotTried: a fault is armed, so nothing was tried here.
inline constexpr ssize_t kNotTried = -2;
[[nodiscard]] inline ssize_t send_datagram(int fd, std::span<const std::byte> bytes, int flags) {
  if (detail::g_faults_armed.load(std::memory_order_relaxed) != 0) [[unlikely]]
    return kNotTried;
  return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | flags);
}
[[nodiscard]] [[gnu::cold]] Status send_outcome(int fd, std::span<const std::byte> bytes, int flags,
                                                ssize_t n, int err);

struct ReceivedMessage {
  std::vector<std::byte> bytes;
  std::vector<UniqueFd> fds;  // received CLOEXEC
  // Set when fds sent with the message could not be installed in this
  // process (the kernel dropped them; MSG_CTRUNC with room to spare): most
  // often a full fd table (EMFILE, RLIMIT_NOFILE). The bytes are intact and
  // `fds` holds those that did arrive; the caller decides what the loss means.
  std::optional<Error> fds_lost;
};

// Receives one message of at most `max_bytes` with at most `max_fds` fds.
// nullopt: nothing to read on a non-blocking socket. kDisconnected when the
// peer has closed. kProtocol when the message was larger than max_bytes
// (MSG_TRUNC) or carried more fds than max_fds (MSG_CTRUNC with the room for
// max_fds filled) or ancillary data other than SCM_RIGHTS; every fd that did
// arrive is closed then. fds the kernel could not install (a full fd table)
// are not the peer's fault: the message comes back with `fds_lost` set.
[[nodiscard]] Result<std::optional<ReceivedMessage>> receive_message(int fd, size_t max_bytes,
                                                                     size_t max_fds);

// As receive_message, into `buffer` (its size is the most accepted): the
// bytes are the start of `buffer`, valid until it is written again. The
// hot paths (pmmd's requests, libpmm's replies that may bring an fd) receive this way into
// storage allocated once and never zero-filled. `flags` are added to
// recvmsg's: MSG_DONTWAIT reads without waiting on a blocking socket; a
// blocking read that SO_RCVTIMEO ends returns nullopt as EAGAIN does.
struct ReceivedInto {
  std::span<std::byte> bytes;
  std::vector<UniqueFd> fds;  // received CLOEXEC
  std::optional<Error> fds_lost;
};
[[nodiscard]] Result<std::optional<ReceivedInto>> receive_message_into(int fd,
                                                                       std::span<std::byte> buffer,
                                                                       size_t max_fds,
                                                                       int flags = 0);

// One message, read with recv(): no msghdr, no control buffer, so the
// kernel copies and checks less than for recvmsg (measured ~0.28 us a call).
// The price: nothing that came beside the message can be seen. An fd sent
// with it is closed by the kernel without a trace, so this is for a reader
// that knows no fd can come, or that tells a lost one from the message's own
// content (libpmm: a BlockInfo that announces fd_attached). The returned
// bytes are the start of `buffer`. nullopt: nothing yet (EAGAIN, the
// socket's SO_RCVTIMEO, or EINTR, as receive_message_into). kProtocol for a
// message larger than `buffer` (its real length is asked for with
// MSG_TRUNC); kDisconnected at the end of the stream.
[[nodiscard]] Result<std::optional<std::span<std::byte>>> receive_bytes_into(
    int fd, std::span<std::byte> buffer, int flags = 0);

// receive_bytes_into for a hot path (libpmm's every reply), in two halves
// as send_datagram: recv_datagram makes the one recv() (MSG_TRUNC: the
// datagram's real length), and any result but a datagram of 1 to
// buffer.size() bytes is handed, with errno, to receive_bytes_outcome,
// which returns what receive_bytes_into would have. kNotTried: a fault is
// armed, so nothing was tried here.
[[nodiscard]] inline ssize_t recv_datagram(int fd, std::span<std::byte> buffer, int flags) {
  if (detail::g_faults_armed.load(std::memory_order_relaxed) != 0) [[unlikely]]
    return kNotTried;
  return ::recv(fd, buffer.data(), buffer.size(), MSG_TRUNC | flags);
}
[[nodiscard]] [[gnu::cold]] Result<std::optional<std::span<std::byte>>> receive_bytes_outcome(
    int fd, std::span<std::byte> buffer, int flags, ssize_t n, int err);

// What receive_messages says of one message.
struct Datagram {
  size_t size = 0;
  std::optional<Error> error{};
};

// The kernel's headers for reading several messages into the same buffers
// every time (recvmmsg), built once: a reader that receives per request
// (pmmd) fills no headers per call. The buffers must outlive it; at most 64
// are used.
class MessageBatch {
 public:
  explicit MessageBatch(std::span<const std::span<std::byte>> buffers);
  ~MessageBatch();
  MessageBatch(const MessageBatch&) = delete;
  MessageBatch& operator=(const MessageBatch&) = delete;
  [[nodiscard]] size_t size() const;

 private:
  friend Result<size_t> receive_messages(int fd, MessageBatch& batch, std::span<Datagram> out);
  struct Headers;  // iovecs and mmsghdrs (socket.cc)
  std::unique_ptr<Headers> headers_;
};

// Several messages that carry no fds, in one system call, on a non-blocking
// socket: message i lands in the batch's buffer i (its size is the most
// accepted) and is described by out[i]. Returns how many entries of `out`
// were filled, 0 when nothing was queued. Entries are messages up to the
// first that is not, which carries `error` and is the last: kDisconnected
// for the end of the stream, kProtocol for one larger than its buffer
// (MSG_TRUNC) or one that came with fds or other ancillary data (the kernel
// closes such fds). A reader that wants one system call per request: fewer
// entries than buffers means the queue was empty.
[[nodiscard]] Result<size_t> receive_messages(int fd, MessageBatch& batch, std::span<Datagram> out);

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};
// SO_PEERCRED: who was at the other end when the connection was made.
[[nodiscard]] Result<PeerCredentials> peer_credentials(int fd);

// Half-closes `fd` for writing and waits, at most `timeout_ms`, for the peer
// to close its side (reading and dropping anything still in flight). A
// client uses it to leave only once the daemon has seen it leave, so what
// the session held is back in the pools when pmm_disconnect returns.
// `read_bounded`: `fd` is blocking and its SO_RCVTIMEO is at most
// `timeout_ms`, so the first wait is the read itself (one system call when
// nothing is in flight, as a plain recv loop makes) rather than a poll and
// then a read.
void shutdown_and_wait_for_peer(int fd, int timeout_ms, bool read_bounded = false);

}  // namespace pmm::os
