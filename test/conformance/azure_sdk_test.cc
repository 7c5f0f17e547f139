// The unmodified Azure IoT Node.js SDKs (azure-iot-device, -mqtt, -http, azure-iothub, and the
// DPS ones: azure-iot-provisioning-device, -mqtt, -http, azure-iot-security-symmetric-key,
// -x509, azure-iot-provisioning-service; pinned by test/conformance/azure-sdk/package-lock.json)
// against a real `orrery serve` on the ports they insist on: HTTPS 443 and MQTT/TLS 8883, with
// the development CA trusted through NODE_EXTRA_CA_CERTS (wire contract §8). Each scenario is a
// Node script that exits 0 only when every check passed; what must reach the event log is then
// read back with `orrery monitor-events`, the way a user would look at it.
//
// Binding 443 needs root (or CAP_NET_BIND_SERVICE): elsewhere the suite skips with a reason.
// The node_modules folder is installed by `make test` (scripts/install-node-deps).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "pki/pki.h"
#include "test/support/orrery_server.h"

namespace orrery {
namespace {
using testing::OrreryBinary;
using testing::OrreryServer;
using testing::Process;

std::filesystem::path SdkDir() {
  const char* src = std::getenv("ORRERY_SOURCE_DIR");
  return std::filesystem::path(src ? src : ".") / "test" / "conformance" / "azure-sdk";
}

class AzureSdkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_reason_ =
          "the Azure SDKs only use port 443, which needs root (or CAP_NET_BIND_SERVICE) to bind";
      return;
    }
    if (!std::filesystem::exists(SdkDir() / "node_modules" / "azure-iothub")) {
      missing_ = "the Azure SDKs are not installed in " + SdkDir().string() +
                 "/node_modules: run scripts/install-node-deps (make test does)";
      return;
    }
    server_ = new OrreryServer("azure-sdk", {.https = 443, .mqtts = 8883}, "localhost");
    if (!server_->started()) return;
    auto cs = Process::Spawn(
        {OrreryBinary(), "hub", "connection-string", "--data-dir", server_->data_dir().string()});
    if (cs->Wait() == 0) service_cs_ = cs->output().substr(0, cs->output().find('\n'));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(missing_.empty()) << missing_;
    ASSERT_TRUE(server_->started()) << server_->process().output();
    ASSERT_FALSE(service_cs_.empty());
  }

  // Runs a scenario script; returns its output after asserting that it passed.
  static std::string Scenario(const std::string& script, std::vector<std::string> args = {},
                              std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {"node", (SdkDir() / script).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    env.push_back("SERVICE_CS=" + service_cs_);
    env.push_back("ORRERY_CA=" + server_->ca_file().string());
    env.push_back("NODE_EXTRA_CA_CERTS=" + server_->ca_file().string());
    auto p = Process::Spawn(argv, env, SdkDir());
    auto code = p->Wait(std::chrono::seconds(170));
    p->Drain();
    server_->process().Drain();
    EXPECT_EQ(code, 0) << script << " failed:\n"
                       << p->output() << "\n--- server log ---\n"
                       << server_->process().output();
    EXPECT_NE(p->output().find("\nPASS"), std::string::npos) << p->output();
    return p->output();
  }

  // What `orrery monitor-events` prints for a device's first `count` events.
  static std::string Events(const std::string& device, int count) {
    auto p = Process::Spawn({OrreryBinary(), "monitor-events", "--data-dir",
                             server_->data_dir().string(), "--https-port", "443", "--device-id",
                             device, "--from", "earliest", "--count", std::to_string(count),
                             "--properties", "all", "--timeout", "20"});
    EXPECT_EQ(p->Wait(std::chrono::seconds(40)), 0) << p->output();
    return p->output();
  }

  static inline OrreryServer* server_ = nullptr;
  static inline std::string skip_reason_, missing_, service_cs_;
};

#define EXPECT_HAS(haystack, needle)                                                       \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "missing: " << (needle) << "\n" \
                                                        << (haystack)

