// Frames over a pipe for the copying baseline; see frame_pipe.h.
#include "baseline/frame_pipe.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace examples {
namespace {

void grow_pipe(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) return;
  int max_size = 1 << 20;
  if (std::FILE* f = std::fopen("/proc/sys/fs/pipe-max-size", "r")) {
    if (std::fscanf(f, "%d", &max_size) != 1) max_size = 1 << 20;
    std::fclose(f);
  }
  (void)::fcntl(fd, F_SETPIPE_SZ, max_size);  // best effort: a smaller pipe still works
}

}  // namespace

Result<MallocBuffer> malloc_frame(const Frame& frame) {
  auto* p = static_cast<uint8_t*>(std::malloc(frame.bytes()));
  if (p == nullptr) {
    return std::unexpected(fmt::format("malloc of {} bytes for a frame failed", frame.bytes()));
  }
  return MallocBuffer(p);
}

Result<void> write_frame(int fd, const Frame& frame, const uint8_t* pixels) {
  grow_pipe(fd);
  const std::string line = format_frame_line("copy-frame", frame) + "\n";
  struct Piece {
    const uint8_t* data;
    uint64_t size;
  };
  const Piece pieces[] = {{reinterpret_cast<const uint8_t*>(line.data()), line.size()},
                          {pixels, frame.bytes()}};
  for (const Piece& piece : pieces) {
    uint64_t done = 0;
    while (done < piece.size) {
      const ssize_t n = ::write(fd, piece.data + done, piece.size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return std::unexpected(fmt::format("writing the frame to fd {}: {}", fd,
                                           n < 0 ? std::strerror(errno) : "no progress"));
      }
      done += static_cast<uint64_t>(n);
    }
  }
  return {};
}

Result<void> read_exactly(std::FILE* stream, uint8_t* dst, uint64_t bytes) {
  const size_t got = std::fread(dst, 1, bytes, stream);
  if (got != bytes) {
    return std::unexpected(fmt::format(
        "the frame ended after {} of {} bytes: the previous stage stopped early", got, bytes));
  }
  return {};
}

Result<void> FrameReader::reserve(uint64_t bytes) {
  if (bytes <= capacity_) return {};
  auto* p = static_cast<uint8_t*>(std::malloc(bytes));
  if (p == nullptr) {
    return std::unexpected(fmt::format("malloc of {} bytes for a frame failed", bytes));
  }
  // Faulted in once, here. Not zero: GCC turns malloc + memset(0) into
  // calloc, which leaves fresh pages untouched.
  std::memset(p, 0x80, bytes);
  pixels_.reset(p);
  capacity_ = bytes;
  return {};
}

Result<const Frame*> FrameReader::next(std::FILE* stream) {
  const int c = std::fgetc(stream);
  if (c == EOF) return nullptr;
  std::ungetc(c, stream);
  auto line = read_line(stream);
  if (!line) return std::unexpected(line.error());
  auto frame = parse_frame_line(*line, "copy-frame");
  if (!frame) return std::unexpected(frame.error());
  if (auto ok = reserve(frame->bytes()); !ok) return std::unexpected(ok.error());
  frame_ = std::move(*frame);
  if (auto ok = read_exactly(stream, pixels_.get(), frame_.bytes()); !ok) {
    return std::unexpected(ok.error());
  }
  return &frame_;
}

}  // namespace examples
