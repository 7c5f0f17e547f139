#include "stream/local_run.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

#include "base/config.h"
#include "base/files.h"
#include "base/strings.h"
#include "query/evaluator.h"
#include "query/query_error.h"
#include "stream/plan.h"

namespace orrery::stream {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

Error ParseError(std::string_view name, int line, std::string_view what) {
  return Error(BaseErrc::kParse, fmt::format("{}:{}: {}", name, line, what));
}
Error ParseError(std::string_view name, int line, size_t column, std::string_view what) {
  return Error(BaseErrc::kParse, fmt::format("{}:{}:{}: {}", name, line, column, what));
}

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

void StripBom(std::string& s) {
  if (s.starts_with("\xEF\xBB\xBF")) s.erase(0, 3);
}

// ---- JSON: one object per line ----

class JsonLinesReader final : public EventReader {
 public:
  // `prefix`: what was read from `in` already (blank lines, a BOM, spaces).
  JsonLinesReader(std::unique_ptr<std::istream> in, std::string name, std::string_view prefix)
      : in_(std::move(in)), name_(std::move(name)) {
    size_t nl = prefix.rfind('\n');
    line_ = static_cast<int>(std::count(prefix.begin(), prefix.end(), '\n'));
    pending_ = std::string(nl == std::string_view::npos ? prefix : prefix.substr(nl + 1));
    StripBom(pending_);
  }

  Result<bool> Next(json::object& out) override {
    while (std::getline(*in_, text_)) {
      ++line_;
      if (!pending_.empty()) text_ = std::exchange(pending_, {}) + text_;
      if (line_ == 1) StripBom(text_);
      if (IsBlank(text_)) continue;
      parser_.reset();
      boost::system::error_code ec;
      size_t n = parser_.write_some(text_.data(), text_.size(), ec);
      if (!ec) {
        std::string_view rest = std::string_view(text_).substr(n);
        if (!IsBlank(rest)) {
          return ParseError(name_, line_, n + 1 + rest.find_first_not_of(" \t\r"),
                            "one JSON object per line (found more after it)");
        }
      }
      if (ec) return ParseError(name_, line_, n + 1, ec.message());
      json::value v = parser_.release();
      if (!v.is_object()) return ParseError(name_, line_, "an event must be a JSON object");
      out = std::move(v.get_object());
      return true;
    }
    if (in_->bad()) return ParseError(name_, line_ + 1, "read error");
    return false;
  }
  int line() const override { return line_; }

 private:
  std::unique_ptr<std::istream> in_;
  std::string name_;
  std::string text_;
  std::string pending_;
  json::parser parser_;
  int line_ = 0;
};

// ---- JSON: an array of objects (read whole) ----

class JsonArrayReader final : public EventReader {
 public:
  // `too_large`: the text was cut at kMaxJsonArrayBytes.
  JsonArrayReader(std::string text, std::string name, bool too_large)
      : text_(std::move(text)), name_(std::move(name)), too_large_(too_large) {
    StripBom(text_);
  }

  Result<bool> Next(json::object& out) override {
    if (too_large_) {
      return ParseError(name_, 1,
                        fmt::format("a JSON array larger than {} MiB (write one event per line)",
                                    kMaxJsonArrayBytes >> 20));
    }
    if (done_) return false;
    SkipSpace();
    if (!opened_) {
      // The caller saw '['.
      ++at_;
      opened_ = true;
      SkipSpace();
      if (Peek() == ']') return Close();
    } else {
      if (Peek() == ']') return Close();
      if (Peek() != ',') return Fail("expected ',' or ']' between the array's events");
      ++at_;
      SkipSpace();
    }
    line_ = line_at_;
    parser_.reset();
    boost::system::error_code ec;
    size_t n = parser_.write_some(text_.data() + at_, text_.size() - at_, ec);
    Advance(n);
    if (ec) return Fail(ec.message());
    json::value v = parser_.release();
    if (!v.is_object()) return ParseError(name_, line_, "an event must be a JSON object");
    out = std::move(v.get_object());
    return true;
  }
  int line() const override { return line_; }

 private:
  char Peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }
  void Advance(size_t n) {
    for (size_t i = 0; i < n && at_ < text_.size(); ++i, ++at_) {
      if (text_[at_] == '\n') ++line_at_;
    }
  }
  void SkipSpace() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\r' || text_[at_] == '\n')) {
      Advance(1);
    }
  }
  Result<bool> Close() {
    ++at_;
    SkipSpace();
    done_ = true;
    if (at_ < text_.size()) return Fail("unexpected text after the array");
    return false;
  }
  Error Fail(std::string_view what) const { return ParseError(name_, line_at_, what); }

  std::string text_;
  std::string name_;
  json::parser parser_;
  size_t at_ = 0;
  int line_at_ = 1;  // the line of text_[at_]
  int line_ = 1;
  bool too_large_ = false;
  bool opened_ = false;
  bool done_ = false;
};