TEST_F(AzureSdkTest, MqttDeviceWithConnectionString) {
  Scenario("device_mqtt.js", {}, {"SCENARIO_PREFIX=conf"});
  // The telemetry reached the event log with its system and application properties intact.
  std::string ev = Events("conf-mqtt-dev", 1);
  EXPECT_HAS(ev, R"("seq": 1)");
  EXPECT_HAS(ev, R"("alert": "yes&no")");
  EXPECT_HAS(ev, R"("city": "Zürich")");
  EXPECT_HAS(ev, R"("message-id": "conf-mqtt-dev-m1")");
  EXPECT_HAS(ev, R"("correlation-id": "corr 1")");
  EXPECT_HAS(ev, R"("user-id": "user-1")");
  EXPECT_HAS(ev, R"("content-type": "application/json")");
  EXPECT_HAS(ev, R"("content-encoding": "utf-8")");
  EXPECT_HAS(ev, R"("iothub-connection-device-id": "conf-mqtt-dev")");
  EXPECT_HAS(ev, R"(\"type\":\"sas\")");
  EXPECT_HAS(ev, R"("iothub-message-source": "Telemetry")");
}

TEST_F(AzureSdkTest, MqttOverWebSockets) {
  Scenario("device_mqtt.js", {"--ws"}, {"SCENARIO_PREFIX=conf"});
  EXPECT_HAS(Events("conf-ws-dev", 1), R"("message-id": "conf-ws-dev-m1")");
}

TEST_F(AzureSdkTest, ModuleClient) {
  Scenario("module.js", {}, {"SCENARIO_PREFIX=conf"});
  std::string ev = Events("conf-edge", 1);
  EXPECT_HAS(ev, R"("iothub-connection-module-id": "sensor")");
  EXPECT_HAS(ev, R"("source": "module")");
  EXPECT_HAS(ev, R"(\"scope\":\"module\")");
}

TEST_F(AzureSdkTest, X509SelfSignedDevice) {
  const std::string id = "conf-x509-dev";
  auto cert = pki::CreateSelfSigned({.common_name = id, .usage = pki::Usage::kClient, .days = 30});
  ASSERT_TRUE(cert) << cert.error().message();
  auto thumb = pki::ThumbprintSha1(cert->cert_pem);
  ASSERT_TRUE(thumb);
  auto dir = server_->data_dir() / "x509-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "device.pem") << cert->cert_pem;
  std::ofstream(dir / "device-key.pem") << cert->key_pem;
  // A CA registered with `orrery hub ca`, verified by proof of possession, issues the
  // certificate of a certificateAuthority device.
  auto root = pki::CreateRootCa("Conformance Device CA");
  ASSERT_TRUE(root);
  std::ofstream(dir / "ca.pem") << root->cert_pem;
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {OrreryBinary(), "hub", "ca"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--data-dir", server_->data_dir().string(), "--https-port", "443"});
    auto p = Process::Spawn(argv);
    EXPECT_EQ(p->Wait(), 0) << p->output();
    return p->output();
  };
  cli({"add", "conf-root", "--cert", (dir / "ca.pem").string()});
  std::string coded = cli({"verification-code", "conf-root"});
  auto at = coded.find("\"verificationCode\": \"");
  ASSERT_NE(at, std::string::npos) << coded;
  std::string code = coded.substr(at + 21, 32);
  auto proof = pki::IssueCertificate(*root, {.common_name = code});
  ASSERT_TRUE(proof);
  std::ofstream(dir / "proof.pem") << proof->cert_pem;
  EXPECT_HAS(cli({"verify", "conf-root", "--cert", (dir / "proof.pem").string()}),
             R"("isVerified": true)");
  const std::string ca_id = "conf-x509-ca-dev";
  auto leaf = pki::IssueCertificate(*root, {.common_name = ca_id, .usage = pki::Usage::kClient});
  ASSERT_TRUE(leaf);
  std::ofstream(dir / "ca-device.pem") << leaf->cert_pem;
  std::ofstream(dir / "ca-device-key.pem") << leaf->key_pem;

  Scenario("x509.js", {},
           {"SCENARIO_PREFIX=conf", "X509_DEVICE_ID=" + id, "X509_THUMBPRINT=" + *thumb,
            "X509_CERT=" + (dir / "device.pem").string(),
            "X509_KEY=" + (dir / "device-key.pem").string(), "X509_CA_DEVICE_ID=" + ca_id,
            "X509_CA_CERT=" + (dir / "ca-device.pem").string(),
            "X509_CA_KEY=" + (dir / "ca-device-key.pem").string()});
  std::string ev = Events(id, 1);
  EXPECT_HAS(ev, R"("x509": true)");
  EXPECT_HAS(ev, R"(\"type\":\"x509Certificate\")");
  std::string ca_ev = Events(ca_id, 1);
  EXPECT_HAS(ca_ev, R"("ca": true)");
  EXPECT_HAS(ca_ev, R"(\"issuer\":\"external\")");
}

