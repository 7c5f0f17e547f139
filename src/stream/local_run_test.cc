// The local run's readers (JSON arrays, JSON Lines, CSV) and its run function (merging
// inputs by event time, arrival times, outputs, errors).
#include "stream/local_run.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/error.h"
#include "query/errc.h"

namespace orrery::stream {
namespace {

namespace json = boost::json;
using Format = EventReader::Format;

// Every event of `text`, or the first error's message.
struct Read {
  std::vector<json::object> events;
  std::vector<int> lines;
  std::string error;
};

Read ReadAll(std::string_view text, Format format) {
  auto r = EventReader::FromText(text, "in", format);
  Read out;
  json::object ev;
  while (true) {
    auto more = r->Next(ev);
    if (!more) {
      out.error = more.error().message();
      break;
    }
    if (!*more) break;
    out.events.push_back(ev);
    out.lines.push_back(r->line());
  }
  return out;
}

TEST(EventReader, JsonLines) {
  auto r = ReadAll("{\"a\":1}\n\n  {\"a\":2, \"b\":[1,2]}\r\n{\"a\":3}", Format::kJson);
  EXPECT_EQ(r.error, "");
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[1], (json::object{{"a", 2}, {"b", json::array{1, 2}}}));
  EXPECT_EQ(r.lines, (std::vector<int>{1, 3, 4}));
  // Leading blank lines and a BOM are skipped, and lines still count.
  r = ReadAll("\xEF\xBB\xBF\n\n{\"a\":1}\n", Format::kJson);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.lines, (std::vector<int>{3}));
}

TEST(EventReader, JsonLinesErrorsNameTheLineAndColumn) {
  EXPECT_EQ(ReadAll("{\"a\":1}\n{\"a\":,}\n", Format::kJson).error, "in:2:6: syntax error");
  EXPECT_EQ(ReadAll("{\"a\":1}\n[1]\n", Format::kJson).error,
            "in:2: an event must be a JSON object");
  EXPECT_EQ(ReadAll("{\"a\":1} {\"b\":2}\n", Format::kJson).error,
            "in:1:9: one JSON object per line (found more after it)");
  EXPECT_NE(ReadAll("{\"a\":\n1}\n", Format::kJson).error.find("in:1:"), std::string::npos);
}

TEST(EventReader, JsonArray) {
  auto r = ReadAll("  [\n {\"a\":1},\n {\"a\":2}\n]\n", Format::kJson);
  EXPECT_EQ(r.error, "");
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.lines, (std::vector<int>{2, 3}));
  EXPECT_EQ(ReadAll("[]", Format::kJson).events.size(), 0u);
  EXPECT_EQ(ReadAll("[{\"a\":1},\n 2]", Format::kJson).error,
            "in:2: an event must be a JSON object");
  EXPECT_EQ(ReadAll("[{\"a\":1}\n {\"a\":2}]", Format::kJson).error,
            "in:2: expected ',' or ']' between the array's events");
  EXPECT_EQ(ReadAll("[{\"a\":1}] x", Format::kJson).error, "in:1: unexpected text after the array");
  EXPECT_NE(ReadAll("[{\"a\":1},\n{\"a\"", Format::kJson).error.find("in:2: "), std::string::npos);
}

TEST(EventReader, CsvConvertsAsAsaDoes) {
  auto r = ReadAll(
      "id,temp,n,ok,none,empty,text,quoted,big\n"
      "a,21.5,42,true,null,,hello,\"17\",99999999999999999999\n"
      "b,-1e3,-7,false,x,y,\"say \"\"hi\"\", ok\",\"two\nlines\"\n",
      Format::kCsv);
  EXPECT_EQ(r.error, "");
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0], (json::object{{"id", "a"},
                                       {"temp", 21.5},
                                       {"n", 42},
                                       {"ok", true},
                                       {"none", nullptr},
                                       {"empty", nullptr},
                                       {"text", "hello"},
                                       {"quoted", "17"},
                                       {"big", 1e20}}));
  EXPECT_TRUE(r.events[0].at("n").is_int64());
  EXPECT_EQ(r.events[1], (json::object{{"id", "b"},
                                       {"temp", -1000.0},
                                       {"n", -7},
                                       {"ok", false},
                                       {"none", "x"},
                                       {"empty", "y"},
                                       {"text", "say \"hi\", ok"},
                                       {"quoted", "two\nlines"}}));
  EXPECT_EQ(r.lines, (std::vector<int>{2, 3}));
  // Strings that only look like numbers in part stay strings.
  r = ReadAll("a,b,c,d\n1.2.3,12ab,-,+5\r\n", Format::kCsv);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0], (json::object{{"a", "1.2.3"}, {"b", "12ab"}, {"c", "-"}, {"d", 5}}));
}