// ---- CSV ----

// "12" → 12, "-1.5e3" → -1500.0, "true" → true, "null" → null; nullopt: a string.
std::optional<json::value> CsvScalar(std::string_view s) {
  if (s == "true") return json::value(true);
  if (s == "false") return json::value(false);
  if (s == "null" || s.empty()) return json::value(nullptr);
  std::string_view body = s;
  if (body.front() == '+' || body.front() == '-') body.remove_prefix(1);
  if (body.empty()) return std::nullopt;
  size_t i = 0;
  auto digits = [&] {
    size_t from = i;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9')
      ++i;
    return i - from;
  };
  size_t whole = digits();
  bool integral = true;
  size_t frac = 0;
  if (i < body.size() && body[i] == '.') {
    ++i;
    frac = digits();
    integral = false;
  }
  if (whole + frac == 0) return std::nullopt;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    if (digits() == 0) return std::nullopt;
    integral = false;
  }
  if (i != body.size()) return std::nullopt;
  std::string_view text = s.front() == '+' ? s.substr(1) : s;
  if (integral) {
    int64_t v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return json::value(v);
  }
  double d = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), d);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return std::nullopt;
  return json::value(d);
}

class CsvReader final : public EventReader {
 public:
  CsvReader(std::unique_ptr<std::istream> in, std::string name)
      : in_(std::move(in)), name_(std::move(name)) {}

  Result<bool> Next(json::object& out) override {
    if (!header_read_) {
      header_read_ = true;
      ORRERY_ASSIGN_OR_RETURN(bool got, ReadRecord());
      if (!got) return false;
      if (!fields_.empty()) StripBom(fields_[0].text);
      for (const auto& f : fields_) {
        for (const auto& h : header_) {
          if (h == f.text) return ParseError(name_, line_, "duplicate column '" + f.text + "'");
        }
        header_.push_back(f.text);
      }
    }
    ORRERY_ASSIGN_OR_RETURN(bool got, ReadRecord());
    if (!got) return false;
    if (fields_.size() > header_.size()) {
      return ParseError(name_, line_,
                        fmt::format("{} fields, but the header names {} columns", fields_.size(),
                                    header_.size()));
    }
    out.clear();
    out.reserve(fields_.size());
    for (size_t i = 0; i < fields_.size(); ++i) {
      Field& f = fields_[i];
      std::optional<json::value> v;
      if (!f.quoted) v = CsvScalar(f.text);
      out.emplace(header_[i], v ? std::move(*v) : json::value(json::string(f.text)));
    }
    return true;
  }
  int line() const override { return line_; }

 private:
  struct Field {
    std::string text;
    bool quoted = false;
  };

  int Get() { return in_->rdbuf()->sbumpc(); }
  int PeekChar() { return in_->rdbuf()->sgetc(); }

  // One record into fields_ (blank lines skipped); false at the end of the input.
  Result<bool> ReadRecord() {
    fields_.clear();
    constexpr int kEof = std::char_traits<char>::eof();
    while (true) {
      int c = PeekChar();
      if (c == kEof) return false;
      line_ = next_line_;
      if (c == '\n' || c == '\r') {  // a blank line
        Get();
        if (c == '\r' && PeekChar() == '\n') Get();
        ++next_line_;
        continue;
      }
      break;
    }
    Field f;
    enum { kStart, kPlain, kQuoted, kAfterQuote } state = kStart;
    while (true) {
      int c = Get();
      if (c == kEof) {
        if (state == kQuoted) return ParseError(name_, line_, "a quoted field is not closed");
        fields_.push_back(std::move(f));
        return true;
      }
      char ch = static_cast<char>(c);
      if (state == kQuoted) {
        if (ch == '"') {
          if (PeekChar() == '"') {
            Get();
            f.text += '"';
          } else {
            state = kAfterQuote;
          }
        } else {
          if (ch == '\n') ++next_line_;
          f.text += ch;
        }
        continue;
      }
      if (ch == ',' || ch == '\n' || ch == '\r') {
        fields_.push_back(std::move(f));
        f = Field{};
        state = kStart;
        if (ch == ',') continue;
        if (ch == '\r' && PeekChar() == '\n') Get();
        ++next_line_;
        return true;
      }
      if (state == kAfterQuote) {
        return ParseError(name_, next_line_,
                          "unexpected text after a closing quote (write \"\" for a quote)");
      }
      if (state == kStart && ch == '"') {
        state = kQuoted;
        f.quoted = true;
        continue;
      }
      state = kPlain;
      f.text += ch;
    }
  }

