// Stream Analytics jobs through the real `orrery serve`: devices send telemetry over MQTT
// (mosquitto_pub as the device); a job with a tumbling window, a HAVING threshold and a
// reference-data join posts alerts to a local HTTPS receiver; the server is killed with
// SIGKILL mid-run and restarted, and every window's alert arrives (duplicates allowed, with
// the same ids), with the right values. Also: the job's CLI, a query error's line and column,
// and a derived stream read by `orrery monitor-events`.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/time.h"
#include "hub/sas.h"
#include "net/http_client.h"
#include "routing/endpoints.h"
#include "stream/stream_query.h"
#include "test/support/orrery_server.h"
#include "test/support/webhook_receiver.h"

namespace orrery {
namespace {
namespace json = boost::json;
using testing::OrreryBinary;
using testing::OrreryServer;
using testing::Process;

constexpr const char* kQuery = R"(
WITH windows AS (
  SELECT IoTHub.ConnectionDeviceId AS deviceId, System.Timestamp() AS windowEnd,
         COUNT(*) AS n, AVG(temperature) AS avgTemp
  FROM telemetry TIMESTAMP BY ts
  GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(second, 1)
  HAVING AVG(temperature) > 25
)
SELECT w.deviceId, w.windowEnd, w.n, w.avgTemp, r.threshold
INTO alerts
FROM windows w JOIN thresholds r ON w.deviceId = r.deviceId
WHERE w.avgTemp > r.threshold
)";

// The temperature each device sends in window `w` (constant within a window).
double Temperature(const std::string& device, int w) {
  if (device == "dev-a") return w % 3 == 0 ? 40 : w % 3 == 1 ? 35 : 20;  // threshold 30
  return w % 4 == 0 ? 60 : 40;                                           // dev-b: threshold 50
}
double Threshold(const std::string& device) {
  return device == "dev-a" ? 30 : 50;
}

class AsaServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/mosquitto_pub", X_OK) != 0) {
      GTEST_SKIP() << "mosquitto-clients is not installed (scripts/install-deps installs it)";
    }
    server_ = std::make_unique<OrreryServer>(
        "asa", std::vector<std::string>{},
        std::vector<std::string>{"ORRERY_ASA_WEBHOOK_CA_FILE=" + hook_.ca().string(),
                                 "ORRERY_ASA_CHECKPOINT_INTERVAL=300ms"});
    ASSERT_TRUE(server_->started()) << server_->process().output();
    auto cs = Process::Spawn(
        {OrreryBinary(), "hub", "connection-string", "--data-dir", server_->data_dir().string()});
    ASSERT_EQ(cs->Wait(), 0);
    auto parsed =
        hub::ParseServiceConnectionString(cs->output().substr(0, cs->output().find('\n')));
    token_ = *hub::MakeSasToken(parsed->host_name, parsed->key, timeutil::NowMs() / 1000 + 3600,
                                parsed->key_name);
    trust_.tls.ca_file = server_->ca_file();
  }

  net::HttpResponse Call(const std::string& method, const std::string& path,
                         const std::string& body = {}) {
    net::Headers h;
    h.Set("Authorization", token_);
    auto r = net::Fetch(method, server_->Url(path + "?api-version=2021-04-12"), h, body, trust_);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : net::HttpResponse{};
  }

  // A device's SAS token (creating the device).
  std::string Device(const std::string& id) {
    auto dev = Call("PUT", "/devices/" + id, "{}");
    EXPECT_EQ(dev.status, 200) << dev.body;
    std::string key(json::parse(dev.body)
                        .as_object()["authentication"]
                        .as_object()["symmetricKey"]
                        .as_object()["primaryKey"]
                        .as_string());
    return *hub::MakeSasToken("localhost/devices/" + id, key, timeutil::NowMs() / 1000 + 3600, "",
                              /*encode_resource=*/true);
  }

  // QoS 1 telemetry from `device`, one message per line; returns once every PUBACK came.
  void Publish(const std::string& device, const std::string& token,
               const std::vector<std::string>& lines) {
    auto file = server_->data_dir() / (device + "-lines.txt");
    {
      std::ofstream f(file);
      for (auto& l : lines)
        f << l << "\n";
    }
    auto feed = Process::Spawn(
        {"sh", "-c",
         fmt::format("mosquitto_pub -h 127.0.0.1 -p {} -V mqttv311 -q 1 -i {} -u "
                     "'localhost/{}/?api-version=2021-04-12' -P '{}' -t "
                     "'devices/{}/messages/events/' -l < '{}'",
                     server_->ports().mqtt, device, device, token, device, file.string())});
    ASSERT_EQ(feed->Wait(std::chrono::seconds(60)), 0) << feed->output();
  }

  // `orrery asa job …` against the server; returns its exit status, output in `out`.
  int Cli(std::vector<std::string> args, std::string* out = nullptr) {
    std::vector<std::string> argv{OrreryBinary(), "asa", "job"};
    argv.insert(argv.end(), args.begin(), args.end());
    for (auto a : {"--data-dir", server_->data_dir().c_str()})
      argv.push_back(a);
    argv.push_back("--https-port");
    argv.push_back(std::to_string(server_->ports().https));
    auto p = Process::Spawn(argv);
    int rc = p->Wait(std::chrono::seconds(30)).value_or(-1);
    if (out) *out = p->output();
    return rc;
  }

  std::filesystem::path WriteFile(const std::string& name, const std::string& text) {
    auto path = server_->data_dir() / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path;
  }

  // Lines of window w for a device: four events 250 ms apart in event time.
  std::vector<std::string> WindowLines(const std::string& device, int from, int to) {
    std::vector<std::string> lines;
    for (int w = from; w < to; ++w) {
      for (int k = 0; k < 4; ++k) {
        lines.push_back(json::serialize(
            json::object{{"ts", timeutil::FormatUtcMs(base_ms_ + w * 1000 + k * 250 + 100)},
                         {"temperature", Temperature(device, w)}}));
      }
    }
    return lines;
  }

  testing::WebhookReceiver hook_;
  std::unique_ptr<OrreryServer> server_;
  std::string token_;
  net::HttpClientOptions trust_;
  // Event times start two minutes back, on a whole second.
  int64_t base_ms_ = (timeutil::NowMs() / 1000 - 120) * 1000;
};

