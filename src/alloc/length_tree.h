// pmm::alloc::detail::LengthTree — the distinct lengths of the long free
// extents (>= SizeBins::kBins bytes), in an AVL tree whose nodes live in a
// pool of their own, addressed by 32-bit index. FitIndex (fit_index.h) keeps,
// per node, the list of free extents of that length.
//
// Why a tree of distinct lengths rather than of extents: extents of equal
// length share one node, so inserting or removing any but the last of a
// length is O(1) list work and the tree only changes when a length appears or
// disappears; the tree is as small as the number of distinct long lengths.
// Why our own tree: indices instead of pointers, nodes that never move
// (erasing copies no key), and every node visited is counted. AVL keeps the
// height below 1.44 log2(n + 2), so every descent is O(log n) in the worst
// case.
//
// Usage (by FitIndex only):
//   LengthTree t;  uint32_t n = t.find_or_add(1 << 20, steps);  t.head(n) = seg;
//   t.erase(n, steps);
//
// Thread safety: none; owned by one index.
#pragma once

#include <cstdint>
#include <vector>

#include "base/error.h"

namespace pmm::alloc::detail {

class LengthTree {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // Forgets every node and gives their memory back to the heap.
  void clear();
  [[nodiscard]] bool empty() const { return root_ == kNone; }
  [[nodiscard]] uint64_t size() const { return count_; }

  // The node of `len`, made (with head kNone) if there is none.
  [[nodiscard]] uint32_t find_or_add(uint64_t len, uint64_t& steps);
  // Removes node n; its index may be reused by the next find_or_add.
  void erase(uint32_t n, uint64_t& steps);

  // Finds the node of `len` (which must be in the tree) and, when `to` lies
  // strictly between the lengths of its neighbours in length order, gives it
  // length `to` in place: the order holds, so the shape, heights and lists
  // stay as they are (no erase, insert or rebalancing). Otherwise the tree is
  // unchanged. The cost is one descent plus, on the side `to` moves to, a
  // walk down the node's subtree to its neighbour there.
  struct Rekeyed {
    uint32_t node;  // the node of `len` (of `to` when done)
    bool done;
  };
  [[nodiscard]] Rekeyed rekey(uint64_t len, uint64_t to, uint64_t& steps);

  // The node with the smallest length >= len, or kNone.
  [[nodiscard]] uint32_t lower_bound(uint64_t len, uint64_t& steps) const;
  // The next node in length order, or kNone.
  [[nodiscard]] uint32_t successor(uint32_t n, uint64_t& steps) const;
  // The node with the largest length, or kNone.
  [[nodiscard]] uint32_t last() const;

  [[nodiscard]] uint64_t len(uint32_t n) const { return nodes_[n].len; }
  // The first free extent of this length (the index's list head).
  [[nodiscard]] uint32_t& head(uint32_t n) { return nodes_[n].head; }
  [[nodiscard]] uint32_t head(uint32_t n) const { return nodes_[n].head; }

  // Checks order, parent links, heights and balance, that no live node has
  // an empty list, and that the tree holds size() nodes. `visit(n)` is
  // called for every node in length order and may fail.
  template <typename Visit>
  [[nodiscard]] Status check(Visit&& visit) const;

 private:
  struct Node {
    uint64_t len = 0;
    uint32_t left = kNone;
    uint32_t right = kNone;
    uint32_t parent = kNone;
    uint32_t head = kNone;
    int32_t height = 1;  // 0 marks a node on the free list
  };

  [[nodiscard]] int height(uint32_t n) const { return n == kNone ? 0 : nodes_[n].height; }
  void update(uint32_t n);
  void replace_child(uint32_t parent, uint32_t old_child, uint32_t new_child);
  uint32_t rotate_left(uint32_t x);
  uint32_t rotate_right(uint32_t x);
  uint32_t rebalance(uint32_t x);
  void retrace(uint32_t x, uint64_t& steps);
  [[nodiscard]] Status check_structure() const;

  std::vector<Node> nodes_;
  uint32_t root_ = kNone;
  uint32_t free_ = kNone;  // recycled nodes, linked through `parent`
  uint64_t count_ = 0;
};

// Inline: allocate and release call it on their common path.
inline LengthTree::Rekeyed LengthTree::rekey(uint64_t len, uint64_t to, uint64_t& steps) {
  Node* t = nodes_.data();
  // Descending, the last ancestor passed on the right is the nearest length
  // below `len` outside its subtree, the last passed on the left the nearest
  // above.
  uint64_t below = 0, above = UINT64_MAX;
  uint32_t x = root_;
  while (t[x].len != len) {
    ++steps;
    if (len < t[x].len) {
      above = t[x].len;
      x = t[x].left;
    } else {
      below = t[x].len;
      x = t[x].right;
    }
  }
  ++steps;
  // Inside its subtree, the neighbour on the side `to` moves to.
  if (to > len) {
    if (uint32_t y = t[x].right; y != kNone) {
      for (++steps; t[y].left != kNone; ++steps) y = t[y].left;
      above = t[y].len;
    }
    if (to >= above) return {x, false};
  } else {
    if (uint32_t y = t[x].left; y != kNone) {
      for (++steps; t[y].right != kNone; ++steps) y = t[y].right;
      below = t[y].len;
    }
    if (to <= below) return {x, false};
  }
  t[x].len = to;
  return {x, true};
}

template <typename Visit>
Status LengthTree::check(Visit&& visit) const {
  if (Status ok = check_structure(); !ok) return ok;
  // In-order walk: every node once, ascending.
  uint64_t steps = 0;
  for (uint32_t n = lower_bound(0, steps); n != kNone; n = successor(n, steps)) {
    if (nodes_[n].head == kNone)
      return fail(Errc::kProtocol, "length tree: length {} has no extent", nodes_[n].len);
    if (Status ok = visit(n); !ok) return ok;
  }
  return {};
}

}  // namespace pmm::alloc::detail