  std::unique_ptr<std::istream> in_;
  std::string name_;
  std::vector<std::string> header_;
  std::vector<Field> fields_;
  bool header_read_ = false;
  int line_ = 1;       // where the last record starts
  int next_line_ = 1;  // the line of the next character
};

// ---- running ----

struct Source {
  std::string name;
  std::unique_ptr<EventReader> reader;
  const query::BoundExpr* timestamp_by = nullptr;  // the one TIMESTAMP BY reading this input
  json::object head;
  bool has_head = false;
  Micros key = 0;  // the head's event time, or kMinTime when unknown
};

constexpr Micros kMinTime = std::numeric_limits<Micros>::min();

Micros EventTime(const Source& s) {
  if (s.timestamp_by == nullptr) return kMinTime;
  query::Root root(s.head);
  query::Value v = query::Evaluate(*s.timestamp_by, std::span<const query::Root>(&root, 1));
  if (!v.defined() || !v->is_string()) return kMinTime;
  return ParseDateTime(v->get_string()).value_or(kMinTime);
}

Status Refill(Source& s) {
  ORRERY_ASSIGN_OR_RETURN(s.has_head, s.reader->Next(s.head));
  if (s.has_head) s.key = EventTime(s);
  return {};
}

Status Drain(Engine& engine, LocalRunIo& io, LocalRunSummary& summary) {
  for (auto& [target, rows] : engine.TakeOutputs()) {
    summary.rows[target] += rows.size();
    if (io.write && !rows.empty()) ORRERY_TRY(io.write(target, rows));
  }
  return {};
}

Micros WallClockMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Plural(uint64_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

}  // namespace

Result<LocalInput> ParseNamedFile(std::string_view flag) {
  auto [name, file] = strings::SplitOnce(flag, '=');
  if (!file || name.empty() || file->empty()) {
    return Error(BaseErrc::kInvalidArgument,
                 fmt::format("'{}': expected NAME=FILE (the query's input name, a file)", flag));
  }
  return LocalInput{std::string(name), fs::path(std::string(*file))};
}

Result<std::optional<Micros>> ParseTolerance(std::string_view text, bool allow_none) {
  if (allow_none && strings::IEquals(text, "none")) return std::optional<Micros>();
  auto ms = config::ParseDurationMs(text);
  if (!ms || *ms < 0) {
    return Error(BaseErrc::kInvalidArgument,
                 fmt::format("'{}' is not a duration (5s, 500ms, 2m, 1h{})", text,
                             allow_none ? ", none" : ""));
  }
  if (*ms > 21 * 86'400'000LL) {
    return Error(BaseErrc::kInvalidArgument,
                 fmt::format("'{}': a tolerance may be at most 21 days", text));
  }
  return std::optional<Micros>(*ms * 1000);
}

Result<std::unique_ptr<EventReader>> EventReader::Open(const fs::path& path) {
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in) {
    return Error(errno == ENOENT ? BaseErrc::kNotFound : BaseErrc::kIo,
                 fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  }
  bool csv = strings::IEquals(path.extension().string(), ".csv");
  return FromStream(std::move(in), path.string(), csv ? Format::kCsv : Format::kJson);
}

