// See map.h. Both pictures are drawn from the daemon's figures only: the
// legend's numbers are the reply's, never recomputed from the (possibly
// bucketed) extents.
#include "map.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "base/units.h"

namespace pmmctl {
namespace {

namespace proto = pmm::proto;
using pmm::format_size;

struct Rgb {
  unsigned r, g, b;
  [[nodiscard]] std::string hex() const { return fmt::format("#{:02x}{:02x}{:02x}", r, g, b); }
};

// Tableau-like colours, red left out: red marks physical-run edges.
constexpr std::array<Rgb, 9> kDeviceColors = {{{78, 121, 167},
                                               {242, 142, 43},
                                               {89, 161, 79},
                                               {176, 122, 161},
                                               {237, 201, 72},
                                               {118, 183, 178},
                                               {255, 157, 167},
                                               {156, 117, 95},
                                               {186, 176, 172}}};
constexpr Rgb kHidden{110, 110, 110};
constexpr Rgb kFree{236, 236, 236};
constexpr Rgb kBarrier{214, 39, 40};
constexpr Rgb kLargest{31, 31, 220};

Rgb color_of(uint16_t device) {
  if (device == proto::kMapDeviceHidden) return kHidden;
  if (device == proto::kMapDeviceNone) return kFree;
  return kDeviceColors[device % kDeviceColors.size()];
}

std::string device_name(const PoolPicture& m, uint16_t device) {
  if (device == proto::kMapDeviceHidden) return "another user's";
  if (device == proto::kMapDeviceNone || device >= m.devices.size()) return "";
  return m.devices[device];
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 forbids most control characters even escaped.
        out += (static_cast<unsigned char>(c) < 0x20 && c != '\t') ? '?' : c;
    }
  }
  return out;
}

std::string percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? "0%" : fmt::format("{:.1f}%", 100.0 * double(part) / double(whole));
}

// The legend's lines, the same for both pictures.
std::vector<std::string> legend(const PoolPicture& m, const MapStyle& s) {
  std::vector<std::string> out;
  out.push_back(
      fmt::format("pool {} ({}): {} in {} block(s); map read in {} page(s), the "
                  "longest took pmmd {} us",
                  m.pool, m.strategy, format_size(m.size), m.blocks, m.pages, m.worst_page_micros));
  out.push_back(fmt::format("used {} ({}), free {} ({}) in {} free extent(s)",
                            format_size(m.bytes_used), percent(m.bytes_used, m.size),
                            format_size(m.bytes_free), percent(m.bytes_free, m.size),
                            m.free_extents));
  if (m.largest_free > 0) {
    out.push_back(fmt::format("largest free extent {}{}; fragmentation 1 - largest/free = {:.3f}",
                              format_size(m.largest_free),
                              m.exact && m.largest_size == m.largest_free
                                  ? fmt::format(" at offset {:#x} (outlined)", m.largest_offset)
                                  : "",
                              fragmentation(m)));
  } else {
    out.push_back("no free extent: the pool is full; fragmentation 0");
  }
  if (!m.exact && m.largest_size > 0) {
    out.push_back(fmt::format("outlined: the longest stretch of wholly free buckets ({} at {:#x})",
                              format_size(m.largest_size), m.largest_offset));
  }
  if (!m.barriers.empty() || m.barriers_omitted > 0) {
    out.push_back(fmt::format(
        "{} physical-run edge(s){}; {}", m.barriers.size() + m.barriers_omitted,
        m.barriers_omitted ? fmt::format(" ({} not drawn)", m.barriers_omitted) : "",
        m.exact ? fmt::format("largest free inside one run {} (what a contiguous block can get)",
                              format_size(m.largest_free_in_run))
                : "a contiguous block stays inside one run"));
  }
  if (m.bucket_size != 0) {
    out.push_back(fmt::format(
        "{} blocks and gaps coalesced by pmmd into buckets of {}; a bucket's shade is the "
        "share used",
        m.blocks + m.free_extents, format_size(m.bucket_size)));
  }
  if (s.request != 0) {
    if (s.request > m.largest_free) {
      out.push_back(fmt::format(
          "a request of {} is refused: it is larger than the largest free extent ({}){}",
          format_size(s.request), format_size(m.largest_free),
          s.request <= m.bytes_free ? fmt::format(", although {} are free in {} pieces",
                                                  format_size(m.bytes_free), m.free_extents)
                                    : ""));
    } else {
      out.push_back(fmt::format("a request of {} fits in the largest free extent ({})",
                                format_size(s.request), format_size(m.largest_free)));
    }
  }
  return out;
}

