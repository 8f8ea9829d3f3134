// `pmmctl map`, `metrics` and `top` as a user runs them: the real pmmctl
// against a real pmmd on a private socket, as root and as uid 65534
// (setpriv). The SVG is read back with a real XML parser (Debian's Python,
// read_map_svg.py); the metrics are checked line by line against the
// Prometheus text exposition format 0.0.4.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon_process.h"

namespace {

using nlohmann::json;
using pmm::testing::DaemonProcess;
using Out = pmm::testing::Run;

constexpr uint64_t kMiB = 1 << 20;

constexpr const char* kConfig = R"(
[pools.general]
type = "shmem"
size = "16MiB"
uids = [0, 65534]

[pools.display]
type = "sysv"
size = "4MiB"

[devices.decoder]
pools = ["general"]
)";

const std::vector<std::string> kNobody{"setpriv", "--reuid=65534", "--regid=65534",
                                       "--clear-groups"};

Out pmmctl(const DaemonProcess& d, std::vector<std::string> args,
           const std::vector<std::string>& as = {}, const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = as;
  for (const char* a : {PMM_PMMCTL_PATH, "--socket"}) argv.emplace_back(a);
  argv.push_back(d.socket());
  argv.insert(argv.end(), args.begin(), args.end());
  return pmm::testing::run_command(argv, env);
}

// The SVG `text` as read_map_svg.py reads it back (a parse error fails).
json read_svg(const std::string& text) {
  char path[] = "/tmp/pmm-map-XXXXXX.svg";
  int fd = ::mkstemps(path, 4);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  Out r = pmm::testing::run_command({PMM_DEBIAN_PYTHON3, PMM_READ_MAP_SVG, path});
  ::unlink(path);
  EXPECT_EQ(r.status, 0) << "the SVG does not parse: " << r.err;
  if (r.status != 0) return json::object();
  return json::parse(r.out);
}

// Extents in order from 0, each non-empty, adding up to the pool's size.
void expect_tiles_pool(const json& svg, uint64_t size) {
  uint64_t at = 0;
  for (const json& e : svg["extents"]) {
    EXPECT_EQ(e["offset"].get<uint64_t>(), at);
    EXPECT_GT(e["size"].get<uint64_t>(), 0u);
    EXPECT_GE(e["rects"].get<int>(), 1) << "an extent is drawn";
    at += e["size"].get<uint64_t>();
  }
  EXPECT_EQ(at, size);
}

class LiveViews : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d_.ok()) << d_.log();
    // Fill the pool (4+1+4+1+4+2 MiB), then free the three 4 MiB blocks:
    // 12 MiB free, but in pieces of 4 MiB.
    std::vector<std::string> tokens;
    for (const char* size : {"4M", "1M", "4M", "1M", "4M", "2M"}) {
      Out r = pmmctl(d_, {"--device", "decoder", "alloc", "general", size, "--lifetime", "1h"});
      ASSERT_EQ(r.status, 0) << r.err;
      tokens.push_back(r.out.substr(0, 32));
    }
    for (size_t i : {0, 2, 4}) {
      Out r = pmmctl(d_, {"free", tokens[i]});
      ASSERT_EQ(r.status, 0) << r.err;
    }
  }
  DaemonProcess d_{kConfig};
};

