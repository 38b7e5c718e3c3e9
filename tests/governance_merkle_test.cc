// The RFC 9162 Merkle tree against the RFC 6962 test vectors that transparency-dev/merkle uses
// (proof/verify_test.go: leaves, roots, inclusionProofs, consistencyProofs and its corruption probes), and
// random trees against a naive reference.

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "triad/governance/encoding.h"
#include "triad/governance/merkle.h"

namespace triad {
namespace {

Hash h(const std::string& hex_text) {
  return *digest_from_hex(hex_text);
}

// transparency-dev/merkle proof/verify_test.go: `leaves` (raw entries) and `roots` (sizes 1..8).
const std::vector<std::string> kLeaves = {
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"};
const std::vector<std::string> kRoots = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                                         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                                         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                                         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                                         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                                         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
                                         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
                                         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
const Hash kEmptyRoot = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
const Hash kSomeHash = h("abacaba000000000000000000000000000000000000000000060061e00123456");

std::vector<Hash> leaf_hashes(size_t n) {
  std::vector<Hash> out;
  for (size_t i = 0; i < n; ++i) out.push_back(merkle_leaf_hash(*hex_decode(kLeaves[i])));
  return out;
}

struct InclusionVector {
  uint64_t index, size;
  std::vector<std::string> proof;
};
// inclusionProofs, with the 1-based leaf numbers of the Go file turned into indices.
const std::vector<InclusionVector> kInclusion = {
    {0, 1, {}},
    {0,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

struct ConsistencyVector {
  uint64_t size1, size2;
  std::vector<std::string> proof;
};
const std::vector<ConsistencyVector> kConsistency = {
    {1, 1, {}},
    {1,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

std::vector<Hash> to_hashes(const std::vector<std::string>& hexes) {
  std::vector<Hash> out;
  for (const std::string& s : hexes) out.push_back(h(s));
  return out;
}

std::vector<Hash> with(std::vector<Hash> proof, size_t at, const Hash& extra) {
  proof.insert(proof.begin() + static_cast<std::ptrdiff_t>(at), extra);
  return proof;
}

// Every corruption of transparency-dev's corruptInclusionProof must be rejected. (A zero-length "garbage"
// node cannot be expressed with fixed-size hashes; an all-zero hash stands in for it.)
void expect_inclusion_probes_fail(uint64_t index, uint64_t size, const std::vector<Hash>& proof,
                                  const Hash& root, const Hash& leaf) {
  const Hash zero{};
  EXPECT_FALSE(merkle_verify_inclusion(index - 1, size, leaf, proof, root)) << "index - 1";
  EXPECT_FALSE(merkle_verify_inclusion(index + 1, size, leaf, proof, root)) << "index + 1";
  EXPECT_FALSE(merkle_verify_inclusion(index ^ 2, size, leaf, proof, root)) << "index ^ 2";
  EXPECT_FALSE(merkle_verify_inclusion(index, size * 2, leaf, proof, root)) << "size * 2";
  EXPECT_FALSE(merkle_verify_inclusion(index, size / 2, leaf, proof, root)) << "size / 2";
  EXPECT_FALSE(merkle_verify_inclusion(index, size, sha256("WrongLeaf"), proof, root)) << "wrong leaf";
  EXPECT_FALSE(merkle_verify_inclusion(index, size, leaf, proof, kEmptyRoot)) << "empty root";
  EXPECT_FALSE(merkle_verify_inclusion(index, size, leaf, proof, kSomeHash)) << "random root";
  EXPECT_FALSE(merkle_verify_inclusion(index, size, leaf, with(proof, proof.size(), zero), root))
      << "trailing";
  EXPECT_FALSE(merkle_verify_inclusion(index, size, leaf, with(proof, proof.size(), root), root))
      << "trailing root";
  EXPECT_FALSE(merkle_verify_inclusion(index, size, leaf, with(proof, 0, zero), root)) << "preceding garbage";
  EXPECT_FALSE(merkle_verify_inclusion(index, size, leaf, with(proof, 0, root), root)) << "preceding root";
  for (size_t i = 0; i < proof.size(); ++i) {
    std::vector<Hash> flipped = proof;
    flipped[i][0] ^= 8;
    EXPECT_FALSE(merkle_verify_inclusion(index, size, leaf, flipped, root)) << "flipped node " << i;
  }
  if (!proof.empty()) {
    std::vector<Hash> missing(proof.begin(), proof.end() - 1);
    EXPECT_FALSE(merkle_verify_inclusion(index, size, leaf, missing, root)) << "removed node";
  }
  if (proof.size() > 1) {
    EXPECT_FALSE(merkle_verify_inclusion(index, size, leaf, with(proof, 1, kSomeHash), root))
        << "inserted node";
  }
}

// transparency-dev's corruptConsistencyProof.
void expect_consistency_probes_fail(uint64_t size1, uint64_t size2, const std::vector<Hash>& proof,
                                    const Hash& root1, const Hash& root2) {
  const Hash zero{}, wrong = sha256("WrongRoot");
  auto ok = [&](uint64_t s1, uint64_t s2, const std::vector<Hash>& p, const Hash& r1, const Hash& r2) {
    return merkle_verify_consistency(s1, s2, p, r1, r2);
  };
  EXPECT_FALSE(ok(size1 - 1, size2, proof, root1, root2)) << "size1 - 1";
  EXPECT_FALSE(ok(size1 + 1, size2, proof, root1, root2)) << "size1 + 1";
  EXPECT_FALSE(ok(size1 ^ 2, size2, proof, root1, root2)) << "size1 ^ 2";
  EXPECT_FALSE(ok(size1, size2 * 2, proof, root1, root2)) << "size2 * 2";
  EXPECT_FALSE(ok(size1, size2 / 2, proof, root1, root2)) << "size2 / 2";
  EXPECT_FALSE(ok(size1, size2, proof, wrong, root2)) << "wrong root1";
  EXPECT_FALSE(ok(size1, size2, proof, root1, wrong)) << "wrong root2";
  EXPECT_FALSE(ok(size1, size2, proof, root2, root1)) << "swapped roots";
  EXPECT_FALSE(ok(size1, size2, {}, root1, root2)) << "empty proof";
  EXPECT_FALSE(ok(size1, size2, with(proof, proof.size(), zero), root1, root2)) << "trailing garbage";
  EXPECT_FALSE(ok(size1, size2, with(proof, proof.size(), root1), root1, root2)) << "trailing root1";
  EXPECT_FALSE(ok(size1, size2, with(proof, proof.size(), root2), root1, root2)) << "trailing root2";
  EXPECT_FALSE(ok(size1, size2, with(proof, 0, zero), root1, root2)) << "preceding garbage";
  EXPECT_FALSE(ok(size1, size2, with(proof, 0, root1), root1, root2)) << "preceding root1";
  EXPECT_FALSE(ok(size1, size2, with(proof, 0, root2), root1, root2)) << "preceding root2";
  EXPECT_FALSE(ok(size1, size2, with(proof, 0, proof[0]), root1, root2)) << "preceding proof[0]";
  EXPECT_FALSE(ok(size1, size2, std::vector<Hash>(proof.begin(), proof.end() - 1), root1, root2))
      << "truncated";
  for (size_t i = 0; i < proof.size(); ++i) {
    std::vector<Hash> flipped = proof;
    flipped[i][0] ^= 16;
    EXPECT_FALSE(ok(size1, size2, flipped, root1, root2)) << "flipped node " << i;
  }
}

TEST(GovernanceMerkle, RootsOfTheRfc6962Vectors) {
  EXPECT_EQ(merkle_root({}), kEmptyRoot);
  for (size_t n = 1; n <= 8; ++n) EXPECT_EQ(hex(merkle_root(leaf_hashes(n))), kRoots[n - 1]) << "size " << n;
}

TEST(GovernanceMerkle, InclusionProofsOfTheRfc6962Vectors) {
  std::vector<Hash> all = leaf_hashes(8);
  for (const InclusionVector& v : kInclusion) {
    std::span<const Hash> tree(all.data(), v.size);
    std::vector<Hash> expected = to_hashes(v.proof);
    EXPECT_EQ(merkle_inclusion_proof(tree, v.index), expected) << v.index << " of " << v.size;
    Hash root = h(kRoots[v.size - 1]);
    EXPECT_TRUE(merkle_verify_inclusion(v.index, v.size, all[v.index], expected, root));
    expect_inclusion_probes_fail(v.index, v.size, expected, root, all[v.index]);
  }
}

TEST(GovernanceMerkle, InclusionOfTheOnlyLeafAndImpossibleIndices) {
  Hash leaf = merkle_leaf_hash("data");
  EXPECT_TRUE(merkle_verify_inclusion(0, 1, leaf, {}, leaf));  // a one-leaf tree's root is its leaf
  EXPECT_FALSE(merkle_verify_inclusion(0, 1, leaf, {}, kEmptyRoot));
  for (auto [index, size] : std::vector<std::pair<uint64_t, uint64_t>>{{0, 0}, {1, 0}, {2, 1}, {1, 1}})
    EXPECT_FALSE(merkle_verify_inclusion(index, size, kSomeHash, {}, kEmptyRoot)) << index << "/" << size;
}

TEST(GovernanceMerkle, ConsistencyProofsOfTheRfc6962Vectors) {
  std::vector<Hash> all = leaf_hashes(8);
  for (const ConsistencyVector& v : kConsistency) {
    std::vector<Hash> expected = to_hashes(v.proof);
    EXPECT_EQ(merkle_consistency_proof(std::span<const Hash>(all.data(), v.size2), v.size1), expected)
        << v.size1 << " -> " << v.size2;
    Hash root1 = h(kRoots[v.size1 - 1]), root2 = h(kRoots[v.size2 - 1]);
    EXPECT_TRUE(merkle_verify_consistency(v.size1, v.size2, expected, root1, root2));
    if (!expected.empty()) expect_consistency_probes_fail(v.size1, v.size2, expected, root1, root2);
  }
}

TEST(GovernanceMerkle, ConsistencyEdgeCasesOfTheGoTable) {
  const Hash r1 = sha256("don't care 1"), r2 = sha256("don't care 2");
  const std::vector<Hash> none, one = {kEmptyRoot};
  EXPECT_FALSE(merkle_verify_consistency(0, 0, none, r1, r2));
  EXPECT_FALSE(merkle_verify_consistency(1, 1, none, r1, r2));
  EXPECT_TRUE(merkle_verify_consistency(0, 0, none, r1, r1));
  EXPECT_TRUE(merkle_verify_consistency(0, 1, none, r1, r2));
  EXPECT_TRUE(merkle_verify_consistency(1, 1, none, r2, r2));
  EXPECT_FALSE(merkle_verify_consistency(1, 0, none, r1, r2));  // time travel
  EXPECT_FALSE(merkle_verify_consistency(2, 1, none, r1, r2));
  EXPECT_FALSE(merkle_verify_consistency(1, 2, none, r1, r2));  // empty proof
  EXPECT_FALSE(merkle_verify_consistency(0, 0, none, kEmptyRoot, r2));
  EXPECT_FALSE(merkle_verify_consistency(1, 1, none, kEmptyRoot, r2));
  EXPECT_FALSE(merkle_verify_consistency(0, 0, one, kEmptyRoot, kEmptyRoot));  // roots match, proof not empty
  EXPECT_FALSE(merkle_verify_consistency(0, 1, one, kEmptyRoot, kEmptyRoot));
  EXPECT_FALSE(merkle_verify_consistency(1, 1, one, kEmptyRoot, kEmptyRoot));
}

// The reference: the tree built bottom-up, pairing nodes level by level and carrying an odd last node up
// unchanged, which gives RFC 9162's tree without its recursive split.
Hash reference_root(std::vector<Hash> level) {
  if (level.empty()) return sha256("");
  while (level.size() > 1) {
    std::vector<Hash> up;
    for (size_t i = 0; i + 1 < level.size(); i += 2) up.push_back(merkle_node_hash(level[i], level[i + 1]));
    if (level.size() % 2) up.push_back(level.back());
    level = up;
  }
  return level[0];
}

// The audit path by the same bottom-up walk: the sibling at each level where there is one.
std::vector<Hash> reference_path(std::vector<Hash> level, size_t index) {
  std::vector<Hash> path;
  while (level.size() > 1) {
    size_t sibling = index ^ 1;
    if (sibling < level.size()) path.push_back(level[sibling]);
    std::vector<Hash> up;
    for (size_t i = 0; i + 1 < level.size(); i += 2) up.push_back(merkle_node_hash(level[i], level[i + 1]));
    if (level.size() % 2) up.push_back(level.back());
    level = up;
    index /= 2;
  }
  return path;
}

TEST(GovernanceMerkle, RandomTreesAgreeWithTheBottomUpReference) {
  std::mt19937_64 rng(6962);
  std::vector<Hash> leaves;
  for (size_t i = 0; i < 300; ++i) leaves.push_back(merkle_leaf_hash(std::to_string(rng())));
  for (size_t n : {9, 10, 15, 16, 17, 31, 33, 64, 100, 127, 129, 300}) {
    std::span<const Hash> tree(leaves.data(), n);
    std::vector<Hash> prefix(tree.begin(), tree.end());
    Hash root = merkle_root(tree);
    ASSERT_EQ(root, reference_root(prefix)) << n;
    for (size_t i = 0; i < n; i += (n > 40 ? 7 : 1)) {
      std::vector<Hash> proof = merkle_inclusion_proof(tree, i);
      EXPECT_EQ(proof, reference_path(prefix, i)) << i << " of " << n;
      EXPECT_TRUE(merkle_verify_inclusion(i, n, tree[i], proof, root));
      EXPECT_FALSE(merkle_verify_inclusion(i, n, tree[(i + 1) % n], proof, root));
      if (n < 40) expect_inclusion_probes_fail(i, n, proof, root, tree[i]);
    }
  }
}

TEST(GovernanceMerkle, ConsistencyBetweenEveryPairOfSmallTrees) {
  std::vector<Hash> leaves;
  for (int i = 0; i < 40; ++i) leaves.push_back(merkle_leaf_hash("entry " + std::to_string(i)));
  for (uint64_t n = 1; n <= 40; ++n) {
    std::span<const Hash> tree(leaves.data(), n);
    Hash root2 = merkle_root(tree);
    for (uint64_t m = 0; m <= n; ++m) {
      Hash root1 = merkle_root(tree.first(m));
      std::vector<Hash> proof = merkle_consistency_proof(tree, m);
      ASSERT_TRUE(merkle_verify_consistency(m, n, proof, root1, root2)) << m << " -> " << n;
      if (m > 0 && m < n) {
        // A tree that is not a prefix (its last old leaf changed) must not pass.
        std::vector<Hash> other(tree.begin(), tree.begin() + static_cast<std::ptrdiff_t>(m));
        other.back() = merkle_leaf_hash("forged");
        EXPECT_FALSE(merkle_verify_consistency(m, n, proof, merkle_root(other), root2)) << m << " -> " << n;
        if (n <= 12) expect_consistency_probes_fail(m, n, proof, root1, root2);
      }
    }
  }
}

}  // namespace
}  // namespace triad
