#include "triad/fairness/labelled_data.h"

#include <csv.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>

#include "triad/core/error.h"
#include "triad/fairness/identity_terms.h"

namespace triad::fairness {

namespace {

const std::vector<std::string> kTextCandidates = {"text", "comment", "comment_text", "Text"};
const std::vector<std::string> kLabelCandidates = {"label", "toxic", "is_toxic", "target", "Label"};

std::string_view trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::optional<double> parse_number(std::string_view s) {
  s = trim(s);
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value))
    return std::nullopt;
  return value;
}

// One field of one record as the file holds it. CSV and TSV fields are always strings.
struct Value {
  enum class Kind { kMissing, kNull, kString, kNumber, kBool };
  Kind kind = Kind::kMissing;
  std::string text;  // kString: the string; kNumber: the number as written
  double number = 0;
  bool boolean = false;
};

// Turns records into a LabelledSet: picks the fields on the first record and checks every value.
class Builder {
 public:
  Builder(const std::string& path, const LabelledFormat& format) : path_(path), format_(format) {
    out_.source = path;
    if (!format.identity_terms.empty()) {
      terms_.emplace(IdentityTerms::load(format.identity_terms));
      for (const auto& group : terms_->groups()) out_.subgroups.push_back({group.name, group.attribute, {}});
    }
    for (const std::string& column : format.identity_columns) {
      const int group = terms_ ? terms_->find_group(column) : -1;
      for (size_t k = 0; k < column_subgroup_.size(); ++k) {
        if (format.identity_columns[k] == column)
          fail_usage("identity column \"{}\" is listed twice", column);
      }
      if (group >= 0) {
        column_subgroup_.push_back(group);
      } else {
        column_subgroup_.push_back(static_cast<int>(out_.subgroups.size()));
        out_.subgroups.push_back({column, "identity", {}});
      }
    }
  }

  // The fields each record must have, chosen from the columns of the first record (at `line`).
  std::vector<std::string> resolve(const std::vector<std::string>& columns, uint64_t line) {
    const std::string at = fmt::format("{}:{}", path_, line);
    auto pick = [&](const std::string& given, const std::vector<std::string>& candidates, const char* role,
                    const char* flag) {
      if (!given.empty()) {
        if (std::find(columns.begin(), columns.end(), given) == columns.end())
          fail_usage("{}: no {} field \"{}\"; the fields are: {}", at, role, given, join(columns));
        return given;
      }
      for (const auto& name : candidates) {
        if (std::find(columns.begin(), columns.end(), name) != columns.end()) return name;
      }
      fail_usage("{}: no {} field (looked for {}; name it with {}); the fields are: {}", at, role,
                 join(candidates), flag, join(columns));
    };
    names_.clear();
    names_.push_back(pick(format_.text_field, kTextCandidates, "text", "--text-field"));
    has_label_ = format_.label_field != "none";
    if (has_label_) names_.push_back(pick(format_.label_field, kLabelCandidates, "label", "--label-field"));
    has_id_ = !format_.id_field.empty();
    if (has_id_) names_.push_back(pick(format_.id_field, {}, "id", "--id-field"));
    for (const auto& column : format_.identity_columns) names_.push_back(pick(column, {}, "identity", ""));
    return names_;
  }

  // One record: `values` in the order resolve() returned; `columns` lists the record's fields for errors.
  void add(const std::vector<Value>& values, uint64_t line,
           const std::function<std::vector<std::string>()>& columns) {
    const std::string at = fmt::format("{}:{}", path_, line);
    for (size_t k = 0; k < names_.size(); ++k) {
      if (values[k].kind == Value::Kind::kMissing)
        fail("{}: no field \"{}\"; the fields are: {}", at, names_[k], join(columns()));
    }
    size_t k = 0;
    const Value& text = values[k++];
    if (text.kind != Value::Kind::kString) fail("{}: field \"{}\" is not a string", at, names_[0]);
    if (trim(text.text).empty()) fail("{}: field \"{}\" is empty", at, names_[0]);
    if (!simdjson::validate_utf8(text.text.data(), text.text.size()))
      fail("{}: field \"{}\" is not valid UTF-8", at, names_[0]);
    int label = -1;
    if (has_label_) {
      label = parse_label(values[k], at, names_[k]);
      ++k;
    }
    std::string id = fmt::format("{}:{}", path_, line);
    if (has_id_) {
      const Value& v = values[k];
      if (v.kind != Value::Kind::kString && v.kind != Value::Kind::kNumber)
        fail("{}: field \"{}\" (the id) is not a string or a number", at, names_[k]);
      id = v.text;
      ++k;
    }
    for (auto& subgroup : out_.subgroups) subgroup.member.push_back(0);
    for (size_t c = 0; c < column_subgroup_.size(); ++c, ++k) {
      if (identity_present(values[k], at, names_[k])) out_.subgroups[column_subgroup_[c]].member.back() = 1;
    }
    if (terms_) {
      for (int group : terms_->tag(text.text)) out_.subgroups[group].member.back() = 1;
    }
    out_.ids.push_back(std::move(id));
    out_.texts.push_back(text.text);
    out_.labels.push_back(label);
  }

