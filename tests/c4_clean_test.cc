#include "triad/data/c4_clean.h"

#include <gtest/gtest.h>

namespace triad {
namespace {

// Three good lines: each ends in terminal punctuation and has at least five words.
const std::string kGood =
    "The committee met on Tuesday to review the new budget proposal.\n"
    "Members agreed that the plan would need several changes before the vote.\n"
    "Three of the seven members asked for more time to study the figures.";

CleanedPage clean(const std::string& text, RuleCounts* counts, const Blocklist* blocklist = nullptr) {
  CleanOptions options;
  options.blocklist = blocklist;
  options.min_chars = 0;
  return clean_page(text, options, counts);
}

TEST(C4Clean, KeepsAGoodPageUnchanged) {
  RuleCounts counts;
  CleanedPage page = clean(kGood, &counts);
  ASSERT_TRUE(page.kept);
  EXPECT_EQ(page.text(), kGood);
  for (int r = 0; r < kRuleCount; ++r) EXPECT_EQ(counts.n[r], 0u) << rule_name(static_cast<Rule>(r));
}

struct LineCase {
  std::string line;
  Rule rule;
};

void PrintTo(const LineCase& c, std::ostream* os) {
  *os << rule_name(c.rule);
}

class LineRule : public ::testing::TestWithParam<LineCase> {};

TEST_P(LineRule, DropsTheLineAndCountsIt) {
  RuleCounts counts;
  CleanedPage page = clean(kGood + "\n" + GetParam().line, &counts);
  ASSERT_TRUE(page.kept);
  EXPECT_EQ(page.text(), kGood);
  EXPECT_EQ(counts[GetParam().rule], 1u);
}

INSTANTIATE_TEST_SUITE_P(
    C4Clean, LineRule,
    ::testing::Values(
        LineCase{"Click here to read the rest of the story", Rule::kLineNoTerminalPunctuation},
        LineCase{"And then the story went on and on and on...", Rule::kLineEllipsis},
        LineCase{"Too short a line.", Rule::kLineTooFewWords},
        LineCase{"Please enable JavaScript in your browser settings.", Rule::kLineJavascript},
        LineCase{"By using this site you agree to our Privacy Policy today.", Rule::kLinePolicy},
        LineCase{"This site uses cookies to improve your experience here.", Rule::kLinePolicy},
        LineCase{"A word " + std::string(1001, 'x') + " is far too long here.", Rule::kLineLongWord}),
    [](const ::testing::TestParamInfo<LineCase>& info) {
      return std::string(rule_name(info.param.rule)) + "_" + std::to_string(info.index);
    });

TEST(C4Clean, CitationsAreCutFromLines) {
  RuleCounts counts;
  CleanedPage page =
      clean(kGood + "\nThe river rose by two meters overnight[3] and then fell[edit].", &counts);
  ASSERT_TRUE(page.kept);
  EXPECT_EQ(page.lines.back(), "The river rose by two meters overnight and then fell.");
}

TEST(C4Clean, LoremIpsumDropsThePage) {
  RuleCounts counts;
  EXPECT_FALSE(clean(kGood + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", &counts).kept);
  EXPECT_EQ(counts[Rule::kPageLoremIpsum], 1u);
}

TEST(C4Clean, CurlyBracketDropsThePage) {
  RuleCounts counts;
  EXPECT_FALSE(clean(kGood + "\nfunction f() { return the value of x; }.", &counts).kept);
  EXPECT_EQ(counts[Rule::kPageCurlyBracket], 1u);
}

TEST(C4Clean, FewerThanThreeSentencesDropsThePage) {
  RuleCounts counts;
  EXPECT_FALSE(
      clean("One long enough sentence stands here alone. And a second one follows it.", &counts).kept);
  EXPECT_EQ(counts[Rule::kPageTooFewSentences], 1u);
}

TEST(C4Clean, BlocklistMatchesWholeWordsAndPhrases) {
  Blocklist list({"ass", "two girls one cup", "s&m"});
  EXPECT_TRUE(list.matches("what an ass."));
  EXPECT_TRUE(list.matches("ass"));
  EXPECT_TRUE(list.matches("they saw two girls one cup there"));
  EXPECT_TRUE(list.matches("into s&m, they said"));
  EXPECT_FALSE(list.matches("a classic class assignment"));
  EXPECT_FALSE(list.matches("two girls one cupcake"));
  EXPECT_FALSE(list.matches("glass_ass"));  // '_' is a word character, as in \w

  RuleCounts counts;
  EXPECT_FALSE(clean(kGood + "\nHe called the man an ASS in front of everyone.", &counts, &list).kept);
  EXPECT_EQ(counts[Rule::kPageBlocklisted], 1u);
  EXPECT_TRUE(clean(kGood + "\nHe took a classic class in the assembly hall.", &counts, &list).kept);
}

TEST(C4Clean, NonEnglishPageIsDropped) {
  RuleCounts counts;
  std::string french =
      "Le conseil municipal s'est réuni mardi pour examiner le nouveau budget des écoles.\n"
      "Les membres ont convenu que le plan nécessiterait plusieurs changements avant le vote.\n"
      "Trois des sept membres ont demandé plus de temps pour étudier les chiffres en détail.";
  EXPECT_FALSE(clean(french, &counts).kept);
  EXPECT_EQ(counts[Rule::kPageNotEnglish], 1u);
}

TEST(C4Clean, RepeatedThreeSentenceSpanIsRemovedFromTheLaterPage) {
  RuleCounts counts;
  SpanDeduper dedupe;
  std::string repeated =
      "Volunteers filled sandbags at the church all night long. The fire department moved families to high "
      "ground. By morning the water had started to fall again.";
  std::string other =
      "The orchestra played to a full hall on Saturday evening.\n"
      "Critics praised the soloist for her warm and careful tone.\n"
      "The season continues next week with a program of new music.";
  CleanedPage first = clean(kGood + "\n" + repeated, &counts);
  CleanedPage second = clean(other + "\n" + repeated, &counts);
  dedupe.apply(&first, &counts);
  dedupe.apply(&second, &counts);
  ASSERT_TRUE(first.kept);
  EXPECT_EQ(first.text(), kGood + "\n" + repeated);
  ASSERT_TRUE(second.kept);
  EXPECT_EQ(second.text(), other);
  EXPECT_EQ(counts[Rule::kLineDuplicateSpan], 1u);

  CleanedPage third = clean(repeated, &counts);  // nothing but the repeated span: nothing left
  dedupe.apply(&third, &counts);
  EXPECT_FALSE(third.kept);
  EXPECT_EQ(counts[Rule::kPageEmptiedByDedupe], 1u);
}

TEST(C4Clean, MinCharsCountsCodePoints) {
  const std::string text = kGood + "\nThe café served a naïve crème brûlée to every guest that night.";
  const size_t chars = count_code_points(text);
  ASSERT_EQ(chars + 5, text.size());  // five two-byte characters
  CleanOptions options;
  RuleCounts counts;
  options.min_chars = chars;
  CleanedPage page = clean_page(text, options, &counts);
  apply_min_chars(&page, options, &counts);
  EXPECT_TRUE(page.kept);
  options.min_chars = chars + 1;
  page = clean_page(text, options, &counts);
  apply_min_chars(&page, options, &counts);
  EXPECT_FALSE(page.kept);
  EXPECT_EQ(counts[Rule::kPageTooShort], 1u);
}

TEST(C4Clean, NoneKeepsEverythingButMinChars) {
  CleanOptions options;
  options.c4 = false;
  options.min_chars = 5;
  RuleCounts counts;
  EXPECT_TRUE(clean_page("no punctuation { lorem ipsum", options, &counts).kept);
  EXPECT_FALSE(clean_page("tiny", options, &counts).kept);
}

TEST(SplitSentences, HandlesAbbreviationsInitialsAndQuotes) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(split_sentences("Mr. Smith went to Washington. He stayed two days."),
            (V{"Mr. Smith went to Washington.", "He stayed two days."}));
  EXPECT_EQ(split_sentences("The U.S. Army arrived. J. Edgar Hoover did not!"),
            (V{"The U.S. Army arrived.", "J. Edgar Hoover did not!"}));
  EXPECT_EQ(split_sentences("\"Stop!\" she said. Why? Because."),
            (V{"\"Stop!\" she said.", "Why?", "Because."}));
  EXPECT_EQ(split_sentences("It costs 3.5 dollars. done"), (V{"It costs 3.5 dollars. done"}));
}

}  // namespace
}  // namespace triad