TEST_F(AsaServeTest, AlertsOfEveryWindowArriveAcrossSigkill) {
  std::map<std::string, std::string> tokens;
  for (std::string d : {"dev-a", "dev-b"})
    tokens[d] = Device(d);
  WriteFile("asa/reference/thresholds.csv", "deviceId,threshold\ndev-a,30\ndev-b,50\n");
  // Parsed rather than built: GCC 12 warns about nested json initialisers.
  json::object def = json::parse(fmt::format(R"j({{
      "inputs": [{{"name": "telemetry", "source": "iothub"}}],
      "references": [{{"name": "thresholds", "path": "thresholds.csv"}}],
      "outputs": [{{"name": "alerts", "type": "webhook", "url": "{}", "secret": "alert-secret"}}],
      "eventOrdering": {{"lateArrivalToleranceInSeconds": 600, "outOfOrderToleranceInSeconds": 2}}
    }})j",
                                             hook_.url()))
                         .as_object();
  def["query"] = kQuery;
  auto def_file = WriteFile("alerts.json", json::serialize(def));
  std::string out;
  ASSERT_EQ(Cli({"create", "alerts", "--definition", def_file.string()}, &out), 0) << out;
  ASSERT_EQ(Cli({"start", "alerts"}, &out), 0) << out;
  EXPECT_NE(out.find("\"Running\""), std::string::npos) << out;

  // The alerts the test expects: (device, window end).
  constexpr int kWindows = 20;
  std::map<std::pair<std::string, std::string>, double> expected;
  for (std::string d : {"dev-a", "dev-b"}) {
    for (int w = 0; w < kWindows; ++w) {
      double t = Temperature(d, w);
      if (t > 25 && t > Threshold(d)) {
        expected[{d, stream::FormatDateTime((base_ms_ + (w + 1) * 1000) * 1000)}] = t;
      }
    }
  }
  auto received = [&] {
    std::map<std::pair<std::string, std::string>, std::vector<json::object>> got;
    for (auto& req : hook_.received()) {
      json::value batch = json::parse(req.body);
      for (auto& row : batch.as_array()) {
        auto& o = row.as_object();
        got[{std::string(o.at("deviceId").as_string()), std::string(o.at("windowEnd").as_string())}]
            .push_back(o);
      }
    }
    return got;
  };

  // Window by window, the devices in turn (so events are out of order by at most a window,
  // within the 2 s tolerance). First half, then SIGKILL once some alerts came: later windows
  // are open in the engine then.
  auto send = [&](int from, int to) {
    for (int w = from; w < to; ++w) {
      for (auto& [d, token] : tokens)
        Publish(d, token, WindowLines(d, w, w + 1));
    }
  };
  send(0, kWindows / 2);
  ASSERT_TRUE(hook_.WaitUntil([&] { return received().size() >= 2; }))
      << server_->process().output();
  server_->Restart(SIGKILL);
  ASSERT_TRUE(server_->started()) << server_->process().output();

  // Second half, and an event far later that closes every window.
  send(kWindows / 2, kWindows);
  Publish("dev-a", tokens["dev-a"],
          {json::serialize(json::object{{"ts", timeutil::FormatUtcMs(base_ms_ + 100'000)},
                                        {"temperature", 0}})});
  ASSERT_TRUE(hook_.WaitUntil([&] {
    auto got = received();
    for (auto& [key, t] : expected) {
      if (!got.contains(key)) return false;
    }
    return true;
  })) << server_->process().output();

  auto got = received();
  for (auto& [key, rows] : got) {
    ASSERT_TRUE(expected.contains(key)) << key.first << " " << key.second << " is not an alert";
    for (auto& row : rows) {
      EXPECT_EQ(row.at("n").to_number<int64_t>(), 4) << json::serialize(row);
      EXPECT_DOUBLE_EQ(row.at("avgTemp").to_number<double>(), expected[key]);
      EXPECT_DOUBLE_EQ(row.at("threshold").to_number<double>(), Threshold(key.first));
    }
  }
  // Every batch is signed with the output's secret.
  for (auto& req : hook_.received()) {
    EXPECT_EQ(req.headers.Get("X-Orrery-Signature").value_or(""),
              "sha256=" + routing::WebhookSignature("alert-secret", req.body));
  }
  ASSERT_EQ(Cli({"show", "alerts"}, &out), 0) << out;
  auto shown = json::parse(out).as_object();
  EXPECT_EQ(shown["state"], "Running");
  EXPECT_GT(shown["metrics"].as_object()["replayedEvents"].to_number<int64_t>(), 0) << out;
}

TEST_F(AsaServeTest, RefusesBadQueriesWithLineAndColumnAndWritesDerivedStreams) {
  std::string token = Device("dev-c");
  json::object def = json::parse(R"({
      "inputs": [{"name": "telemetry"}],
      "outputs": [{"name": "hot", "type": "stream"}]})")
                         .as_object();
  def["query"] = "SELECT deviceId,\n  temperature * 2 AS doubled INTO hot\nFROM telemetry WHERE";
  std::string out;
  ASSERT_EQ(Cli({"create", "derive", "--definition",
                 WriteFile("bad.json", json::serialize(def)).string()},
                &out),
            1)
      << out;
  EXPECT_NE(out.find("line 3"), std::string::npos) << out;
  EXPECT_NE(out.find("column"), std::string::npos) << out;

  def["query"] =
      "SELECT IoTHub.ConnectionDeviceId AS source, temperature * 2 AS doubled,\n"
      "  GetMetadataPropertyValue(telemetry, '[User].[site]') AS site\n"
      "INTO hot FROM telemetry WHERE temperature > 10";
  ASSERT_EQ(Cli({"create", "derive", "--definition",
                 WriteFile("good.json", json::serialize(def)).string()},
                &out),
            0)
      << out;
  ASSERT_EQ(Cli({"start", "derive"}, &out), 0) << out;
  // A message with an application property: the topic's property bag.
  auto feed = Process::Spawn(
      {"sh", "-c",
       fmt::format("mosquitto_pub -h 127.0.0.1 -p {} -V mqttv311 -q 1 -i dev-c -u "
                   "'localhost/dev-c/?api-version=2021-04-12' -P '{}' -t "
                   "'devices/dev-c/messages/events/site=plant-7' -m '{{\"temperature\": 21}}'",
                   server_->ports().mqtt, token)});
  ASSERT_EQ(feed->Wait(std::chrono::seconds(30)), 0) << feed->output();
  auto mon =
      Process::Spawn({OrreryBinary(), "monitor-events", "--data-dir", server_->data_dir().string(),
                      "--https-port", std::to_string(server_->ports().https), "--from", "earliest",
                      "--count", "2", "--timeout", "20", "--properties", "all"});
  ASSERT_EQ(mon->Wait(std::chrono::seconds(60)), 0) << mon->output();
  EXPECT_NE(mon->output().find("\"doubled\": 42"), std::string::npos) << mon->output();
  EXPECT_NE(mon->output().find("\"site\": \"plant-7\""), std::string::npos) << mon->output();
  EXPECT_NE(mon->output().find("\"asa-job\": \"derive\""), std::string::npos) << mon->output();
  // Running jobs are neither replaced nor deleted; stopped ones are.
  EXPECT_EQ(Cli({"delete", "derive"}, &out), 1) << out;
  EXPECT_NE(out.find("409"), std::string::npos) << out;
  ASSERT_EQ(Cli({"stop", "derive"}, &out), 0) << out;
  EXPECT_NE(out.find("\"Stopped\""), std::string::npos) << out;
  ASSERT_EQ(Cli({"list"}, &out), 0) << out;
  EXPECT_NE(out.find("\"derive\""), std::string::npos) << out;
  ASSERT_EQ(Cli({"delete", "derive"}, &out), 0) << out;
  EXPECT_EQ(Cli({"show", "derive"}, &out), 1) << out;
}

}  // namespace
}  // namespace orrery
