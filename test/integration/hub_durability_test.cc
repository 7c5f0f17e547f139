// Nothing the hub acknowledged is lost when the server is killed with SIGKILL right after the
// acknowledgement: registry writes, twin patches and cloud-to-device messages (HTTP 2xx), and
// device telemetry (MQTT PUBACK, sent by mosquitto_pub as a device).
#include <unistd.h>

#include <csignal>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/time.h"
#include "hub/sas.h"
#include "net/http_client.h"
#include "test/support/orrery_server.h"

namespace orrery {
namespace {
namespace json = boost::json;
using testing::OrreryBinary;
using testing::OrreryServer;
using testing::Process;

class HubDurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<OrreryServer>("hub-durable");
    ASSERT_TRUE(server_->started()) << server_->process().output();
    auto cs = Process::Spawn(
        {OrreryBinary(), "hub", "connection-string", "--data-dir", server_->data_dir().string()});
    ASSERT_EQ(cs->Wait(), 0);
    auto parsed =
        hub::ParseServiceConnectionString(cs->output().substr(0, cs->output().find('\n')));
    ASSERT_TRUE(parsed);
    token_ = *hub::MakeSasToken(parsed->host_name, parsed->key, timeutil::NowMs() / 1000 + 3600,
                                parsed->key_name);
    trust_.tls.ca_file = server_->ca_file();
  }

  net::HttpResponse Call(std::string method, std::string path, std::string body = {},
                         std::vector<std::pair<std::string, std::string>> extra = {}) {
    net::Headers h;
    h.Set("Authorization", token_);
    h.Set("Content-Type", "application/json");
    for (auto& [k, v] : extra)
      h.Set(k, v);
    auto r = net::Fetch(method, server_->Url(path + "?api-version=2021-04-12"), h, body, trust_);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : net::HttpResponse{};
  }

  std::unique_ptr<OrreryServer> server_;
  std::string token_;
  net::HttpClientOptions trust_;
};

TEST_F(HubDurabilityTest, AcknowledgedRegistryTwinAndC2dChangesSurviveSigkill) {
  constexpr int kDevices = 40;
  for (int i = 0; i < kDevices; ++i) {
    auto r = Call("PUT", fmt::format("/devices/kill-{}", i), "{}");
    ASSERT_EQ(r.status, 200) << r.body;
    auto t = Call(
        "PATCH", fmt::format("/twins/kill-{}", i),
        fmt::format(R"({{"tags":{{"n":{}}},"properties":{{"desired":{{"v":{}}}}}}})", i, i * 10));
    ASSERT_EQ(t.status, 200) << t.body;
    if (i % 4 == 0) {
      auto c = Call("POST", fmt::format("/devices/kill-{}/messages/devicebound", i),
                    fmt::format("message {}", i),
                    {{"iothub-messageid", fmt::format("m{}", i)}, {"iothub-ack", "full"}});
      ASSERT_EQ(c.status, 200) << c.body;
    }
  }
  auto del = Call("DELETE", "/devices/kill-1", "", {{"If-Match", "\"*\""}});
  ASSERT_EQ(del.status, 204) << del.body;

  server_->Restart(SIGKILL);
  ASSERT_TRUE(server_->started()) << server_->process().output();
  for (int i = 0; i < kDevices; ++i) {
    auto twin = Call("GET", fmt::format("/twins/kill-{}", i));
    if (i == 1) {
      EXPECT_EQ(twin.status, 404) << "a deleted device came back";
      continue;
    }
    ASSERT_EQ(twin.status, 200) << i << ": " << twin.body;
    auto v = json::parse(twin.body).as_object();
    EXPECT_EQ(v["tags"].as_object()["n"], i);
    EXPECT_EQ(v["properties"].as_object()["desired"].as_object()["v"], i * 10);
    EXPECT_EQ(v["cloudToDeviceMessageCount"], i % 4 == 0 ? 1 : 0) << i;
  }
  auto stats = json::parse(Call("GET", "/statistics/devices").body).as_object();
  EXPECT_EQ(stats["totalDeviceCount"], kDevices - 1);
  // A purge after the restart finds the queued messages and records their feedback.
  auto purge = Call("DELETE", "/devices/kill-8/commands");
  EXPECT_NE(purge.body.find(R"("totalMessagesPurged":1)"), std::string::npos) << purge.body;
}

