// What every pipeline test starts from: a private pmmd (embedded default
// config, its own socket in a scratch directory), a private 1920x1080 Xvfb,
// and an admin connection to read the daemon's stats. Parameterised by the
// pool the stages use (GetParam()).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "client/connection.h"
#include "xvfb.h"

namespace tests {

class PipelineFixture : public ::testing::TestWithParam<std::string> {
 protected:
  static constexpr uint32_t kOutWidth = 1920, kOutHeight = 1080;

  void SetUp() override {
    using namespace std::chrono_literals;
    ASSERT_TRUE(xvfb_.ok()) << xvfb_.error();
    char tmpl[] = "/tmp/pmm-pipeline-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_ = dir_ + "/pmm.sock";
    pmmd_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{PIPELINE_PMMD, "--socket", socket_}, ChildProcess::Env{});
    for (int i = 0; i < 200 && !admin_; ++i) {
      auto conn = pmm::client::Connection::connect(socket_, "pipeline-test");
      if (conn) {
        admin_ = std::move(*conn);
      } else {
        std::this_thread::sleep_for(50ms);
      }
    }
    ASSERT_TRUE(admin_) << "pmmd did not answer on " << socket_ << " within 10 s";
  }

  void TearDown() override {
    admin_.reset();
    pmmd_.reset();  // SIGTERM: the daemon removes its socket and SysV segment
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  [[nodiscard]] ChildProcess::Env env() const {
    return {{"PMM_SOCKET", socket_}, {"DISPLAY", xvfb_.display()}};
  }

  pmm::proto::StatsReply stats() {
    auto s = admin_->stats();
    EXPECT_TRUE(s) << s.error().describe();
    return s ? *s : pmm::proto::StatsReply{};
  }

  // The daemon learns of a dead client when its socket closes, a moment
  // after the process is reaped: poll, within a bound, until no block,
  // export or byte is live and every pool is empty.
  ::testing::AssertionResult all_returned(std::chrono::milliseconds timeout) {
    using namespace std::chrono_literals;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    pmm::proto::StatsReply s;
    for (;;) {
      s = stats();
      if (s.blocks == 0 && s.exports == 0 && s.bytes == 0) break;
      if (std::chrono::steady_clock::now() > deadline) {
        return ::testing::AssertionFailure() << s.blocks << " blocks (" << s.bytes << " bytes) and "
                                             << s.exports << " exports still live";
      }
      std::this_thread::sleep_for(20ms);
    }
    for (const auto& p : s.pools) {
      if (p.live_blocks != 0 || p.bytes_used != 0) {
        return ::testing::AssertionFailure()
               << "pool " << p.name << " has " << p.live_blocks << " live blocks";
      }
    }
    return ::testing::AssertionSuccess();
  }

  Xvfb xvfb_{kOutWidth, kOutHeight};
  std::string dir_;
  std::string socket_;
  std::unique_ptr<ChildProcess> pmmd_;
  std::unique_ptr<pmm::client::Connection> admin_;
};

}  // namespace tests
