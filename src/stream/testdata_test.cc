// Runs the data-driven cases in src/stream/testdata/*.test, one test per file.
//
// Format. A case starts with "=== <name>" and runs to the next "===" or the end of the file;
// lines starting with '#' outside queries are comments. Inside a case:
//
//   policy late=<s|none> ooo=<s> adjust|drop   optional; default late=none ooo=0 adjust
//   limits <field>=<n> …                       optional: StreamLimits fields (max_collect,
//                                              max_analytic_events, max_apply_rows,
//                                              max_distinct, max_buffered_events,
//                                              max_open_groups, max_substreams,
//                                              max_match_partials, max_match_keys)
//   partitions <n>                             optional: every input has n partitions
//   <query lines>                              up to the first "--- " line
//   --- input [<name>]                         events, one per line, in arrival order:
//   [@<time>] [<input>] [%<p>] {json}          <time> is ISO 8601 or HH:MM:SS[.f] (on
//                                              2026-01-01, UTC); without it, the previous
//                                              event's arrival (first: 00:00:00); <input>
//                                              defaults to the section's name, else "input";
//                                              <p>: the partition (default 0)
//   --- reference <name>                       reference data rows, one JSON object per line
//   {json}                                     (the query is parsed with <name> as reference
//                                              data, loaded before the events)
//   --- expect <target>                        the rows of that target as a multiset, one
//   {json}                                     JSON object per line (numbers compare with a
//                                              relative tolerance of 1e-9); a target with no
//                                              section must produce nothing
//   --- stats dropped=<n> adjusted=<n> bad=<n> [schema=<n>]
//                                              optional: the engine's counters
//   --- error <syntax|unknown_function|invalid|limit>
//   <substring of the message>                 the query must fail to parse
//   --- run error                              the run must fail with kLimitExceeded (at a
//   <substring of the message>                 Push or at Flush); no rows are compared
// Queries may use ${repeat:N:text} for N copies of text (limit tests).
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/strings.h"
#include "query/errc.h"
#include "stream/stream_query.h"

namespace orrery::stream {
namespace {

namespace json = boost::json;

struct Event {
  Micros arrival;
  uint32_t partition = 0;
  std::string input;
  json::object body;
  int line;
};

struct Case {
  std::string name;
  int line = 0;
  EventTimePolicy policy;
  StreamLimits limits;
  uint32_t partitions = 1;
  std::string query;
  std::vector<Event> events;
  std::map<std::string, std::vector<json::object>> references;
  std::map<std::string, std::vector<json::value>> expect;
  std::optional<std::string> error_code;
  std::string error_text;
  std::optional<std::string> run_error;  // `--- run error`: a substring of the Push/Flush error
  std::optional<std::string> stats;
};

Micros ParseTime(const std::string& s) {
  std::string full = s.find('-') == std::string::npos ? "2026-01-01T" + s + "Z" : s;
  auto t = ParseDateTime(full);
  if (!t) ADD_FAILURE() << "bad time " << s;
  return t.value_or(0);
}

bool SameJson(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) {
    double x = a.is_double()  ? a.get_double()
               : a.is_int64() ? static_cast<double>(a.get_int64())
                              : static_cast<double>(a.get_uint64());
    double y = b.is_double()  ? b.get_double()
               : b.is_int64() ? static_cast<double>(b.get_int64())
                              : static_cast<double>(b.get_uint64());
    return x == y || std::fabs(x - y) <= 1e-9 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_object()) {
    const auto& o = a.get_object();
    const auto& p = b.get_object();
    if (o.size() != p.size()) return false;
    for (const auto& kv : o) {
      auto it = p.find(kv.key());
      if (it == p.end() || !SameJson(kv.value(), it->value())) return false;
    }
    return true;
  }
  if (a.is_array()) {
    const auto& x = a.get_array();
    const auto& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!SameJson(x[i], y[i])) return false;
    }
    return true;
  }
  return a == b;
}

