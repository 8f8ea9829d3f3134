// A ring of pmm blocks for the streaming pipeline: a producer allocates N
// frame blocks once, shares them once (one export token each) and reuses
// them for every frame; per frame only a short message crosses the link
// between the stages (link.h):
//
//   producer → consumer   pmm-ring slots=3 width=… height=… stride=… format=BGRX tokens=t0,t1,t2
//   producer → consumer   frame slot=1 seq=17         (slot 1 now holds frame 17)
//   consumer → producer   free slot=1                 (done reading slot 1)
//   producer → consumer   end frames=120
//
// The producer writes a slot only while no consumer reads it (it was never
// handed on, or came back "free"), so frames are never torn and never
// copied. No daemon round trip happens per frame: the blocks stay held by
// both processes for the whole stream, and their pages stay mapped and
// populated (the producer prefaults each block once, the consumer
// populates its view once), so a steady-state frame takes no page fault.
//
// Why not pmm_bufpool (pmm.h), measured and argued in examples/README.md
// ("Why a ring, not pmm_bufpool"). A pool buffer that was exported comes
// back to the free list only once every importer has PUT it (the daemon's
// Released notification). A consumer that imports once keeps its
// reference (and the X server its attachment) for the whole stream, so a
// released buffer would stay "shared" for ever, and bufpool has no release
// that an explicit "I am done" message could trigger. The only bufpool
// design whose buffers come back costs, per frame and per link, a
// pmm_export and a pmm_import round trip (and, for a `sysv` slot shown by
// the X server, a pmm_sysv_export / pmm_sysv_unexport pair, whose export
// holds a reference too) where the ring costs none.
//
// Why not PMM_CONNECT_POPULATE. It populates every pool the connection
// maps, whole: the 256 MiB `general` pool for three 33 MB slots. The ring
// prefaults exactly its own blocks (pmm_block_prefault, MADV_POPULATE_READ
// on the consumer's view), which is what pmm.h advises for a pool not
// sized to the frames; measured side by side, the switch did not keep the
// per-frame overhead (examples/README.md).
//
//   auto ring = examples::OutputRing::create(conn, "general", frame, 3);
//   ring->announce(link, 0);
//   auto slot = ring->acquire(link);  ...write ring->pixels(*slot)...;  ring->publish(link, *slot,
//   k); ring->finish(link, frames);
//
// One thread uses a ring and its link.
#ifndef EXAMPLES_STREAM_RING_H_
#define EXAMPLES_STREAM_RING_H_

#include <cstdint>
#include <vector>

#include "pmm_stage.h"
#include "stream/link.h"

namespace examples {

inline constexpr uint32_t kMaxSlots = 16;

class OutputRing {
 public:
  // N blocks for `frame` from `pools`, each prefaulted (MADV_POPULATE_WRITE).
  [[nodiscard]] static Result<OutputRing> create(pmm_conn* conn, const std::string& pools,
                                                 const Frame& frame, uint32_t slots);

  // Exports every block for one import (`lifetime_ms`, 0: the daemon's
  // default) and sends the pmm-ring message.
  [[nodiscard]] Result<void> announce(Link& link, uint32_t lifetime_ms);

  // A slot the consumer does not hold, waiting for a "free" message when all
  // are handed on.
  [[nodiscard]] Result<uint32_t> acquire(Link& link);
  [[nodiscard]] uint8_t* pixels(uint32_t slot) const;
  [[nodiscard]] pmm_block* block(uint32_t slot) const { return blocks_[slot].get(); }
  [[nodiscard]] const Frame& frame() const { return frame_; }
  // Hands `slot`, holding frame `seq`, to the consumer.
  [[nodiscard]] Result<void> publish(Link& link, uint32_t slot, uint64_t seq);
  // Sends "end" and waits until the consumer has given every slot back (or
  // closed the link), so it never writes to a producer that has gone.
  [[nodiscard]] Result<void> finish(Link& link, uint64_t frames);

 private:
  [[nodiscard]] Result<void> take_free_message(Link& link);
  Frame frame_;
  std::vector<PmmBlock> blocks_;
  std::vector<bool> handed_on_;
};

class InputRing {
 public:
  // Receives the pmm-ring message and imports every slot's block.
  [[nodiscard]] static Result<InputRing> import(pmm_conn* conn, Link& link);

  struct Notice {
    bool end = false;
    uint32_t slot = 0;
    uint64_t seq = 0;
  };
  // The next frame (or the end) from the producer.
  [[nodiscard]] Result<Notice> next(Link& link) const;
  // Gives `slot` back to the producer.
  [[nodiscard]] static Result<void> release(Link& link, uint32_t slot);

  [[nodiscard]] const Frame& frame() const { return frame_; }
  [[nodiscard]] uint32_t slots() const { return static_cast<uint32_t>(blocks_.size()); }
  [[nodiscard]] pmm_block* block(uint32_t slot) const { return blocks_[slot].get(); }
  [[nodiscard]] const uint8_t* pixels(uint32_t slot) const;

 private:
  Frame frame_;
  std::vector<PmmBlock> blocks_;
};

}  // namespace examples

#endif  // EXAMPLES_STREAM_RING_H_
