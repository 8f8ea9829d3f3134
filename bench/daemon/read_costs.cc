// pmm_bench_read_costs: what the two ways libpmm's blocking read differs
// from the floor's cost on this machine, measured apart from pmm.
//
// A client and an echo server on one CPU ping-pong over a SOCK_SEQPACKET
// socketpair (32-byte requests, 83-byte replies: an Import and its
// BlockInfo), the client reading each reply three ways, in alternating
// rounds:
//   recv                  the floor's read
//   recv + SO_RCVTIMEO    libpmm's bounded read (the kernel arms a timer
//                         whenever the read blocks)
//   recvmsg + cmsg room   a read that can take an fd (libpmm's when a reply
//                         may bring a pool's fd)
// Prints a table: µs per round trip, median (min-max) of the rounds, and
// the difference from plain recv.
//
// Usage: pmm_bench_read_costs [ROUNDS] [TRIPS]   (default 9 rounds of 50,000)
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kRequest = 32;
constexpr size_t kReply = 83;
constexpr size_t kBuffer = 128 * 1024;  // as libpmm's and the floor's read buffers

enum class Read { kRecv, kBounded, kRecvmsg };
constexpr std::array kReads{Read::kRecv, Read::kBounded, Read::kRecvmsg};
const char* name(Read r) {
  switch (r) {
    case Read::kRecv:
      return "recv (the floor's)";
    case Read::kBounded:
      return "recv + SO_RCVTIMEO 2 s (libpmm's)";
    case Read::kRecvmsg:
      return "recvmsg with room for an fd";
  }
  return "";
}

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void pin_to_cpu0() {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

// µs per round trip over `trips`, reading the replies as `how`.
double round_trips(Read how, int trips) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  std::vector<char> buffer(kBuffer);
  pid_t server = fork();
  if (server < 0) die("fork");
  if (server == 0) {
    pin_to_cpu0();
    close(sv[1]);
    const std::vector<char> reply(kReply, 'r');
    while (recv(sv[0], buffer.data(), buffer.size(), 0) > 0)
      (void)send(sv[0], reply.data(), reply.size(), MSG_NOSIGNAL);
    _exit(0);
  }
  close(sv[0]);
  pin_to_cpu0();
  const int fd = sv[1];
  if (how == Read::kBounded) {
    const timeval two_seconds{.tv_sec = 2, .tv_usec = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two_seconds, sizeof two_seconds) != 0)
      die("setsockopt");
  }
  const std::vector<char> request(kRequest, 'q');
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control;
  auto one = [&] {
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(kRequest)) die("send");
    ssize_t got;
    if (how == Read::kRecvmsg) {
      iovec iov{buffer.data(), buffer.size()};
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = control.data();
      m.msg_controllen = control.size();
      got = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    } else {
      got = recv(fd, buffer.data(), buffer.size(), 0);
    }
    if (got != ssize_t(kReply)) die("read");
  };
  for (int i = 0; i < trips / 20; ++i) one();  // warm up
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < trips; ++i) one();
  const auto t1 = std::chrono::steady_clock::now();
  close(fd);
  waitpid(server, nullptr, 0);
  return std::chrono::duration<double, std::micro>(t1 - t0).count() / trips;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 9;
  const int trips = argc > 2 ? std::max(100, std::atoi(argv[2])) : 50'000;
  std::array<std::vector<double>, kReads.size()> us;
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < kReads.size(); ++k) {
      // Rotate the order, so that no way is always first after a fork.
      const size_t which = (k + static_cast<size_t>(r)) % kReads.size();
      us[which].push_back(round_trips(kReads[which], trips));
    }
  }
  std::printf(
      "Same-CPU SOCK_SEQPACKET round trips (%zu-byte request, %zu-byte reply), the client "
      "reading each reply three ways; median (min-max) of %d alternating rounds of %d\n\n",
      kRequest, kReply, rounds, trips);
  std::printf("| read | us per round trip | more than recv |\n|---|---|---|\n");
  const double base = median(us[0]);
  for (size_t k = 0; k < kReads.size(); ++k) {
    const auto [lo, hi] = std::minmax_element(us[k].begin(), us[k].end());
    const double m = median(us[k]);
    std::printf(
        "| %s | %.2f (%.2f-%.2f) | %s |\n", name(kReads[k]), m, *lo, *hi,
        k == 0 ? "-" : (std::to_string(static_cast<int>((m - base) * 1000)) + " ns").c_str());
  }
  return 0;
}
