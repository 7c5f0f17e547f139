// Runs the data-driven cases in src/query/testdata/*.test, one test per file.
//
// Format. Blank lines separate cases; lines starting with '#' between cases are comments.
//
//   documents                 the documents later cases run over, one JSON object per line,
//   {"deviceId":"d1",…}       up to a blank line (replacing the previous set);
//   documents @fleet.jsonl    or read from that file in testdata/
//
//   messages                  the messages later `route` cases run over, the same way; each
//   {"id":"m1",…}             {"id": …, "system": {name: value…}, "app": [[name, value]…] or
//                             {name: value…}, "body": any JSON, "twin": {…}}, all optional
//                             (no "body" / "twin": the input has none)
//
//   <directive> [flags]       a case: the input (one or more lines) up to "----", then the
//   <input…>                  expected output up to a blank line or the end of the file
//   ----
//   <expected…>
//
// Directives:
//   lex          one token per expected line: "line:column kind detail" (kinds: ident,
//                qident, string, number, or the operator itself; the end token is omitted);
//                flag `routing` lexes with the routing dialect's options
//   parse        the expression (IoT Hub options; flag `routing`: the routing dialect's)
//                rendered by ToString
//   eval         the expression's value on the first document (or on {}): JSON or `undefined`
//   condition    the ids of the documents a HubCondition matches, in order: deviceId, then
//                "/moduleId" and "#jobId" when present; flag `modules` or `jobs` picks the
//                collection
//   query        the rows of a HubQuery over the documents, one JSON value per line (Apply on
//                each document up to TOP, or one Aggregation over all of them)
//   route        the ids of the messages a RouteCondition matches, in order; flag `value`:
//                instead, the condition's value on the first message (JSON or `undefined`);
//                flag `uses`: instead, what it reads ("body twin", "body", "twin" or "none")
// A directive followed by `error <code>` expects failure instead: <code> is one of syntax,
// unknown_function, invalid, limit, and the expected line is a substring of the message.
//
// Inputs may use ${repeat:N:text} for N copies of text (limit tests).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "query/errc.h"
#include "query/iothub/hub_query.h"
#include "query/iothub/statement.h"  // HubExprOptions, for `parse` cases
#include "query/lexer.h"
#include "query/parser.h"
#include "query/routing/plan.h"  // RouteExprOptions, for `lex` and `parse` cases
#include "query/routing/route_condition.h"

