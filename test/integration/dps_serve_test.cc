// The provisioning service through the real `orrery serve`: devices register over HTTPS and
// are created on a linked hub that is another Orrery server (reached with its service
// connection string), migrate back with their twin data, are allocated by a custom allocation
// webhook, and nothing acknowledged — enrollments, registration states, operations — is lost
// to SIGKILL. The unmodified Azure DPS SDKs are driven in test/conformance (dps.js).
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/time.h"
#include "dps/access.h"
#include "dps/enrollment.h"
#include "hub/policies.h"
#include "hub/sas.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/test_certs.h"
#include "test/support/orrery_server.h"

namespace orrery {
namespace {
namespace json = boost::json;
using testing::OrreryServer;

// A custom allocation webhook: answers with `hub`, an initial twin and a payload, and keeps
// the requests it got.
class AllocationHook {
 public:
  explicit AllocationHook(std::string hub) : hub_(std::move(hub)) {
    auto router = std::make_shared<net::Router>();
    router->Add("POST", "/allocate", [this](net::HttpRequest& req, net::Responder r) {
      std::lock_guard lock(mu_);
      requests_.push_back(json::parse(req.body).as_object());
      r.Send(net::HttpResponse::Json(
          200, json::serialize(json::object{
                   {"iotHubHostName", hub_},
                   {"initialTwin",
                    json::object{
                        {"tags", json::object{{"chosenBy", "webhook"}}},
                        {"properties", json::object{{"desired", json::object{{"mode", "eco"}}}}}}},
                   {"payload", json::object{{"welcome", requests_.size()}}}})));
    });
    auto tls = net::TlsServerContext::Create({certs_.paths.server_cert, certs_.paths.server_key});
    EXPECT_TRUE(tls);
    auto server = net::HttpServer::Start(
        pool_, {.name = "alloc", .addresses = {"127.0.0.1"}, .tls = *tls}, router);
    EXPECT_TRUE(server);
    server_ = std::move(*server);
    pool_.Start();
  }
  ~AllocationHook() {
    server_->Stop();
    pool_.Stop();
    pool_.Join();
  }
  uint16_t port() const { return server_->port(); }
  std::filesystem::path ca() const { return certs_.paths.ca_cert; }
  std::vector<json::object> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  net::testing::TestCerts certs_{"dps-allocation"};
  net::IoPool pool_{1};
  std::unique_ptr<net::HttpServer> server_;
  std::string hub_;
  std::mutex mu_;
  std::vector<json::object> requests_;
};

// Service and device calls against one server.
struct Client {
  OrreryServer* server;
  net::HttpClientOptions trust;

  explicit Client(OrreryServer* s) : server(s) { trust.tls.ca_file = s->ca_file(); }

