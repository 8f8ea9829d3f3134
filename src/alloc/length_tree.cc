// LengthTree: AVL insert/erase with parent links over a node pool,
// iterative, retracing only as far up as a subtree's height changes.
#include "alloc/length_tree.h"

#include <algorithm>

namespace pmm::alloc::detail {

void LengthTree::clear() {
  std::vector<Node>().swap(nodes_);  // `= {}` would keep the capacity
  root_ = kNone;
  free_ = kNone;
  count_ = 0;
}

void LengthTree::update(uint32_t n) {
  nodes_[n].height = 1 + std::max(height(nodes_[n].left), height(nodes_[n].right));
}

void LengthTree::replace_child(uint32_t parent, uint32_t old_child, uint32_t new_child) {
  if (parent == kNone) {
    root_ = new_child;
  } else if (nodes_[parent].left == old_child) {
    nodes_[parent].left = new_child;
  } else {
    nodes_[parent].right = new_child;
  }
}

uint32_t LengthTree::rotate_left(uint32_t x) {
  Node* t = nodes_.data();
  uint32_t y = t[x].right;
  t[x].right = t[y].left;
  if (t[y].left != kNone) t[t[y].left].parent = x;
  t[y].parent = t[x].parent;
  replace_child(t[x].parent, x, y);
  t[y].left = x;
  t[x].parent = y;
  update(x);
  update(y);
  return y;
}

uint32_t LengthTree::rotate_right(uint32_t x) {
  Node* t = nodes_.data();
  uint32_t y = t[x].left;
  t[x].left = t[y].right;
  if (t[y].right != kNone) t[t[y].right].parent = x;
  t[y].parent = t[x].parent;
  replace_child(t[x].parent, x, y);
  t[y].right = x;
  t[x].parent = y;
  update(x);
  update(y);
  return y;
}

uint32_t LengthTree::rebalance(uint32_t x) {
  const Node* t = nodes_.data();
  int bf = height(t[x].left) - height(t[x].right);
  if (bf > 1) {
    uint32_t l = t[x].left;
    if (height(t[l].left) < height(t[l].right)) rotate_left(l);
    return rotate_right(x);
  }
  if (bf < -1) {
    uint32_t r = t[x].right;
    if (height(t[r].right) < height(t[r].left)) rotate_right(r);
    return rotate_left(x);
  }
  update(x);
  return x;
}

// Walks up from x fixing heights and balance; stops as soon as a subtree
// comes out as tall as it was, because nothing above it can have changed.
void LengthTree::retrace(uint32_t x, uint64_t& steps) {
  while (x != kNone) {
    ++steps;
    int before = nodes_[x].height;
    uint32_t top = rebalance(x);
    if (nodes_[top].height == before) return;
    x = nodes_[top].parent;
  }
}

uint32_t LengthTree::find_or_add(uint64_t len, uint64_t& steps) {
  uint32_t parent = kNone;
  bool left = false;
  for (uint32_t x = root_; x != kNone;) {
    ++steps;
    if (nodes_[x].len == len) return x;
    parent = x;
    left = len < nodes_[x].len;
    x = left ? nodes_[x].left : nodes_[x].right;
  }
  uint32_t n;
  if (free_ != kNone) {
    n = free_;
    free_ = nodes_[n].parent;
  } else {
    n = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  nodes_[n] = Node{.len = len, .parent = parent};
  ++count_;
  if (parent == kNone) {
    root_ = n;
    return n;
  }
  (left ? nodes_[parent].left : nodes_[parent].right) = n;
  retrace(parent, steps);
  return n;
}

void LengthTree::erase(uint32_t z, uint64_t& steps) {
  --count_;
  Node* t = nodes_.data();
  uint32_t start;  // where retracing begins
  if (t[z].left != kNone && t[z].right != kNone) {
    // Put z's in-order successor y (no left child) in z's place.
    uint32_t y = t[z].right;
    while (t[y].left != kNone) {
      ++steps;
      y = t[y].left;
    }
    if (t[y].parent == z) {
      start = y;
    } else {
      uint32_t yp = t[y].parent;
      uint32_t yr = t[y].right;
      t[yp].left = yr;
      if (yr != kNone) t[yr].parent = yp;
      t[y].right = t[z].right;
      t[t[z].right].parent = y;
      start = yp;
    }
    t[y].left = t[z].left;
    t[t[z].left].parent = y;
    t[y].parent = t[z].parent;
    replace_child(t[z].parent, z, y);
    t[y].height = t[z].height;
  } else {
    uint32_t c = t[z].left != kNone ? t[z].left : t[z].right;
    start = t[z].parent;
    if (c != kNone) t[c].parent = start;
    replace_child(start, z, c);
  }
  t[z] = Node{.parent = free_, .height = 0};
  free_ = z;
  retrace(start, steps);
}

uint32_t LengthTree::lower_bound(uint64_t len, uint64_t& steps) const {
  uint32_t found = kNone;
  for (uint32_t x = root_; x != kNone;) {
    ++steps;
    if (nodes_[x].len >= len) {
      found = x;
      x = nodes_[x].left;
    } else {
      x = nodes_[x].right;
    }
  }
  return found;
}

uint32_t LengthTree::successor(uint32_t x, uint64_t& steps) const {
  const Node* t = nodes_.data();
  if (t[x].right != kNone) {
    x = t[x].right;
    ++steps;
    while (t[x].left != kNone) {
      x = t[x].left;
      ++steps;
    }
    return x;
  }
  uint32_t p = t[x].parent;
  while (p != kNone && t[p].right == x) {
    ++steps;
    x = p;
    p = t[p].parent;
  }
  ++steps;
  return p;
}

uint32_t LengthTree::last() const {
  uint32_t x = root_;
  if (x == kNone) return kNone;
  while (nodes_[x].right != kNone) x = nodes_[x].right;
  return x;
}

Status LengthTree::check_structure() const {
  if (root_ != kNone && nodes_[root_].parent != kNone)
    return fail(Errc::kProtocol, "length tree: root {} has a parent", root_);
  // Iterative in-order walk with an explicit stack, checking each node.
  std::vector<uint32_t> stack;
  std::vector<bool> seen(nodes_.size(), false);
  uint64_t n = 0;
  uint32_t prev = kNone;
  uint32_t x = root_;
  while (x != kNone || !stack.empty()) {
    while (x != kNone) {
      if (x >= nodes_.size() || seen[x] || nodes_[x].height == 0)
        return fail(Errc::kProtocol, "length tree: node {} out of range, free or reached twice", x);
      seen[x] = true;
      stack.push_back(x);
      x = nodes_[x].left;
    }
    x = stack.back();
    stack.pop_back();
    const Node& e = nodes_[x];
    for (uint32_t c : {e.left, e.right}) {
      if (c != kNone && nodes_[c].parent != x)
        return fail(Errc::kProtocol, "length tree: child {} of {} has parent {}", c, x,
                    nodes_[c].parent);
    }
    int hl = height(e.left);
    int hr = height(e.right);
    if (e.height != 1 + std::max(hl, hr) || hl - hr > 1 || hr - hl > 1)
      return fail(Errc::kProtocol, "length tree: node {} height {} with children {} and {}", x,
                  e.height, hl, hr);
    if (prev != kNone && nodes_[prev].len >= e.len)
      return fail(Errc::kProtocol, "length tree: length {} ordered before {}", nodes_[prev].len,
                  e.len);
    prev = x;
    ++n;
    x = e.right;
  }
  if (n != count_)
    return fail(Errc::kProtocol, "length tree: holds {} nodes, counted {}", n, count_);
  return {};
}

}  // namespace pmm::alloc::detail
