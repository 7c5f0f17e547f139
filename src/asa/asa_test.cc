// Stream job definitions: what validates, what is refused and how it says so, the stored form
// round-tripping, start modes; and the job service in process — a job over a real event log
// writes its rows to a derived stream, and after a crash (an older checkpoint put back, as a
// kill -9 between checkpoints leaves it) it replays its state horizon: every window comes,
// those since the checkpoint twice, with the same ids.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "archive/test_util.h"
#include "asa/jobs.h"
#include "base/files.h"
#include "base/strings.h"
#include "store/kv_store.h"

namespace orrery::asa {
namespace {
namespace json = boost::json;

constexpr const char* kValid = R"j({
  "query": "SELECT deviceId, AVG(t) AS avgT INTO alerts FROM telemetry GROUP BY deviceId, TumblingWindow(second, 10)",
  "inputs": [{"name": "telemetry", "source": "iothub", "serialization": "json"}],
  "outputs": [{"name": "alerts", "type": "webhook", "url": "https://example.test/hook", "secret": "s3"}],
  "eventOrdering": {"lateArrivalToleranceInSeconds": 10, "outOfOrderToleranceInSeconds": 2,
                    "action": "drop"},
  "outputErrorPolicy": "drop"
})j";

Result<Job> Parse(std::string_view text, std::string name = "job-1") {
  return JobFromJson(std::move(name), json::parse(text), JobLimits{});
}

// `text` with member `key` replaced by `value` (JSON).
std::string With(std::string_view key, std::string_view value) {
  json::object o = json::parse(kValid).as_object();
  o[key] = json::parse(value);
  return json::serialize(o);
}

TEST(JobDefinition, ValidatesAndRoundTrips) {
  auto job = Parse(kValid);
  ASSERT_TRUE(job) << job.error().message();
  EXPECT_EQ(job->inputs.size(), 1u);
  ASSERT_EQ(job->outputs.size(), 1u);
  EXPECT_EQ(job->outputs[0].webhook.name, "job-1.alerts");
  EXPECT_EQ(job->outputs[0].webhook.format, routing::WebhookEndpoint::Format::kJsonArray);
  EXPECT_EQ(job->outputs[0].webhook.linger_ms, 0);
  EXPECT_EQ(job->ordering.late_arrival_tolerance, 10 * stream::kSecond);
  EXPECT_EQ(job->ordering.out_of_order_tolerance, 2 * stream::kSecond);
  EXPECT_EQ(job->ordering.action, stream::EventTimePolicy::Action::kDrop);
  EXPECT_TRUE(job->drop_on_output_error);

  json::object stored = JobToJson(*job, true);
  EXPECT_EQ(stored["outputs"].as_array()[0].as_object()["secret"], "s3");
  EXPECT_EQ(stored["eventOrdering"].as_object()["lateArrivalToleranceInSeconds"], 10);
  auto again = JobFromJson("job-1", stored, JobLimits{});
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(json::serialize(JobToJson(*again, true)), json::serialize(stored));
  // The API's form masks the secret.
  EXPECT_EQ(JobToJson(*job, false)["outputs"].as_array()[0].as_object()["secret"], "********");
}

TEST(JobDefinition, RetryPolicyTriesWebhooksLonger) {
  auto job = Parse(With("outputErrorPolicy", R"("retry")"));
  ASSERT_TRUE(job) << job.error().message();
  EXPECT_EQ(job->outputs[0].webhook.max_attempts, 100);
}

TEST(JobDefinition, QueryErrorsNameLineAndColumn) {
  auto job = Parse(With("query", R"("SELECT deviceId\nINTO alerts FROM telemetry WHERE")"));
  ASSERT_FALSE(job);
  EXPECT_EQ(job.error().code(), Errc::kInvalidJob);
  EXPECT_NE(job.error().message().find("line 2"), std::string::npos) << job.error().message();
  EXPECT_NE(job.error().message().find("column"), std::string::npos) << job.error().message();
}

