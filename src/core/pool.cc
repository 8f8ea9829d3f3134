// Implementation of core/pool.h: region + strategy + barriers at physical
// run edges + accounting.
#include "core/pool.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>
#include <vector>

#include "base/units.h"
#include "os/guarded_memory.h"

namespace pmm::core {
namespace {

std::unexpected<Error> in_pool(const std::string& name, Error e) {
  e.message = fmt::format("pool {}: {}", name, e.message);
  return std::unexpected(std::move(e));
}

}  // namespace

Result<std::unique_ptr<Pool>> Pool::create(PoolOptions opts) {
  if (opts.name.empty())
    return fail(Errc::kInvalidArgument, "a pool needs a name (letters, digits, - or _)");
  auto region = mem::make_region(opts.name, opts.region);
  if (!region) return std::unexpected(region.error());
  auto strategy = alloc::make_strategy(opts.strategy, (*region)->size());
  if (!strategy) return in_pool(opts.name, strategy.error());
  return create(std::move(opts.name), std::move(*region), std::move(*strategy), opts.zero_on_alloc);
}

Result<std::unique_ptr<Pool>> Pool::create(std::string name, std::unique_ptr<mem::Region> region,
                                           std::unique_ptr<alloc::Strategy> strategy,
                                           bool zero_on_alloc) {
  if (!region || !strategy)
    return fail(Errc::kInvalidArgument, "pool {}: needs both a region and a strategy", name);
  const alloc::Stats st = strategy->stats();
  if (st.size != region->size())
    return fail(Errc::kInvalidArgument,
                "pool {}: the strategy manages {} bytes but the region has {}; they must match",
                name, st.size, region->size());
  if (st.live_blocks != 0)
    return fail(Errc::kInvalidArgument, "pool {}: the strategy already has {} live blocks", name,
                st.live_blocks);
  std::vector<uint64_t> barriers;
  uint64_t expect = 0;
  for (const mem::PhysicalRun& run : region->runs()) {
    if (run.offset != expect || run.length == 0)
      return fail(Errc::kInvalidArgument,
                  "pool {}: physical runs must cover the region in order; a run starts at {} "
                  "where {} was expected",
                  name, run.offset, expect);
    if (run.offset != 0) barriers.push_back(run.offset);
    expect = run.offset + run.length;
  }
  if (!region->runs().empty() && expect != region->size())
    return fail(Errc::kInvalidArgument, "pool {}: physical runs cover {} of {} bytes", name, expect,
                region->size());
  if (auto s = strategy->set_barriers(barriers); !s) return in_pool(name, s.error());
  auto pool = std::unique_ptr<Pool>(
      new Pool(std::move(name), std::move(region), std::move(strategy), zero_on_alloc));
  for (const mem::PhysicalRun& run : pool->region_->runs())
    pool->largest_run_ = std::max(pool->largest_run_, run.length);
  return pool;
}

Pool::Pool(std::string name, std::unique_ptr<mem::Region> region,
           std::unique_ptr<alloc::Strategy> strategy, bool zero_on_alloc)
    : name_(std::move(name)),
      region_(std::move(region)),
      strategy_(std::move(strategy)),
      zero_on_alloc_(zero_on_alloc),
      huge_(mem::uses_huge_pages(*region_)) {}

Pool::~Pool() = default;

std::string Pool::why_no_physical() const {
  if (!mem::uses_huge_pages(*region_))
    return fmt::format(
        "a {} pool of normal pages has no physically contiguous runs; use a "
        "hugetlb pool (or sysv with huge_pages)",
        mem::memory_type_name(region_->type()));
  return "its physical addresses are unknown (/proc/self/pagemap shows them only to a daemon "
         "with CAP_SYS_ADMIN)";
}

const mem::PhysicalRun* Pool::run_of(uint64_t offset) const {
  const auto runs = region_->runs();
  auto it =
      std::upper_bound(runs.begin(), runs.end(), offset,
                       [](uint64_t off, const mem::PhysicalRun& r) { return off < r.offset; });
  if (it == runs.begin()) return nullptr;
  --it;
  return offset < it->offset + it->length ? &*it : nullptr;
}

uint64_t Pool::physical_address(uint64_t offset) const {
  const mem::PhysicalRun* run = run_of(offset);
  return run != nullptr ? run->phys + (offset - run->offset) : 0;
}

Result<Block> Pool::allocate(const AllocRequest& req) {
  PMM_CHECK_ON_EXIT("Pool::allocate", checks_, strategy_->stats().live_blocks, check_invariants());
  auto refuse = [this](Error e) {
    ++failed_allocations_;
    return in_pool(name_, std::move(e));
  };
  if (req.contiguous && !has_physical())
    return refuse(Error{Errc::kUnsupported,
                        fmt::format("a physically contiguous block of {} cannot be promised: {}",
                                    format_size(req.size), why_no_physical()),
                        0});
  if (req.contiguous && req.size > largest_run_)
    return refuse(Error{Errc::kNoMemory,
                        fmt::format("a contiguous block of {} bytes is larger than the largest "
                                    "physically contiguous run ({} bytes, {}); a block without "
                                    "`contiguous` may span runs",
                                    req.size, largest_run_, format_size(largest_run_)),
                        0});
  const uint64_t alignment = req.alignment == 0 ? region_->page_size() : req.alignment;
  auto got = strategy_->allocate(req.size, alignment,
                                 req.contiguous ? alloc::Span::kOneRun : alloc::Span::kAny);
  if (!got) return refuse(got.error());
  Block b{.offset = got->offset,
          .size = req.size,
          .phys = physical_address(got->offset),
          .handle = got->handle};
  // make_ready's own first test, inline: most blocks need nothing.
  const bool ready =
      !huge_ && !req.zero && !zero_on_alloc_ && !region_->resident() && !has_physical();
  if (auto s = ready ? Status{} : make_ready(b, req); !s) [[unlikely]] {
    (void)strategy_->release(b.handle);  // just allocated: cannot fail
    ++health_.refused;
    // Logged at the 1st, 2nd, 4th, 8th... refusal: a client that punched
    // once cannot make every later allocation write a line.
    if (std::has_single_bit(health_.refused))
      notice(fmt::format("pool {}: refused a block of {} at offset {:#x} ({} refused so far): {}",
                         name_, format_size(b.size), b.offset, health_.refused, s.error().message));
    return refuse(s.error());
  }
  ++allocations_;
  peak_bytes_used_ = std::max(peak_bytes_used_, strategy_->bytes_used());
  return b;
}

Status Pool::make_ready(Block& b, const AllocRequest& req) {
  const bool zero = req.zero || zero_on_alloc_;
  // The common block — normal pages, not to be zeroed, in a pool that is
  // not kept resident and knows no physical addresses — needs none of what
  // follows (each step below is skipped for it anyway): no page walk, no
  // region asked for its geometry.
  if (!huge_ && !zero && !region_->resident() && !has_physical()) return {};
  const uint64_t page = region_->page_size();
  std::byte* const base = region_->data();
  const uint64_t first = b.offset / page * page;
  const uint64_t end = std::min(region_->size(), (b.offset + b.size + page - 1) / page * page);
  // Only huge pages can be missing for good (none free: SIGBUS on touch);
  // a punched normal page is faulted back in by the next touch, the memset
  // included, so shmem pools skip the walk (118 us per 2 MiB block).
  const bool huge = huge_;
  const bool resident = region_->resident();
  const uint64_t punched_before = resident ? mem::punched_bytes(*region_).value_or(0) : 0;
  if (huge) {
    if (auto s = os::fault_in(base + first, end - first); !s)
      return fail(s.error().code,
                  "its memory at offsets [{:#x}, {:#x}) cannot be faulted in: {} (pool state: {})",
                  first, end, s.error().message, describe_health(health(), page, huge));
  }
  if (zero) {
    if (auto s = os::fill_guarded(base + b.offset, 0, b.size); !s)
      return fail(s.error().code, "zeroing it failed: {}", s.error().message);
    bytes_zeroed_ += b.size;
  }
  if (punched_before != 0) {
    const uint64_t punched_after = mem::punched_bytes(*region_).value_or(0);
    if (punched_after < punched_before) {
      health_.refilled_bytes += punched_before - punched_after;
      notice(fmt::format(
          "pool {}: {} of the memory under a new block at offset {:#x} had been punched out "
          "by a client; faulted back in (new pages); {} still punched",
          name_, format_size(punched_before - punched_after), b.offset,
          format_size(punched_after)));
    }
  }
  if (!has_physical()) return {};
  auto moved = region_->recheck_physical(b.offset, b.size);
  if (moved && !*moved) return {};
  std::string why;
  if (!moved) {
    why = fmt::format("its physical addresses cannot be re-read: {}", moved.error().message);
  } else {
    const mem::MovedPage& m = **moved;
    const size_t i = m.offset / page;
    if (moved_.empty()) moved_.resize(region_->size() / page);
    const bool new_find = i < moved_.size() && !moved_[i];
    if (new_find) {
      moved_[i] = true;
      ++health_.moved_pages;
    }
    why = m.now == 0 ? fmt::format(
                           "its page at offset {:#x} is not in memory (recorded at "
                           "physical {:#x}): a client punched it",
                           m.offset, m.recorded)
                     : fmt::format(
                           "its page at offset {:#x} is now at physical {:#x}, not at "
                           "{:#x} as recorded: a client punched it and the kernel put "
                           "another page back",
                           m.offset, m.now, m.recorded);
    if (new_find) notice(fmt::format("pool {}: {}", name_, why));  // once per page
  }
  if (req.contiguous)
    return fail(Errc::kNoMemory,
                "a physically contiguous block at offset {:#x} cannot be promised: {}", b.offset,
                why);
  b.phys = 0;  // unknown rather than stale
  return {};
}

void Pool::notice(std::string line) {
  constexpr size_t kMaxNotices = 64;  // the daemon takes them after every call
  if (notices_.size() < kMaxNotices) notices_.push_back(std::move(line));
}

std::vector<std::string> Pool::take_notices() const { return std::exchange(notices_, {}); }

PoolHealth Pool::health() const {
  PoolHealth h = health_;
  h.punched_bytes = mem::punched_bytes(*region_).value_or(0);
  return h;
}

std::string describe_health(const PoolHealth& h, uint64_t page_size, bool huge) {
  if (!h.degraded() && h.refused == 0) return "ok";
  // Refusals are history: a pool whose pages are all back says "ok" again,
  // with the count.
  std::string out = h.degraded() ? "degraded:" : "ok:";
  auto add = [&out](const std::string& part) { out += (out.back() == ':' ? " " : "; ") + part; };
  if (h.punched_bytes != 0) {
    const uint64_t pages = (h.punched_bytes + page_size - 1) / page_size;
    add(fmt::format("{} {}page{} punched", pages, huge ? "huge " : "", pages == 1 ? "" : "s"));
  }
  if (h.moved_pages != 0)
    add(fmt::format("{} page{} moved (physical addresses re-read)", h.moved_pages,
                    h.moved_pages == 1 ? "" : "s"));
  if (h.refused != 0)
    add(fmt::format("{} allocation{} refused for it", h.refused, h.refused == 1 ? "" : "s"));
  return out;
}

std::string describe_health(const Pool& pool) {
  return describe_health(pool.health(), pool.region().page_size(),
                         mem::uses_huge_pages(pool.region()));
}

Status Pool::release(alloc::Handle h) {
  PMM_CHECK_ON_EXIT("Pool::release", checks_, strategy_->stats().live_blocks, check_invariants());
  if (auto s = strategy_->release(h); !s) return in_pool(name_, s.error());
  return {};
}

PoolStats Pool::stats() const {
  PoolStats s;
  s.alloc = strategy_->stats();
  s.physical_runs = region_->runs().size();
  s.largest_run = largest_run_;
  s.allocations = allocations_;
  s.failed_allocations = failed_allocations_;
  s.peak_bytes_used = peak_bytes_used_;
  s.bytes_zeroed = bytes_zeroed_;
  s.health = health();
  return s;
}

Status Pool::check_invariants() const {
  if (auto s = strategy_->check_invariants(); !s) return in_pool(name_, s.error());
  const alloc::Stats st = strategy_->stats();
  if (st.size != region_->size())
    return fail(Errc::kInvalidArgument, "pool {}: strategy size {} != region size {}", name_,
                st.size, region_->size());
  if (st.bytes_used > peak_bytes_used_)
    return fail(Errc::kInvalidArgument, "pool {}: {} bytes used but the peak says {}", name_,
                st.bytes_used, peak_bytes_used_);
  return {};
}

}  // namespace pmm::core
