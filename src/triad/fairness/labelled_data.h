#pragma once
// Labelled text for classification and fairness: a text, a binary label and the identity subgroups each
// example belongs to. Read from JSONL (one object per line), CSV or TSV (RFC 4180 quoting through libcsv:
// quoted fields may hold delimiters, doubled quotes and newlines; the first record names the columns).
// Subgroups come from identity columns (the Civil Comments / Jigsaw schema: one fractional column per group,
// >= 0.5 meaning present), from tagging the text with an identity-term list (fairness/identity_terms.h), or
// both (a group present in either is present). Every error names the file, the physical line where the
// record starts, and the field.

#include <string>
#include <vector>

#include "triad/fairness/subgroups.h"

namespace triad::fairness {

struct LabelledFormat {
  std::string text_field;   // "" = the first of text, comment, comment_text, Text
  std::string label_field;  // "" = the first of label, toxic, is_toxic, target, Label; "none" = no labels
  std::vector<std::string> positive_values = {"1", "true", "True", "BAD", "toxic"};  // strings meaning 1
  std::vector<std::string> negative_values = {"0", "false", "False", "NOT_BAD", "non-toxic"};  // meaning 0
  double threshold = 0.5;  // any other number: >= threshold is positive (Jigsaw's fractional target)
  std::string id_field;    // "" = "<file>:<line>"
  std::vector<std::string> identity_columns;  // fractional, >= 0.5 present; empty or null = absent
  std::string identity_terms;                 // path of a term list to tag groups from the text
};

struct LabelledSet {
  std::string source;  // the path read
  std::vector<std::string> ids, texts;
  std::vector<int> labels;          // 0/1, or -1 when read with label_field "none" (prediction input)
  std::vector<Subgroup> subgroups;  // the term list's groups in its order, then identity columns not in it
  size_t size() const { return texts.size(); }
};

// The labelled examples in `path` (.jsonl, .csv or .tsv). Fails naming file:line and field on: a missing
// column (listing those there are), an empty text, a label that is neither a positive nor a negative value
// nor a number, an identity column that is not a number, a malformed record.
LabelledSet read_labelled(const std::string& path, const LabelledFormat& format);

}  // namespace triad::fairness