  std::string Token(const hub::PolicySchema& schema, std::string_view policy) const {
    auto store = hub::PolicyStore::Open(server->data_dir(), schema);
    EXPECT_TRUE(store);
    auto p = (*store)->Find(policy);
    EXPECT_TRUE(p);
    return *hub::MakeSasToken("localhost", p->primary_key, timeutil::NowMs() / 1000 + 3600,
                              p->name);
  }
  net::HttpResponse Call(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& token,
                         std::string_view api = "2021-10-01") const {
    net::Headers h;
    if (!token.empty()) h.Set("Authorization", token);
    h.Set("Content-Type", "application/json; charset=utf-8");
    auto r = net::Fetch(method, server->Url(fmt::format("{}?api-version={}", path, api)), h, body,
                        trust);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : net::HttpResponse{};
  }
  json::object Json(const net::HttpResponse& r) const {
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    EXPECT_FALSE(ec) << r.body;
    return v.is_object() ? v.as_object() : json::object{};
  }
  std::string Scope() const { return *dps::LoadIdScope(server->data_dir()); }
  std::string DeviceToken(std::string_view rid, std::string_view key) const {
    return *hub::MakeSasToken(fmt::format("{}/registrations/{}", Scope(), rid), key,
                              timeutil::NowMs() / 1000 + 3600, "registration");
  }
  // Registers over HTTPS as the SDK does and polls (honouring Retry-After) until the
  // operation ends; returns the final operation status.
  json::object Register(std::string_view rid, std::string_view key,
                        std::optional<json::object> payload = {}) const {
    json::object body{{"registrationId", rid}};
    if (payload) body["payload"] = *payload;
    std::string token = DeviceToken(rid, key);
    auto r = Call("PUT", fmt::format("/{}/registrations/{}/register", Scope(), rid),
                  json::serialize(body), token, "2019-03-31");
    EXPECT_TRUE(r.status == 200 || r.status == 202) << r.body;
    auto op = Json(r);
    EXPECT_EQ(r.status == 202, op["status"] == "assigning") << r.body;
    for (int i = 0; i < 60 && op["status"] == "assigning"; ++i) {
      EXPECT_EQ(r.headers.Get("Retry-After").value_or(""), "1");
      // The server tells the device when to come back: that is the protocol, not a sync hack.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      r = Call("GET",
               fmt::format("/{}/registrations/{}/operations/{}", Scope(), rid,
                           std::string(op["operationId"].as_string())),
               "{}", token, "2019-03-31");
      op = Json(r);
    }
    return op;
  }
};

std::string PrimaryKey(const json::object& enrollment) {
  return std::string(enrollment.at("attestation").at("symmetricKey").at("primaryKey").as_string());
}

TEST(DpsServeTest, LinkedOrreryHubMigrationBackAndCustomAllocation) {
  // Hub B: a second Orrery, known to A only by its service connection string.
  OrreryServer b("dps-hub-b", {"--host-name", "127.0.0.1"});
  ASSERT_TRUE(b.started()) << b.process().output();
  auto b_store = hub::PolicyStore::Open(b.data_dir());
  ASSERT_TRUE(b_store);
  std::string b_host = fmt::format("127.0.0.1:{}", b.ports().https);
  auto b_cs = (*b_store)->ConnectionString(b_host, "iothubowner");
  ASSERT_TRUE(b_cs);
  testing::TempDir conf("dps-conf");
  auto linked = conf.path() / "linked.json";
  std::ofstream(linked) << json::serialize(
      json::array{json::object{{"connectionString", *b_cs}, {"allocationWeight", 1}}});
  AllocationHook hook("localhost");
  OrreryServer a("dps-hub-a", {},
                 {"ORRERY_DPS_LINKED_HUBS_FILE=" + linked.string(),
                  "ORRERY_DPS_LINKED_HUB_CA_FILE=" + b.ca_file().string(),
                  "ORRERY_DPS_CUSTOM_ALLOCATION_CA_FILE=" + hook.ca().string()});
  ASSERT_TRUE(a.started()) << a.process().output();
  EXPECT_NE(a.process().output().find("linked hubs localhost (weight 1), " + b_host),
            std::string::npos)
      << a.process().output();
  Client dps(&a), hub_b(&b), hub_a(&a);
  std::string owner = dps.Token(dps::DpsPolicySchema(), "provisioningserviceowner");
  std::string b_token = hub_b.Token(hub::HubPolicySchema(), "iothubowner");
  std::string a_token = hub_a.Token(hub::HubPolicySchema(), "iothubowner");

  // Static allocation to B, with an initial twin.
  auto put =
      dps.Call("PUT", "/enrollments/far-1",
               fmt::format(R"({{"registrationId":"far-1","attestation":{{"type":"symmetricKey"}},
                          "iotHubs":["{}"],"allocationPolicy":"static",
                          "initialTwin":{{"tags":{{"plant":"north"}},
                                          "properties":{{"desired":{{"rate":10}}}}}}}})",
                           b_host),
               owner);
  ASSERT_EQ(put.status, 200) << put.body;
  std::string key = PrimaryKey(dps.Json(put));
  auto op = dps.Register("far-1", key);
  ASSERT_EQ(op["status"], "assigned") << json::serialize(op);
  EXPECT_EQ(op["registrationState"].at("assignedHub"), json::value(b_host));
  EXPECT_EQ(op["registrationState"].at("substatus"), "initialAssignment");
  auto on_b = hub_b.Call("GET", "/devices/far-1", "", b_token, "2021-04-12");
  ASSERT_EQ(on_b.status, 200) << on_b.body;
  EXPECT_EQ(hub_b.Json(on_b)["authentication"].at("symmetricKey").at("primaryKey"),
            json::value(key));
  auto twin_b = hub_b.Json(hub_b.Call("GET", "/twins/far-1", "", b_token, "2021-04-12"));
  EXPECT_EQ(twin_b["tags"].at("plant"), "north");
  EXPECT_EQ(twin_b["properties"].at("desired").at("rate"), 10);
  EXPECT_EQ(hub_a.Call("GET", "/devices/far-1", "", a_token, "2021-04-12").status, 404);

  // The device's data changes on B; the enrollment moves to the local hub: its twin follows.
  auto patched =
      hub_b.Call("PATCH", "/twins/far-1", R"({"tags":{"plant":"south"}})", b_token, "2021-04-12");
  ASSERT_EQ(patched.status, 200) << patched.body;
  auto enrollment = dps.Json(dps.Call("GET", "/enrollments/far-1", "", owner));
  enrollment["iotHubs"] = json::array{"localhost"};
  put = dps.Call("PUT", "/enrollments/far-1", json::serialize(enrollment), owner);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(PrimaryKey(dps.Json(put)), key) << "an update that sends the keys back keeps them";
  op = dps.Register("far-1", key);
  ASSERT_EQ(op["status"], "assigned") << json::serialize(op);
  EXPECT_EQ(op["registrationState"].at("assignedHub"), "localhost");
  EXPECT_EQ(op["registrationState"].at("substatus"), "deviceDataMigrated");
  auto twin_a = hub_a.Json(hub_a.Call("GET", "/twins/far-1", "", a_token, "2021-04-12"));
  EXPECT_EQ(twin_a["tags"].at("plant"), "south");
  EXPECT_EQ(twin_a["properties"].at("desired").at("rate"), 10);

  // Custom allocation: the webhook sees the enrollment, the device's payload and the hubs,
  // and its answer decides the hub, the initial twin and the payload returned to the device.
  put = dps.Call("PUT", "/enrollmentGroups/custom-grp",
                 fmt::format(R"({{"enrollmentGroupId":"custom-grp",
                     "attestation":{{"type":"symmetricKey"}},"allocationPolicy":"custom",
                     "customAllocationDefinition":{{"webhookUrl":"https://localhost:{}/allocate",
                                                   "apiVersion":"2021-10-01"}}}})",
                             hook.port()),
                 owner);
  ASSERT_EQ(put.status, 200) << put.body;
  auto group_key =
      dps.Json(dps.Call("POST", "/enrollmentGroups/custom-grp/attestationmechanism", "", owner));
  std::string gk(group_key["symmetricKey"].at("primaryKey").as_string());
  auto device_key = *dps::DeriveDeviceKey(gk, "custom-7");
  op = dps.Register("custom-7", device_key, json::object{{"model", "thermostat"}});
  ASSERT_EQ(op["status"], "assigned") << json::serialize(op);
  EXPECT_EQ(op["registrationState"].at("assignedHub"), "localhost");
  EXPECT_EQ(op["registrationState"].at("payload").at("welcome"), 1);
  auto reqs = hook.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].at("enrollmentGroup").at("enrollmentGroupId"), "custom-grp");
  EXPECT_TRUE(
      reqs[0].at("enrollmentGroup").at("attestation").at("symmetricKey").at("primaryKey").is_null())
      << "the webhook never gets the group's keys";
  EXPECT_EQ(reqs[0].at("deviceRuntimeContext").at("registrationId"), "custom-7");
  EXPECT_EQ(reqs[0].at("deviceRuntimeContext").at("payload").at("model"), "thermostat");
  EXPECT_EQ(reqs[0].at("linkedHubs").as_array().size(), 2u);
  auto twin_c = hub_a.Json(hub_a.Call("GET", "/twins/custom-7", "", a_token, "2021-04-12"));
  EXPECT_EQ(twin_c["tags"].at("chosenBy"), "webhook");
  EXPECT_EQ(twin_c["properties"].at("desired").at("mode"), "eco");
}

