// pmm::core::find_or_make / insert_reusing — node reuse for the ledger's
// node-based maps and sets.
//
// A session's connect and disconnect made and freed a node in each of the
// ledger's per-session and per-uid tables (four mallocs and frees per
// session, a sixth of pmmd's work for a connect+disconnect). An erase
// through extract() keeps the node in a spare handle, and the next insert of
// a new key takes it: a daemon whose sessions come and go allocates no nodes
// in steady state. One spare per table: bounded, and nothing is kept that a
// busy moment did not already hold.
//
// Usage:
//   std::map<K, V>::node_type spare;
//   V& v = find_or_make(table, spare, key);    // value-initialised if new
//   spare = table.extract(it);                 // instead of table.erase(it)
#pragma once

#include <utility>

namespace pmm::core {

// The value of `key` in map `m`, value-initialised if missing (as
// operator[]), made in `spare`'s node when it has one.
template <typename Map>
typename Map::mapped_type& find_or_make(Map& m, typename Map::node_type& spare,
                                        const typename Map::key_type& key) {
  if (auto it = m.find(key); it != m.end()) return it->second;
  if (spare.empty()) return m.try_emplace(key).first->second;
  spare.key() = key;
  spare.mapped() = typename Map::mapped_type{};
  return m.insert(std::move(spare)).position->second;  // leaves `spare` empty
}

// Inserts `v` into set `s`, in `spare`'s node when it has one.
template <typename Set>
void insert_reusing(Set& s, typename Set::node_type& spare, const typename Set::value_type& v) {
  if (spare.empty()) {
    s.insert(v);
    return;
  }
  spare.value() = v;
  auto r = s.insert(std::move(spare));
  if (!r.inserted) spare = std::move(r.node);  // there already: the node stays spare
}

}  // namespace pmm::core
