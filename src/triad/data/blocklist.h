#pragma once
// The C4 bad-words filter: a page is dropped when any listed phrase occurs as whole words, i.e. the regex
// (?:\W|^)(phrase1|phrase2|...)(?:\W|$) of TFDS c4_utils searched in the lower-cased page. Matching walks a
// byte trie from every word start, so the cost is linear in the page, not in the list.

#include <string>
#include <string_view>
#include <vector>

namespace triad {

class Blocklist {
 public:
  explicit Blocklist(const std::vector<std::string>& phrases);
  // One phrase per line (the LDNOOBW format); blank lines are ignored. Names the file on failure.
  static Blocklist load(const std::string& path);

  // `lower` must already be lower-cased (ASCII); bytes >= 0x80 count as word characters.
  bool matches(std::string_view lower) const;
  size_t size() const { return phrases_; }

 private:
  struct Node {
    int next[256];
    bool terminal = false;
  };
  std::vector<Node> nodes_;
  size_t phrases_ = 0;
};

}  // namespace triad
