#include "triad/governance/merkle.h"

#include <bit>

namespace triad {

namespace {

// The RFC's k: the largest power of two smaller than n (n >= 2).
uint64_t split_point(uint64_t n) {
  return std::bit_floor(n - 1);
}

// PATH(m, D[n]) of RFC 9162 §2.1.3.1, appended to `out` leaf side first.
void inclusion_path(std::span<const Hash> leaves, uint64_t m, std::vector<Hash>& out) {
  uint64_t n = leaves.size();
  if (n <= 1) return;
  uint64_t k = split_point(n);
  if (m < k) {
    inclusion_path(leaves.first(k), m, out);
    out.push_back(merkle_root(leaves.subspan(k)));
  } else {
    inclusion_path(leaves.subspan(k), m - k, out);
    out.push_back(merkle_root(leaves.first(k)));
  }
}

// SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1.
void subproof(std::span<const Hash> leaves, uint64_t m, bool whole_old_tree, std::vector<Hash>& out) {
  uint64_t n = leaves.size();
  if (m == n) {
    if (!whole_old_tree) out.push_back(merkle_root(leaves));
    return;
  }
  uint64_t k = split_point(n);
  if (m <= k) {
    subproof(leaves.first(k), m, whole_old_tree, out);
    out.push_back(merkle_root(leaves.subspan(k)));
  } else {
    subproof(leaves.subspan(k), m - k, false, out);
    out.push_back(merkle_root(leaves.first(k)));
  }
}

// One iteration of the verification loops of RFC 9162 §2.1.3.2 and §2.1.4.2: whether this proof node is
// the left sibling, then fn and sn advanced to the next level.
bool left_sibling_then_advance(uint64_t& fn, uint64_t& sn) {
  bool left = (fn & 1) || fn == sn;
  if (left) {
    while (fn != 0 && (fn & 1) == 0) {  // up to where this subtree is a right child
      fn >>= 1;
      sn >>= 1;
    }
  }
  fn >>= 1;
  sn >>= 1;
  return left;
}

}  // namespace

Hash merkle_leaf_hash(std::string_view entry) {
  Sha256 h;
  const uint8_t prefix = 0x00;
  h.update(&prefix, 1);
  h.update(entry);
  return h.finish();
}

Hash merkle_node_hash(const Hash& left, const Hash& right) {
  Sha256 h;
  const uint8_t prefix = 0x01;
  h.update(&prefix, 1);
  h.update(left.data(), left.size());
  h.update(right.data(), right.size());
  return h.finish();
}

Hash merkle_root(std::span<const Hash> leaves) {
  uint64_t n = leaves.size();
  if (n == 0) return sha256("");
  if (n == 1) return leaves[0];
  uint64_t k = split_point(n);
  return merkle_node_hash(merkle_root(leaves.first(k)), merkle_root(leaves.subspan(k)));
}

std::vector<Hash> merkle_inclusion_proof(std::span<const Hash> leaves, uint64_t index) {
  std::vector<Hash> proof;
  if (index < leaves.size()) inclusion_path(leaves, index, proof);
  return proof;
}

std::vector<Hash> merkle_consistency_proof(std::span<const Hash> leaves, uint64_t old_size) {
  std::vector<Hash> proof;
  if (old_size > 0 && old_size < leaves.size()) subproof(leaves, old_size, true, proof);
  return proof;
}

bool merkle_verify_inclusion(uint64_t index, uint64_t size, const Hash& leaf, std::span<const Hash> proof,
                             const Hash& root) {
  if (index >= size) return false;
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0) return false;  // the proof is longer than the path
    r = left_sibling_then_advance(fn, sn) ? merkle_node_hash(p, r) : merkle_node_hash(r, p);
  }
  return sn == 0 && r == root;
}

bool merkle_verify_consistency(uint64_t size1, uint64_t size2, std::span<const Hash> proof, const Hash& root1,
                               const Hash& root2) {
  if (size1 > size2) return false;
  if (size1 == size2) return proof.empty() && root1 == root2;
  if (size1 == 0) return proof.empty();
  if (proof.empty()) return false;
  // When the old tree is a complete subtree of the new one, its root is the proof's implicit first node.
  std::vector<Hash> path;
  if (std::has_single_bit(size1)) path.push_back(root1);
  path.insert(path.end(), proof.begin(), proof.end());

  uint64_t fn = size1 - 1, sn = size2 - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0], sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return false;
    if (left_sibling_then_advance(fn, sn)) {
      fr = merkle_node_hash(c, fr);
      sr = merkle_node_hash(c, sr);
    } else {
      sr = merkle_node_hash(sr, c);
    }
  }
  return fr == root1 && sr == root2 && sn == 0;
}

}  // namespace triad
