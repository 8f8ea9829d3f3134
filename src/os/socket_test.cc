// Tests of os/socket.h on real AF_UNIX SEQPACKET sockets: listening (parent
// directory creation, live vs stale socket files), connecting to nothing,
// fd passing, truncation detection and SO_PEERCRED across a fork.
#include "os/socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace pmm::os {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pmm-socket-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  [[nodiscard]] std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string as_string(const std::vector<std::byte>& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

TEST(Socket, ListenCreatesMissingParentDirectories) {
  TempDir dir;
  std::string path = dir / "a/b/pmm.sock";
  auto l = listen_unix(path);
  ASSERT_TRUE(l) << l.error().describe();
  struct stat st {};
  ASSERT_EQ(::stat((dir / "a/b").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
}

TEST(Socket, ConnectAcceptExchangeAndCredentials) {
  TempDir dir;
  std::string path = dir / "pmm.sock";
  auto l = listen_unix(path);
  ASSERT_TRUE(l) << l.error().describe();
  auto none = accept_unix(l->get());
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value()) << "nothing pending: accept must say so, not fail";

  auto c = connect_unix(path);
  ASSERT_TRUE(c) << c.error().describe();
  auto s = accept_unix(l->get());
  ASSERT_TRUE(s && s->has_value());
  UniqueFd server = std::move(**s);
  EXPECT_TRUE(::fcntl(server.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(server.get(), F_GETFD) & FD_CLOEXEC);

  auto empty = receive_message(server.get(), 1024, 1);
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->has_value()) << "non-blocking socket with nothing queued";

  ASSERT_TRUE(send_message(c->get(), as_bytes("first"), {}));
  ASSERT_TRUE(send_message(c->get(), as_bytes("second message"), {}));
  auto m1 = receive_message(server.get(), 1024, 1);
  auto m2 = receive_message(server.get(), 1024, 1);
  ASSERT_TRUE(m1 && *m1 && m2 && *m2);
  EXPECT_EQ(as_string((*m1)->bytes), "first");  // boundaries preserved
  EXPECT_EQ(as_string((*m2)->bytes), "second message");

  c->reset();
  auto gone = receive_message(server.get(), 1024, 1);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::kDisconnected);
  auto send_gone = send_message(server.get(), as_bytes("x"), {});
  ASSERT_FALSE(send_gone);
  EXPECT_EQ(send_gone.error().code, Errc::kDisconnected);
}

TEST(Socket, PeerCredentialsNameTheConnectingProcess) {
  TempDir dir;
  std::string path = dir / "pmm.sock";
  auto l = listen_unix(path);
  ASSERT_TRUE(l) << l.error().describe();
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto c = connect_unix(path);
    char byte;
    // Keep the connection open until the parent has looked.
    ssize_t n = ::read(go[0], &byte, 1);
    ::_exit(c && n >= 0 ? 0 : 1);
  }
  std::optional<UniqueFd> server;
  for (int i = 0; i < 5000 && !server; ++i) {
    auto a = accept_unix(l->get());
    ASSERT_TRUE(a) << a.error().describe();
    if (*a)
      server = std::move(**a);
    else
      ::usleep(1000);
  }
  ASSERT_TRUE(server) << "the child never connected";
  auto cred = peer_credentials(server->get());
  ASSERT_TRUE(cred) << cred.error().describe();
  EXPECT_EQ(cred->pid, child);
  EXPECT_EQ(cred->uid, ::getuid());
  EXPECT_EQ(cred->gid, ::getgid());
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ::close(go[0]);
  ::close(go[1]);
}

TEST(Socket, ConnectToMissingPathIsNoDaemon) {
  TempDir dir;
  std::string path = dir / "nobody.sock";
  auto c = connect_unix(path);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kNoDaemon);
  EXPECT_NE(c.error().message.find(path), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("is pmmd running?"), std::string::npos) << c.error().message;
}

TEST(Socket, SecondListenerOnALiveSocketIsRefused) {
  TempDir dir;
  std::string path = dir / "pmm.sock";
  auto first = listen_unix(path);
  ASSERT_TRUE(first) << first.error().describe();
  auto second = listen_unix(path);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::kExists);
  EXPECT_NE(second.error().message.find("already listens on " + path), std::string::npos)
      << second.error().message;
  // The first listener still works: its file was not stolen.
  auto c = connect_unix(path);
  ASSERT_TRUE(c) << c.error().describe();
  auto a = accept_unix(first->get());
  ASSERT_TRUE(a && a->has_value());
}