TEST(EventReader, CsvErrors) {
  EXPECT_EQ(ReadAll("a,b\n1,2\n1,2,3\n", Format::kCsv).error,
            "in:3: 3 fields, but the header names 2 columns");
  EXPECT_EQ(ReadAll("a,b\n1,\"2\nx\n", Format::kCsv).error, "in:2: a quoted field is not closed");
  EXPECT_EQ(ReadAll("a,b\n\"1\"x,2\n", Format::kCsv).error,
            "in:2: unexpected text after a closing quote (write \"\" for a quote)");
  EXPECT_EQ(ReadAll("a,a\n1,2\n", Format::kCsv).error, "in:1: duplicate column 'a'");
  EXPECT_EQ(ReadAll("", Format::kCsv).events.size(), 0u);
}

TEST(EventReader, OpenMissingFileFails) {
  auto r = EventReader::Open("/nonexistent/events.json");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("/nonexistent/events.json"), std::string::npos);
}

TEST(LocalRun, ParsesFlags) {
  auto in = ParseNamedFile("telemetry=data/a=b.json");
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->name, "telemetry");
  EXPECT_EQ(in->path, "data/a=b.json");
  EXPECT_FALSE(ParseNamedFile("telemetry").has_value());
  EXPECT_FALSE(ParseNamedFile("=x.json").has_value());
  EXPECT_EQ(ParseTolerance("5s", true).value(), 5 * kSecond);
  EXPECT_EQ(ParseTolerance("250ms", false).value(), 250'000);
  EXPECT_EQ(ParseTolerance("none", true).value(), std::nullopt);
  EXPECT_FALSE(ParseTolerance("none", false).has_value());
  EXPECT_FALSE(ParseTolerance("5", true).has_value());
  EXPECT_FALSE(ParseTolerance("30d", true).has_value());
}

struct Ran {
  Result<LocalRunSummary> summary;
  std::map<std::string, std::vector<OutputEvent>> rows;
  std::vector<uint64_t> progress;  // the counts progress reported
  std::vector<size_t> rows_at;     // rows received so far, at each progress report
};

Ran RunQuery(std::string_view query, std::vector<std::pair<std::string, std::string>> inputs,
             EventTimePolicy policy = {}, uint64_t progress_every = 1'000'000) {
  auto q = StreamQuery::Parse(query);
  EXPECT_TRUE(q.has_value()) << q.error().message();
  Ran out{Error(BaseErrc::kInternal), {}};
  if (!q) return out;
  LocalRunIo io;
  for (auto& [name, text] : inputs) {
    bool csv = text.starts_with("csv:");
    io.inputs.emplace_back(name, EventReader::FromText(csv ? text.substr(4) : text, name + ".in",
                                                       csv ? Format::kCsv : Format::kJson));
  }
  io.write = [&](const std::string& target, std::vector<OutputEvent>& rows) -> Status {
    for (auto& r : rows)
      out.rows[target].push_back(std::move(r));
    return {};
  };
  io.progress = [&](uint64_t n) {
    out.progress.push_back(n);
    size_t received = 0;
    for (const auto& [target, rows] : out.rows)
      received += rows.size();
    out.rows_at.push_back(received);
  };
  LocalRunOptions o;
  o.policy = policy;
  o.start = *ParseDateTime("2030-01-01T00:00:00Z");
  o.progress_every = progress_every;
  out.summary = RunLocal(*q, std::move(io), o);
  return out;
}

