// The pmm GStreamer plugin with real GStreamer elements, each side of the
// socket its own process (gst_pmm_probe or gst-launch-1.0), against a real
// pmmd; the X11 test on a real Xvfb. What each test proves is written above
// it. The plugin is found the way a user finds it from the build tree:
// GST_PLUGIN_PATH=build/<preset>/gst.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "daemon_process.h"
#include "xvfb.h"

namespace {

using namespace std::chrono_literals;
using pmm::testing::DaemonProcess;
using tests::ChildProcess;

constexpr char kConfig[] = R"([pools.general]
type = "shmem"
size = "128MiB"
)";

constexpr char kI420[] = "video/x-raw,format=I420,width=320,height=240,framerate=30/1";
// 3 bytes a pixel and an odd width: rows are padded, so a stride or plane
// offset taken from the wrong place shows.
constexpr char kRgbOdd[] = "video/x-raw,format=RGB,width=317,height=161,framerate=30/1";

class GstPlugin : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(daemon_.ok()) << daemon_.log(); }

  ChildProcess::Env env() const {
    return {{"GST_PLUGIN_PATH", GST_PMM_PLUGIN_DIR},
            {"GST_REGISTRY", GST_PMM_REGISTRY},
            {"PMM_SOCKET", daemon_.socket()},
            {"GST_DEBUG", "*:1"}};
  }
  std::string path(const std::string& name) const { return daemon_.dir() + "/" + name; }

  // gst_pmm_probe MODE ARGS... as a child process, stderr merged.
  std::unique_ptr<ChildProcess> probe(std::vector<std::string> args,
                                      const ChildProcess::Env& extra = {}) const {
    args.insert(args.begin(), GST_PMM_PROBE);
    auto e = env();
    e.insert(e.end(), extra.begin(), extra.end());
    return std::make_unique<ChildProcess>(args, e, -1, true);
  }

  // Waits until a pmmsink listens at `socket`.
  static bool wait_for_socket(const std::string& socket) {
    for (int i = 0; i < 100; ++i) {
      struct stat st {};
      if (::stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // `pmmctl blocks`: "no blocks" when nothing is allocated any more.
  std::string blocks() const {
    return pmm::testing::run_command({PMM_PMMCTL_PATH, "--socket", daemon_.socket(), "blocks"}).out;
  }
  // Polls pmmctl until no block is left or `within` passed.
  bool no_blocks_within(std::chrono::milliseconds within) const {
    auto until = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < until) {
      if (blocks() == "no blocks\n") return true;
      std::this_thread::sleep_for(100ms);
    }
    return blocks() == "no blocks\n";
  }

  // Reads lines until one starts with `prefix`; "" on EOF or timeout.
  static std::string line_starting(ChildProcess& c, const std::string& prefix,
                                   std::chrono::milliseconds timeout = 10s,
                                   std::vector<std::string>* seen = nullptr) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      auto line = c.read_line(left);
      if (!line) return "";
      if (seen) seen->push_back(*line);
      if (line->rfind(prefix, 0) == 0) return *line;
    }
  }

  // What `c` printed so far (waiting at most `quiet` for each line).
  static std::string drain(ChildProcess& c, std::chrono::milliseconds quiet = 200ms) {
    std::string out;
    while (auto line = c.read_line(quiet)) out += *line + "\n";
    return out;
  }

  // The value after `key=` in a probe line.
  static std::string field(const std::string& line, const std::string& key) {
    auto at = line.find(" " + key + "=");
    if (at == std::string::npos) return "";
    auto start = at + key.size() + 2;
    return line.substr(start, line.find(' ', start) - start);
  }

  // videotestsrc → `upstream_extra` → pmmsink in one process, pmmsrc →
  // appsink in another, compared frame by frame with the same pattern made
  // in the consumer. Returns the sink's copies counter.
  void stream_and_compare(const std::string& caps, const std::string& upstream_extra,
                          const std::string& expect_copies) {
    const int n = 30;
    std::string sock = path("video.sock");
    auto producer = probe({"run", fmt::format("videotestsrc pattern=ball num-buffers={} ! {} ! {}"
                                              "pmmsink name=sink socket-path={} sync=false",
                                              n, caps, upstream_extra, sock)});
    ASSERT_TRUE(wait_for_socket(sock)) << "no pmmsink socket at " << sock;
    auto consumer = probe(
        {"compare", fmt::format("pmmsrc socket-path={} ! appsink name=out sync=false", sock),
         fmt::format("videotestsrc pattern=ball num-buffers={} ! {} ! appsink name=ref sync=false",
                     n, caps),
         std::to_string(n)});

    std::vector<std::string> consumed;
    std::string summary = line_starting(*consumer, "compared", 20s, &consumed);
    auto consumer_status = consumer->wait(10s);
    std::vector<std::string> produced;
    std::string copies = line_starting(*producer, "copies=", 10s, &produced);
    auto producer_status = producer->wait(10s);

    std::string log;
    for (auto& l : consumed) log += "consumer: " + l + "\n";
    for (auto& l : produced) log += "producer: " + l + "\n";
    EXPECT_EQ(summary, fmt::format("compared {} frames, {} good, eos=1", n, n)) << log;
    ASSERT_TRUE(consumer_status.has_value()) << log;
    EXPECT_TRUE(WIFEXITED(*consumer_status) && WEXITSTATUS(*consumer_status) == 0) << log;
    ASSERT_TRUE(producer_status.has_value()) << log;
    EXPECT_TRUE(WIFEXITED(*producer_status) && WEXITSTATUS(*producer_status) == 0) << log;
    EXPECT_EQ(copies, "copies=" + expect_copies) << log;

    // Zero copy: each frame the consumer got lies at the very offset of
    // the pool where the producer's buffer of the same timestamp was.
    std::map<std::string, std::string> producer_offset;
    for (auto& l : produced)
      if (l.rfind("buffer ", 0) == 0) producer_offset[field(l, "pts")] = field(l, "pool_offset");
    int matched = 0;
    for (auto& l : consumed) {
      if (l.rfind("frame ", 0) != 0) continue;
      EXPECT_EQ(field(l, "zero_copy"), "1") << l;
      if (expect_copies == "0") {
        EXPECT_EQ(producer_offset[field(l, "pts")], field(l, "pool_offset")) << l << "\n" << log;
      }
      ++matched;
    }
    EXPECT_EQ(matched, n) << log;
    // Both processes are gone: every block is back in its pool.
    EXPECT_TRUE(no_blocks_within(3s)) << blocks();
  }

  DaemonProcess daemon_{kConfig};
};