TEST(Socket, StaleSocketFileIsReplaced) {
  TempDir dir;
  std::string path = dir / "pmm.sock";
  {
    auto dead = listen_unix(path);
    ASSERT_TRUE(dead);
  }  // closed: the file stays, nobody listens (a daemon that died)
  ASSERT_TRUE(std::filesystem::exists(path));
  ASSERT_EQ(connect_unix(path).error().code, Errc::kNoDaemon);
  auto l = listen_unix(path);
  ASSERT_TRUE(l) << l.error().describe();
  auto c = connect_unix(path);
  ASSERT_TRUE(c) << c.error().describe();
}

TEST(Socket, ListenRefusesToReplaceANonSocketAndOverlongPaths) {
  TempDir dir;
  std::string path = dir / "regular";
  { std::ofstream(path) << "data"; }
  auto l = listen_unix(path);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, Errc::kExists);
  EXPECT_TRUE(std::filesystem::exists(path));

  auto longer = listen_unix(dir / std::string(200, 'x'));
  ASSERT_FALSE(longer);
  EXPECT_EQ(longer.error().code, Errc::kInvalidArgument);
  EXPECT_NE(longer.error().message.find("at most 107"), std::string::npos)
      << longer.error().message;
}

TEST(Socket, MemfdTravelsAndTheReceiverReadsIt) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair) << pair.error().describe();
  UniqueFd mem(::memfd_create("pmm-socket-test", MFD_CLOEXEC));
  ASSERT_TRUE(mem);
  const std::string text = "frame 42: hello through SCM_RIGHTS";
  ASSERT_EQ(::pwrite(mem.get(), text.data(), text.size(), 4096), static_cast<ssize_t>(text.size()));
  std::array<int, 1> fds{mem.get()};
  ASSERT_TRUE(send_message(pair->first.get(), as_bytes("block"), fds));
  mem.reset();  // the sender's copy is gone; the message keeps the file alive

  auto in = receive_message(pair->second.get(), 1024, 1);
  ASSERT_TRUE(in && *in) << (in ? "" : in.error().describe());
  ASSERT_EQ((*in)->fds.size(), 1u);
  int got = (*in)->fds[0].get();
  EXPECT_TRUE(::fcntl(got, F_GETFD) & FD_CLOEXEC) << "received without MSG_CMSG_CLOEXEC";
  void* p = ::mmap(nullptr, 8192, PROT_READ, MAP_SHARED, got, 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_EQ(std::string(static_cast<const char*>(p) + 4096, text.size()), text);
  ::munmap(p, 8192);
}

// The write end of a pipe, sent and then refused, must be closed by the
// receiver: the read end then sees end-of-file.
bool read_end_sees_eof(int read_fd) {
  char c;
  return ::read(read_fd, &c, 1) == 0;
}

TEST(Socket, OversizeMessageIsRefusedAndItsFdsClosed) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::vector<std::byte> big(5000, std::byte{7});
  std::array<int, 1> fds{p[1]};
  ASSERT_TRUE(send_message(pair->first.get(), big, fds));
  ::close(p[1]);
  auto in = receive_message(pair->second.get(), 4096, 1);
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, Errc::kProtocol);
  EXPECT_NE(in.error().message.find("larger than 4096"), std::string::npos) << in.error().message;
  EXPECT_TRUE(read_end_sees_eof(p[0]));
  ::close(p[0]);
}

TEST(Socket, TooManyFdsAreRefusedAndClosed) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair);
  int a[2], b[2];
  ASSERT_EQ(::pipe2(a, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(b, O_CLOEXEC), 0);
  std::array<int, 2> fds{a[1], b[1]};
  ASSERT_TRUE(send_message(pair->first.get(), as_bytes("two"), fds));
  ::close(a[1]);
  ::close(b[1]);
  auto in = receive_message(pair->second.get(), 1024, 1);
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, Errc::kProtocol);
  EXPECT_TRUE(read_end_sees_eof(a[0]));
  EXPECT_TRUE(read_end_sees_eof(b[0]));
  ::close(a[0]);
  ::close(b[0]);
}

