// See table.h. Widths count UTF-8 code points, not bytes, so a device name
// with an accent does not push its column out of line.
#include "table.h"

#include <algorithm>

namespace pmmctl {
namespace {

size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;  // count bytes that start a code point
  return n;
}

}  // namespace

std::string Table::render() const {
  std::vector<size_t> width(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) width[i] = display_width(columns_[i].header);
  for (const auto& row : rows_)
    for (size_t i = 0; i < columns_.size() && i < row.size(); ++i)
      width[i] = std::max(width[i], display_width(row[i]));

  std::string out;
  auto line = [&](auto cell_of) {
    std::string l;
    for (size_t i = 0; i < columns_.size(); ++i) {
      const std::string& cell = cell_of(i);
      size_t pad = width[i] - display_width(cell);
      if (i > 0) l += "  ";
      if (columns_[i].align == kRight) l.append(pad, ' ');
      l += cell;
      if (columns_[i].align == kLeft) l.append(pad, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l;
    out += '\n';
  };
  line([&](size_t i) -> const std::string& { return columns_[i].header; });
  static const std::string kEmpty;
  for (const auto& row : rows_)
    line([&](size_t i) -> const std::string& { return i < row.size() ? row[i] : kEmpty; });
  return out;
}

}  // namespace pmmctl