TEST_F(AzureSdkTest, HttpsDevice) {
  Scenario("device_http.js", {}, {"SCENARIO_PREFIX=conf"});
  std::string ev = Events("conf-http-dev", 4);
  EXPECT_HAS(ev, R"("via": "https")");
  EXPECT_HAS(ev, R"("transport": "http")");
  EXPECT_HAS(ev, R"("message-id": "conf-http-dev-m1")");
  EXPECT_HAS(ev, R"("batch": 3)");
  EXPECT_HAS(ev, R"("n": "2")");
}

TEST_F(AzureSdkTest, ServiceSdkRegistryQueriesJobsAndPolicies) {
  std::vector<std::string> env = {"SCENARIO_PREFIX=conf"};
  for (const char* policy : {"registryRead", "registryReadWrite", "service", "device"}) {
    auto cs = Process::Spawn({OrreryBinary(), "hub", "connection-string", "--data-dir",
                              server_->data_dir().string(), "--policy", policy});
    ASSERT_EQ(cs->Wait(), 0) << cs->output();
    env.push_back(std::string("POLICY_CS_") + policy + "=" +
                  cs->output().substr(0, cs->output().find('\n')));
  }
  Scenario("service.js", {}, env);
}

// The Device Provisioning Service with the unmodified DPS SDKs (dps.js): enrollments and
// groups over the provisioning service API, devices provisioned over MQTT and HTTPS with
// symmetric keys (individual and group-derived) and X.509 (a self-signed certificate, a leaf of
// a group's CA), then connected to the hub they were assigned; their telemetry is read back.
TEST_F(AzureSdkTest, DpsProvisioning) {
  auto dps = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {OrreryBinary(), "dps"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--data-dir", server_->data_dir().string()});
    auto p = Process::Spawn(argv);
    EXPECT_EQ(p->Wait(), 0) << p->output();
    return p->output().substr(0, p->output().find('\n'));
  };
  std::string owner = dps({"connection-string"});
  std::string reader = dps({"connection-string", "--policy", "enrollmentread"});
  std::string writer = dps({"connection-string", "--policy", "enrollmentwrite"});
  std::string scope = dps({"id-scope"});
  ASSERT_NE(owner.find("SharedAccessKeyName=provisioningserviceowner"), std::string::npos) << owner;
  ASSERT_NE(reader.find("SharedAccessKeyName=enrollmentread"), std::string::npos) << reader;
  ASSERT_NE(writer.find("SharedAccessKeyName=enrollmentwrite"), std::string::npos) << writer;
  ASSERT_FALSE(scope.empty());

  // An individual X.509 enrollment's self-signed certificate, and a group's CA with a leaf.
  auto dir = server_->data_dir() / "dps-test";
  std::filesystem::create_directories(dir);
  auto self = pki::CreateSelfSigned(
      {.common_name = "conf-dps-x509", .usage = pki::Usage::kClient, .days = 30});
  ASSERT_TRUE(self) << self.error().message();
  std::ofstream(dir / "x509.pem") << self->cert_pem;
  std::ofstream(dir / "x509-key.pem") << self->key_pem;
  auto ca = pki::CreateRootCa("Conformance DPS Group CA");
  ASSERT_TRUE(ca) << ca.error().message();
  std::ofstream(dir / "group-ca.pem") << ca->cert_pem;
  auto leaf = pki::IssueCertificate(
      *ca, {.common_name = "conf-dps-x509g", .usage = pki::Usage::kClient, .days = 30});
  ASSERT_TRUE(leaf) << leaf.error().message();
  std::ofstream(dir / "group-leaf.pem") << leaf->cert_pem;
  std::ofstream(dir / "group-leaf-key.pem") << leaf->key_pem;

  std::vector<std::string> env = {"DPS_CS=" + owner,
                                  "DPS_CS_ENROLLMENTREAD=" + reader,
                                  "DPS_CS_ENROLLMENTWRITE=" + writer,
                                  "DPS_ID_SCOPE=" + scope,
                                  "DPS_X509_CERT=" + (dir / "x509.pem").string(),
                                  "DPS_X509_KEY=" + (dir / "x509-key.pem").string(),
                                  "DPS_X509_GROUP_CA=" + (dir / "group-ca.pem").string(),
                                  "DPS_X509_GROUP_CERT=" + (dir / "group-leaf.pem").string(),
                                  "DPS_X509_GROUP_KEY=" + (dir / "group-leaf-key.pem").string()};
  auto run = [&](const std::string& prefix) {
    auto e = env;
    e.push_back("SCENARIO_PREFIX=" + prefix);
    std::string out = Scenario("dps.js", {}, e);
    size_t checks = 0;
    for (size_t at = out.find("ok - "); at != std::string::npos; at = out.find("ok - ", at + 1))
      ++checks;
    EXPECT_GE(checks, 60u) << out;
    std::printf("dps.js (%s): %zu checks passed\n", prefix.c_str(), checks);
  };
  // Registrations answered at once (Orrery's default, dps.answer_within) ...
  run("conf");
  // Each provisioned device's telemetry reached the event log as the hub device it became.
  std::string g1 = Events("conf-dps-g1", 1);
  EXPECT_HAS(g1, R"("message-id": "conf-dps-g1-m1")");
  EXPECT_HAS(g1, R"("dps": "group")");
  EXPECT_HAS(g1, R"("iothub-connection-device-id": "conf-dps-g1")");
  std::string ind = Events("conf-dps-ind-dev", 1);
  EXPECT_HAS(ind, R"("message-id": "conf-dps-ind-dev-m1")");
  EXPECT_HAS(ind, R"("dps": "individual")");
  EXPECT_HAS(Events("conf-dps-x509", 1), R"("message-id": "conf-dps-x509-m1")");
  EXPECT_HAS(Events("conf-dps-x509g", 1), R"("message-id": "conf-dps-x509g-m1")");

  // ... and as Azure DPS always does: "assigning", then the SDK polls the operation after
  // retry-after. The same scenario, new ids and certificates, on a server that never answers
  // at once.
  auto poll_self = pki::CreateSelfSigned(
      {.common_name = "poll-dps-x509", .usage = pki::Usage::kClient, .days = 30});
  auto poll_leaf = pki::IssueCertificate(
      *ca, {.common_name = "poll-dps-x509g", .usage = pki::Usage::kClient, .days = 30});
  ASSERT_TRUE(poll_self && poll_leaf);
  std::ofstream(dir / "x509.pem") << poll_self->cert_pem;
  std::ofstream(dir / "x509-key.pem") << poll_self->key_pem;
  std::ofstream(dir / "group-leaf.pem") << poll_leaf->cert_pem;
  std::ofstream(dir / "group-leaf-key.pem") << poll_leaf->key_pem;
  auto saved = server_->env();
  auto polling = saved;
  polling.push_back("ORRERY_DPS_ANSWER_WITHIN=0s");
  server_->Stop();
  server_->SetEnv(polling);
  server_->Start();
  ASSERT_TRUE(server_->started()) << server_->process().output();
  run("poll");
  server_->Stop();
  server_->SetEnv(saved);
  server_->Start();
  ASSERT_TRUE(server_->started()) << server_->process().output();
  EXPECT_HAS(Events("poll-dps-g1", 1), R"("message-id": "poll-dps-g1-m1")");
}