std::vector<json::object> Rows(const Ran& r, const std::string& target) {
  std::vector<json::object> out;
  if (auto it = r.rows.find(target); it != r.rows.end()) {
    for (const auto& e : it->second)
      out.push_back(e.row);
  }
  return out;
}

TEST(LocalRun, WindowsOverAFileWithTheDefaultPolicy) {
  auto r = RunQuery(
      "SELECT deviceId, COUNT(*) AS n, AVG(temp) AS avgT INTO out FROM input "
      "TIMESTAMP BY time GROUP BY deviceId, TumblingWindow(second, 10)",
      {{"input",
        "[{\"deviceId\":\"a\",\"temp\":10,\"time\":\"2026-01-01T00:00:01Z\"},"
        " {\"deviceId\":\"a\",\"temp\":20,\"time\":\"2026-01-01T00:00:02Z\"},"
        " {\"deviceId\":\"a\",\"temp\":30,\"time\":\"2026-01-01T00:00:11Z\"}]"}});
  ASSERT_TRUE(r.summary.has_value()) << r.summary.error().message();
  EXPECT_EQ(r.summary->events, 3u);
  EXPECT_EQ(r.summary->rows.at("out"), 2u);
  EXPECT_EQ(Rows(r, "out"), (std::vector<json::object>{
                                {{"deviceId", "a"}, {"n", 2}, {"avgT", 15}},
                                {{"deviceId", "a"}, {"n", 1}, {"avgT", 30}},
                            }));
  // Arrival follows event time: nothing was late, nothing adjusted.
  EXPECT_EQ(r.summary->stats.adjusted, 0u);
}

TEST(LocalRun, ArrivalNeverGoesBackSoLateEventsAreAdjusted) {
  // An event 10 s older than the newest one is late by ASA's default tolerance (5 s) and out
  // of order: adjusted to the newest time.
  auto r = RunQuery("SELECT id, System.Timestamp() AS t FROM input TIMESTAMP BY time",
                    {{"input",
                      "{\"id\":1,\"time\":\"2026-01-01T00:00:20Z\"}\n"
                      "{\"id\":2,\"time\":\"2026-01-01T00:00:10Z\"}\n"}});
  ASSERT_TRUE(r.summary.has_value()) << r.summary.error().message();
  EXPECT_EQ(r.summary->stats.adjusted, 2u);  // late, then out of order
  EXPECT_EQ(Rows(r, "default"),
            (std::vector<json::object>{{{"id", 1}, {"t", "2026-01-01T00:00:20.0000000Z"}},
                                       {{"id", 2}, {"t", "2026-01-01T00:00:20.0000000Z"}}}));
}

TEST(LocalRun, InputsAreMergedByEventTime) {
  // A UNION of two inputs: rows come in event-time order although each file is read whole.
  auto r = RunQuery(
      "SELECT v, System.Timestamp() AS t FROM a TIMESTAMP BY time "
      "UNION SELECT v, System.Timestamp() AS t FROM b TIMESTAMP BY time",
      {{"a",
        "{\"v\":\"a1\",\"time\":\"2026-01-01T00:00:01Z\"}\n"
        "{\"v\":\"a3\",\"time\":\"2026-01-01T00:00:03Z\"}\n"},
       {"b", "csv:v,time\nb2,2026-01-01T00:00:02Z\nb4,2026-01-01T00:00:04Z\n"}});
  ASSERT_TRUE(r.summary.has_value()) << r.summary.error().message();
  std::vector<std::string> order;
  for (const auto& row : Rows(r, "default"))
    order.emplace_back(row.at("v").as_string());
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b2", "a3", "b4"}));
  EXPECT_EQ(r.summary->stats.adjusted, 0u);
}