std::vector<Case> ReadCases(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<Case> cases;
  std::string line;
  int n = 0;
  enum { kNone, kQuery, kInput, kReference, kExpect, kError, kRunError } mode = kNone;
  std::string section_arg;
  Micros last_arrival = ParseTime("00:00:00");
  while (std::getline(in, line)) {
    ++n;
    if (line.rfind("=== ", 0) == 0) {
      cases.emplace_back();
      cases.back().name = line.substr(4);
      cases.back().line = n;
      cases.back().policy.late_arrival_tolerance = std::nullopt;
      mode = kQuery;
      last_arrival = ParseTime("00:00:00");
      continue;
    }
    if (cases.empty()) continue;
    Case& c = cases.back();
    if (line.rfind("--- ", 0) == 0) {
      std::istringstream ss(line.substr(4));
      std::string kind;
      ss >> kind;
      section_arg.clear();
      ss >> section_arg;
      if (kind == "input" || kind == "reference" || kind == "expect") {
        std::string rest;
        std::getline(ss, rest);
        section_arg += rest;  // a name may have spaces ("--- expect my output")
      }
      if (kind == "input") {
        mode = kInput;
      } else if (kind == "reference") {
        mode = kReference;
        c.references[section_arg];
      } else if (kind == "expect") {
        mode = kExpect;
        c.expect[section_arg];
      } else if (kind == "run") {
        mode = kRunError;
      } else if (kind == "error") {
        mode = kError;
        c.error_code = section_arg;
      } else if (kind == "stats") {
        c.stats = line.substr(4 + 6);
        mode = kNone;
      } else {
        ADD_FAILURE() << file << ":" << n << ": unknown section " << kind;
      }
      continue;
    }
    if (mode != kQuery && (line.empty() || line[0] == '#')) continue;
    switch (mode) {
      case kQuery:
        if (c.query.empty() && line.rfind("policy ", 0) == 0) {
          std::istringstream ss(line.substr(7));
          std::string w;
          while (ss >> w) {
            if (w == "drop")
              c.policy.action = EventTimePolicy::Action::kDrop;
            else if (w == "adjust")
              c.policy.action = EventTimePolicy::Action::kAdjust;
            else if (w == "late=none")
              c.policy.late_arrival_tolerance = std::nullopt;
            else if (w.rfind("late=", 0) == 0)
              c.policy.late_arrival_tolerance =
                  static_cast<Micros>(std::stod(w.substr(5)) * kSecond);
            else if (w.rfind("ooo=", 0) == 0)
              c.policy.out_of_order_tolerance =
                  static_cast<Micros>(std::stod(w.substr(4)) * kSecond);
            else
              ADD_FAILURE() << file << ":" << n << ": bad policy " << w;
          }
          break;
        }
        if (c.query.empty() && line.rfind("limits ", 0) == 0) {
          std::istringstream ss(line.substr(7));
          std::string w;
          while (ss >> w) {
            size_t eq = w.find('=');
            std::string field = w.substr(0, eq);
            size_t value = eq == std::string::npos ? 0 : std::stoul(w.substr(eq + 1));
            if (field == "max_collect")
              c.limits.max_collect = value;
            else if (field == "max_analytic_events")
              c.limits.max_analytic_events = value;
            else if (field == "max_apply_rows")
              c.limits.max_apply_rows = value;
            else if (field == "max_distinct")
              c.limits.max_distinct = value;
            else if (field == "max_buffered_events")
              c.limits.max_buffered_events = value;
            else if (field == "max_open_groups")
              c.limits.max_open_groups = value;
            else if (field == "max_reference_rows")
              c.limits.max_reference_rows = value;
            else if (field == "max_substreams")
              c.limits.max_substreams = value;
            else if (field == "max_match_partials")
              c.limits.max_match_partials = value;
            else if (field == "max_match_keys")
              c.limits.max_match_keys = value;
            else
              ADD_FAILURE() << file << ":" << n << ": bad limit " << w;
          }
          break;
        }
        if (c.query.empty() && line.rfind("partitions ", 0) == 0) {
          c.partitions = static_cast<uint32_t>(std::stoul(line.substr(11)));
          break;
        }
        if (c.query.empty() && (line.empty() || line[0] == '#')) break;
        c.query += line + "\n";
        break;
      case kInput: {
        size_t brace = line.find('{');
        if (brace == std::string::npos) {
          ADD_FAILURE() << file << ":" << n << ": expected an event";
          break;
        }
        Event ev;
        ev.input = section_arg.empty() ? "input" : section_arg;
        std::istringstream ss(line.substr(0, brace));
        std::string w;
        while (ss >> w) {
          if (w[0] == '@')
            last_arrival = ParseTime(w.substr(1));
          else if (w[0] == '%')
            ev.partition = static_cast<uint32_t>(std::stoul(w.substr(1)));
          else
            ev.input = w;
        }
        ev.arrival = last_arrival;
        ev.line = n;
        boost::system::error_code ec;
        json::value v = json::parse(line.substr(brace), ec);
        if (ec || !v.is_object()) {
          ADD_FAILURE() << file << ":" << n << ": bad event JSON";
          break;
        }
        ev.body = std::move(v.get_object());
        c.events.push_back(std::move(ev));
        break;
      }
      case kReference: {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (ec || !v.is_object()) {
          ADD_FAILURE() << file << ":" << n << ": bad reference row";
          break;
        }
        c.references[section_arg].push_back(std::move(v.get_object()));
        break;
      }
      case kExpect: {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (ec) {
          ADD_FAILURE() << file << ":" << n << ": bad expected JSON";
          break;
        }
        c.expect[section_arg].push_back(std::move(v));
        break;
      }
      case kError:
        c.error_text = line;
        mode = kNone;
        break;
      case kRunError:
        c.run_error = line;
        mode = kNone;
        break;
      case kNone:
        ADD_FAILURE() << file << ":" << n << ": unexpected line";
        break;
    }
  }
  return cases;
}

std::string CodeName(const Error& e) {
  if (e.Is(query::Errc::kSyntax)) return "syntax";
  if (e.Is(query::Errc::kUnknownFunction)) return "unknown_function";
  if (e.Is(query::Errc::kInvalidQuery)) return "invalid";
  if (e.Is(query::Errc::kLimitExceeded)) return "limit";
  return "other";
}

