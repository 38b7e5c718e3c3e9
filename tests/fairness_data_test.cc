// Labelled data for fairness (fairness/labelled_data.h) and identity-term tagging
// (fairness/identity_terms.h).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <sstream>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/fairness/identity_terms.h"
#include "triad/fairness/labelled_data.h"

namespace triad::fairness {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_text;

const std::string kBundledTerms = std::string(TRIAD_SOURCE_DIR) + "/data/identity_terms.toml";

std::string error_of(const std::string& path, const LabelledFormat& format) {
  try {
    read_labelled(path, format);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string terms_error_of(const std::string& toml) {
  try {
    IdentityTerms::parse(toml, "terms.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const Subgroup& subgroup(const LabelledSet& set, const std::string& name) {
  for (const auto& s : set.subgroups) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no subgroup " + name);
}

std::vector<std::string> group_names(const IdentityTerms& terms, const std::string& text) {
  std::vector<std::string> names;
  for (int g : terms.tag(text)) names.push_back(terms.groups()[g].name);
  return names;
}

TEST(FairnessData, CsvQuotesEmbeddedNewlinesAndRecordLines) {
  TempDir dir;
  const std::string path = dir / "x.csv";
  write_text(path,
             "id,text,label\n"
             "a,plain,1\n"
             "b,\"has, a comma and \"\"quotes\"\"\",0\n"
             "\n"
             "c,\"line one\n"
             "line two\n"
             "line three\",1\n"
             "d,after,0");  // no final newline
  LabelledSet set = read_labelled(path, {});
  ASSERT_EQ(set.size(), 4u);
  EXPECT_THAT(set.texts,
              ElementsAre("plain", "has, a comma and \"quotes\"", "line one\nline two\nline three", "after"));
  EXPECT_THAT(set.labels, ElementsAre(1, 0, 1, 0));
  // Ids name the physical line where each record starts, across the blank line and the three-line record.
  EXPECT_THAT(set.ids, ElementsAre(path + ":2", path + ":3", path + ":5", path + ":8"));
  EXPECT_TRUE(set.subgroups.empty());
  EXPECT_EQ(set.source, path);

  LabelledFormat with_ids;
  with_ids.id_field = "id";
  EXPECT_THAT(read_labelled(path, with_ids).ids, ElementsAre("a", "b", "c", "d"));

  // A bad value after a multi-line record is reported at its own line.
  write_text(path, "text,label\n\"one\ntwo\",1\nthree,maybe\n");
  EXPECT_THAT(error_of(path, {}), HasSubstr(path + ":4: field \"label\" is \"maybe\""));
}

TEST(FairnessData, TsvWithQuotedTabsAndCrlf) {
  TempDir dir;
  const std::string path = dir / "x.tsv";
  write_text(path,
             "rev_id\tcomment\tis_toxic\tsplit\r\n"
             "7\t\"a \"\"quoted\"\"\ttab\"\tFalse\ttrain\r\n"
             "8\t  leading spaces kept\tTrue\tdev\r\n");
  LabelledFormat format;
  format.id_field = "rev_id";
  LabelledSet set = read_labelled(path, format);
  EXPECT_THAT(set.texts, ElementsAre("a \"quoted\"\ttab", "  leading spaces kept"));
  EXPECT_THAT(set.labels, ElementsAre(0, 1));
  EXPECT_THAT(set.ids, ElementsAre("7", "8"));
}

TEST(FairnessData, JsonlFieldsOfEveryType) {
  TempDir dir;
  const std::string path = dir / "x.jsonl";
  write_text(path,
             "{\"comment_text\": \"first\", \"target\": 0.7, \"id\": 12}\n"
             "\n"
             "{\"comment_text\": \"second\", \"target\": 0.2, \"id\": \"s2\"}\n"
             "{\"comment_text\": \"third\", \"target\": true, \"id\": 3}\n"
             "{\"comment_text\": \"fourth\", \"target\": \"NOT_BAD\", \"id\": 4}\n");
  LabelledFormat format;
  format.id_field = "id";
  LabelledSet set = read_labelled(path, format);
  EXPECT_THAT(set.texts, ElementsAre("first", "second", "third", "fourth"));
  EXPECT_THAT(set.labels, ElementsAre(1, 0, 1, 0));
  EXPECT_THAT(set.ids, ElementsAre("12", "s2", "3", "4"));
  EXPECT_EQ(read_labelled(path, {}).ids[1], path + ":3");

  write_text(path, "{\"text\": \"ok\", \"label\": 1}\n{\"text\": \"no label\"}\n");
  EXPECT_THAT(error_of(path, {}), HasSubstr(path + ":2: no field \"label\"; the fields are: text"));
  write_text(path, "{\"text\": \"ok\", \"label\": 1}\n{\"text\": \"ok\", \"label\": 1\n");
  EXPECT_THAT(error_of(path, {}), HasSubstr(path + ":2: malformed JSON"));
  write_text(path, "{\"text\": 5, \"label\": 1}\n");
  EXPECT_THAT(error_of(path, {}), HasSubstr(path + ":1: field \"text\" is not a string"));
}

TEST(FairnessData, LabelValuesAndTheThreshold) {
  TempDir dir;
  const std::string path = dir / "x.csv";
  write_text(path,
             "Text,Label\n"
             "a,BAD\nb,NOT_BAD\nc,True\nd,False\ne,true\nf,false\ng,toxic\nh,1\ni,0\n"
             "j,0.5\nk,0.49999\nl,0.83\nm, 0.6 \nn,1e-3\n");
  EXPECT_THAT(read_labelled(path, {}).labels, ElementsAre(1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0));
  LabelledFormat strict;
  strict.threshold = 0.8;
  EXPECT_THAT(read_labelled(path, strict).labels, ElementsAre(1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0));

  // Values of the user's own: anything else that is not a number is an error.
  write_text(path, "text,label\na,spam\nb,ham\nc,SPAM\n");
  LabelledFormat mine;
  mine.positive_values = {"spam"};
  mine.negative_values = {"ham"};
  EXPECT_THAT(
      error_of(path, mine),
      HasSubstr(path + ":4: field \"label\" is \"SPAM\": expected a positive value (spam), a negative "
                       "value (ham) or a number"));

  // Prediction input: no label column at all.
  write_text(path, "text\nunlabelled one\nunlabelled two\n");
  LabelledFormat none;
  none.label_field = "none";
  EXPECT_THAT(read_labelled(path, none).labels, ElementsAre(-1, -1));
}

TEST(FairnessData, IdentityColumnsAndTermsUnite) {
  TempDir dir;
  const std::string path = dir / "x.csv";
  write_text(path,
             "comment_text,target,male,muslim,psychiatric_or_mental_illness\n"
             "\"one\",0.1,0.5,0.0,\n"
             "\"two\",0.9,0.4,1,0.7\n"
             "\"the Muslims here\",0.0,,,\n");
  LabelledFormat format;
  format.identity_columns = {"male", "muslim", "psychiatric_or_mental_illness"};
  LabelledSet set = read_labelled(path, format);
  ASSERT_EQ(set.subgroups.size(), 3u);
  EXPECT_EQ(set.subgroups[0].attribute, "identity");
  EXPECT_THAT(subgroup(set, "male").member, ElementsAre(1, 0, 0));  // 0.5 is present, 0.4 and empty are not
  EXPECT_THAT(subgroup(set, "muslim").member, ElementsAre(0, 1, 0));
  EXPECT_THAT(subgroup(set, "psychiatric_or_mental_illness").member, ElementsAre(0, 1, 0));

  // With a term list: its groups (attributes from it), the columns joined to groups of the same name, and a
  // column it does not know as attribute "identity".
  format.identity_terms = kBundledTerms;
  set = read_labelled(path, format);
  const IdentityTerms terms = IdentityTerms::load(kBundledTerms);
  ASSERT_EQ(set.subgroups.size(), terms.groups().size() + 1);
  EXPECT_EQ(subgroup(set, "male").attribute, "gender");
  EXPECT_EQ(subgroup(set, "muslim").attribute, "religion");
  EXPECT_THAT(subgroup(set, "muslim").member, ElementsAre(0, 1, 1));  // column on row 2, text on row 3
  EXPECT_EQ(set.subgroups.back().name, "psychiatric_or_mental_illness");
  EXPECT_EQ(set.subgroups.back().attribute, "identity");
  for (const auto& s : set.subgroups) EXPECT_EQ(s.member.size(), 3u) << s.name;

  write_text(path, "comment_text,target,male\n\"one\",0.1,0.5\n\"two\",0.9,yes\n");
  format.identity_terms.clear();
  format.identity_columns = {"male"};
  EXPECT_THAT(error_of(path, format),
              HasSubstr(path + ":3: identity column \"male\" is \"yes\", not a number"));
  format.identity_columns = {"female"};
  EXPECT_THAT(
      error_of(path, format),
      HasSubstr(path + ":1: no identity field \"female\"; the fields are: comment_text, target, male"));
}

TEST(FairnessData, TermTaggingWordsPhrasesAndCase) {
  const IdentityTerms terms = IdentityTerms::load(kBundledTerms);
  EXPECT_THAT(group_names(terms, "GAY rights"), ElementsAre("gay"));
  EXPECT_THAT(group_names(terms, "the gays and the Lesbians"), ElementsAre("lesbian", "gay"));
  EXPECT_THAT(group_names(terms, "a Muslim's view"), ElementsAre("muslim"));
  EXPECT_THAT(group_names(terms, "a Muslim\xE2\x80\x99s view"), ElementsAre("muslim"));  // U+2019
  EXPECT_THAT(group_names(terms, "(christian)"), ElementsAre("christian"));
  EXPECT_THAT(group_names(terms, "Christianson and gayety are names, not groups"), ElementsAre());
  EXPECT_THAT(group_names(terms, "women and men"), ElementsAre("male", "female"));
  EXPECT_THAT(group_names(terms, "a non-binary person"), ElementsAre("nonbinary"));
  EXPECT_THAT(group_names(terms, "Middle  Eastern food"), ElementsAre("middle_eastern"));
  EXPECT_THAT(group_names(terms, "middle of the road"), ElementsAre());
  // The african-american rule: the longer phrase uses up its words.
  EXPECT_THAT(group_names(terms, "an African-American woman"), ElementsAre("female", "african_american"));
  EXPECT_THAT(group_names(terms, "African Americans"), ElementsAre("african_american"));
  EXPECT_THAT(group_names(terms, "african and american"), ElementsAre("african", "american"));
  EXPECT_THAT(group_names(terms, "an American african american"),
              ElementsAre("african_american", "american"));
  EXPECT_THAT(identity_words("Léa's CAFÉ, x-ray"), ElementsAre("léa", "s", "cafÉ", "x", "ray"));

  // Groups keep the file's order, not toml++'s sorted one.
  ASSERT_GE(terms.groups().size(), 2u);
  EXPECT_EQ(terms.groups()[0].name, "male");
  EXPECT_EQ(terms.groups()[0].attribute, "gender");
  EXPECT_EQ(terms.groups().back().name, "paralyzed");
}

TEST(FairnessData, TermFileErrorsNameTheLine) {
  EXPECT_THAT(terms_error_of("[religion]\nmuslim = [\"muslim\"\n"), HasSubstr("terms.toml:2:"));
  EXPECT_THAT(terms_error_of("[religion]\nmuslim = [\"muslim\"]\n\n[ethnicity]\narab = [\"Muslim\"]\n"),
              HasSubstr("terms.toml:5:9: term \"Muslim\" is already in group 'muslim' at terms.toml:2:11"));
  EXPECT_THAT(terms_error_of("[a]\nx = [\"one\"]\n[b]\nx = [\"two\"]\n"),
              HasSubstr("terms.toml:4:1: group 'x' is already in attribute 'a'"));
  EXPECT_THAT(terms_error_of("religion = \"muslim\"\n"),
              HasSubstr("terms.toml:1:1: 'religion' must be a table"));
  EXPECT_THAT(terms_error_of("[religion]\nmuslim = \"muslim\"\n"),
              HasSubstr("terms.toml:2:1: [religion] muslim must be a non-empty list of terms"));
  EXPECT_THAT(terms_error_of("[religion]\nmuslim = [\"muslim\", 3]\n"),
              HasSubstr("terms.toml:2:21: [religion] muslim: each term must be a string"));
  EXPECT_THAT(terms_error_of("[religion]\nmuslim = [\"--\"]\n"), HasSubstr("has no letters or digits"));
  EXPECT_THAT(terms_error_of(""), HasSubstr("terms.toml: no identity groups"));
}

TEST(FairnessData, ErrorsNameFileLineAndField) {
  TempDir dir;
  const std::string path = dir / "x.csv";
  write_text(path, "body,label\nhello,1\n");
  EXPECT_THAT(error_of(path, {}),
              HasSubstr(path + ":1: no text field (looked for text, comment, comment_text, "
                               "Text; name it with --text-field); the fields are: body, label"));
  LabelledFormat named;
  named.label_field = "toxicity";
  named.text_field = "body";
  EXPECT_THAT(error_of(path, named),
              HasSubstr(path + ":1: no label field \"toxicity\"; the fields are: body, label"));

  write_text(path, "text,label\nhello,1\n\"  \",0\n");
  EXPECT_THAT(error_of(path, {}), HasSubstr(path + ":3: field \"text\" is empty"));
  write_text(path, "text,label\nhello,1\nextra,1,2\n");
  EXPECT_THAT(error_of(path, {}), HasSubstr(path + ":3: 3 fields where the header has 2 (text, label)"));
  write_text(path, "text,label\nhello,1\n\"never closed,1\nmore\n");
  EXPECT_THAT(error_of(path, {}),
              HasSubstr(path + ":3: malformed CSV: the quoted field of the record starting "
                               "here never ends"));
  write_text(path, "text,label\nsay \"hi\" now,1\n");
  EXPECT_THAT(error_of(path, {}), HasSubstr(path + ":2: malformed CSV"));
  write_text(path, "text,label\nbad \xC3\x28 bytes,1\n");
  EXPECT_THAT(error_of(path, {}), HasSubstr(path + ":2: field \"text\" is not valid UTF-8"));
  write_text(path, "text,label\n");
  EXPECT_THAT(error_of(path, {}), HasSubstr(path + ": no records"));
  EXPECT_THAT(error_of(dir / "x.parquet", {}), HasSubstr("x.parquet: unsupported file type"));
  EXPECT_THAT(error_of(dir / "absent.csv", {}), HasSubstr("cannot open " + dir / "absent.csv"));
}

// The real madlibs: every sentence names exactly one identity (the you_occupation family none), and the
// counts by group and label agree with a count made in Python from the madlibs word list itself.
TEST(FairnessData, MadlibsGetOneGroupEach) {
  const char* env = std::getenv("TRIAD_SHARED_DATA");
  const std::string shared =
      env && *env ? std::string(env) : std::string(TRIAD_SOURCE_DIR) + "/../shared/data";
  const std::string madlibs = shared + "/conversationai/bias_madlibs_77k.csv";
  const std::string words = shared + "/conversationai/madlibs_words/adjectives_people.txt";
  if (!path_exists(madlibs) || !path_exists(words))
    GTEST_SKIP() << madlibs << " is absent (set TRIAD_SHARED_DATA to the shared data directory)";

  // Python's count: the one identity word of each row (longest first, so "african american" is one term).
  TempDir dir;
  write_text(dir / "count.py",
             "import csv, re, sys\n"
             "terms = [t for t in open(sys.argv[2]).read().split('\\n') if t]\n"
             "pattern = re.compile(r'\\b(' + '|'.join(sorted(terms, key=len, reverse=True)) + r')\\b')\n"
             "counts = {}\n"
             "for row in csv.DictReader(open(sys.argv[1], newline='')):\n"
             "    found = pattern.findall(row['Text'].lower())\n"
             "    assert len(found) <= 1 and (not found) == (row['Template'] == 'you_occupation'), row\n"
             "    key = (found[0] if found else '-', int(row['Label'] == 'BAD'))\n"
             "    counts[key] = counts.get(key, 0) + 1\n"
             "for (term, label), n in sorted(counts.items()):\n"
             "    print(f'{term}\\t{label}\\t{n}')\n");
  const auto python = testing::run_command("python3 " + dir / "count.py" + " " + madlibs + " " + words);
  ASSERT_EQ(python.exit_code, 0) << python.err;

  LabelledFormat format;
  format.identity_terms = kBundledTerms;
  const LabelledSet set = read_labelled(madlibs, format);
  const IdentityTerms terms = IdentityTerms::load(kBundledTerms);
  ASSERT_EQ(set.size(), 76564u);

  std::map<std::pair<int, int>, int> ours;  // (group or -1, label) -> rows
  for (size_t i = 0; i < set.size(); ++i) {
    int groups = 0, group = -1;
    for (size_t g = 0; g < set.subgroups.size(); ++g) {
      if (set.subgroups[g].member[i]) ++groups, group = static_cast<int>(g);
    }
    ASSERT_LE(groups, 1) << set.ids[i] << ": " << set.texts[i];
    ++ours[{group, set.labels[i]}];
  }

  std::map<std::pair<int, int>, int> theirs;
  std::istringstream lines(python.out);
  std::string term;
  int label = 0, count = 0, rows = 0;
  std::vector<int> terms_of_group(terms.groups().size());
  while (lines >> std::ws && std::getline(lines, term, '\t') && lines >> label >> count) {
    int group = -1;
    if (term != "-") {
      const std::vector<int> tagged = terms.tag(term);
      ASSERT_EQ(tagged.size(), 1u) << "madlibs term \"" << term << "\" is in " << tagged.size() << " groups";
      group = tagged[0];
      if (label == 1) ++terms_of_group[group];
    }
    theirs[{group, label}] += count;
    rows += count;
  }
  EXPECT_EQ(rows, 76564);
  EXPECT_EQ(ours, theirs);
  EXPECT_EQ((ours[{-1, 0}] + ours[{-1, 1}]), 864);  // you_occupation
  int madlibs_terms = 0;
  for (int n : terms_of_group) madlibs_terms += n;
  EXPECT_EQ(madlibs_terms, 50);  // every word of adjectives_people.txt, each in one group
}

// The conversationai directory of the shared data, or "" when absent.
std::string conversationai_dir() {
  const char* env = std::getenv("TRIAD_SHARED_DATA");
  const std::string shared =
      (env && *env ? std::string(env) : std::string(TRIAD_SOURCE_DIR) + "/../shared/data") +
      "/conversationai";
  return path_exists(shared + "/bias_madlibs_77k.csv") ? shared : "";
}

// Runs bench/fairness/make_sets into dir/sets with `options`; returns its sets.json.
nlohmann::json make_fairness_sets(const TempDir& dir, const std::string& shared, const std::string& options) {
  const auto made = testing::run_command("/usr/bin/python3 " + std::string(TRIAD_SOURCE_DIR) +
                                         "/bench/fairness/make_sets --out " + dir / "sets" + " --shared " +
                                         shared + " " + options);
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return nlohmann::json::parse(read_file(dir / "sets/sets.json"));
}

// Every identity group of `set` has >= 100 rows, >= 50 of each class (the families split had 10 per term).
void expect_rows_for_every_group(const LabelledSet& set, const std::string& file) {
  for (const auto& group : set.subgroups) {
    int positives = 0, negatives = 0;
    for (size_t i = 0; i < set.size(); ++i) {
      if (group.member[i]) ++(set.labels[i] == 1 ? positives : negatives);
    }
    EXPECT_GE(positives + negatives, 100) << file << ": " << group.name;
    EXPECT_GE(std::min(positives, negatives), 50) << file << ": " << group.name;
  }
}

const std::pair<const char*, const char*> kSplitFiles[] = {
    {"train.csv", "train"}, {"dev_templates.csv", "dev"}, {"test_templates.csv", "test"}};

// bench/fairness/make_sets --split words: held-out words. Read back with triad's own reader and tagging:
// no row of a split holds another split's word, and every identity group has >= 100 dev and test rows of
// both classes.
TEST(FairnessData, WordSplitHoldsOutWordsWithRowsForEveryGroup) {
  const std::string shared = conversationai_dir();
  if (shared.empty()) GTEST_SKIP() << "conversationai data is absent (set TRIAD_SHARED_DATA)";
  TempDir dir;
  const nlohmann::json manifest = make_fairness_sets(dir, shared, "--split words");

  std::map<std::string, std::string> split_of;  // word -> train, dev or test
  for (const auto& [kind, sets] : manifest["words"].items()) {
    for (const auto& [split, classes] : sets.items()) {
      EXPECT_EQ(classes["toxic"].size(), classes["non_toxic"].size()) << kind << " " << split;
      for (const auto& label : {"toxic", "non_toxic"}) {
        for (const auto& word : classes[label])
          EXPECT_TRUE(split_of.emplace(word.get<std::string>(), split).second) << word << " in two splits";
      }
    }
  }
  ASSERT_EQ(split_of.size(), 32u + 8u);  // the madlibs' adjectives and verbs

  LabelledFormat format;
  format.identity_terms = kBundledTerms;
  for (const auto& [file, split] : kSplitFiles) {
    const LabelledSet set = read_labelled(dir / ("sets/" + std::string(file)), format);
    for (size_t i = 0; i < set.size(); ++i) {
      std::string word;
      for (const char c : set.texts[i] + " ") {
        if (std::isalnum(static_cast<unsigned char>(c))) {
          word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else if (!word.empty()) {
          const auto found = split_of.find(word);
          if (found != split_of.end()) {
            EXPECT_EQ(found->second, split) << file << ": " << set.texts[i];
          }
          word.clear();
        }
      }
    }
    if (std::string(split) != "train") expect_rows_for_every_group(set, file);
  }
}

// make_sets --split names (the default): name_adj's 45 names in three disjoint sets; train holds only train
// names' rows of name_adj; dev and test only their own names' name_adj rows, and between them each row of the
// other families exactly once; every identity group has >= 100 dev and test rows of both classes.
TEST(FairnessData, NameSplitHoldsOutNamesWithRowsForEveryGroup) {
  const std::string shared = conversationai_dir();
  if (shared.empty()) GTEST_SKIP() << "conversationai data is absent (set TRIAD_SHARED_DATA)";
  TempDir dir;
  const nlohmann::json manifest = make_fairness_sets(dir, shared, "");

  std::map<std::string, std::string> split_of;  // name -> train, dev or test
  for (const auto& [split, names] : manifest["names"].items()) {
    EXPECT_GE(names.size(), 10u) << split;
    for (const auto& name : names)
      EXPECT_TRUE(split_of.emplace(name.get<std::string>(), split).second) << name << " in two splits";
  }
  ASSERT_EQ(split_of.size(), 45u);  // name_adj's names

  LabelledFormat format;
  format.identity_terms = kBundledTerms;
  format.id_field = "id";                 // FAMILY:LINE
  std::map<std::string, int> other_rows;  // id of a row of another family -> how many splits hold it
  for (const auto& [file, split] : kSplitFiles) {
    const LabelledSet set = read_labelled(dir / ("sets/" + std::string(file)), format);
    size_t name_rows = 0;
    for (size_t i = 0; i < set.size(); ++i) {
      if (set.ids[i].rfind("name_adj:", 0) != 0) {
        EXPECT_NE(std::string(split), "train") << set.ids[i];
        ++other_rows[set.ids[i]];
        continue;
      }
      ++name_rows;
      const std::string name = set.texts[i].substr(0, set.texts[i].find(" is "));
      const auto found = split_of.find(name);
      ASSERT_NE(found, split_of.end()) << file << ": " << set.texts[i];
      EXPECT_EQ(found->second, split) << file << ": " << set.texts[i];
    }
    EXPECT_GT(name_rows, 1000u) << file;
    if (std::string(split) != "train") expect_rows_for_every_group(set, file);
  }
  EXPECT_EQ(other_rows.size(), 76564u - 72000u);  // every row of the families other than name_adj
  for (const auto& [id, splits] : other_rows) EXPECT_EQ(splits, 1) << id << " in " << splits << " splits";
}

}  // namespace
}  // namespace triad::fairness
