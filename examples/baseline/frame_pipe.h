// The copying baseline's transport: a frame travels as its frame line
// ("copy-frame width=... height=... stride=... format=BGRX") followed by
// stride * height bytes of pixels on a pipe or socket. This is what a
// pipeline without shared buffers does — every stage boundary copies the
// whole frame twice (into the kernel, out of it).
//
//   examples::MallocBuffer px = examples::malloc_frame(frame);
//   auto ok = examples::write_frame(STDOUT_FILENO, frame, px.get());
//   auto in = examples::read_frame(stdin);   // {frame, pixels}
//
// Single-threaded use.
#ifndef EXAMPLES_BASELINE_FRAME_PIPE_H_
#define EXAMPLES_BASELINE_FRAME_PIPE_H_

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "common/frame.h"

namespace examples {

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
// malloc'ed, not zeroed: the baseline pays for nothing the pmm path does not.
using MallocBuffer = std::unique_ptr<uint8_t, FreeDeleter>;

[[nodiscard]] Result<MallocBuffer> malloc_frame(const Frame& frame);

// Writes the line and the pixels to `fd`. If `fd` is a pipe, first grows it
// to the system's maximum (/proc/sys/fs/pipe-max-size) so the baseline is
// not slowed by 64 KiB pipe buffers.
[[nodiscard]] Result<void> write_frame(int fd, const Frame& frame, const uint8_t* pixels);

struct ReceivedFrame {
  Frame frame;
  MallocBuffer pixels;
};

// Reads the line, then the pixels into a fresh buffer. `on_line` is called
// between the two, so a caller can start its clock when the frame begins to
// arrive rather than when its producer started.
template <typename F>
[[nodiscard]] Result<ReceivedFrame> read_frame(std::FILE* stream, F&& on_line);

[[nodiscard]] Result<void> read_exactly(std::FILE* stream, uint8_t* dst, uint64_t bytes);

// Reads a stream of frames into one buffer, reused while the size stays
// (the streaming stages): next() returns the frame, whose pixels() are valid
// until the following next(), or nullptr when the stream ends cleanly
// between two frames.
class FrameReader {
 public:
  // Allocates and faults in the buffer for frames of up to `bytes` now, so a
  // stream's first frame does not pay for it (pmm's rings are populated
  // before their first frame too).
  [[nodiscard]] Result<void> reserve(uint64_t bytes);
  [[nodiscard]] Result<const Frame*> next(std::FILE* stream);
  [[nodiscard]] const uint8_t* pixels() const { return pixels_.get(); }

 private:
  Frame frame_;
  MallocBuffer pixels_;
  uint64_t capacity_ = 0;
};

template <typename F>
Result<ReceivedFrame> read_frame(std::FILE* stream, F&& on_line) {
  auto line = read_line(stream);
  if (!line) return std::unexpected(line.error());
  auto frame = parse_frame_line(*line, "copy-frame");
  if (!frame) return std::unexpected(frame.error());
  on_line();
  auto pixels = malloc_frame(*frame);
  if (!pixels) return std::unexpected(pixels.error());
  if (auto ok = read_exactly(stream, pixels->get(), frame->bytes()); !ok) {
    return std::unexpected(ok.error());
  }
  return ReceivedFrame{std::move(*frame), std::move(*pixels)};
}

}  // namespace examples

#endif  // EXAMPLES_BASELINE_FRAME_PIPE_H_