// `gst-inspect-1.0 pmmsink` / `pmmsrc` work from the build tree.
TEST_F(GstPlugin, InspectFindsBothElementsFromTheBuildTree) {
  for (auto [element, property] : {std::pair{"pmmsink", "copies"}, {"pmmsrc", "reconnect"}}) {
    auto [status, out] =
        tests::run_to_end({"/usr/bin/gst-inspect-1.0", element}, env(), "", 60s, true);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    EXPECT_NE(out.find("libgstpmm.so"), std::string::npos) << out;
    EXPECT_NE(out.find("socket-path"), std::string::npos) << out;
    EXPECT_NE(out.find(property), std::string::npos) << out;
  }
}

// Upstream writes into the pool pmmsink offers: no copy at all, and the
// consumer reads exactly what videotestsrc wrote (I420: three planes).
TEST_F(GstPlugin, I420FramesArriveByteForByteInPlace) { stream_and_compare(kI420, "", "0"); }

// Padded rows (RGB, odd width): strides and plane offsets travel right.
TEST_F(GstPlugin, PaddedRgbFramesArriveByteForByteInPlace) { stream_and_compare(kRgbOdd, "", "0"); }

// Upstream that does not take the offered pool (identity drops the
// allocation query): each buffer is copied once into a block, and counted.
TEST_F(GstPlugin, BufferThatIsNotABlockIsCopiedOnceAndCounted) {
  stream_and_compare(kI420, "identity drop-allocation=true ! ", "30");
}

// A consumer that stops reading (SIGSTOP) while upstream ignores the
// offered pool: pmmsink's copies come from a pool of its own, so the
// producer is held back with at most max-buffers blocks allocated (one
// block per copied frame would pile up ~30 a second), and carries on once
// the consumer does (SIGCONT).
TEST_F(GstPlugin, CopiesForAStoppedConsumerStayWithinMaxBuffers) {
  std::string sock = path("slow.sock");
  auto producer = probe(
      {"run", fmt::format("videotestsrc is-live=true ! {} ! identity drop-allocation=true ! "
                          "pmmsink name=sink socket-path={} max-buffers=4 export-lifetime=3000",
                          kI420, sock)});
  ASSERT_TRUE(wait_for_socket(sock));
  auto consumer = probe({"run", fmt::format("pmmsrc socket-path={} ! fakesink name=sink", sock)});
  for (int i = 0; i < 3; ++i) ASSERT_NE(line_starting(*consumer, "buffer "), "") << i;
  consumer->kill(SIGSTOP);
  std::this_thread::sleep_for(1500ms);
  // `pmmctl blocks`: a header, then one line per block.
  std::string listed = blocks();
  auto lines = std::count(listed.begin(), listed.end(), '\n');
  EXPECT_LE(lines - 1, 4) << listed;
  consumer->kill(SIGCONT);
  for (int i = 0; i < 10; ++i)
    ASSERT_NE(line_starting(*consumer, "buffer "), "") << "no frames after SIGCONT (" << i << ")";
  consumer->kill(SIGKILL);
  producer->kill(SIGKILL);
  ASSERT_TRUE(consumer->wait(5s).has_value());
  ASSERT_TRUE(producer->wait(5s).has_value());
  EXPECT_TRUE(no_blocks_within(5s)) << blocks();
}

