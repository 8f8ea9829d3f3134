// LyingStrategy — for tests of the invariant checks: a real strategy
// underneath that starts misreporting itself when the test says so, as a
// buggy allocator would. Header-only; not part of pmm::alloc.
//
//   bool broken = false, lying = false;
//   auto s = std::make_unique<LyingStrategy>(std::move(*real), &broken, &lying);
//   broken = true;  // its check_invariants() now fails
//   lying = true;   // its stats() now over-report bytes in use by one
//
// Thread safety: as the strategy underneath (none).
#pragma once

#include <memory>

#include "alloc/strategy.h"

namespace pmm::alloc {

class LyingStrategy final : public Strategy {
 public:
  LyingStrategy(std::unique_ptr<Strategy> real, const bool* broken_check, const bool* lying_stats)
      : real_(std::move(real)), broken_check_(broken_check), lying_stats_(lying_stats) {}
  std::string_view name() const override { return real_->name(); }
  Result<Allocation> allocate(uint64_t size, uint64_t alignment, Span span) override {
    return real_->allocate(size, alignment, span);
  }
  Status release(Handle h) override { return real_->release(h); }
  Result<Extent> block(Handle h) const override { return real_->block(h); }
  Status set_barriers(std::span<const uint64_t> offsets) override {
    return real_->set_barriers(offsets);
  }
  Stats stats() const override {
    Stats s = real_->stats();
    if (*lying_stats_) {
      ++s.bytes_used;
      --s.bytes_free;
    }
    return s;
  }
  uint64_t last_op_steps() const override { return real_->last_op_steps(); }
  Status check_invariants() const override {
    if (*broken_check_) return fail(Errc::kProtocol, "free extent at 4096 overlaps block at 0");
    return real_->check_invariants();
  }

 private:
  std::unique_ptr<Strategy> real_;
  const bool* broken_check_;
  const bool* lying_stats_;
};

}  // namespace pmm::alloc