TEST(JobDefinition, RefusesWhatDoesNotFit) {
  struct Case {
    std::string text;
    std::string says;
  };
  std::vector<Case> cases = {
      {With("inputs", "[]"), "at least one input"},
      {With("outputs", R"([{"name":"alerts","type":"fax"}])"), "\"type\" must be"},
      {With("outputs", R"([{"name":"alerts","type":"webhook","url":"http://x/hook"}])"),
       "https://"},
      {With("outputs", R"([{"name":"alerts","type":"method","deviceIdColumn":"d"}])"),
       "methodName"},
      {With("outputs", R"([{"name":"alerts","type":"c2d"}])"), "deviceIdColumn"},
      {With("outputs", R"([{"name":"other","type":"stream"}])"), "INTO 'alerts'"},
      {With("query", R"("SELECT * INTO alerts FROM elsewhere")"), "'elsewhere'"},
      {With("references", R"([{"name":"r","path":"../etc/passwd"}])"), "inside the reference"},
      {With("inputs", R"([{"name":"telemetry"},{"name":"TELEMETRY"}])"), "declared twice"},
      {With("inputs", R"([{"name":"telemetry"},{"name":"unused"}])"), "never reads it"},
      {With("eventOrdering", R"({"outOfOrderToleranceInSeconds": 600})"), "0..599"},
      {With("eventOrdering", R"({"action": "ignore"})"), "\"adjust\" or \"drop\""},
      {With("compatibilityLevel", R"("2.0")"), "compatibilityLevel"},
      {With("colour", R"("blue")"), "unknown member \"colour\""},
      {With("inputs", R"([{"name":"telemetry","source":"stream"}])"), "needs \"job\""},
  };
  for (auto& c : cases) {
    auto job = Parse(c.text);
    ASSERT_FALSE(job) << c.text;
    EXPECT_NE(job.error().message().find(c.says), std::string::npos)
        << c.says << " | " << job.error().message();
  }
  EXPECT_FALSE(Parse(kValid, "jb"));                  // too short
  EXPECT_FALSE(Parse(kValid, "job with spaces"));     // not a simple name
  EXPECT_FALSE(Parse(kValid, std::string(40, 'j')));  // too long for an endpoint name
  auto big = Parse(With("query", json::serialize(json::value(std::string(600'000, ' ')))));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), Errc::kLimitExceeded);
}

TEST(JobDefinition, StartModes) {
  auto now = StartFromJson(json::value(nullptr));
  ASSERT_TRUE(now);
  EXPECT_EQ(now->mode, StartFrom::Mode::kNow);
  auto last = StartFromJson(json::parse(R"({"outputStartMode":"LastOutputEventTime"})"));
  ASSERT_TRUE(last);
  EXPECT_EQ(last->mode, StartFrom::Mode::kLastStopped);
  auto at = StartFromJson(
      json::parse(R"({"outputStartMode":"CustomTime","outputStartTime":"2026-01-01T00:00:10Z"})"));
  ASSERT_TRUE(at);
  EXPECT_EQ(at->mode, StartFrom::Mode::kCustomTime);
  EXPECT_EQ(at->time_ms, 1767225610000);
  EXPECT_FALSE(StartFromJson(json::parse(R"({"outputStartMode":"CustomTime"})")));
  EXPECT_FALSE(StartFromJson(json::parse(R"({"outputStartMode":"Yesterday"})")));
}

// ---- the service in process: a job over a real log, a crash between checkpoints ----

class JobServiceTest : public ::testing::Test {
 protected:
  JobServiceTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("orrery-asa-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    kv_ = std::move(*store::OpenRocksDb({.path = dir_ / "state"}));
    clock_ = std::make_shared<std::atomic<int64_t>>(1'767'225'600'000);  // 2026-01-01
    auto c = clock_;
    hub_ = std::move(*eventlog::EventLog::Open(
        dir_ / "hub", {.partitions = 2, .now_ms = [c] { return c->load(); }}));
  }
  ~JobServiceTest() override {
    jobs_.reset();
    hub_->Close();
    kv_->Drain();
    kv_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open(int64_t min_batch_frequency_s = 60) {
    auto c = clock_;
    auto opened = JobService::Open(kv_.get(), hub_.get(), nullptr, nullptr, nullptr,
                                   {.dir = dir_ / "asa",
                                    .reference_dir = dir_ / "ref",
                                    .archive_root = dir_ / "archive",
                                    .log = {.partitions = 1},
                                    .limits = {.min_batch_frequency_s = min_batch_frequency_s},
                                    .checkpoint_interval_ms = 1000,
                                    .heartbeat_margin_ms = 0,
                                    .now_ms = [c] { return c->load(); }});
    ASSERT_TRUE(opened) << opened.error().message();
    jobs_ = std::move(*opened);
  }
  // Ten events of value 1 in second `s`, durable (so readable) before the clock moves on.
  void Second(int s) {
    clock_->store(1'767'225'600'000 + s * 1000);
    for (int i = 0; i < 10; ++i) {
      eventlog::Message m;
      m.body = R"({"v":1})";
      m.system.connection_device_id = "d" + std::to_string(i % 3);
      m.system.message_source = "Telemetry";
      std::promise<bool> p;
      ASSERT_TRUE(hub_->Append(m, [&](const Result<eventlog::Appended>& r) { p.set_value(!!r); }));
      ASSERT_TRUE(p.get_future().get());
    }
  }
  struct Row {
    std::string id;
    std::string body;
  };
  // The job's rows on the hub's log, by their window end (asa-timestamp).
  std::map<std::string, std::vector<Row>> Rows() {
    std::map<std::string, std::vector<Row>> out;
    for (uint32_t p = 0; p < hub_->partition_count(); ++p) {
      auto r = hub_->OpenReader(p, eventlog::Position::Earliest());
      while (true) {
        auto batch = (*r)->TryRead(1000);
        if (!batch || batch->events.empty()) break;
        for (auto& e : batch->events) {
          if (e.message.system.message_source != "asa") continue;
          std::string ts;
          for (auto& [k, v] : e.message.properties) {
            if (k == "asa-timestamp") ts = v;
          }
          out[ts].push_back({e.message.system.message_id, e.message.body});
        }
      }
    }
    return out;
  }
  bool WaitForWindows(size_t n) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < end) {
      if (Rows().size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::KvStore> kv_;
  std::shared_ptr<std::atomic<int64_t>> clock_;
  std::unique_ptr<eventlog::EventLog> hub_;
  std::unique_ptr<JobService> jobs_;
};

TEST_F(JobServiceTest, ACrashBetweenCheckpointsLosesNoWindowAndRepeatsRowsWithTheirIds) {
  Open();
  auto created = jobs_->Create("windows", json::parse(R"j({
      "query": "SELECT COUNT(*) AS n, SUM(v) AS s INTO out FROM telemetry GROUP BY TumblingWindow(second, 1)",
      "inputs": [{"name": "telemetry"}],
      "outputs": [{"name": "out", "type": "stream"}],
      "eventOrdering": {"lateArrivalToleranceInSeconds": 0}})j"));
  ASSERT_TRUE(created) << created.error().message();
  ASSERT_TRUE(jobs_->Start("windows", {}));
  for (int s = 0; s < 30; ++s)
    Second(s);
  ASSERT_TRUE(WaitForWindows(29));
  // The checkpoint a kill -9 would leave: taken now, while later windows are open.
  auto saved = kv_->Get("asa.ckpt", "windows");
  ASSERT_TRUE(saved && *saved);
  for (int s = 30; s < 60; ++s)
    Second(s);
  ASSERT_TRUE(WaitForWindows(59));
  jobs_.reset();  // stops; writes a later checkpoint …
  {
    store::WriteBatch b;  // … which the crash never wrote
    b.Put("asa.ckpt", "windows", **saved);
    ASSERT_TRUE(kv_->Write(std::move(b), store::Durability::kDurable));
  }
  auto before = Rows();
  Open();  // the job was running: it resumes from the older checkpoint
  clock_->store(1'767'225'600'000 + 62'000);
  ASSERT_TRUE(WaitForWindows(60)) << Rows().size() << " windows; before the restart "
                                  << before.size();
  // Wait until the replay caught up: the rows after the checkpoint come again.
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::map<std::string, std::vector<Row>> after;
  while (std::chrono::steady_clock::now() < end) {
    after = Rows();
    size_t repeated = 0;
    for (auto& [ts, rows] : after)
      repeated += rows.size() > 1;
    if (repeated > 0 && after.size() == 60) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto job = jobs_->Get("windows");
  ASSERT_TRUE(job);
  EXPECT_GT((*job)["metrics"].as_object()["replayedEvents"].to_number<int64_t>(), 0);
  ASSERT_EQ(after.size(), 60u);  // windows 1 … 60: none lost
  size_t repeated = 0;
  for (auto& [ts, rows] : after) {
    for (auto& r : rows) {
      EXPECT_EQ(r.body, R"({"n":10,"s":10})") << ts;  // never a partial window
      EXPECT_EQ(r.id, rows.front().id) << ts;         // a repeat has the same id
    }
    repeated += rows.size() > 1;
    // Only rows since the checkpoint repeat: the older ones were before it.
    if (rows.size() > 1) {
      EXPECT_TRUE(before.contains(ts)) << ts;
    }
  }
  EXPECT_GT(repeated, 0u);
  EXPECT_LT(repeated, 59u);  // not everything: the replay's own output was discarded
}

// Storage outputs: JSON files hold the rows themselves, a line each (ASA's line-separated
// JSON); Avro files hold the rows as records of their columns. Both are published (renamed
// from their temp name) once the batch frequency has passed.
TEST_F(JobServiceTest, StorageOutputsWriteRowsAsJsonLinesAndAvroRecords) {
  Open(/*min_batch_frequency_s=*/1);
  auto created = jobs_->Create("archive", json::parse(R"j({
      "query": "SELECT COUNT(*) AS n, System.Timestamp() AS t INTO lines FROM telemetry GROUP BY TumblingWindow(second, 1) SELECT COUNT(*) AS n, System.Timestamp() AS t INTO records FROM telemetry GROUP BY TumblingWindow(second, 10) HAVING COUNT(*) > 20",
      "inputs": [{"name": "telemetry"}],
      "outputs": [
        {"name": "lines", "type": "storage", "path": "lines", "encoding": "json",
         "batchFrequencyInSeconds": 1},
        {"name": "records", "type": "storage", "path": "records", "encoding": "avro",
         "batchFrequencyInSeconds": 1}],
      "eventOrdering": {"lateArrivalToleranceInSeconds": 0}})j"));
  ASSERT_TRUE(created) << created.error().message();
  ASSERT_TRUE(jobs_->Start("archive", {}));
  for (int s = 0; s < 5; ++s)
    Second(s);
  // Events at second s fall in the window ending at s (windows include their end). Lines:
  // windows 0..3 have closed at second 4. Records: only (0 s, 10 s] has more than 20 events. The
  // clock goes on so that the windows close and the batches publish.
  auto files = [&](const std::string& dir, std::string_view ext) {
    std::vector<std::filesystem::path> out;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir_ / "archive" / dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file() && it->path().extension() == ext) out.push_back(it->path());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  std::vector<std::string> lines;
  std::vector<std::filesystem::path> avro;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int64_t t = 6; std::chrono::steady_clock::now() < end; ++t) {
    clock_->store(1'767'225'600'000 + t * 1000);
    lines.clear();
    for (auto& f : files("lines", ".json")) {
      std::string text = files::ReadFile(f).value();
      for (auto line : strings::Split(text, '\n')) {
        if (!line.empty()) lines.emplace_back(line);
      }
    }
    avro = files("records", ".avro");
    if (lines.size() >= 4 && !avro.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(lines.size(), 4u);
  std::sort(lines.begin(), lines.end());  // batches of one minute are numbered: "-1" < "."
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(lines[i], fmt::format(R"({{"n":10,"t":"2026-01-01T00:00:0{}.0000000Z"}})", i));
  }
  ASSERT_FALSE(avro.empty());
  auto rows = archive::testutil::ReadAvroRows(avro.front());
  ASSERT_EQ(rows.rows.size(), 1u);
  EXPECT_EQ(json::parse(rows.rows[0]),
            json::parse(R"({"n":{"long":40},"t":{"string":"2026-01-01T00:00:10.0000000Z"}})"));
  EXPECT_EQ(json::parse(rows.schema).at("name"), "Row") << rows.schema;
}

}  // namespace
}  // namespace orrery::asa