namespace orrery::query {
namespace {

namespace fs = std::filesystem;

fs::path TestdataDir() {
  const char* root = std::getenv("ORRERY_SOURCE_DIR");
  return fs::path(root != nullptr ? root : ".") / "src" / "query" / "testdata";
}

std::vector<std::string> TestFiles() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(TestdataDir(), ec)) {
    if (entry.path().extension() == ".test") out.push_back(entry.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> ReadLines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// ${repeat:N:text}
std::string Expand(std::string s) {
  const std::string open = "${repeat:";
  size_t at;
  while ((at = s.find(open)) != std::string::npos) {
    size_t colon = s.find(':', at + open.size());
    size_t close = s.find('}', colon);
    if (colon == std::string::npos || close == std::string::npos) break;
    int n = std::stoi(s.substr(at + open.size(), colon - at - open.size()));
    std::string text = s.substr(colon + 1, close - colon - 1);
    std::string repeated;
    for (int i = 0; i < n; ++i)
      repeated += text;
    s.replace(at, close + 1 - at, repeated);
  }
  return s;
}

std::string CodeName(const Error& e) {
  if (e.Is(Errc::kSyntax)) return "syntax";
  if (e.Is(Errc::kUnknownFunction)) return "unknown_function";
  if (e.Is(Errc::kInvalidQuery)) return "invalid";
  if (e.Is(Errc::kLimitExceeded)) return "limit";
  return "other(" + e.ToString() + ")";
}

std::string FormatToken(const Token& t) {
  std::string out = std::to_string(t.pos.line) + ":" + std::to_string(t.pos.column) + " ";
  switch (t.kind) {
    case TokenKind::kIdentifier:
      return out + "ident " + std::string(t.text);
    case TokenKind::kQuotedIdentifier:
      return out + "qident " + t.value;
    case TokenKind::kString:
      return out + "string " + boost::json::serialize(boost::json::string(t.value));
    case TokenKind::kNumber:
      if (t.number.is_int64()) return out + "number int " + std::to_string(t.number.get_int64());
      if (t.number.is_uint64()) {
        return out + "number uint " + std::to_string(t.number.get_uint64());
      }
      return out + "number double " + boost::json::serialize(t.number);
    default:
      return out + std::string(t.text);
  }
}

std::string DocId(const boost::json::object& doc) {
  auto str = [&](std::string_view k) -> std::string {
    auto* v = doc.if_contains(k);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  std::string id = str("deviceId");
  if (doc.contains("moduleId")) id += "/" + str("moduleId");
  if (doc.contains("jobId")) id += "#" + str("jobId");
  return id;
}

// A message of a `messages` block, and the RouteInput that views it.
struct Message {
  std::string id;
  std::vector<AppProperty> app;
  boost::json::object system;  // names → strings
  std::optional<boost::json::value> body;
  std::optional<boost::json::object> twin;

  RouteInput Input() const {
    RouteInput in;
    in.app_properties = app;
    for (const auto& [name, value] : system) {
      EXPECT_TRUE(in.system.SetByName(name, value.as_string()))
          << "unknown system property " << name;
    }
    if (body) in.body = &*body;
    if (twin) in.twin = &*twin;
    return in;
  }
};

// Parses a `messages` line; failures are test failures.
std::optional<Message> ParseMessage(const std::string& line) {
  boost::system::error_code ec;
  auto v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  Message m;
  for (const auto& [key, value] : o) {
    if (key == "id" && value.is_string()) {
      m.id = value.get_string();
    } else if (key == "system" && value.is_object()) {
      for (const auto& [name, text] : value.get_object()) {
        if (!text.is_string()) return std::nullopt;
      }
      m.system = value.get_object();
    } else if (key == "app" && value.is_object()) {
      for (const auto& [name, text] : value.get_object()) {
        if (!text.is_string()) return std::nullopt;
        m.app.emplace_back(name, text.get_string());
      }
    } else if (key == "app" && value.is_array()) {
      for (const auto& pair : value.get_array()) {
        const auto* kv = pair.if_array();
        if (kv == nullptr || kv->size() != 2 || !(*kv)[0].is_string() || !(*kv)[1].is_string()) {
          return std::nullopt;
        }
        m.app.emplace_back((*kv)[0].get_string(), (*kv)[1].get_string());
      }
    } else if (key == "body") {
      m.body = value;
    } else if (key == "twin" && value.is_object()) {
      m.twin = value.get_object();
    } else {
      return std::nullopt;
    }
  }
  return m;
}

struct Case {
  int line = 0;
  std::string directive;
  std::vector<std::string> flags;
  std::string input;
  std::vector<std::string> expected;
  bool expect_error = false;
  std::string error_code;
};

class Runner {
 public:
  explicit Runner(std::string file) : file_(std::move(file)) {}

  void Run() {
    std::vector<std::string> lines = ReadLines(TestdataDir() / file_);
    ASSERT_FALSE(lines.empty()) << "empty or missing " << file_;
    size_t i = 0;
    while (i < lines.size()) {
      const std::string& line = lines[i];
      if (line.empty() || line[0] == '#') {
        ++i;
        continue;
      }
      int case_line = static_cast<int>(i + 1);
      std::istringstream words(line);
      std::string directive;
      words >> directive;
      if (directive == "documents" || directive == "messages") {
        std::string source;
        words >> source;
        ++i;
        std::vector<std::string> doc_lines;
        if (!source.empty() && source[0] == '@') {
          doc_lines = ReadLines(TestdataDir() / source.substr(1));
        } else {
          for (; i < lines.size() && !lines[i].empty(); ++i)
            doc_lines.push_back(lines[i]);
        }
        if (directive == "documents") {
          docs_.clear();
        } else {
          messages_.clear();
        }
        for (const std::string& d : doc_lines) {
          if (d.empty() || d[0] == '#') continue;
          if (directive == "messages") {
            auto m = ParseMessage(d);
            ASSERT_TRUE(m) << file_ << ":" << case_line << ": bad message " << d;
            messages_.push_back(std::move(*m));
            continue;
          }
          boost::system::error_code ec;
          auto v = boost::json::parse(d, ec);
          ASSERT_FALSE(ec || !v.is_object()) << file_ << ":" << case_line << ": bad document " << d;
          docs_.push_back(v.as_object());
        }
        continue;
      }
      Case c;
      c.line = case_line;
      c.directive = directive;
      for (std::string w; words >> w;)
        c.flags.push_back(w);
      if (!c.flags.empty() && c.flags[0] == "error") {
        c.expect_error = true;
        ASSERT_EQ(c.flags.size(), 2u) << Where(c) << ": `error` needs a code";
        c.error_code = c.flags[1];
        c.flags.clear();
      }
      ++i;
      std::string input;
      for (; i < lines.size() && lines[i] != "----"; ++i) {
        ASSERT_FALSE(lines[i].empty() && input.empty()) << Where(c) << ": missing input";
        if (!input.empty()) input += "\n";
        input += lines[i];
      }
      ASSERT_LT(i, lines.size()) << Where(c) << ": missing ----";
      ++i;
      for (; i < lines.size() && !lines[i].empty(); ++i)
        c.expected.push_back(lines[i]);
      c.input = Expand(input);
      RunCase(c);
      ++cases_;
    }
    EXPECT_GT(cases_, 0) << file_ << " has no cases";
    ::testing::Test::RecordProperty("cases", cases_);
  }

 private:
  std::string Where(const Case& c) const { return file_ + ":" + std::to_string(c.line); }

  // Checks a failed result against the case; false when the case expected success.
  template <class T>
  bool CheckError(const Case& c, const Result<T>& r) {
    if (!c.expect_error) {
      EXPECT_TRUE(r) << Where(c) << ": " << c.input << "\n  failed: " << r.error().ToString();
      return !r.has_error();
    }
    if (r) {
      ADD_FAILURE() << Where(c) << ": expected a " << c.error_code << " error for: " << c.input;
      return false;
    }
    EXPECT_EQ(CodeName(r.error()), c.error_code) << Where(c) << ": " << r.error().message();
    EXPECT_EQ(c.expected.size(), 1u) << Where(c) << ": an error case expects one message line";
    if (!c.expected.empty()) {
      EXPECT_NE(r.error().message().find(c.expected[0]), std::string::npos)
          << Where(c) << ": message \"" << r.error().message() << "\" lacks \"" << c.expected[0]
          << "\"";
    }
    return false;
  }

  void ExpectLines(const Case& c, const std::vector<std::string>& actual) {
    std::string want, got;
    for (const auto& l : c.expected)
      want += l + "\n";
    for (const auto& l : actual)
      got += l + "\n";
    EXPECT_EQ(got, want) << Where(c) << ": " << c.input;
  }

  // Compares JSON lines by value (member order aside), showing both sides when they differ.
  void ExpectJson(const Case& c, const std::vector<std::string>& actual) {
    bool same = actual.size() == c.expected.size();
    for (size_t k = 0; same && k < actual.size(); ++k) {
      if (actual[k] == "undefined" || c.expected[k] == "undefined") {
        same = actual[k] == c.expected[k];
        continue;
      }
      boost::system::error_code ec;
      auto want = boost::json::parse(c.expected[k], ec);
      if (ec) {
        ADD_FAILURE() << Where(c) << ": expected line is not JSON: " << c.expected[k];
        return;
      }
      same = want == boost::json::parse(actual[k]);
    }
    if (!same) ExpectLines(c, actual);
  }

  void RunCase(const Case& c) {
    if (c.directive == "lex") {
      auto r = HasFlag(c, "routing") ? Lex(c.input, RouteLimits(), RouteExprOptions().lex)
                                     : Lex(c.input);
      if (!CheckError(c, r)) return;
      std::vector<std::string> actual;
      for (const Token& t : *r) {
        if (t.kind != TokenKind::kEnd) actual.push_back(FormatToken(t));
      }
      ExpectLines(c, actual);
    } else if (c.directive == "parse") {
      auto r =
          ParseExpression(c.input, HasFlag(c, "routing") ? RouteExprOptions() : HubExprOptions());
      if (!CheckError(c, r)) return;
      ExpectLines(c, {ToString(**r)});
    } else if (c.directive == "eval") {
      auto r = ParseHubCondition(c.input);
      if (!CheckError(c, r)) return;
      boost::json::object empty;
      Value v = r->Evaluate(docs_.empty() ? empty : docs_[0]);
      ExpectJson(c, {v.defined() ? boost::json::serialize(v.get()) : "undefined"});
    } else if (c.directive == "condition") {
      HubCollection from = HubCollection::kDevices;
      for (const auto& f : c.flags) {
        if (f == "modules") from = HubCollection::kModules;
        if (f == "jobs") from = HubCollection::kJobs;
      }
      auto r = ParseHubCondition(c.input, from);
      if (!CheckError(c, r)) return;
      std::vector<std::string> actual;
      for (const auto& d : docs_) {
        if (r->Matches(d)) actual.push_back(DocId(d));
      }
      ExpectLines(c, actual);
    } else if (c.directive == "query") {
      auto r = ParseHubQuery(c.input);
      if (!CheckError(c, r)) return;
      std::vector<std::string> actual;
      if (r->aggregate()) {
        auto agg = r->StartAggregation();
        for (const auto& d : docs_)
          agg.Add(d);
        for (const auto& row : agg.Finish())
          actual.push_back(boost::json::serialize(row));
      } else {
        for (const auto& d : docs_) {
          if (r->top() && actual.size() >= *r->top()) break;
          if (auto row = r->Apply(d)) actual.push_back(boost::json::serialize(*row));
        }
      }
      ExpectJson(c, actual);
    } else if (c.directive == "route") {
      RunRoute(c);
    } else {
      ADD_FAILURE() << Where(c) << ": unknown directive " << c.directive;
    }
  }

  static bool HasFlag(const Case& c, std::string_view flag) {
    return std::find(c.flags.begin(), c.flags.end(), flag) != c.flags.end();
  }

  void RunRoute(const Case& c) {
    auto r = ParseRouteCondition(c.input);
    if (!CheckError(c, r)) return;
    if (HasFlag(c, "uses")) {
      std::string uses =
          std::string(r->uses_body() ? "body " : "") + (r->uses_twin() ? "twin" : "");
      if (uses.empty()) uses = "none";
      if (uses.back() == ' ') uses.pop_back();
      ExpectLines(c, {uses});
    } else if (HasFlag(c, "value")) {
      Message none;
      const Message& m = messages_.empty() ? none : messages_[0];
      Value v = r->Evaluate(m.Input());
      EXPECT_EQ(IsTrue(v), r->Matches(m.Input())) << Where(c);
      ExpectJson(c, {v.defined() ? boost::json::serialize(v.get()) : "undefined"});
    } else {
      std::vector<std::string> actual;
      for (const Message& m : messages_) {
        RouteInput in = m.Input();
        bool matches = r->Matches(in);
        EXPECT_EQ(matches, IsTrue(r->Evaluate(in))) << Where(c) << ": " << m.id;
        // What a condition does not read must not change its answer.
        if (!r->uses_body()) in.body = nullptr;
        if (!r->uses_twin()) in.twin = nullptr;
        EXPECT_EQ(matches, r->Matches(in)) << Where(c) << ": " << m.id << " (body/twin dropped)";
        if (matches) actual.push_back(m.id);
      }
      ExpectLines(c, actual);
    }
  }

  std::string file_;
  std::vector<boost::json::object> docs_;
  std::vector<Message> messages_;
  int cases_ = 0;
};

class TestdataTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TestdataTest, Cases) {
  Runner(GetParam()).Run();
}

INSTANTIATE_TEST_SUITE_P(Files, TestdataTest, ::testing::ValuesIn(TestFiles()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param.substr(0, param.param.find('.'));
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

// The runner must find the files: an empty directory would pass vacuously.
TEST(TestdataFiles, Present) {
  EXPECT_GE(TestFiles().size(), 5u) << "no .test files in " << TestdataDir();
}

}  // namespace
}  // namespace orrery::query
