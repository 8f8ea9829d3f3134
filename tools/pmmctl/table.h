// pmmctl::Table — the aligned text tables of pmmctl's human output.
//
// Columns are as wide as their widest cell; numbers (columns marked
// kRight) line up on the right, text on the left; two spaces between
// columns and no trailing blanks, so the output diffs and greps cleanly.
//
// Usage:
//   Table t({{"NAME"}, {"SIZE", Table::kRight}});
//   t.add({"general", "256.0 MiB"});
//   fmt::print("{}", t.render());
//   // NAME          SIZE
//   // general  256.0 MiB
//
// Thread safety: a plain value.
#pragma once

#include <string>
#include <vector>

namespace pmmctl {

class Table {
 public:
  enum Align { kLeft, kRight };
  struct Column {
    std::string header;
    Align align = kLeft;
  };

  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // A row has one cell per column; missing cells print empty, extra ones
  // are dropped.
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  [[nodiscard]] size_t rows() const { return rows_.size(); }

  // Header line, then one line per row, each ending in '\n'.
  [[nodiscard]] std::string render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace pmmctl