  LabelledSet finish() {
    if (out_.texts.empty()) fail("{}: no records", path_);
    return std::move(out_);
  }

 private:
  int parse_label(const Value& v, const std::string& at, const std::string& field) const {
    switch (v.kind) {
      case Value::Kind::kBool:
        return v.boolean ? 1 : 0;
      case Value::Kind::kNumber:
        return v.number >= format_.threshold ? 1 : 0;
      case Value::Kind::kString: {
        const std::string_view s = trim(v.text);
        for (const auto& p : format_.positive_values) {
          if (s == p) return 1;
        }
        for (const auto& n : format_.negative_values) {
          if (s == n) return 0;
        }
        if (auto number = parse_number(s)) return *number >= format_.threshold ? 1 : 0;
        fail("{}: field \"{}\" is \"{}\": expected a positive value ({}), a negative value ({}) or a number",
             at, field, v.text, join(format_.positive_values), join(format_.negative_values));
      }
      default:
        fail("{}: field \"{}\" is null: expected a label", at, field);
    }
  }

  // Civil Comments leaves identity columns empty on the rows nobody annotated: empty or null is absent.
  static bool identity_present(const Value& v, const std::string& at, const std::string& field) {
    switch (v.kind) {
      case Value::Kind::kNull:
        return false;
      case Value::Kind::kBool:
        return v.boolean;
      case Value::Kind::kNumber:
        return v.number >= 0.5;
      case Value::Kind::kString: {
        if (trim(v.text).empty()) return false;
        if (auto number = parse_number(v.text)) return *number >= 0.5;
        fail("{}: identity column \"{}\" is \"{}\", not a number", at, field, v.text);
      }
      default:
        fail("{}: identity column \"{}\" is missing", at, field);
    }
  }

  std::string path_;
  const LabelledFormat& format_;
  std::optional<IdentityTerms> terms_;
  std::vector<int> column_subgroup_;  // per identity column, its subgroup
  std::vector<std::string> names_;
  bool has_label_ = false, has_id_ = false;
  LabelledSet out_;
};

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// Physical lines of a file, with their numbers from 1.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : file_(std::fopen(path.c_str(), "rb")) {
    if (!file_) fail("cannot open {}: {}", path, errno_text());
  }
  ~LineReader() { std::free(buffer_); }
  // The next line including its '\n' (none on a last line without one); false at the end.
  bool next(std::string_view* line) {
    const ssize_t n = ::getline(&buffer_, &capacity_, file_.get());
    if (n <= 0) return false;
    ++number_;
    *line = std::string_view(buffer_, static_cast<size_t>(n));
    return true;
  }
  uint64_t number() const { return number_; }

 private:
  std::unique_ptr<FILE, FileCloser> file_;
  char* buffer_ = nullptr;
  size_t capacity_ = 0;
  uint64_t number_ = 0;
};

// libcsv calls back from C: the callbacks collect fields and hand whole records on, and an exception from
// the handler is held here (never thrown through C frames) and rethrown once csv_parse returns.
struct CsvState {
  std::string field;
  std::vector<std::string> fields;
  uint64_t record_line = 0;
  std::function<void(std::vector<std::string>&, uint64_t)> on_record;
  std::exception_ptr error;
};

void csv_field(void* data, size_t length, void* state_ptr) {
  auto* state = static_cast<CsvState*>(state_ptr);
  state->fields.emplace_back(data ? static_cast<const char*>(data) : "", data ? length : 0);
}

void csv_record_end(int, void* state_ptr) {
  auto* state = static_cast<CsvState*>(state_ptr);
  if (!state->error) {
    try {
      state->on_record(state->fields, state->record_line);
    } catch (...) {
      state->error = std::current_exception();
    }
  }
  state->fields.clear();
}

int never_space(unsigned char) {
  return 0;
}

// libcsv's state between records (ROW_NOT_BEGUN in libcsv.c): nothing of a record has been read yet.
constexpr int kCsvRowNotBegun = 0;

