// Message routing through the real `orrery serve`: device telemetry routed by a $body
// condition to a storage endpoint (Avro, read back by the independent avsc reader and matched
// record by record), to a webhook receiver that fails for a while and then recovers (every
// message arrives, every signature verifies), and the server killed with SIGKILL mid-stream
// and restarted (nothing acknowledged is lost).
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/time.h"
#include "hub/sas.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/test_certs.h"
#include "routing/endpoints.h"
#include "test/support/orrery_server.h"
#include "test/support/webhook_receiver.h"

namespace orrery {
namespace {
namespace json = boost::json;
using testing::OrreryBinary;
using testing::OrreryServer;
using testing::Process;

std::filesystem::path SourceDir() {
  const char* src = std::getenv("ORRERY_SOURCE_DIR");
  return src ? src : ".";
}

// The webhook receiver, with what routing's batches carry: IoT Hub routing records.
class Receiver {
 public:
  explicit Receiver(int fail_first) : hook_(fail_first, "routing-receiver") {}
  uint16_t port() const { return hook_.port(); }
  std::filesystem::path ca() const { return hook_.ca(); }
  std::set<std::string> messages() {
    std::set<std::string> out;
    for (auto& rec : records()) {
      auto& body = rec.at("Body");
      out.insert(body.is_string() ? std::string(body.as_string()) : json::serialize(body));
    }
    return out;
  }
  std::vector<json::object> records() {
    std::vector<json::object> out;
    for (auto& req : hook_.received()) {
      json::value batch = json::parse(req.body);
      for (auto& rec : batch.as_array())
        out.push_back(rec.as_object());
    }
    return out;
  }
  int requests() { return hook_.attempts(); }
  int bad_signatures() {
    int bad = 0;
    for (auto& req : hook_.received()) {
      std::string sig(req.headers.Get("X-Orrery-Signature").value_or(""));
      bad += sig != "sha256=" + routing::WebhookSignature("hook-secret", req.body);
    }
    return bad;
  }
  // Waits until `n` distinct messages arrived.
  bool WaitFor(size_t n) {
    return hook_.WaitUntil([&] { return messages().size() >= n; });
  }