TEST(DpsServeTest, RefusalsHaveDpsErrorShapes) {
  OrreryServer a("dps-refusals", std::vector<std::string>{},
                 std::vector<std::string>{"ORRERY_DPS_ANSWER_WITHIN=0s"});
  ASSERT_TRUE(a.started()) << a.process().output();
  Client dps(&a);
  std::string owner = dps.Token(dps::DpsPolicySchema(), "provisioningserviceowner");
  std::string reader = dps.Token(dps::DpsPolicySchema(), "enrollmentread");
  auto put =
      dps.Call("PUT", "/enrollments/ref-1", R"({"attestation":{"type":"symmetricKey"}})", owner);
  ASSERT_EQ(put.status, 200) << put.body;
  std::string key = PrimaryKey(dps.Json(put));
  auto expect_error = [&](const net::HttpResponse& r, int status, int code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(r.headers.Get("Content-Type").value_or("").find("application/json"),
              std::string::npos);
    auto body = dps.Json(r);
    EXPECT_EQ(body["errorCode"], code) << r.body;
    EXPECT_TRUE(body["message"].is_string());
    EXPECT_TRUE(body.contains("trackingId"));
  };
  // Least privilege: enrollmentread reads (without keys) and cannot write.
  auto read = dps.Call("GET", "/enrollments/ref-1", "", reader);
  ASSERT_EQ(read.status, 200);
  EXPECT_TRUE(dps.Json(read)["attestation"].at("symmetricKey").at("primaryKey").is_null());
  expect_error(
      dps.Call("PUT", "/enrollments/ref-2", R"({"attestation":{"type":"symmetricKey"}})", reader),
      403, 403002);
  expect_error(dps.Call("GET", "/enrollments/ref-1", "", "SharedAccessSignature sr=x&sig=y&se=1"),
               401, 401002);
  expect_error(dps.Call("GET", "/enrollments/nope", "", owner), 404, 404201);
  expect_error(dps.Call("PUT", "/enrollments/ref-3", R"({"attestation":{"type":"tpm"}})", owner),
               400, 400004);
  expect_error(dps.Call("GET", "/registrations/nope", "", owner), 404, 404202);
  // Devices: a wrong key, an unknown scope, an unknown operation.
  std::string scope = dps.Scope();
  expect_error(
      dps.Call("PUT", fmt::format("/{}/registrations/ref-1/register", scope),
               R"({"registrationId":"ref-1"})",
               dps.DeviceToken("ref-1", "d3JvbmcgYnV0IGxvbmcgZW5vdWdoIGtleQ=="), "2019-03-31"),
      401, 401002);
  expect_error(
      dps.Call("PUT", "/0neWRONG/registrations/ref-1/register", R"({"registrationId":"ref-1"})",
               dps.DeviceToken("ref-1", key), "2019-03-31"),
      401, 401002);
  expect_error(dps.Call("GET", fmt::format("/{}/registrations/ref-1/operations/4.nope", scope),
                        "{}", dps.DeviceToken("ref-1", key), "2019-03-31"),
               404, 404202);
  // Malformed bodies never crash the server, which still serves afterwards.
  for (const std::string& bad :
       std::vector<std::string>{"{", "[]", "null", R"({"attestation":7})", std::string(10, '\0')}) {
    auto r = dps.Call("PUT", "/enrollments/ref-4", bad, owner);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
  }
  EXPECT_EQ(dps.Register("ref-1", key)["status"], "assigned");
}