// ---- SVG -----------------------------------------------------------------------

constexpr double kWidth = 1000, kMargin = 20, kRowHeight = 36, kRowGap = 14, kTop = 40;
constexpr unsigned kSvgRows = 4;

struct Strip {
  uint64_t size;
  uint64_t row_bytes;
  // Calls f(x, y, w) for each row's piece of [from, to).
  template <typename F>
  void pieces(uint64_t from, uint64_t to, F&& f) const {
    while (from < to) {
      uint64_t row = from / row_bytes;
      uint64_t end = std::min(to, (row + 1) * row_bytes);
      double x = kMargin + double(from - row * row_bytes) * kWidth / double(row_bytes);
      double w = double(end - from) * kWidth / double(row_bytes);
      f(x, kTop + double(row) * (kRowHeight + kRowGap), w);
      from = end;
    }
  }
};

}  // namespace

void PictureBuilder::add(const proto::PoolMapReply& page) {
  if (p_.pages == 0) {
    p_.pool = page.pool;
    p_.strategy = page.strategy;
    p_.size = page.size;
    p_.page_size = page.page_size;
    p_.bucket_size = page.bucket_size;
    p_.exact = page.bucket_size == 0;
    p_.barriers = page.barriers;
    p_.barriers_omitted = page.barriers_omitted;
    if (!p_.exact) {
      const size_t n = static_cast<size_t>((p_.size + p_.bucket_size - 1) / p_.bucket_size);
      buckets_.resize(n);
      best_.assign(n, 0);
      for (size_t i = 0; i < n; ++i) {
        buckets_[i].offset = i * p_.bucket_size;
        buckets_[i].size = std::min(p_.bucket_size, p_.size - buckets_[i].offset);
      }
    }
  }
  ++p_.pages;
  p_.worst_page_micros = std::max(p_.worst_page_micros, page.micros);
  p_.blocks = page.blocks;
  p_.bytes_used = page.bytes_used;
  p_.bytes_free = page.bytes_free;
  p_.free_extents = page.free_extents;
  p_.largest_free = page.largest_free;
  // The page's device indexes -> the picture's, by name.
  auto device = [&](uint16_t d) -> uint16_t {
    if (d == proto::kMapDeviceHidden || d == proto::kMapDeviceNone) return d;
    const std::string& name = page.devices[d];  // the codec checked the index
    auto it = std::find(p_.devices.begin(), p_.devices.end(), name);
    if (it != p_.devices.end()) return static_cast<uint16_t>(it - p_.devices.begin());
    p_.devices.push_back(name);
    return static_cast<uint16_t>(p_.devices.size() - 1);
  };
  for (proto::MapExtent e : page.extents) {
    e.device = device(e.device);
    if (p_.exact) {
      if (e.offset + e.size <= p_.size) blocks_.push_back(e);
      continue;
    }
    const size_t i = static_cast<size_t>(e.offset / p_.bucket_size);
    if (i >= buckets_.size()) continue;  // another page size: the pool cannot change size
    proto::MapExtent& b = buckets_[i];
    if (b.used != 0 && (b.device != e.device || b.uid != e.uid)) b.mixed = true;
    b.mixed = b.mixed || e.mixed;
    // As pmmd does within a page: the viewer's own block names the bucket,
    // else the largest part's owner.
    const bool hidden = e.device == proto::kMapDeviceHidden;
    const bool had_hidden = b.device == proto::kMapDeviceHidden;
    const bool none = b.device == proto::kMapDeviceNone;
    if (none || (hidden == had_hidden && e.used > best_[i]) || (!hidden && had_hidden)) {
      best_[i] = e.used;
      b.device = e.device;
      b.uid = e.uid;
    }
    b.used = std::min(b.size, b.used + e.used);
  }
}