std::unique_ptr<EventReader> EventReader::FromStream(std::unique_ptr<std::istream> in,
                                                     std::string name, Format format) {
  if (format == Format::kCsv) return std::make_unique<CsvReader>(std::move(in), std::move(name));
  // An array when the first character other than white space (or a BOM) is '['.
  std::string prefix;
  int c;
  while ((c = in->rdbuf()->sgetc()) != std::char_traits<char>::eof()) {
    char ch = static_cast<char>(c);
    bool bom = prefix.size() < 3 && prefix.find_first_not_of("\xEF\xBB\xBF") == std::string::npos &&
               (static_cast<unsigned char>(ch) >= 0xBB);
    if (!bom && ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') break;
    prefix += ch;
    in->rdbuf()->sbumpc();
  }
  if (c != '[') return std::make_unique<JsonLinesReader>(std::move(in), std::move(name), prefix);
  std::string text = prefix;
  bool too_large = false;
  char buf[65536];
  while (in->read(buf, sizeof buf) || in->gcount() > 0) {
    text.append(buf, static_cast<size_t>(in->gcount()));
    if (text.size() > kMaxJsonArrayBytes) {
      too_large = true;
      text.clear();
      break;
    }
  }
  return std::make_unique<JsonArrayReader>(std::move(text), std::move(name), too_large);
}

std::unique_ptr<EventReader> EventReader::FromText(std::string_view text, std::string name,
                                                   Format format) {
  return FromStream(std::make_unique<std::istringstream>(std::string(text)), std::move(name),
                    format);
}

Result<LocalRunSummary> RunLocal(const StreamQuery& query, LocalRunIo io,
                                 const LocalRunOptions& options) {
  const internal::Plan& plan = *query.plan();
  LocalRunSummary summary;
  for (const auto& o : query.outputs())
    summary.rows[o] = 0;

  // Every input read by the query must be given, and nothing else.
  std::vector<Source> sources;
  for (auto& [name, reader] : io.inputs) {
    // A structured binding cannot be captured before C++20's P1091 (clang 14).
    const std::string& wanted = name;
    auto it = std::find_if(plan.inputs.begin(), plan.inputs.end(),
                           [&](const std::string& n) { return strings::IEquals(n, wanted); });
    if (it == plan.inputs.end()) {
      std::string known;
      for (const auto& n : plan.inputs)
        known += (known.empty() ? "" : ", ") + n;
      return Error(query::Errc::kInvalidQuery,
                   fmt::format("the query reads no input named '{}' (it reads: {})", name,
                               known.empty() ? "none" : known));
    }
    for (const auto& s : sources) {
      if (strings::IEquals(s.name, name)) {
        return Error(query::Errc::kInvalidQuery, fmt::format("input '{}' is given twice", name));
      }
    }
    Source s;
    s.name = *it;
    s.reader = std::move(reader);
    // The TIMESTAMP BY of this input, when every FROM reading it has the same one.
    size_t index = static_cast<size_t>(it - plan.inputs.begin());
    bool first = true;
    for (const auto& sel : plan.selects) {
      if (sel.input != static_cast<int>(index)) continue;
      const query::BoundExpr* ts = sel.timestamp_by ? &*sel.timestamp_by : nullptr;
      if (first) {
        s.timestamp_by = ts;
      } else if (s.timestamp_by != nullptr &&
                 (ts == nullptr || !query::SameExpr(*ts, *s.timestamp_by))) {
        s.timestamp_by = nullptr;
      }
      first = false;
    }
    sources.push_back(std::move(s));
  }
  for (const auto& n : plan.inputs) {
    bool given = std::any_of(sources.begin(), sources.end(),
                             [&](const Source& s) { return strings::IEquals(s.name, n); });
    if (!given) {
      return Error(query::Errc::kInvalidQuery,
                   fmt::format("the query reads input '{}': give it with --input {}=FILE", n, n));
    }
  }

  Engine engine(query, options.policy);
  for (auto& [name, reader] : io.references) {
    const auto& refs = query.references();
    const std::string& wanted = name;
    if (std::none_of(refs.begin(), refs.end(),
                     [&](const std::string& r) { return strings::IEquals(r, wanted); })) {
      return Error(query::Errc::kInvalidQuery,
                   fmt::format("the query joins no reference data named '{}'", name));
    }
    std::vector<json::object> rows;
    json::object row;
    while (true) {
      ORRERY_ASSIGN_OR_RETURN(bool more, reader->Next(row));
      if (!more) break;
      rows.push_back(std::move(row));
    }
    ORRERY_TRY(engine.SetReference(name, std::move(rows)));
  }
  for (const auto& r : query.references()) {
    bool given = std::any_of(io.references.begin(), io.references.end(),
                             [&](const auto& in) { return strings::IEquals(in.first, r); });
    if (!given) {
      return Error(query::Errc::kInvalidQuery,
                   fmt::format("the query joins reference data '{}': give it with --reference "
                               "{}=FILE",
                               r, r));
    }
  }
  for (auto& s : sources)
    ORRERY_TRY(Refill(s));
  Micros start = options.start.value_or(WallClockMicros());
  Micros arrival = kMinTime;
  while (true) {
    Source* next = nullptr;
    for (auto& s : sources) {
      if (s.has_head && (next == nullptr || s.key < next->key)) next = &s;
    }
    if (next == nullptr) break;
    if (next->key != kMinTime) {
      arrival = std::max(arrival, next->key);
    } else {
      arrival = arrival == kMinTime ? start : arrival + 1;
    }
    ORRERY_TRY(engine.Push(next->name, next->head, arrival));
    ++summary.events;
    ORRERY_TRY(Refill(*next));
    if (options.progress_every > 0 && summary.events % options.progress_every == 0) {
      ORRERY_TRY(Drain(engine, io, summary));
      if (io.progress) io.progress(summary.events);
    }
  }
  ORRERY_TRY(engine.Flush());
  ORRERY_TRY(Drain(engine, io, summary));
  summary.stats = engine.stats();
  return summary;
}

int RunLocalCommand(const LocalRunOptions& options, std::FILE* out, std::FILE* err) {
  auto fail = [&](int code, std::string_view message) {
    fmt::print(err, "orrery: {}\n", message);
    return code;
  };
  auto text = files::ReadFile(options.query_file, 1 << 20);
  if (!text) return fail(2, text.error().message());
  std::vector<std::string> reference_names;
  for (const auto& r : options.references)
    reference_names.push_back(r.name);
  auto query = StreamQuery::Parse(*text, {}, reference_names);
  if (!query)
    return fail(2, fmt::format("{}: {}", options.query_file.string(), query.error().message()));

  LocalRunIo io;
  for (const auto& in : options.inputs) {
    auto reader = EventReader::Open(in.path);
    if (!reader) return fail(2, reader.error().message());
    io.inputs.emplace_back(in.name, std::move(*reader));
  }
  for (const auto& in : options.references) {
    auto reader = EventReader::Open(in.path);
    if (!reader) return fail(2, reader.error().message());
    io.references.emplace_back(in.name, std::move(*reader));
  }

  // Outputs: every output of the query gets its file (empty when no rows come).
  bool to_stdout = options.out_dir == "-";
  std::map<std::string, std::FILE*> files;
  auto close_all = [&] {
    bool ok = true;
    for (auto& [name, f] : files)
      ok = std::fclose(f) == 0 && ok;
    files.clear();
    return ok;
  };
  if (!to_stdout) {
    if (auto st = files::EnsureDirectory(options.out_dir); !st)
      return fail(1, st.error().message());
    for (const auto& o : query->outputs()) {
      if (o.empty() || o == "." || o == ".." || o.find_first_of("/\\") != std::string::npos) {
        close_all();
        return fail(2, fmt::format("{}: output '{}' cannot be a file name",
                                   options.query_file.string(), o));
      }
      fs::path p = options.out_dir / (o + ".json");
      std::FILE* f = std::fopen(p.c_str(), "w");
      if (f == nullptr) {
        close_all();
        return fail(1, fmt::format("cannot write {}: {}", p.string(), std::strerror(errno)));
      }
      files[o] = f;
    }
  }
  bool several = query->outputs().size() > 1;
  std::string line;
  io.write = [&](const std::string& target, std::vector<OutputEvent>& rows) -> Status {
    std::FILE* f = to_stdout ? out : files.at(target);
    for (const auto& r : rows) {
      line.clear();
      if (to_stdout && several) line += target + " ";
      line += json::serialize(r.row);
      line += '\n';
      if (std::fwrite(line.data(), 1, line.size(), f) != line.size()) {
        return Error(BaseErrc::kIo, fmt::format("cannot write the rows of '{}': {}", target,
                                                std::strerror(errno)));
      }
    }
    return {};
  };
  io.progress = [&](uint64_t n) { fmt::print(err, "orrery: {} events…\n", n); };

  auto summary = RunLocal(*query, std::move(io), options);
  bool closed = close_all();
  if (!summary) {
    const Error& e = summary.error();
    bool usage = e.Is(BaseErrc::kParse) || e.Is(query::Errc::kInvalidQuery);
    return fail(usage ? 2 : 1, e.message());
  }
  if (!closed) return fail(1, fmt::format("cannot write the outputs: {}", std::strerror(errno)));
  std::string rows;
  for (const auto& [name, n] : summary->rows) {
    rows += fmt::format("{}{}: {}", rows.empty() ? "" : ", ",
                        to_stdout ? name : (options.out_dir / (name + ".json")).string(),
                        Plural(n, "row", "rows"));
  }
  const EngineStats& s = summary->stats;
  fmt::print(err, "orrery: {} → {}", Plural(summary->events, "event", "events"), rows);
  if (s.adjusted + s.dropped_late + s.dropped_bad_timestamp > 0) {
    fmt::print(err, " ({} adjusted, {} dropped as late, {} without a valid TIMESTAMP BY)",
               s.adjusted, s.dropped_late, s.dropped_bad_timestamp);
  }
  if (s.dropped_schema > 0) {
    fmt::print(err, " ({} not fitting CREATE TABLE, dropped)", s.dropped_schema);
  }
  fmt::print(err, "\n");
  return 0;
}

}  // namespace orrery::stream