 private:
  testing::WebhookReceiver hook_;
};

class RoutingServeTest : public ::testing::Test {
 protected:
  void Start(const Receiver& receiver) {
    server_ = std::make_unique<OrreryServer>(
        "routing", std::vector<std::string>{},
        std::vector<std::string>{"ORRERY_ROUTING_MIN_BATCH_FREQUENCY=1s",
                                 "ORRERY_ROUTING_WEBHOOK_CA_FILE=" + receiver.ca().string()});
    ASSERT_TRUE(server_->started()) << server_->process().output();
    auto cs = Process::Spawn(
        {OrreryBinary(), "hub", "connection-string", "--data-dir", server_->data_dir().string()});
    ASSERT_EQ(cs->Wait(), 0);
    auto parsed =
        hub::ParseServiceConnectionString(cs->output().substr(0, cs->output().find('\n')));
    service_token_ = *hub::MakeSasToken(parsed->host_name, parsed->key,
                                        timeutil::NowMs() / 1000 + 3600, parsed->key_name);
    trust_.tls.ca_file = server_->ca_file();
    auto dev = Call("PUT", "/devices/route-dev", "{}", service_token_);
    ASSERT_EQ(dev.status, 200) << dev.body;
    std::string key(json::parse(dev.body)
                        .as_object()["authentication"]
                        .as_object()["symmetricKey"]
                        .as_object()["primaryKey"]
                        .as_string());
    device_token_ = *hub::MakeSasToken("localhost/devices/route-dev", key,
                                       timeutil::NowMs() / 1000 + 3600, "", true);
  }
  net::HttpResponse Call(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& token,
                         std::vector<std::pair<std::string, std::string>> headers = {}) {
    net::Headers h;
    h.Set("Authorization", token);
    for (auto& [k, v] : headers)
      h.Set(k, v);
    auto r = net::Fetch(method, server_->Url(path + "?api-version=2021-04-12"), h, body, trust_);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : net::HttpResponse{};
  }
  // Device telemetry over HTTPS (acknowledged once durable).
  void Send(const std::string& body, const std::string& id) {
    auto r = Call("POST", "/devices/route-dev/messages/events", body, device_token_,
                  {{"iothub-contenttype", "application/json"},
                   {"iothub-contentencoding", "utf-8"},
                   {"iothub-messageid", id},
                   {"iothub-app-origin", "test"}});
    ASSERT_EQ(r.status, 204) << r.body;
  }
  void Configure(uint16_t hook_port) {
    auto r = Call("PUT", "/routing",
                  fmt::format(R"({{"endpoints":{{
                      "storageContainers":[{{"name":"cold","encoding":"avro",
                                             "batchFrequencyInSeconds":1}}],
                      "webhooks":[{{"name":"hooks","url":"https://localhost:{}/hook",
                                    "secret":"hook-secret","maxBatchSize":5}}]}},
                    "routes":[{{"name":"hot","condition":"$body.temperature > 30",
                                "endpointNames":["cold"]}},
                              {{"name":"everything","condition":"true",
                                "endpointNames":["hooks"]}}],
                    "enrichments":[{{"key":"site","value":"plant-7","endpointNames":["cold"]}}]}})",
                              hook_port),
                  service_token_, {{"Content-Type", "application/json"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"secret\":\"********\""), std::string::npos) << r.body;
  }
  // Every record of every Avro file under the storage endpoint, read by avsc.
  std::vector<json::object> ArchivedRecords() {
    std::vector<json::object> out;
    auto root = server_->data_dir() / "archive" / "cold";
    if (!std::filesystem::exists(root)) return out;
    for (auto& f : std::filesystem::recursive_directory_iterator(root)) {
      if (!f.is_regular_file() || f.path().extension() != ".avro") continue;
      auto p =
          Process::Spawn({"node", (SourceDir() / "test/conformance/avro/read_avro.js").string(),
                          f.path().string()});
      EXPECT_EQ(p->Wait(), 0) << p->output();
      std::string text = p->output();
      size_t at = 0;
      while (at < text.size()) {
        size_t nl = text.find('\n', at);
        std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        if (!line.empty()) out.push_back(json::parse(line).as_object());
        if (nl == std::string::npos) break;
        at = nl + 1;
      }
    }
    return out;
  }
  bool NodeReady() {
    return ::access("/usr/bin/node", X_OK) == 0 || ::access("/usr/local/bin/node", X_OK) == 0;
  }

  std::unique_ptr<OrreryServer> server_;
  std::string service_token_, device_token_;
  net::HttpClientOptions trust_;
};

