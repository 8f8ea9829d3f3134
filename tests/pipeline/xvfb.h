// A private Xvfb for one test: it picks a free display number itself
// (-displayfd), so tests running in parallel never collide, and it is
// killed when the object goes.
//
//   tests::Xvfb x(1920, 1080);
//   ASSERT_TRUE(x.ok()) << x.error();
//   examples::XDisplay::connect(x.display().c_str());
//
// One thread uses an Xvfb.
#ifndef TESTS_PIPELINE_XVFB_H_
#define TESTS_PIPELINE_XVFB_H_

#include <memory>
#include <string>

#include "child_process.h"

namespace tests {

class Xvfb {
 public:
  // Starts Xvfb with one screen of width x height at depth 24, MIT-SHM on,
  // no TCP; waits (up to 20 s) until it reports its display number.
  Xvfb(uint32_t width, uint32_t height);

  [[nodiscard]] bool ok() const { return !display_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }
  // ":N"
  [[nodiscard]] const std::string& display() const { return display_; }

 private:
  std::unique_ptr<ChildProcess> server_;
  std::string display_;
  std::string error_;
};

}  // namespace tests

#endif  // TESTS_PIPELINE_XVFB_H_
