// Stream job definitions: what validates, what is refused and how it says so, the stored form
// round-tripping, start modes; and the job service in process — a job over a real event log
// writes its rows to a derived stream, and after a crash (an older checkpoint put back, as a
// kill -9 between checkpoints leaves it) it replays its state horizon: every window comes,
// those since the checkpoint twice, with the same ids.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "asa/jobs.h"

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

}  // namespace
}  // namespace orrery::asa