TEST_F(RoutingServeTest, BodyConditionToAvroStorageAndEverythingToARecoveringWebhook) {
  if (!NodeReady()) GTEST_SKIP() << "node is not installed (scripts/install-deps installs it)";
  ASSERT_TRUE(std::filesystem::exists(SourceDir() / "test/conformance/avro/node_modules/avsc"))
      << "run scripts/install-node-deps (make test does)";
  Receiver receiver(/*fail_first=*/3);
  Start(receiver);
  Configure(receiver.port());
  const std::vector<int> temperatures = {10, 35, 20, 40, 31, 5, 30, 99};
  std::set<std::string> hot, all;
  for (size_t i = 0; i < temperatures.size(); ++i) {
    std::string body = fmt::format(R"({{"temperature":{},"n":{}}})", temperatures[i], i);
    Send(body, fmt::format("m{}", i));
    all.insert(body);
    if (temperatures[i] > 30) hot.insert(body);
  }
  // Webhook: the receiver refuses three requests, then every message arrives, signed.
  ASSERT_TRUE(receiver.WaitFor(all.size())) << receiver.messages().size() << " of " << all.size();
  EXPECT_EQ(receiver.messages(), all);
  EXPECT_GT(receiver.requests(), 3);
  EXPECT_EQ(receiver.bad_signatures(), 0);
  // Storage: once the 1 s batch is published, exactly the hot messages, with their properties.
  std::vector<json::object> records;
  for (int i = 0; i < 200 && records.size() < hot.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // waiting for the batch file
    records = ArchivedRecords();
  }
  std::set<std::string> archived;
  for (auto& r : records) {
    archived.insert(*crypto::Base64Decode(r["Body"].as_string()));
    auto& props = r["Properties"].as_object();
    EXPECT_EQ(props["origin"], "test");
    EXPECT_EQ(props["site"], "plant-7");  // the enrichment
    auto& sys = r["SystemProperties"].as_object();
    EXPECT_EQ(sys["connectionDeviceId"], "route-dev");
    EXPECT_EQ(sys["contentType"], "application/json");
    EXPECT_TRUE(sys.contains("messageId"));
    EXPECT_TRUE(std::string(r["EnqueuedTimeUtc"].as_string()).ends_with("Z"));
  }
  EXPECT_EQ(archived, hot);
  // The webhook's health, through the API.
  auto health = Call("GET", "/routing/endpoints/health", "", service_token_);
  EXPECT_NE(health.body.find(R"("endpointId":"hooks","healthStatus":"healthy")"), std::string::npos)
      << health.body;
  // The built-in endpoint: no route sends there and the fallback only takes unrouted
  // messages, so monitor-events sees none of these.
  auto mon = Process::Spawn(
      {OrreryBinary(), "monitor-events", "--data-dir", server_->data_dir().string(), "--https-port",
       std::to_string(server_->ports().https), "--from", "earliest", "--timeout", "2"});
  EXPECT_EQ(mon->Wait(std::chrono::seconds(30)), 0) << mon->output();
  EXPECT_EQ(mon->output().find("\"origin\""), std::string::npos) << mon->output();
  // Test route APIs.
  auto test = Call("POST", "/routing/routes/$testnew",
                   R"({"message":{"body":"{\"temperature\":50}","systemProperties":)"
                   R"({"contentType":"application/json","contentEncoding":"utf-8"}},)"
                   R"("route":{"condition":"$body.temperature > 30"}})",
                   service_token_, {{"Content-Type", "application/json"}});
  EXPECT_NE(test.body.find(R"("result":"true")"), std::string::npos) << test.body;
  auto all_routes = Call("POST", "/routing/routes/$testall",
                         R"({"routingSource":"DeviceMessages","message":{"body":"{}",)"
                         R"("systemProperties":{"contentType":"application/json",)"
                         R"("contentEncoding":"utf-8"}}})",
                         service_token_, {{"Content-Type", "application/json"}});
  EXPECT_NE(all_routes.body.find(R"("name":"everything")"), std::string::npos) << all_routes.body;
  EXPECT_EQ(all_routes.body.find(R"("name":"hot")"), std::string::npos) << all_routes.body;
  auto bad = Call("PUT", "/routing",
                  R"({"routes":[{"name":"x","condition":"$body.t >","endpointNames":["events"]}]})",
                  service_token_, {{"Content-Type", "application/json"}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("route 'x'"), std::string::npos) << bad.body;
}

TEST_F(RoutingServeTest, NothingAcknowledgedIsLostAcrossSigkill) {
  Receiver receiver(/*fail_first=*/0);
  Start(receiver);
  Configure(receiver.port());
  std::set<std::string> sent;
  auto burst = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      std::string body = fmt::format(R"({{"temperature":{},"n":{}}})", 20 + i % 20, i);
      Send(body, fmt::format("k{}", i));
      sent.insert(body);
    }
  };
  burst(0, 60);
  server_->Restart(SIGKILL);  // mid-stream: deliveries and batches are in flight
  ASSERT_TRUE(server_->started()) << server_->process().output();
  burst(60, 100);
  ASSERT_TRUE(receiver.WaitFor(sent.size())) << receiver.messages().size() << " of " << sent.size();
  auto got = receiver.messages();
  for (auto& s : sent)
    EXPECT_TRUE(got.count(s)) << "lost: " << s;
  // The routing configuration survived the kill too.
  auto config = Call("GET", "/routing", "", service_token_);
  EXPECT_NE(config.body.find("\"name\":\"everything\""), std::string::npos) << config.body;
}