// ${repeat:N:text} → N copies of text.
std::string Expand(std::string s) {
  const std::string open = "${repeat:";
  size_t at;
  while ((at = s.find(open)) != std::string::npos) {
    size_t colon = s.find(':', at + open.size());
    size_t close = s.find('}', colon);
    size_t n = std::stoul(s.substr(at + open.size(), colon - at - open.size()));
    std::string text = s.substr(colon + 1, close - colon - 1), out;
    for (size_t i = 0; i < n; ++i)
      out += text;
    s.replace(at, close - at + 1, out);
  }
  return s;
}

void RunCase(const Case& c, const std::string& where) {
  SCOPED_TRACE(where + " (" + c.name + ")");
  std::vector<std::string> reference_names;
  for (const auto& [name, rows] : c.references)
    reference_names.push_back(name);
  auto q = StreamQuery::Parse(Expand(c.query), c.limits, reference_names);
  if (c.error_code) {
    ASSERT_FALSE(q.has_value()) << "expected an error, the query parsed";
    EXPECT_EQ(CodeName(q.error()), *c.error_code) << q.error().message();
    EXPECT_NE(q.error().message().find(c.error_text), std::string::npos)
        << "message: " << q.error().message() << "\nexpected to contain: " << c.error_text;
    return;
  }
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine engine(*q, c.policy, c.partitions);
  for (const auto& [name, rows] : c.references) {
    auto r = engine.SetReference(name, rows);
    ASSERT_TRUE(r.has_value()) << r.error().message();
  }
  bool run_failed = false;
  std::string run_message;
  for (const auto& ev : c.events) {
    auto r = engine.Push(ev.input, ev.partition, ev.body, ev.arrival);
    if (!r.has_value() && c.run_error) {
      EXPECT_TRUE(r.error().Is(query::Errc::kLimitExceeded)) << r.error().message();
      run_failed = true;
      run_message = r.error().message();
      break;
    }
    ASSERT_TRUE(r.has_value()) << "line " << ev.line << ": " << r.error().message();
  }
  auto r = engine.Flush();
  if (c.run_error) {
    // The run must fail (a runtime bound): at a Push or at Flush.
    ASSERT_TRUE(run_failed || !r.has_value()) << "expected the run to fail";
    std::string message = run_failed ? run_message : r.error().message();
    EXPECT_NE(message.find(*c.run_error), std::string::npos)
        << "message: " << message << "\nexpected to contain: " << *c.run_error;
    return;
  }
  ASSERT_TRUE(r.has_value()) << r.error().message();
  auto outputs = engine.TakeOutputs();
  for (const auto& [target, rows] : outputs) {
    if (!c.expect.contains(target)) {
      std::string shown;
      for (const auto& row : rows)
        shown += json::serialize(row.row) + "\n";
      ADD_FAILURE() << "unexpected rows in '" << target << "':\n" << shown;
    }
  }
  for (const auto& [target, expected] : c.expect) {
    std::vector<json::value> actual;
    if (auto it = outputs.find(target); it != outputs.end()) {
      for (const auto& row : it->second)
        actual.emplace_back(row.row);
    }
    std::string shown;
    for (const auto& a : actual)
      shown += json::serialize(a) + "\n";
    std::vector<bool> used(actual.size());
    bool ok = actual.size() == expected.size();
    for (const auto& e : expected) {
      bool found = false;
      for (size_t i = 0; i < actual.size() && !found; ++i) {
        if (!used[i] && SameJson(e, actual[i])) used[i] = found = true;
      }
      ok = ok && found;
    }
    EXPECT_TRUE(ok) << "target '" << target << "': got\n" << shown;
  }
  if (c.stats) {
    const EngineStats& s = engine.stats();
    std::string got = "dropped=" + std::to_string(s.dropped_late) +
                      " adjusted=" + std::to_string(s.adjusted) +
                      " bad=" + std::to_string(s.dropped_bad_timestamp);
    if (c.stats->find("schema=") != std::string::npos)
      got += " schema=" + std::to_string(s.dropped_schema);
    EXPECT_EQ(std::string(strings::Trim(*c.stats)), got);
  }
}

std::filesystem::path TestdataDir() {
  const char* src = std::getenv("ORRERY_SOURCE_DIR");
  return std::filesystem::path(src ? src : ".") / "src/stream/testdata";
}

class StreamTestdata : public testing::TestWithParam<std::string> {};

TEST_P(StreamTestdata, Cases) {
  auto file = TestdataDir() / GetParam();
  auto cases = ReadCases(file);
  ASSERT_FALSE(cases.empty()) << file;
  for (const auto& c : cases)
    RunCase(c, GetParam() + ":" + std::to_string(c.line));
}

std::vector<std::string> Files() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(TestdataDir())) {
    if (e.path().extension() == ".test") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

INSTANTIATE_TEST_SUITE_P(Files, StreamTestdata, testing::ValuesIn(Files()),
                         [](const testing::TestParamInfo<std::string>& param) {
                           std::string n = param.param.substr(0, param.param.find('.'));
                           for (char& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace orrery::stream