TEST_F(LiveViews, MapShowsWhyAnAllocationIsRefused) {
  Out refused = pmmctl(d_, {"alloc", "general", "6M"});
  ASSERT_EQ(refused.status, 1) << refused.out;

  char path[] = "/tmp/pmm-map-out-XXXXXX";
  ASSERT_NE(::mkdtemp(path), nullptr);
  const std::string file = std::string(path) + "/general.svg";
  Out r = pmmctl(d_, {"map", "general", "-o", file, "--request", "6M"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "") << "-o writes the file, not stdout";
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove_all(path);
  const json svg = read_svg(text.str());
  expect_tiles_pool(svg, 16 * kMiB);

  uint64_t free_bytes = 0, largest = 0, used = 0;
  for (const json& e : svg["extents"]) {
    const auto u = e["used"].get<uint64_t>(), s = e["size"].get<uint64_t>();
    used += u;
    if (u == 0) {
      free_bytes += s;
      largest = std::max(largest, s);
    } else {
      EXPECT_EQ(e["device"], "decoder") << "root sees its blocks' device";
    }
  }
  EXPECT_EQ(used, 4 * kMiB);
  EXPECT_EQ(free_bytes, 12 * kMiB);
  // Why 6 MiB was refused with 12 MiB free: no free extent is that large.
  EXPECT_LT(largest, 6 * kMiB);
  ASSERT_TRUE(svg["largest"].is_object());
  EXPECT_EQ(svg["largest"]["size"].get<uint64_t>(), largest);
  std::string legend;
  for (const json& l : svg["legend"]) legend += l.get<std::string>() + "\n";
  EXPECT_NE(legend.find("a request of 6 MiB is refused: it is larger than the largest free "
                        "extent (4 MiB), although 12 MiB are free in 3 pieces"),
            std::string::npos)
      << legend;
  EXPECT_NE(legend.find("fragmentation 1 - largest/free = 0.667"), std::string::npos) << legend;
  EXPECT_NE(legend.find("device decoder"), std::string::npos) << legend;
}

TEST_F(LiveViews, AnotherUserSeesRootsBlocksAsUsedButNamesNobody) {
  Out own = pmmctl(d_, {"alloc", "general", "64KiB", "--lifetime", "60s"}, kNobody);
  ASSERT_EQ(own.status, 0) << own.err;
  Out r = pmmctl(d_, {"map", "general"}, kNobody);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find("decoder"), std::string::npos) << "root's device leaked";
  const json svg = read_svg(r.out);
  expect_tiles_pool(svg, 16 * kMiB);
  int hidden = 0, mine = 0;
  for (const json& e : svg["extents"]) {
    if (e["used"].get<uint64_t>() == 0) continue;
    if (e["uid"].is_null()) {
      EXPECT_EQ(e["device"], "another user's");
      ++hidden;
    } else {
      EXPECT_EQ(e["uid"].get<uint32_t>(), 65534u) << "only its own uid is named";
      ++mine;
    }
  }
  EXPECT_EQ(hidden, 3);
  EXPECT_EQ(mine, 1);

  Out term = pmmctl(d_, {"map", "general", "--term", "--width", "40"}, kNobody);
  ASSERT_EQ(term.status, 0) << term.err;
  EXPECT_EQ(term.out.find("decoder"), std::string::npos);
  EXPECT_NE(term.out.find("another user's block"), std::string::npos);
}