// IoT Hub's system events, routed by their sources: a device's lifecycle, its twin changes
// and its connection state reach the webhook with IoT Hub's properties; telemetry does not.
TEST_F(RoutingServeTest, SystemEventsReachTheirRoutes) {
  if (::access("/usr/bin/mosquitto_pub", X_OK) != 0) {
    GTEST_SKIP() << "mosquitto-clients is not installed (scripts/install-deps installs it)";
  }
  Receiver receiver(0);
  Start(receiver);
  auto r = Call("PUT", "/routing",
                fmt::format(R"({{"endpoints":{{"webhooks":[{{"name":"ops",
                    "url":"https://localhost:{}/hook","secret":"hook-secret"}}]}},
                  "routes":[{{"name":"life","source":"DeviceLifecycleEvents","endpointNames":["ops"]}},
                            {{"name":"twins","source":"TwinChangeEvents","endpointNames":["ops"]}},
                            {{"name":"conn","source":"DeviceConnectionStateEvents",
                              "condition":"opType = 'deviceConnected'","endpointNames":["ops"]}}]}})",
                            receiver.port()),
                service_token_, {{"Content-Type", "application/json"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto created = Call("PUT", "/devices/evt-dev", "{}", service_token_);
  ASSERT_EQ(created.status, 200) << created.body;
  ASSERT_EQ(Call("PATCH", "/twins/evt-dev", R"({"tags":{"zone":"north"}})", service_token_,
                 {{"Content-Type", "application/json"}})
                .status,
            200);
  // Connect and disconnect it over MQTT (only the connect is routed, by its condition).
  std::string key(json::parse(created.body)
                      .as_object()["authentication"]
                      .as_object()["symmetricKey"]
                      .as_object()["primaryKey"]
                      .as_string());
  auto sas = *hub::MakeSasToken("localhost/devices/evt-dev", key, timeutil::NowMs() / 1000 + 600,
                                "", true);
  auto pub = Process::Spawn({"mosquitto_pub", "-h", "127.0.0.1", "-p",
                             std::to_string(server_->ports().mqtt), "-V", "mqttv311", "-q", "1",
                             "-i", "evt-dev", "-u", "localhost/evt-dev/?api-version=2021-04-12",
                             "-P", sas, "-t", "devices/evt-dev/messages/events/", "-m", "{}"});
  ASSERT_EQ(pub->Wait(), 0) << pub->output();
  ASSERT_EQ(Call("DELETE", "/devices/evt-dev", "", service_token_, {{"If-Match", "\"*\""}}).status,
            204);
  std::map<std::string, json::object> by_op;
  for (int i = 0; i < 400 && by_op.size() < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // waiting for the receiver
    for (auto& rec : receiver.records()) {
      auto& props = rec.at("Properties").as_object();
      if (auto* op = props.if_contains("opType")) by_op[std::string(op->as_string())] = rec;
    }
  }
  for (auto op :
       {"createDeviceIdentity", "updateTwin", "deviceConnected", "deleteDeviceIdentity"}) {
    ASSERT_TRUE(by_op.count(op)) << "missing " << op;
    auto& props = by_op[op].at("Properties").as_object();
    EXPECT_EQ(props.at("deviceId"), "evt-dev");
    EXPECT_EQ(props.at("hubName"), "localhost");
    EXPECT_TRUE(props.contains("operationTimestamp"));
    EXPECT_TRUE(props.contains("iothub-message-schema"));
  }
  EXPECT_FALSE(by_op.count("deviceDisconnected"));  // the condition left it out
  auto& twin = by_op["updateTwin"].at("Body").as_object();
  EXPECT_EQ(twin.at("tags").as_object().at("zone"), "north");
  EXPECT_TRUE(twin.contains("version"));
  EXPECT_EQ(by_op["createDeviceIdentity"].at("Body").as_object().at("deviceId"), "evt-dev");
  EXPECT_TRUE(by_op["deviceConnected"].at("Body").as_object().contains("sequenceNumber"));
  // Telemetry matched no route here and the fallback sends it to the built-in endpoint only.
  for (auto& rec : receiver.records()) {
    EXPECT_TRUE(rec.at("Properties").as_object().contains("opType"));
  }
}

}  // namespace
}  // namespace orrery
