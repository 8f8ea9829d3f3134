// The streaming pipeline's frame sequence: the shipped test card, decoded
// once, panned by a fixed step every frame (wrapping round at the edges), so
// that every frame differs and frame k is known exactly:
//
//   frame k, pixel (x, y) = card((x + dx*k) mod W, (y + dy*k) mod H)
//
//   examples::PanSource src;
//   auto ok = src.open("card.jpg", {16, 8});     // decodes once
//   src.render(k, dst, stride);                   // ~one memcpy of the frame
//
// Why a pan and not a JPEG decode per frame: decoding a 4K JPEG costs about
// 35 ms, several times what handing the frame on costs either way, so a
// decode per frame would measure libjpeg-turbo; a pan costs one pass over
// the frame, like a camera or a decoder writing its output, and leaves the
// hand-off visible. examples/README.md states the choice.
//
// With encode_sequence(K) the stage decodes a JPEG per frame instead: K
// panned frames are encoded once at start (quality 90) and frame k is JPEG
// k mod K decoded into the destination — the honest "decode every frame"
// case, where libjpeg-turbo's ~35 ms dominates whatever the hand-off costs.
//
// A PanSource is used by one thread at a time.
#ifndef EXAMPLES_STREAM_PAN_H_
#define EXAMPLES_STREAM_PAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/frame.h"

namespace examples {

struct PanStep {
  uint32_t dx = 16;
  uint32_t dy = 8;
};

class PanSource {
 public:
  // Decodes `path` (BGRX) and keeps it; `step` is the pan per frame in
  // pixels (each below the image's size on its axis).
  [[nodiscard]] Result<void> open(const std::string& path, PanStep step);

  [[nodiscard]] const Frame& frame() const { return frame_; }

  // Writes frame `k` into `dst` (stride bytes per row, frame().height rows).
  void render(uint64_t k, uint8_t* dst, uint32_t stride) const;

  // Encodes frames 0..count-1 as JPEGs (1 <= count <= 64), after which
  // make() decodes them.
  [[nodiscard]] Result<void> encode_sequence(uint32_t count);

  // Frame k into `dst`: decoded from the encoded sequence if there is one,
  // else rendered (panned).
  [[nodiscard]] Result<void> make(uint64_t k, uint8_t* dst, uint32_t stride) const;

 private:
  std::vector<std::vector<uint8_t>> jpegs_;
  Frame frame_;
  PanStep step_;
  std::vector<uint8_t> card_;
};

// "16x8" -> {16, 8}; 0 is allowed on either axis.
[[nodiscard]] Result<PanStep> parse_pan(std::string_view text);

}  // namespace examples

#endif  // EXAMPLES_STREAM_PAN_H_