// Azure Digital Twins' models API with @azure/digital-twins-core and @azure/identity's
// ClientSecretCredential (twins.js), on the twins port, with service principals made by
// `orrery identity sp create`: the RealEstateCore ontology from ../shared when present.
TEST_F(AzureSdkTest, DigitalTwinsModels) {
  auto principal = [](const char* name, const char* role) {
    auto p = Process::Spawn({OrreryBinary(), "identity", "sp", "create", "--data-dir",
                             server_->data_dir().string(), "--name", name, "--role", role});
    EXPECT_EQ(p->Wait(std::chrono::seconds(30)), 0) << p->output();
    auto out = p->output();
    auto first = out.find('{'), last = out.rfind('}');
    EXPECT_NE(first, std::string::npos) << out;
    return boost::json::parse(out.substr(first, last - first + 1)).as_object();
  };
  auto owner = principal("conformance-owner", "owner");
  auto reader = principal("conformance-reader", "reader");
  auto str = [](const boost::json::object& o, const char* k) {
    return std::string(o.at(k).as_string());
  };
  std::vector<std::string> env = {
      "TWINS_URL=https://localhost:" + std::to_string(server_->ports().twins),
      "AZURE_TENANT_ID=" + str(owner, "tenantId"),
      "AZURE_CLIENT_ID=" + str(owner, "clientId"),
      "AZURE_CLIENT_SECRET=" + str(owner, "clientSecret"),
      "READER_CLIENT_ID=" + str(reader, "clientId"),
      "READER_CLIENT_SECRET=" + str(reader, "clientSecret")};
  auto rec = SdkDir() / ".." / ".." / ".." / ".." / "shared" / "data" / "dtdl" /
             "realestatecore-building" / "Ontology";
  if (std::filesystem::exists(rec)) {
    env.push_back("REC_DIR=" + rec.string());
  } else {
    std::printf("RealEstateCore is absent (%s): twins.js uploads a small model set\n",
                rec.string().c_str());
  }
  // Event routes: twins.js's webhook receiver serves the server's own certificate, which the
  // server trusts once told to (a restart with twins.webhook_ca_file).
  auto saved = server_->env();
  auto trusting = saved;
  trusting.push_back("ORRERY_TWINS_WEBHOOK_CA_FILE=" + server_->ca_file().string());
  server_->Stop();
  server_->SetEnv(trusting);
  server_->Start();
  ASSERT_TRUE(server_->started()) << server_->process().output();
  env.push_back("HOOK_CERT=" + (server_->data_dir() / "tls" / "server.pem").string());
  env.push_back("HOOK_KEY=" + (server_->data_dir() / "tls" / "server-key.pem").string());
  std::string out = Scenario("twins.js", {}, env);
  server_->Stop();
  server_->SetEnv(saved);
  server_->Start();
  ASSERT_TRUE(server_->started()) << server_->process().output();
  EXPECT_HAS(out, "ok - every model uploaded");
}

TEST_F(AzureSdkTest, RefusalsLeaveTheServerServing) {
  Scenario("refusals.js", {}, {"SCENARIO_PREFIX=conf"});
  // Nothing was appended for the device whose topic was spoofed.
  auto p = Process::Spawn({OrreryBinary(), "monitor-events", "--data-dir",
                           server_->data_dir().string(), "--https-port", "443", "--device-id",
                           "conf-victim", "--from", "earliest", "--timeout", "2"});
  EXPECT_EQ(p->Wait(std::chrono::seconds(20)), 0) << p->output();
  EXPECT_EQ(p->output().find("\"origin\""), std::string::npos) << p->output();
  server_->process().Drain();
  EXPECT_HAS(server_->process().output(), "may not publish to 'devices/conf-victim");
}

}  // namespace
}  // namespace orrery