PoolPicture PictureBuilder::finish() {
  if (!p_.exact) {
    p_.extents = std::move(buckets_);
    uint64_t run_start = 0, run = 0;
    for (const proto::MapExtent& b : p_.extents) {
      if (b.used != 0) {
        run = 0;
        continue;
      }
      if (run == 0) run_start = b.offset;
      run += b.size;
      if (run > p_.largest_size) p_.largest_size = run, p_.largest_offset = run_start;
    }
    return std::move(p_);
  }
  // Blocks by offset; the gaps are the free extents. A block that overlaps
  // one before it (freed and its space reused between two pages) is left out.
  std::sort(blocks_.begin(), blocks_.end(),
            [](const auto& a, const auto& b) { return a.offset < b.offset; });
  size_t edge = 0;
  auto gap = [&](uint64_t from, uint64_t to) {
    p_.extents.push_back({.offset = from, .size = to - from});
    if (to - from > p_.largest_size) p_.largest_size = to - from, p_.largest_offset = from;
    while (edge < p_.barriers.size() && p_.barriers[edge].offset <= from) ++edge;
    uint64_t start = from;
    for (size_t e = edge; e < p_.barriers.size() && p_.barriers[e].offset < to; ++e) {
      p_.largest_free_in_run = std::max(p_.largest_free_in_run, p_.barriers[e].offset - start);
      start = p_.barriers[e].offset;
    }
    p_.largest_free_in_run = std::max(p_.largest_free_in_run, to - start);
  };
  uint64_t at = 0;
  for (const proto::MapExtent& b : blocks_) {
    if (b.offset < at) continue;
    if (b.offset > at) gap(at, b.offset);
    p_.extents.push_back(b);
    at = b.offset + b.size;
  }
  if (at < p_.size) gap(at, p_.size);
  return std::move(p_);
}

double fragmentation(const PoolPicture& m) {
  if (m.bytes_free == 0) return 0;
  return 1.0 - double(m.largest_free) / double(m.bytes_free);
}