TEST_F(LiveViews, TerminalStripHasColoursAndTheLegend) {
  Out r = pmmctl(d_, {"map", "general", "--term", "--width", "40", "--rows", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\x1b[48;2;"), std::string::npos) << "24-bit background colours";
  EXPECT_NE(r.out.find("largest free extent 4 MiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("in 3 free extent(s)"), std::string::npos) << r.out;
  Out plain = pmmctl(d_, {"map", "general", "--term", "--width", "40"}, {}, {"NO_COLOR=1"});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(plain.out.find('\x1b'), std::string::npos) << "NO_COLOR: no escapes";
  EXPECT_NE(plain.out.find('='), std::string::npos) << "the largest free extent is marked";

  Out unknown = pmmctl(d_, {"map", "nosuchpool"});
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.err.find("the pools are: general, display"), std::string::npos) << unknown.err;
}

// ---- the exposition format -------------------------------------------------------

bool metric_name(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_' || s[0] == ':'))
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':')) return false;
  return true;
}

double sample_value(const std::string& v) {
  if (v == "+Inf") return INFINITY;
  if (v == "-Inf") return -INFINITY;
  if (v == "NaN") return NAN;
  size_t used = 0;
  double d = std::stod(v, &used);
  EXPECT_EQ(used, v.size()) << "value '" << v << "'";
  return d;
}

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// `name{l="v",...} value`, with the format's escapes in label values.
Sample parse_sample(const std::string& line) {
  Sample s;
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  s.name = line.substr(0, i);
  EXPECT_TRUE(metric_name(s.name)) << line;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t eq = line.find('=', i);
      EXPECT_NE(eq, std::string::npos) << line;
      if (eq == std::string::npos) return s;
      std::string label = line.substr(i, eq - i);
      EXPECT_TRUE(metric_name(label)) << line;
      EXPECT_EQ(line[eq + 1], '"') << line;
      std::string value;
      size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\') {
          ++j;
          EXPECT_TRUE(line[j] == '\\' || line[j] == '"' || line[j] == 'n') << line;
          value += line[j] == 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      EXPECT_LT(j, line.size()) << "unterminated label value: " << line;
      EXPECT_TRUE(s.labels.emplace(label, value).second) << "label twice: " << line;
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    ++i;
  }
  EXPECT_EQ(line[i], ' ') << line;
  s.value = sample_value(line.substr(i + 1));
  return s;
}

TEST_F(LiveViews, MetricsFollowTheExpositionFormat) {
  (void)pmmctl(d_, {"alloc", "general", "6M"});  // a refusal to count
  Out r = pmmctl(d_, {"metrics"});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  ASSERT_EQ(r.out.back(), '\n');

  std::map<std::string, std::string> types;  // family -> type
  std::set<std::string> helped;
  std::vector<Sample> samples;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    ASSERT_FALSE(line.empty()) << "no blank lines";
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(name).second) << "HELP twice: " << line;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_TRUE(helped.count(name)) << "HELP comes before TYPE: " << line;
      EXPECT_TRUE(types.emplace(name, type).second) << "TYPE twice: " << line;
      continue;
    }
    ASSERT_NE(line[0], '#') << "only HELP and TYPE comments: " << line;
    Sample s = parse_sample(line);
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string suf = suffix;
      if (family.size() > suf.size() && family.ends_with(suf) &&
          types.count(family.substr(0, family.size() - suf.size())) &&
          types[family.substr(0, family.size() - suf.size())] == "histogram")
        family = family.substr(0, family.size() - suf.size());
    }
    ASSERT_TRUE(types.count(family)) << "a sample before its TYPE: " << line;
    if (types[family] == "counter") {
      EXPECT_TRUE(s.name.ends_with("_total")) << line;
    }
    samples.push_back(std::move(s));
  }

  auto value = [&](const std::string& name,
                   const std::map<std::string, std::string>& labels) -> double {
    for (const Sample& s : samples)
      if (s.name == name && s.labels == labels) return s.value;
    ADD_FAILURE() << "no sample " << name;
    return std::nan("");
  };
  EXPECT_EQ(value("pmm_pool_size_bytes", {{"pool", "general"}, {"type", "shmem"}}), 16.0 * kMiB);
  EXPECT_EQ(value("pmm_pool_used_bytes", {{"pool", "general"}, {"type", "shmem"}}), 4.0 * kMiB);
  EXPECT_EQ(value("pmm_pool_largest_free_bytes", {{"pool", "general"}, {"type", "shmem"}}),
            4.0 * kMiB);
  EXPECT_EQ(value("pmm_pool_free_extents", {{"pool", "general"}, {"type", "shmem"}}), 3.0);
  EXPECT_EQ(value("pmm_pool_blocks", {{"pool", "general"}, {"type", "shmem"}}), 3.0);
  EXPECT_EQ(value("pmm_device_max_bytes", {{"device", "decoder"}}), INFINITY);
  EXPECT_GE(value("pmm_refusals_total", {{"cause", "no_memory"}}), 1.0);
  EXPECT_GE(value("pmm_requests_total", {{"type", "allocate"}}), 7.0);
  EXPECT_GE(value("pmm_request_errors_total", {{"type", "allocate"}}), 1.0);
  EXPECT_GE(value("pmm_sessions", {}), 1.0);

  // The histogram: buckets by increasing le, counts never falling, +Inf last
  // and equal to _count.
  double last_le = -1, last_count = 0;
  bool inf_seen = false;
  for (const Sample& s : samples) {
    if (s.name != "pmm_request_duration_seconds_bucket") continue;
    ASSERT_FALSE(inf_seen) << "+Inf is the last bucket";
    const double le = sample_value(s.labels.at("le"));
    EXPECT_GT(le, last_le);
    EXPECT_GE(s.value, last_count);
    last_le = le;
    last_count = s.value;
    inf_seen = std::isinf(le);
  }
  EXPECT_TRUE(inf_seen);
  const double count = value("pmm_request_duration_seconds_count", {});
  EXPECT_EQ(last_count, count);
  EXPECT_GT(count, 10.0);
  EXPECT_GT(value("pmm_request_duration_seconds_sum", {}), 0.0);
}

TEST_F(LiveViews, MetricsAreForAdminsOnly) {
  Out r = pmmctl(d_, {"metrics"}, kNobody);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("only admins (root)"), std::string::npos) << r.err;
}

TEST_F(LiveViews, TopOnceShowsPoolsDevicesSessionsAndRates) {
  Out r = pmmctl(d_, {"top", "--once", "--interval", "200ms"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* want : {"general", "display", "decoder", "FREE EXTENTS", "FRAG", "0.67",
                           "sessions you may see", "requests over the last", "list_devices"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " in\n" << r.out;
  EXPECT_EQ(r.out.find("\x1b[2J"), std::string::npos) << "--once does not clear the screen";

  // A non-admin: pools (they name nobody), its own sessions, no rates.
  Out n = pmmctl(d_, {"top", "--interval", "100ms"}, kNobody);  // not a tty: once
  ASSERT_EQ(n.status, 0) << n.err;
  EXPECT_NE(n.out.find("general"), std::string::npos) << n.out;
  EXPECT_NE(n.out.find("request rates: not shown"), std::string::npos) << n.out;
  EXPECT_EQ(n.out.find("decoder"), std::string::npos) << "root's device leaked:\n" << n.out;

  Out bad = pmmctl(d_, {"top", "--interval", "5ms"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("from 100ms to 1h"), std::string::npos) << bad.err;
}

}  // namespace