// pmmsrc ! videoconvert ! ximagesink on Xvfb shows the producer's frames:
// the screen's pixels are the test card converted the same way here.
TEST_F(GstPlugin, XimagesinkShowsTheProducersFrames) {
  tests::Xvfb x(640, 480);
  ASSERT_TRUE(x.ok()) << x.error();
  std::string sock = path("x.sock");
  auto producer = probe({"run", fmt::format("videotestsrc pattern=smpte100 is-live=true ! {} ! "
                                            "pmmsink socket-path={} export-lifetime=1000",
                                            kI420, sock)});
  ASSERT_TRUE(wait_for_socket(sock));
  auto e = env();
  e.emplace_back("DISPLAY", x.display());
  ChildProcess show({"/usr/bin/gst-launch-1.0", "pmmsrc", "socket-path=" + sock, "!",
                     "videoconvert", "!", "ximagesink", "sync=false"},
                    e, -1, true);
  // The window appears when the first frame arrives: look until it shows
  // the card (10 s at most).
  std::string out;
  double mean = 1e9;
  for (auto until = std::chrono::steady_clock::now() + 10s;
       mean >= 0.5 && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(200ms);
    auto [status, text] = tests::run_to_end(
        {GST_PMM_PROBE, "xshot", x.display(),
         fmt::format("videotestsrc pattern=smpte100 num-buffers=1 ! {} ! videoconvert ! "
                     "video/x-raw,format=BGRx ! appsink name=ref",
                     kI420)},
        env(), "", 20s, true);
    out = text;
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    auto at = out.find("xshot mean=");
    ASSERT_NE(at, std::string::npos) << out;
    mean = std::stod(out.substr(at + 11));
  }
  // The same conversion on both sides: equal but for nothing; a window not
  // shown (black) or a wrong frame is far off.
  EXPECT_LT(mean, 0.5) << out << "\ngst-launch-1.0 said:\n" << drain(show);
  show.kill(SIGKILL);
  producer->kill(SIGKILL);
  EXPECT_TRUE(show.wait(5s).has_value());
  EXPECT_TRUE(producer->wait(5s).has_value());
  EXPECT_TRUE(no_blocks_within(4s)) << blocks();
}

// SIGKILL of either side mid-stream. A consumer's crash: the producer
// carries on and serves the next consumer. The producer's crash: a plain
// consumer ends its stream (EOS, exit 0); one with reconnect=true waits and
// streams from the next producer. Afterwards no block is left in the pool
// (the frames the killed producer had exported are freed after its
// export-lifetime).
TEST_F(GstPlugin, SigkillOfEitherSideLeaksNoBlock) {
  std::string sock = path("crash.sock");
  std::string produce = fmt::format(
      "videotestsrc is-live=true ! {} ! pmmsink name=sink socket-path={} export-lifetime=1000",
      kI420, sock);
  std::string consume = fmt::format("pmmsrc socket-path={} ! fakesink name=sink", sock);
  auto producer = probe({"run", produce});
  ASSERT_TRUE(wait_for_socket(sock));

  auto doomed = probe({"run", consume});
  for (int i = 0; i < 5; ++i) ASSERT_NE(line_starting(*doomed, "buffer "), "") << i;
  doomed->kill(SIGKILL);
  ASSERT_TRUE(doomed->wait(5s).has_value());

  auto plain = probe({"run", consume});
  auto waiting = probe(
      {"run", fmt::format("pmmsrc socket-path={} reconnect=true ! fakesink name=sink", sock)});
  for (int i = 0; i < 5; ++i) {
    ASSERT_NE(line_starting(*plain, "buffer "), "")
        << "the producer stopped after a consumer's crash";
    ASSERT_NE(line_starting(*waiting, "buffer "), "") << i;
  }
  EXPECT_FALSE(producer->wait(0ms).has_value()) << "the producer died with its consumer";

  producer->kill(SIGKILL);
  ASSERT_TRUE(producer->wait(5s).has_value());
  EXPECT_NE(line_starting(*plain, "eos", 5s), "") << "no EOS after the producer's crash";
  auto plain_status = plain->wait(5s);
  ASSERT_TRUE(plain_status.has_value());
  EXPECT_TRUE(WIFEXITED(*plain_status) && WEXITSTATUS(*plain_status) == 0);
  EXPECT_FALSE(waiting->wait(300ms).has_value()) << "reconnect=true ended the stream";

  auto second = probe({"run", produce});
  for (int i = 0; i < 3; ++i)
    ASSERT_NE(line_starting(*waiting, "buffer "), "") << "no frames from the next producer";
  second->kill(SIGKILL);
  waiting->kill(SIGKILL);
  ASSERT_TRUE(second->wait(5s).has_value());
  ASSERT_TRUE(waiting->wait(5s).has_value());
  EXPECT_TRUE(no_blocks_within(4s)) << blocks();
}

}  // namespace