void read_delimited(const std::string& path, unsigned char delimiter, Builder* builder) {
  const char* kind = delimiter == '\t' ? "TSV" : "CSV";
  std::vector<std::string> header;
  std::vector<int> column_of;  // per resolved field, its column
  std::vector<Value> values;
  CsvState state;
  state.on_record = [&](std::vector<std::string>& fields, uint64_t line) {
    if (header.empty()) {
      header = std::move(fields);
      if (!header[0].empty() && header[0].rfind("\xEF\xBB\xBF", 0) == 0) header[0].erase(0, 3);  // a BOM
      for (const auto& name : builder->resolve(header, line)) {
        column_of.push_back(static_cast<int>(std::find(header.begin(), header.end(), name) - header.begin()));
      }
      values.resize(column_of.size());
      return;
    }
    if (fields.size() != header.size())
      fail("{}:{}: {} fields where the header has {} ({})", path, line, fields.size(), header.size(),
           join(header));
    for (size_t k = 0; k < column_of.size(); ++k) {
      values[k].kind = Value::Kind::kString;
      values[k].text = fields[column_of[k]];
    }
    builder->add(values, line, [&] { return header; });
  };

  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI) != 0) fail("{}: cannot start the CSV parser", path);
  std::unique_ptr<csv_parser, void (*)(csv_parser*)> owned(&parser, csv_free);
  csv_set_delim(&parser, delimiter);
  csv_set_space_func(&parser, never_space);  // RFC 4180: spaces are part of a field

  // Fed one physical line at a time, so the line where each record starts is known: the line fed while the
  // parser was between records.
  LineReader lines(path);
  std::string_view line;
  while (lines.next(&line)) {
    if (parser.pstate == kCsvRowNotBegun) state.record_line = lines.number();
    const size_t used = csv_parse(&parser, line.data(), line.size(), csv_field, csv_record_end, &state);
    if (state.error) std::rethrow_exception(state.error);
    if (used != line.size()) {
      fail("{}:{}: malformed {} ({}; a quote inside a field must be doubled and the field quoted)", path,
           lines.number(), kind, csv_strerror(csv_error(&parser)));
    }
  }
  if (csv_fini(&parser, csv_field, csv_record_end, &state) != 0) {
    fail("{}:{}: malformed {}: the quoted field of the record starting here never ends", path,
         state.record_line, kind);
  }
  if (state.error) std::rethrow_exception(state.error);
  if (header.empty()) fail("{}: empty file (expected a header naming the columns)", path);
}

Value json_value(simdjson::dom::element element) {
  Value v;
  switch (element.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
      v.kind = Value::Kind::kNull;
      break;
    case simdjson::dom::element_type::BOOL:
      v.kind = Value::Kind::kBool;
      v.boolean = element.get_bool().value_unsafe();
      v.text = v.boolean ? "true" : "false";
      break;
    case simdjson::dom::element_type::STRING:
      v.kind = Value::Kind::kString;
      v.text = std::string(element.get_string().value_unsafe());
      break;
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      v.kind = Value::Kind::kNumber;
      v.number = element.get_double().value_unsafe();
      v.text = simdjson::minify(element);
      break;
    default:  // arrays and objects: no field of ours holds one
      v.kind = Value::Kind::kNull;
      v.text = simdjson::minify(element);
      break;
  }
  return v;
}

void read_jsonl(const std::string& path, Builder* builder) {
  simdjson::dom::parser parser;
  std::string padded;
  std::vector<std::string> names;
  std::vector<Value> values;
  LineReader lines(path);
  std::string_view line;
  while (lines.next(&line)) {
    if (trim(line).empty()) continue;
    const std::string at = fmt::format("{}:{}", path, lines.number());
    padded.assign(line);
    const size_t length = padded.size();
    padded.resize(length + simdjson::SIMDJSON_PADDING);
    simdjson::dom::element root;
    if (auto error = parser.parse(padded.data(), length, false).get(root))
      fail("{}: malformed JSON ({})", at, simdjson::error_message(error));
    simdjson::dom::object object;
    if (root.get(object)) fail("{}: expected a JSON object", at);
    auto keys = [&] {
      std::vector<std::string> out;
      for (auto field : object) out.emplace_back(field.key);
      return out;
    };
    if (names.empty()) {
      names = builder->resolve(keys(), lines.number());
      values.resize(names.size());
    }
    for (size_t k = 0; k < names.size(); ++k) {
      simdjson::dom::element element;
      values[k] = object.at_key(names[k]).get(element) ? Value{} : json_value(element);
    }
    builder->add(values, lines.number(), keys);
  }
}

}  // namespace

LabelledSet read_labelled(const std::string& path, const LabelledFormat& format) {
  const bool jsonl = path.ends_with(".jsonl"), csv = path.ends_with(".csv"), tsv = path.ends_with(".tsv");
  if (!jsonl && !csv && !tsv) fail_usage("{}: unsupported file type (expected .jsonl, .csv or .tsv)", path);
  Builder builder(path, format);
  if (jsonl) {
    read_jsonl(path, &builder);
  } else {
    read_delimited(path, tsv ? '\t' : ',', &builder);
  }
  return builder.finish();
}

}  // namespace triad::fairness