std::string render_map_svg(const PoolPicture& m, const MapStyle& s) {
  const Strip strip{.size = m.size,
                    .row_bytes = std::max<uint64_t>((m.size + kSvgRows - 1) / kSvgRows, 1)};
  const std::vector<std::string> lines = legend(m, s);
  const double legend_top = kTop + kSvgRows * (kRowHeight + kRowGap) + 10;
  const double swatches_top = legend_top + double(lines.size()) * 18 + 8;
  const size_t swatches = m.devices.size() + 2;
  const double height = swatches_top + double(swatches) * 18 + 10;

  std::string o = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{:.0f}\" "
      "height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" font-family=\"sans-serif\" "
      "font-size=\"13\">\n",
      kWidth + 2 * kMargin, height, kWidth + 2 * kMargin, height);
  o += fmt::format("<title>pmm pool {}</title>\n", xml_escape(m.pool));
  o += fmt::format(
      "<text x=\"{}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">pool {} — {}, "
      "offset 0 at top left, {} per row</text>\n",
      kMargin, xml_escape(m.pool), xml_escape(format_size(m.size)),
      xml_escape(format_size(strip.row_bytes)));

  for (const proto::MapExtent& e : m.extents) {
    o += fmt::format(
        "<g class=\"extent\" data-offset=\"{}\" data-size=\"{}\" data-used=\"{}\" "
        "data-device=\"{}\"{}>",
        e.offset, e.size, e.used, xml_escape(device_name(m, e.device)),
        // Another user's block names nobody (docs/protocol.md "Who sees what").
        e.used == 0 || e.device == proto::kMapDeviceHidden
            ? ""
            : fmt::format(" data-uid=\"{}\"", e.uid));
    const double share = e.size == 0 ? 0 : double(e.used) / double(e.size);
    strip.pieces(e.offset, e.offset + e.size, [&](double x, double y, double w) {
      if (share < 1) {
        o += fmt::format(
            "<rect x=\"{:.3f}\" y=\"{:.1f}\" width=\"{:.3f}\" height=\"{}\" fill=\"{}\"/>", x, y, w,
            kRowHeight, kFree.hex());
      }
      if (share > 0) {
        const double h = kRowHeight * share;
        o += fmt::format(
            "<rect x=\"{:.3f}\" y=\"{:.1f}\" width=\"{:.3f}\" height=\"{:.1f}\" fill=\"{}\"{}/>", x,
            y + kRowHeight - h, w, h, color_of(e.device).hex(),
            // Separate neighbouring blocks of one device in an exact map.
            m.bucket_size == 0 && w > 3 ? " stroke=\"#ffffff\" stroke-width=\"0.5\"" : "");
      }
    });
    o += "</g>\n";
  }
  if (m.largest_size > 0) {
    o += fmt::format("<g class=\"largest\" data-offset=\"{}\" data-size=\"{}\">", m.largest_offset,
                     m.largest_size);
    bool labelled = false;
    strip.pieces(
        m.largest_offset, m.largest_offset + m.largest_size, [&](double x, double y, double w) {
          o += fmt::format(
              "<rect x=\"{:.3f}\" y=\"{:.1f}\" width=\"{:.3f}\" height=\"{}\" "
              "fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"5,3\"/>",
              x, y - 1, std::max(w, 1.0), kRowHeight + 2, kLargest.hex());
          if (!labelled) {
            o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"{}\">largest free {}</text>",
                             x, y + kRowHeight + 11, kLargest.hex(),
                             xml_escape(format_size(m.largest_size)));
            labelled = true;
          }
        });
    o += "</g>\n";
  }
  for (const proto::MapBarrier& b : m.barriers) {
    strip.pieces(b.offset, std::min(b.offset + 1, m.size), [&](double x, double y, double) {
      o += fmt::format(
          "<line class=\"barrier\" data-offset=\"{}\"{} x1=\"{:.3f}\" y1=\"{:.1f}\" "
          "x2=\"{:.3f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"/>\n",
          b.offset, b.phys ? fmt::format(" data-phys=\"{:#x}\"", b.phys) : "", x, y - 4, x,
          y + kRowHeight + 4, kBarrier.hex());
    });
  }

  o += fmt::format("<g class=\"legend\">\n");
  for (size_t i = 0; i < lines.size(); ++i) {
    o += fmt::format("<text x=\"{}\" y=\"{:.1f}\">{}</text>\n", kMargin,
                     legend_top + double(i) * 18 + 12, xml_escape(lines[i]));
  }
  auto swatch = [&](size_t i, Rgb c, std::string_view label) {
    const double y = swatches_top + double(i) * 18;
    o += fmt::format(
        "<rect x=\"{}\" y=\"{:.1f}\" width=\"14\" height=\"14\" fill=\"{}\" stroke=\"#999999\"/>"
        "<text x=\"{}\" y=\"{:.1f}\">{}</text>\n",
        kMargin, y, c.hex(), kMargin + 20, y + 12, xml_escape(label));
  };
  for (size_t d = 0; d < m.devices.size(); ++d)
    swatch(d, color_of(static_cast<uint16_t>(d)), "device " + m.devices[d]);
  swatch(m.devices.size(), kHidden, "another user's block (not named to you)");
  swatch(m.devices.size() + 1, kFree, "free");
  o += "</g>\n</svg>\n";
  return o;
}

// ---- terminal ------------------------------------------------------------------