// Jobs and their per-device results are stored: a finished job and a scheduled one both
// survive SIGKILL, and the scheduled one still runs after the restart.
TEST_F(HubDurabilityTest, JobsAndTheirResultsSurviveSigkill) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(Call("PUT", fmt::format("/devices/job-{}", i), "{}").status, 200);
  }
  auto job = Call("PUT", "/jobs/v2/done-job",
                  R"j({"jobId":"done-job","type":"scheduleUpdateTwin","queryCondition":)j"
                  R"j("STARTSWITH(deviceId, 'job-')","updateTwin":{"etag":"*","tags":{"x":1}},)j"
                  R"j("startTime":null})j");
  ASSERT_EQ(job.status, 200) << job.body;
  std::string status;
  for (int tries = 0; tries < 200 && status != "completed"; ++tries) {
    auto j = json::parse(Call("GET", "/jobs/v2/done-job").body).as_object();
    status = std::string(j["status"].as_string());
    if (status != "completed") {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));  // polling the job's status
    }
  }
  ASSERT_EQ(status, "completed");
  // One more job, starting 3 s from now: it must still be there, and run, after the kill.
  auto later = timeutil::FormatUtcMs(timeutil::NowMs() + 3000);
  auto sched = Call("PUT", "/jobs/v2/later-job",
                    fmt::format(R"({{"jobId":"later-job","type":"scheduleUpdateTwin",)"
                                R"("queryCondition":"deviceId = 'job-0'","updateTwin":)"
                                R"({{"properties":{{"desired":{{"late":true}}}}}},)"
                                R"("startTime":"{}"}})",
                                later));
  ASSERT_EQ(sched.status, 200) << sched.body;
  EXPECT_NE(sched.body.find(R"("status":"scheduled")"), std::string::npos) << sched.body;

  server_->Restart(SIGKILL);
  ASSERT_TRUE(server_->started()) << server_->process().output();
  auto done = json::parse(Call("GET", "/jobs/v2/done-job").body).as_object();
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["deviceJobStatistics"].as_object()["succeededCount"], 6);
  auto results = Call("POST", "/devices/query",
                      R"({"query":"SELECT * FROM devices.jobs WHERE jobId = 'done-job'"})");
  ASSERT_EQ(results.status, 200) << results.body;
  EXPECT_EQ(json::parse(results.body).as_array().size(), 6u) << results.body;
  status.clear();
  for (int tries = 0; tries < 400 && status != "completed"; ++tries) {
    auto j = json::parse(Call("GET", "/jobs/v2/later-job").body).as_object();
    status = std::string(j["status"].as_string());
    if (status != "completed") std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(status, "completed");
  auto twin = json::parse(Call("GET", "/twins/job-0").body).as_object();
  EXPECT_EQ(twin["properties"].as_object()["desired"].as_object()["late"], true);
}

TEST_F(HubDurabilityTest, AcknowledgedTelemetrySurvivesSigkill) {
  if (::access("/usr/bin/mosquitto_pub", X_OK) != 0) {
    GTEST_SKIP() << "mosquitto-clients is not installed (scripts/install-deps installs it)";
  }
  auto dev = Call("PUT", "/devices/tele-1", "{}");
  ASSERT_EQ(dev.status, 200) << dev.body;
  auto o = json::parse(dev.body).as_object();
  std::string key(
      o["authentication"].as_object()["symmetricKey"].as_object()["primaryKey"].as_string());
  auto sas = hub::MakeSasToken("localhost/devices/tele-1", key, timeutil::NowMs() / 1000 + 600, "",
                               /*encode_resource=*/true);
  ASSERT_TRUE(sas);
  // 200 QoS 1 messages as a device on the plain loopback port; mosquitto_pub exits 0 only
  // once every PUBACK has arrived.
  constexpr int kMessages = 200;
  std::string lines;
  for (int i = 0; i < kMessages; ++i)
    lines += fmt::format("{{\"seq\":{}}}\n", i);
  auto file = server_->data_dir() / "lines.txt";
  {
    FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_TRUE(f);
    std::fputs(lines.c_str(), f);
    std::fclose(f);
  }
  // mosquitto_pub -l publishes each line of its stdin.
  auto feed =
      Process::Spawn({"sh", "-c",
                      fmt::format("mosquitto_pub -h 127.0.0.1 -p {} -V mqttv311 -q 1 -i tele-1 -u "
                                  "'localhost/tele-1/?api-version=2021-04-12' -P '{}' -t "
                                  "'devices/tele-1/messages/events/' -l < '{}'",
                                  server_->ports().mqtt, *sas, file.string())});
  ASSERT_EQ(feed->Wait(std::chrono::seconds(60)), 0) << feed->output();
  server_->Restart(SIGKILL);
  ASSERT_TRUE(server_->started()) << server_->process().output();
  auto mon = Process::Spawn(
      {OrreryBinary(), "monitor-events", "--data-dir", server_->data_dir().string(), "--https-port",
       std::to_string(server_->ports().https), "--device-id", "tele-1", "--from", "earliest",
       "--count", std::to_string(kMessages), "--timeout", "10"});
  ASSERT_EQ(mon->Wait(std::chrono::seconds(60)), 0) << mon->output();
  const std::string& out = mon->output();
  for (int i : {0, 1, kMessages / 2, kMessages - 1}) {
    EXPECT_NE(out.find(fmt::format("\"seq\": {}", i)), std::string::npos) << i;
  }
  size_t events = 0;
  for (auto at = out.find("\"origin\": \"tele-1\""); at != std::string::npos;
       at = out.find("\"origin\": \"tele-1\"", at + 1))
    ++events;
  EXPECT_EQ(events, static_cast<size_t>(kMessages));
}

}  // namespace
}  // namespace orrery
