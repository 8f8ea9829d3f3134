// FreeTree: AVL insert/erase with parent links, iterative, retracing only as
// far up as a subtree's height changes. See free_tree.h for the rule.
#include "alloc/free_tree.h"

#include <algorithm>
#include <vector>

namespace pmm::alloc::detail {
namespace {

enum : int { kLeft = 0, kRight = 1, kParent = 2 };

inline uint32_t& L(Segment* s, uint32_t i) { return s[i].link[kLeft]; }
inline uint32_t& R(Segment* s, uint32_t i) { return s[i].link[kRight]; }
inline uint32_t& P(Segment* s, uint32_t i) { return s[i].link[kParent]; }
inline int height(const Segment* s, uint32_t i) { return i == kNil ? 0 : s[i].aux; }
inline void update(Segment* s, uint32_t i) {
  s[i].aux = static_cast<uint16_t>(
      1 + std::max(height(s, s[i].link[kLeft]), height(s, s[i].link[kRight])));
}
// Strict (length, start) order; starts are unique, so keys are too.
inline bool less(const Segment& a, const Segment& b) {
  return a.len < b.len || (a.len == b.len && a.start < b.start);
}
// Where the request goes in e (runs.h), or kNoPlace.
inline uint64_t place(const Segment& e, uint64_t size, uint64_t align, const Runs* runs,
                      uint64_t& steps) {
  return runs == nullptr ? place_anywhere(e.start, e.len, size, align)
                         : runs->place(e.start, e.len, size, align, steps);
}

}  // namespace

void FreeTree::replace_child(Segment* s, uint32_t parent, uint32_t old_child, uint32_t new_child) {
  if (parent == kNil) {
    root_ = new_child;
  } else if (L(s, parent) == old_child) {
    L(s, parent) = new_child;
  } else {
    R(s, parent) = new_child;
  }
}

uint32_t FreeTree::rotate_left(Segment* s, uint32_t x) {
  uint32_t y = R(s, x);
  R(s, x) = L(s, y);
  if (L(s, y) != kNil) P(s, L(s, y)) = x;
  P(s, y) = P(s, x);
  replace_child(s, P(s, x), x, y);
  L(s, y) = x;
  P(s, x) = y;
  update(s, x);
  update(s, y);
  return y;
}

uint32_t FreeTree::rotate_right(Segment* s, uint32_t x) {
  uint32_t y = L(s, x);
  L(s, x) = R(s, y);
  if (R(s, y) != kNil) P(s, R(s, y)) = x;
  P(s, y) = P(s, x);
  replace_child(s, P(s, x), x, y);
  R(s, y) = x;
  P(s, x) = y;
  update(s, x);
  update(s, y);
  return y;
}

uint32_t FreeTree::rebalance(Segment* s, uint32_t x) {
  int bf = height(s, L(s, x)) - height(s, R(s, x));
  if (bf > 1) {
    uint32_t l = L(s, x);
    if (height(s, L(s, l)) < height(s, R(s, l))) rotate_left(s, l);
    return rotate_right(s, x);
  }
  if (bf < -1) {
    uint32_t r = R(s, x);
    if (height(s, R(s, r)) < height(s, L(s, r))) rotate_right(s, r);
    return rotate_left(s, x);
  }
  update(s, x);
  return x;
}

// Walks up from x fixing heights and balance; stops as soon as a subtree
// comes out as tall as it was, because nothing above it can have changed.
void FreeTree::retrace(Segment* s, uint32_t x, uint64_t& steps) {
  while (x != kNil) {
    ++steps;
    int before = s[x].aux;
    uint32_t top = rebalance(s, x);
    if (s[top].aux == before) return;
    x = P(s, top);
  }
}

void FreeTree::insert(Segment* s, uint32_t i, uint64_t& steps) {
  L(s, i) = R(s, i) = kNil;
  s[i].aux = 1;
  ++count_;
  uint32_t parent = kNil;
  bool left = false;
  for (uint32_t x = root_; x != kNil;) {
    ++steps;
    parent = x;
    left = less(s[i], s[x]);
    x = left ? L(s, x) : R(s, x);
  }
  P(s, i) = parent;
  if (parent == kNil) {
    root_ = i;
    return;
  }
  (left ? L(s, parent) : R(s, parent)) = i;
  retrace(s, parent, steps);
}

void FreeTree::remove(Segment* s, uint32_t z, uint64_t& steps) {
  --count_;
  uint32_t start;  // where retracing begins
  if (L(s, z) != kNil && R(s, z) != kNil) {
    // Put z's in-order successor y (no left child) in z's place.
    uint32_t y = R(s, z);
    while (L(s, y) != kNil) {
      ++steps;
      y = L(s, y);
    }
    if (P(s, y) == z) {
      start = y;
    } else {
      uint32_t yp = P(s, y);
      uint32_t yr = R(s, y);
      L(s, yp) = yr;
      if (yr != kNil) P(s, yr) = yp;
      R(s, y) = R(s, z);
      P(s, R(s, z)) = y;
      start = yp;
    }
    L(s, y) = L(s, z);
    P(s, L(s, z)) = y;
    P(s, y) = P(s, z);
    replace_child(s, P(s, z), z, y);
    s[y].aux = s[z].aux;
  } else {
    uint32_t c = L(s, z) != kNil ? L(s, z) : R(s, z);
    start = P(s, z);
    if (c != kNil) P(s, c) = start;
    replace_child(s, start, z, c);
  }
  s[z].link[kLeft] = s[z].link[kRight] = s[z].link[kParent] = kNil;
  retrace(s, start, steps);
}

uint32_t FreeTree::lower_bound(const Segment* s, uint64_t len, uint64_t& steps) const {
  uint32_t found = kNil;
  for (uint32_t x = root_; x != kNil;) {
    ++steps;
    if (s[x].len >= len) {
      found = x;
      x = s[x].link[kLeft];
    } else {
      x = s[x].link[kRight];
    }
  }
  return found;
}

uint32_t FreeTree::successor(const Segment* s, uint32_t x, uint64_t& steps) const {
  if (s[x].link[kRight] != kNil) {
    x = s[x].link[kRight];
    ++steps;
    while (s[x].link[kLeft] != kNil) {
      x = s[x].link[kLeft];
      ++steps;
    }
    return x;
  }
  uint32_t p = s[x].link[kParent];
  while (p != kNil && s[p].link[kRight] == x) {
    ++steps;
    x = p;
    p = s[p].link[kParent];
  }
  ++steps;
  return p;
}

uint32_t FreeTree::find(const Segment* s, uint64_t size, uint64_t align, const Runs* runs,
                        uint64_t& at, uint64_t& steps) const {
  uint32_t x = lower_bound(s, size, steps);
  for (int misses = 0; x != kNil; x = successor(s, x, steps)) {
    if ((at = place(s[x], size, align, runs, steps)) != kNoPlace) return x;
    if (++misses == kScanLimit) break;
  }
  if (x == kNil) return kNil;  // walked every extent of length >= size
  if (size > UINT64_MAX - (align - 1)) return kNil;
  x = lower_bound(s, size + (align - 1), steps);
  if (x == kNil) return kNil;
  // Holds the request wherever it starts, unless it must stay in one run.
  at = place(s[x], size, align, runs, steps);
  return at == kNoPlace ? kNil : x;
}

uint32_t FreeTree::largest(const Segment* s) const {
  uint32_t x = root_;
  if (x == kNil) return kNil;
  while (s[x].link[kRight] != kNil) x = s[x].link[kRight];
  return x;
}

Status FreeTree::check(const Segment* s, uint32_t extent) const {
  if (root_ != kNil && s[root_].link[kParent] != kNil)
    return fail(Errc::kProtocol, "free tree: root {} has a parent", root_);
  // Iterative in-order walk with an explicit stack, checking each node.
  std::vector<uint32_t> stack;
  std::vector<bool> seen(extent, false);
  uint64_t n = 0;
  uint32_t prev = kNil;
  uint32_t x = root_;
  while (x != kNil || !stack.empty()) {
    while (x != kNil) {
      if (x >= extent || seen[x])
        return fail(Errc::kProtocol, "free tree: node {} out of range or reached twice", x);
      seen[x] = true;
      stack.push_back(x);
      x = s[x].link[kLeft];
    }
    x = stack.back();
    stack.pop_back();
    const Segment& e = s[x];
    if (!e.free)
      return fail(Errc::kProtocol, "free tree: node {} (offset {}) is not free", x, e.start);
    for (int side : {kLeft, kRight}) {
      uint32_t c = e.link[side];
      if (c != kNil && s[c].link[kParent] != x)
        return fail(Errc::kProtocol, "free tree: child {} of {} has parent {}", c, x,
                    s[c].link[kParent]);
    }
    int hl = height(s, e.link[kLeft]);
    int hr = height(s, e.link[kRight]);
    if (e.aux != 1 + std::max(hl, hr) || hl - hr > 1 || hr - hl > 1)
      return fail(Errc::kProtocol, "free tree: node {} height {} with children {} and {}", x, e.aux,
                  hl, hr);
    if (prev != kNil && !less(s[prev], e))
      return fail(Errc::kProtocol, "free tree: ({}, {}) ordered before ({}, {})", s[prev].len,
                  s[prev].start, e.len, e.start);
    prev = x;
    ++n;
    x = e.link[kRight];
  }
  if (n != count_) return fail(Errc::kProtocol, "free tree: holds {} nodes, counted {}", n, count_);
  return {};
}

}  // namespace pmm::alloc::detail