std::string render_map_term(const PoolPicture& m, const MapStyle& s) {
  const unsigned cols = std::max(s.columns, 8u);
  const unsigned rows = std::max(s.rows, 1u);
  const uint64_t cells = uint64_t{cols} * rows;
  auto cell_start = [&](uint64_t c) {
    // size * c / cells without overflow (cells <= 200k, so the remainder part fits).
    return m.size / cells * c + m.size % cells * c / cells;
  };
  auto fg = [&](Rgb c) {
    return s.color ? fmt::format("\x1b[38;2;{};{};{}m", c.r, c.g, c.b) : std::string();
  };
  auto bg = [&](Rgb c) {
    return s.color ? fmt::format("\x1b[48;2;{};{};{}m", c.r, c.g, c.b) : std::string();
  };
  const std::string reset = s.color ? "\x1b[0m" : "";

  std::string o = fmt::format("pool {}: {}, {} per cell\n", m.pool, format_size(m.size),
                              format_size(std::max<uint64_t>(m.size / cells, 1)));
  size_t e = 0, b = 0;
  for (uint64_t c = 0; c < cells; ++c) {
    const uint64_t from = cell_start(c), to = cell_start(c + 1);
    if (c % cols == 0) o += fmt::format("{:#012x} ", from);
    uint64_t used = 0, best = 0;
    uint16_t device = proto::kMapDeviceNone;
    while (e < m.extents.size() && m.extents[e].offset + m.extents[e].size <= from) ++e;
    for (size_t i = e; i < m.extents.size() && m.extents[i].offset < to; ++i) {
      const proto::MapExtent& x = m.extents[i];
      const uint64_t lo = std::max(from, x.offset), hi = std::min(to, x.offset + x.size);
      if (hi <= lo || x.used == 0) continue;
      // A bucket's used bytes, spread evenly over it.
      const auto part = static_cast<uint64_t>(double(hi - lo) * double(x.used) / double(x.size));
      used += part;
      if (part > best) best = part, device = x.device;
    }
    while (b < m.barriers.size() && m.barriers[b].offset < from) ++b;
    const bool barrier = b < m.barriers.size() && m.barriers[b].offset < to && to > from;
    const bool largest =
        m.largest_size > 0 && from < m.largest_offset + m.largest_size && to > m.largest_offset;
    const double share = to > from ? double(used) / double(to - from) : 0;
    std::string cell;
    if (share >= 0.75) {
      cell = bg(color_of(device)) + (barrier ? fg(kBarrier) + "|" : (s.color ? " " : "#"));
    } else if (share > 0) {
      cell =
          bg(kFree) + (barrier ? fg(kBarrier) + "|" : fg(color_of(device)) + (s.color ? "▒" : "+"));
    } else {
      cell = bg(kFree) + (barrier   ? fg(kBarrier) + "|"
                          : largest ? fg(kLargest) + "="
                                    : fg(Rgb{160, 160, 160}) + (s.color ? "·" : "."));
    }
    o += cell + reset;
    if (c % cols == cols - 1) o += "\n";
  }
  for (const std::string& line : legend(m, s)) o += "  " + line + "\n";
  auto key = [&](Rgb c, std::string_view glyph, std::string_view label) {
    o += fmt::format("  {}{}{} {}\n", bg(c), glyph, reset, label);
  };
  for (size_t d = 0; d < m.devices.size(); ++d)
    key(color_of(static_cast<uint16_t>(d)), s.color ? "  " : "##", "device " + m.devices[d]);
  key(kHidden, s.color ? "  " : "##", "another user's block (not named to you)");
  o += fmt::format(
      "  {}{}{} partly used   {}{}{} free   {}{}{} largest free extent   {}{}{} "
      "physical-run edge\n",
      bg(kFree) + fg(kDeviceColors[0]), s.color ? "▒" : "+", reset,
      bg(kFree) + fg(Rgb{160, 160, 160}), s.color ? "·" : ".", reset, bg(kFree) + fg(kLargest), "=",
      reset, bg(kFree) + fg(kBarrier), "|", reset);
  return o;
}

}  // namespace pmmctl