TEST(LocalRun, CreateTableTypesTheCsvColumns) {
  // The CSV deserializer makes 7 a bigint and 2.5 a float: the second row's id does not fit.
  auto r = RunQuery("CREATE TABLE input (id bigint, v float); SELECT id, v FROM input",
                    {{"input", "csv:id,v\n7,1\n2.5,2\n"}});
  ASSERT_TRUE(r.summary.has_value()) << r.summary.error().message();
  EXPECT_EQ(r.summary->stats.dropped_schema, 1u);
  EXPECT_EQ(Rows(r, "default"), (std::vector<json::object>{{{"id", 7}, {"v", 1.0}}}));
}

TEST(LocalRun, WithoutTimestampByEventsArriveAfterEachOther) {
  auto r = RunQuery("SELECT v, System.Timestamp() AS t FROM input",
                    {{"input", "{\"v\":1}\n{\"v\":2}\n"}});
  ASSERT_TRUE(r.summary.has_value()) << r.summary.error().message();
  EXPECT_EQ(Rows(r, "default"),
            (std::vector<json::object>{{{"v", 1}, {"t", "2030-01-01T00:00:00.0000000Z"}},
                                       {{"v", 2}, {"t", "2030-01-01T00:00:00.0000010Z"}}}));
}

TEST(LocalRun, RowsAreWrittenAsTheyComeAndEveryOutputIsListed) {
  std::string lines;
  for (int i = 0; i < 10; ++i)
    lines += "{\"v\":" + std::to_string(i) + "}\n";
  auto r = RunQuery("SELECT v INTO a FROM input WHERE v > 100; SELECT v INTO b FROM input",
                    {{"input", lines}}, {}, 4);
  ASSERT_TRUE(r.summary.has_value()) << r.summary.error().message();
  EXPECT_EQ(r.summary->rows, (std::map<std::string, uint64_t>{{"a", 0}, {"b", 10}}));
  EXPECT_EQ(Rows(r, "b").size(), 10u);
  // Progress every 4 events, rows handed over by then.
  EXPECT_EQ(r.progress, (std::vector<uint64_t>{4, 8}));
  EXPECT_EQ(r.rows_at, (std::vector<size_t>{4, 8}));
}

TEST(LocalRun, InputNamesMustMatchTheQuery) {
  auto r = RunQuery("SELECT * FROM telemetry", {{"other", "{}"}});
  ASSERT_FALSE(r.summary.has_value());
  EXPECT_TRUE(r.summary.error().Is(query::Errc::kInvalidQuery));
  EXPECT_EQ(r.summary.error().message(),
            "the query reads no input named 'other' (it reads: telemetry)");
  r = RunQuery("SELECT * FROM a UNION SELECT * FROM b", {{"a", "{}"}});
  ASSERT_FALSE(r.summary.has_value());
  EXPECT_EQ(r.summary.error().message(), "the query reads input 'b': give it with --input b=FILE");
}

TEST(LocalRun, ABadEventStopsTheRunWithItsLine) {
  auto r = RunQuery("SELECT * FROM input", {{"input", "{}\n{}\nnot json\n"}});
  ASSERT_FALSE(r.summary.has_value());
  EXPECT_TRUE(r.summary.error().Is(BaseErrc::kParse));
  EXPECT_EQ(r.summary.error().message(), "input.in:3:1: syntax error");
}

TEST(LocalRun, LimitsStopTheRun) {
  StreamLimits limits;
  limits.max_buffered_events = 1;
  auto q = StreamQuery::Parse("SELECT * FROM input TIMESTAMP BY t", limits);
  ASSERT_TRUE(q.has_value());
  LocalRunIo io;
  io.inputs.emplace_back("input", EventReader::FromText("{\"t\":\"2026-01-01T00:00:05Z\"}\n"
                                                        "{\"t\":\"2026-01-01T00:00:02Z\"}\n"
                                                        "{\"t\":\"2026-01-01T00:00:03Z\"}\n",
                                                        "in", Format::kJson));
  LocalRunOptions o;
  o.policy.late_arrival_tolerance = std::nullopt;
  o.policy.out_of_order_tolerance = 60 * kSecond;
  auto r = RunLocal(*q, std::move(io), o);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(query::Errc::kLimitExceeded)) << r.error().message();
}

}  // namespace
}  // namespace orrery::stream
