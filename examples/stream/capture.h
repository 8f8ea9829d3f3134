// Captures of chosen frames from the X server, for tests and for looking at:
// after a display stage has drawn frame `seq` (and synced), it reads the
// window back with GetImage — what the server shows, not what the stage
// sent — and writes it raw (BGRX, width * 4 bytes per row) to
// DIR/frame-SEQ.bgrx, SEQ as 6 digits.
//
//   examples::Captures cap;
//   auto ok = cap.parse("0,59,119", "/tmp/shots");
//   if (cap.wants(seq)) cap.save(x, window, frame, seq);
//
// One thread uses a Captures.
#ifndef EXAMPLES_STREAM_CAPTURE_H_
#define EXAMPLES_STREAM_CAPTURE_H_

#include <cstdint>
#include <set>
#include <string>

#include "common/x_display.h"

namespace examples {

class Captures {
 public:
  // `list`: comma-separated frame numbers ("" for none); `dir` must be given
  // with a non-empty list.
  [[nodiscard]] Result<void> parse(const std::string& list, const std::string& dir);
  [[nodiscard]] bool wants(uint64_t seq) const { return seqs_.contains(seq); }
  [[nodiscard]] Result<void> save(XDisplay& x, xcb_window_t window, const Frame& frame,
                                  uint64_t seq) const;

 private:
  std::set<uint64_t> seqs_;
  std::string dir_;
};

}  // namespace examples

#endif  // EXAMPLES_STREAM_CAPTURE_H_