// receive_bytes_into reads with recv(): the bytes exactly, a message
// larger than the buffer refused (not cut short: MSG_TRUNC gives the real
// length), the end of the stream told apart, and an fd sent beside the
// message dropped by the kernel rather than installed or leaked here.
TEST(Socket, BytesOnlyReadTellsSizesAndDropsFds) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair);
  std::array<std::byte, 8> buf{};
  ASSERT_TRUE(send_message(pair->first.get(), as_bytes("eight!!!"), {}));
  auto exact = receive_bytes_into(pair->second.get(), buf);
  ASSERT_TRUE(exact && *exact) << (exact ? "nothing" : exact.error().describe());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*exact)->data()), (*exact)->size()),
            "eight!!!");

  ASSERT_TRUE(send_message(pair->first.get(), as_bytes("nine!!!!!"), {}));
  auto big = receive_bytes_into(pair->second.get(), buf);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Errc::kProtocol);
  EXPECT_NE(big.error().message.find("larger than 8"), std::string::npos) << big.error().message;

  auto none = receive_bytes_into(pair->second.get(), buf, MSG_DONTWAIT);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);

  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::array<int, 1> fds{p[1]};
  ASSERT_TRUE(send_message(pair->first.get(), as_bytes("with fd"), fds));
  ::close(p[1]);
  auto with_fd = receive_bytes_into(pair->second.get(), buf);
  ASSERT_TRUE(with_fd && *with_fd);
  EXPECT_EQ((*with_fd)->size(), 7u);
  EXPECT_TRUE(read_end_sees_eof(p[0]));  // no copy of the write end lives on
  ::close(p[0]);

  pair->first.reset();
  auto gone = receive_bytes_into(pair->second.get(), buf);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::kDisconnected);
}

// pmmd's read: the queued messages in one call, each its size; after the
// peer closes, a datagram saying so with the connection's fd (the text is
// built without fmt; it must read as fmt::format wrote it).
TEST(Socket, BatchedReadTakesWhatIsQueuedAndSaysWhenThePeerClosed) {
  auto pair = socket_pair();
  ASSERT_TRUE(pair);
  std::array<std::array<std::byte, 64>, 4> storage{};
  std::array<std::span<std::byte>, 4> buffers;
  for (size_t i = 0; i < buffers.size(); ++i) buffers[i] = storage[i];
  MessageBatch batch(buffers);
  std::array<Datagram, 4> got;

  auto nothing = receive_messages(pair->second.get(), batch, got);
  ASSERT_TRUE(nothing);
  EXPECT_EQ(*nothing, 0u);

  ASSERT_TRUE(send_message(pair->first.get(), as_bytes("one"), {}));
  ASSERT_TRUE(send_message(pair->first.get(), as_bytes("three"), {}));
  auto two = receive_messages(pair->second.get(), batch, got);
  ASSERT_TRUE(two);
  ASSERT_EQ(*two, 2u);
  EXPECT_EQ(got[0].size, 3u);
  EXPECT_FALSE(got[0].error);
  EXPECT_EQ(got[1].size, 5u);
  EXPECT_EQ(std::memcmp(storage[1].data(), "three", 5), 0);

  pair->first.reset();
  auto closed = receive_messages(pair->second.get(), batch, got);
  ASSERT_TRUE(closed);
  ASSERT_EQ(*closed, 1u);
  ASSERT_TRUE(got[0].error);
  EXPECT_EQ(got[0].error->code, Errc::kDisconnected);
  EXPECT_EQ(got[0].error->message,
            fmt::format("the peer closed the connection (fd {})", pair->second.get()));
}

TEST(Socket, DefaultPathFollowsTheEnvironment) {
  std::string saved_pmm = std::getenv("PMM_SOCKET") ? std::getenv("PMM_SOCKET") : "";
  std::string saved_xdg = std::getenv("XDG_RUNTIME_DIR") ? std::getenv("XDG_RUNTIME_DIR") : "";
  ::setenv("PMM_SOCKET", "/tmp/x/pmm.sock", 1);
  ::setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
  EXPECT_EQ(default_socket_path(), "/tmp/x/pmm.sock");
  ::setenv("PMM_SOCKET", "", 1);
  EXPECT_EQ(default_socket_path(), "/run/user/1000/pmm/pmm.sock");
  ::unsetenv("PMM_SOCKET");
  ::unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(default_socket_path(), "/run/pmm/pmm.sock");
  if (!saved_pmm.empty()) ::setenv("PMM_SOCKET", saved_pmm.c_str(), 1);
  if (!saved_xdg.empty()) ::setenv("XDG_RUNTIME_DIR", saved_xdg.c_str(), 1);
}

}  // namespace
}  // namespace pmm::os