TEST(DpsServeTest, SigkillLosesNoEnrollmentRegistrationOrOperation) {
  OrreryServer a("dps-kill");
  ASSERT_TRUE(a.started()) << a.process().output();
  Client dps(&a);
  std::string owner = dps.Token(dps::DpsPolicySchema(), "provisioningserviceowner");
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    auto put = dps.Call("PUT", fmt::format("/enrollments/kill-{}", i),
                        R"({"attestation":{"type":"symmetricKey"},
                            "initialTwin":{"tags":{"batch":"k"}}})",
                        owner);
    ASSERT_EQ(put.status, 200) << put.body;
    keys.push_back(PrimaryKey(dps.Json(put)));
  }
  auto op = dps.Register("kill-0", keys[0]);
  ASSERT_EQ(op["status"], "assigned") << json::serialize(op);
  std::string operation(op["operationId"].as_string());
  a.Restart(SIGKILL);
  ASSERT_TRUE(a.started()) << a.process().output();
  owner = dps.Token(dps::DpsPolicySchema(), "provisioningserviceowner");
  for (int i = 0; i < 20; ++i) {
    auto got = dps.Call("GET", fmt::format("/enrollments/kill-{}", i), "", owner);
    ASSERT_EQ(got.status, 200) << got.body;
    EXPECT_EQ(PrimaryKey(dps.Json(got)), keys[static_cast<size_t>(i)]);
  }
  auto state = dps.Call("GET", "/registrations/kill-0", "", owner);
  ASSERT_EQ(state.status, 200) << state.body;
  EXPECT_EQ(dps.Json(state)["status"], "assigned");
  // The device polls its operation across the restart and still gets its answer.
  auto poll =
      dps.Call("GET", fmt::format("/{}/registrations/kill-0/operations/{}", dps.Scope(), operation),
               "{}", dps.DeviceToken("kill-0", keys[0]), "2019-03-31");
  ASSERT_EQ(poll.status, 200) << poll.body;
  EXPECT_EQ(dps.Json(poll)["registrationState"].at("deviceId"), "kill-0");
  Client hub(&a);
  auto twin = hub.Call("GET", "/twins/kill-0", "", hub.Token(hub::HubPolicySchema(), "iothubowner"),
                       "2021-04-12");
  ASSERT_EQ(twin.status, 200) << twin.body;
  EXPECT_EQ(hub.Json(twin)["tags"].at("batch"), "k");
}

}  // namespace
}  // namespace orrery
