// The digital twins API through the real `orrery serve`: service principals made with the
// CLI get OAuth 2.0 tokens from the token endpoint, and the models REST API (add, list with
// paging and dependenciesFor, get, decommission, delete) answers in Azure Digital Twins'
// shapes, refuses what ADT refuses, and keeps everything across kill -9. The unmodified
// @azure/digital-twins-core SDK is driven in test/conformance (twins.js).
#include <csignal>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/strings.h"
#include "base/time.h"
#include "hub/sas.h"
#include "net/http_client.h"
#include "routing/endpoints.h"
#include "test/support/orrery_server.h"
#include "test/support/webhook_receiver.h"

namespace orrery {
namespace {
namespace json = boost::json;
using testing::OrreryBinary;
using testing::OrreryServer;
using testing::Process;

constexpr std::string_view kApi = "?api-version=2023-10-31";

struct Ran {
  int code = -1;
  std::string out;
};

Ran Cli(const OrreryServer& server, std::vector<std::string> args,
        std::vector<std::string> env = {}) {
  std::vector<std::string> argv = {OrreryBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--data-dir", server.data_dir().string(), "--twins-port",
                           std::to_string(server.ports().twins)});
  auto p = Process::Spawn(argv, std::move(env));
  auto code = p->Wait(std::chrono::seconds(60));
  return {code.value_or(-1), p->output()};
}

// The JSON object a CLI printed (its stderr notes around it are ignored).
json::value JsonOf(const std::string& out) {
  auto first = out.find_first_of("[{");
  auto last = out.find_last_of("]}");
  if (first == std::string::npos || last == std::string::npos) return nullptr;
  boost::system::error_code ec;
  auto v = json::parse(out.substr(first, last - first + 1), ec);
  return ec ? json::value(nullptr) : v;
}

class TwinsServeTest : public ::testing::Test {
 protected:
  explicit TwinsServeTest(std::vector<std::string> env = {})
      : server_("twins", {}, std::move(env)) {}

  net::HttpResponse Call(std::string method, std::string path, std::string body = {},
                         std::string token = {}, net::Headers headers = {}) {
    net::HttpClientOptions o;
    o.tls.ca_file = server_.ca_file();
    o.timeout = std::chrono::seconds(30);
    o.max_response_bytes = 16 << 20;
    if (!token.empty()) headers.Set("Authorization", "Bearer " + token);
    if (!body.empty() && !headers.Get("Content-Type")) {
      headers.Set("Content-Type", "application/json");
    }
    std::string url = path.starts_with("https://") ? path : server_.TwinsUrl(path);
    auto r = net::Fetch(method, url, std::move(headers), body, o);
    EXPECT_TRUE(r) << method << " " << path << ": " << r.error().message();
    return r ? *r : net::HttpResponse{.status = 0};
  }

  // A principal made with `orrery identity sp create`: {tenantId, clientId, clientSecret}.
  json::object Principal(std::string name, std::string role) {
    auto r = Cli(server_, {"identity", "sp", "create", "--name", name, "--role", role});
    EXPECT_EQ(r.code, 0) << r.out;
    auto v = JsonOf(r.out);
    EXPECT_TRUE(v.is_object()) << r.out;
    return v.is_object() ? v.get_object() : json::object{};
  }

  net::HttpResponse TokenRequest(const json::object& p, std::string scope,
                                 std::string secret = {}) {
    std::string tenant(p.at("tenantId").as_string());
    std::string form =
        "client_id=" + strings::UrlEncode(p.at("clientId").as_string()) + "&client_secret=" +
        strings::UrlEncode(secret.empty() ? std::string(p.at("clientSecret").as_string())
                                          : secret) +
        "&grant_type=client_credentials&scope=" + strings::UrlEncode(scope);
    net::Headers h;
    h.Set("Content-Type", "application/x-www-form-urlencoded");
    return Call("POST", "/" + tenant + "/oauth2/v2.0/token", form, {}, std::move(h));
  }

  std::string Token(const json::object& p) {
    auto r = TokenRequest(p, "https://digitaltwins.azure.net/.default");
    EXPECT_EQ(r.status, 200) << r.body;
    auto v = json::parse(r.body);
    EXPECT_EQ(v.at("token_type").as_string(), "Bearer");
    EXPECT_EQ(v.at("expires_in").as_int64(), 3600);
    return std::string(v.at("access_token").as_string());
  }

  static std::string Code(const net::HttpResponse& r) {
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec || !v.is_object() || !v.get_object().contains("error")) return "";
    auto& e = v.at("error");
    return e.is_object() ? std::string(e.at("code").as_string()) : std::string(e.as_string());
  }

  OrreryServer server_;
};

const char* kSpace =
    R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Space;1","@type":"Interface",
  "displayName":{"en":"Space"},"contents":[{"@type":"Property","name":"name","schema":"string"}]})";
const char* kSensor =
    R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Sensor;1","@type":"Interface",
  "contents":[{"@type":"Telemetry","name":"temperature","schema":"double"}]})";
const char* kRoom = R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
  "extends":"dtmi:ex:Space;1","contents":[{"@type":"Component","name":"sensor","schema":"dtmi:ex:Sensor;1"}]})";

TEST_F(TwinsServeTest, TokensFromTheTokenEndpoint) {
  ASSERT_TRUE(server_.started()) << server_.process().output();
  auto owner = Principal("builder", "owner");
  ASSERT_FALSE(owner.empty());
  std::string tenant(owner.at("tenantId").as_string());
  EXPECT_EQ(Cli(server_, {"identity", "tenant"}).out, tenant + "\n");

  auto doc = Call("GET", "/" + tenant + "/v2.0/.well-known/openid-configuration");
  ASSERT_EQ(doc.status, 200) << doc.body;
  auto d = json::parse(doc.body);
  EXPECT_EQ(d.at("token_endpoint").as_string(),
            server_.TwinsUrl("/" + tenant + "/oauth2/v2.0/token"));
  auto keys = Call("GET", "/" + tenant + "/discovery/v2.0/keys");
  ASSERT_EQ(keys.status, 200);
  EXPECT_EQ(json::parse(keys.body).at("keys").as_array().at(0).at("alg").as_string(), "ES256");
  EXPECT_EQ(Call("GET", "/not-our-tenant/v2.0/.well-known/openid-configuration").status, 400);

  EXPECT_FALSE(Token(owner).empty());
  auto wrong = TokenRequest(owner, "https://digitaltwins.azure.net/.default", "not-the-secret");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(Code(wrong), "invalid_client");
  EXPECT_EQ(wrong.body.find(std::string(owner.at("clientSecret").as_string())), std::string::npos);
  auto scope = TokenRequest(owner, "https://management.azure.com/.default");
  EXPECT_EQ(scope.status, 400);
  EXPECT_EQ(Code(scope), "invalid_scope");

  // A deleted principal gets no more tokens.
  ASSERT_EQ(Cli(server_, {"identity", "sp", "delete", "builder"}).code, 0);
  EXPECT_EQ(TokenRequest(owner, "https://digitaltwins.azure.net/.default").status, 401);
  auto listed = Cli(server_, {"identity", "sp", "list"});
  EXPECT_EQ(listed.code, 0);
  EXPECT_EQ(listed.out.find("builder"), std::string::npos) << listed.out;
}

TEST_F(TwinsServeTest, ModelsLifeCycle) {
  ASSERT_TRUE(server_.started()) << server_.process().output();
  std::string owner = Token(Principal("builder", "owner"));
  std::string reader = Token(Principal("viewer", "reader"));
  std::string batch = fmt::format("[{},{},{}]", kRoom, kSensor, kSpace);

  // Authentication and api-version first.
  auto anonymous = Call("POST", "/models" + std::string(kApi), batch);
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.headers.Get("WWW-Authenticate").value_or(""), "Bearer");
  auto forged =
      Call("GET", "/models" + std::string(kApi), {}, owner.substr(0, owner.size() - 4) + "AAAA");
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(Call("GET", "/models", {}, owner).status, 400);
  EXPECT_EQ(Call("GET", "/models?api-version=2020-01-01", {}, owner).status, 400);
  auto read_only = Call("POST", "/models" + std::string(kApi), batch, reader);
  EXPECT_EQ(read_only.status, 403);
  EXPECT_EQ(Code(read_only), "Forbidden");

  auto added = Call("POST", "/models" + std::string(kApi), batch, owner);
  ASSERT_EQ(added.status, 201) << added.body;
  auto a = json::parse(added.body).as_array();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].at("id").as_string(), "dtmi:ex:Room;1");
  EXPECT_FALSE(a[0].at("decommissioned").as_bool());
  EXPECT_TRUE(a[0].as_object().contains("uploadTime"));

  auto again = Call("POST", "/models" + std::string(kApi), fmt::format("[{}]", kSensor), owner);
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(Code(again), "ModelAlreadyExists");
  EXPECT_EQ(again.headers.Get("x-ms-error-code").value_or(""), "ModelAlreadyExists");
  auto invalid =
      Call("POST", "/models" + std::string(kApi),
           R"([{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Bad;1","@type":"Interface",
                           "extends":"dtmi:ex:Missing;1"}])",
           owner);
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(Code(invalid), "DTDLParserError");
  EXPECT_NE(invalid.body.find("dtmi:ex:Missing;1"), std::string::npos) << invalid.body;
  EXPECT_EQ(Call("POST", "/models" + std::string(kApi), "{}", owner).status, 400);

  // Paging: two per page, an absolute nextLink, then none.
  net::Headers page;
  page.Set("max-items-per-page", "2");
  auto first = Call("GET", "/models" + std::string(kApi), {}, reader, page);
  ASSERT_EQ(first.status, 200) << first.body;
  auto p1 = json::parse(first.body);
  ASSERT_EQ(p1.at("value").as_array().size(), 2u);
  ASSERT_TRUE(p1.at("nextLink").is_string());
  auto second = Call("GET", std::string(p1.at("nextLink").as_string()), {}, reader, page);
  ASSERT_EQ(second.status, 200) << second.body;
  auto p2 = json::parse(second.body);
  ASSERT_EQ(p2.at("value").as_array().size(), 1u);
  EXPECT_EQ(p2.at("value").at(0).at("id").as_string(), "dtmi:ex:Space;1");
  EXPECT_TRUE(p2.at("nextLink").is_null());

  auto deps = Call("GET",
                   "/models" + std::string(kApi) + "&dependenciesFor=" +
                       strings::UrlEncode("dtmi:ex:Sensor;1") + "&includeModelDefinition=true",
                   {}, reader);
  ASSERT_EQ(deps.status, 200) << deps.body;
  auto dv = json::parse(deps.body).at("value").as_array();
  ASSERT_EQ(dv.size(), 1u);
  EXPECT_EQ(dv[0].at("model").at("@id").as_string(), "dtmi:ex:Sensor;1");
  deps = Call(
      "GET",
      "/models" + std::string(kApi) + "&dependenciesFor=" + strings::UrlEncode("dtmi:ex:Room;1"),
      {}, reader);
  EXPECT_EQ(json::parse(deps.body).at("value").as_array().size(), 3u);

  std::string room = "/models/" + strings::UrlEncode("dtmi:ex:Room;1");
  auto got = Call("GET", room + std::string(kApi) + "&includeModelDefinition=true", {}, reader);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(json::parse(got.body).at("model").at("extends").as_string(), "dtmi:ex:Space;1");
  auto space = Call("GET", "/models/" + strings::UrlEncode("dtmi:ex:Space;1") + std::string(kApi),
                    {}, reader);
  EXPECT_EQ(json::parse(space.body).at("displayName").at("en").as_string(), "Space");
  EXPECT_FALSE(json::parse(space.body).as_object().contains("model"));
  EXPECT_EQ(Code(Call("GET", "/models/dtmi:ex:Nope;1" + std::string(kApi), {}, reader)),
            "ModelNotFound");
  EXPECT_EQ(Code(Call("GET", "/models/not-a-dtmi" + std::string(kApi), {}, reader)),
            "InvalidArgument");

  net::Headers patch_type;
  patch_type.Set("Content-Type", "application/json-patch+json");
  auto decommission =
      Call("PATCH", room + std::string(kApi),
           R"([{"op":"replace","path":"/decommissioned","value":true}])", owner, patch_type);
  EXPECT_EQ(decommission.status, 204) << decommission.body;
  auto bad_patch =
      Call("PATCH", room + std::string(kApi),
           R"([{"op":"replace","path":"/displayName","value":"x"}])", owner, patch_type);
  EXPECT_EQ(Code(bad_patch), "JsonPatchInvalid");
  auto recommission =
      Call("PATCH", room + std::string(kApi),
           R"([{"op":"replace","path":"/decommissioned","value":false}])", owner, patch_type);
  EXPECT_EQ(recommission.status, 400);

  auto in_use = Call(
      "DELETE", "/models/" + strings::UrlEncode("dtmi:ex:Space;1") + std::string(kApi), {}, owner);
  EXPECT_EQ(in_use.status, 409);
  EXPECT_EQ(Code(in_use), "ModelReferencesNotDeleted");
  EXPECT_EQ(Call("DELETE", room + std::string(kApi), {}, reader).status, 403);
  EXPECT_EQ(Call("DELETE", room + std::string(kApi), {}, owner).status, 204);
  EXPECT_EQ(Call("GET", room + std::string(kApi), {}, owner).status, 404);

  // kill -9: what was acknowledged is there, and tokens signed before still work.
  server_.Restart(SIGKILL);
  ASSERT_TRUE(server_.started()) << server_.process().output();
  auto after = Call("GET", "/models" + std::string(kApi), {}, reader);
  ASSERT_EQ(after.status, 200) << after.body;
  auto av = json::parse(after.body).at("value").as_array();
  ASSERT_EQ(av.size(), 2u);
  EXPECT_EQ(av[0].at("id").as_string(), "dtmi:ex:Sensor;1");
  EXPECT_EQ(Call("DELETE", "/models/" + strings::UrlEncode("dtmi:ex:Space;1") + std::string(kApi),
                 {}, owner)
                .status,
            204);
}

TEST_F(TwinsServeTest, TwinsAndRelationshipsSurviveKill9) {
  ASSERT_TRUE(server_.started()) << server_.process().output();
  std::string owner = Token(Principal("builder", "owner"));
  const char* site =
      R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Site;1","@type":"Interface",
    "contents":[{"@type":"Relationship","name":"contains","target":"dtmi:ex:Space;1"},
                {"@type":"Property","name":"name","schema":"string"}]})";
  ASSERT_EQ(Call("POST", "/models" + std::string(kApi), fmt::format("[{},{}]", kSpace, site), owner)
                .status,
            201);
  auto hq = Call("PUT", "/digitaltwins/hq" + std::string(kApi),
                 R"({"$metadata":{"$model":"dtmi:ex:Site;1"},"name":"HQ"})", owner);
  ASSERT_EQ(hq.status, 200) << hq.body;
  EXPECT_EQ(hq.headers.Get("ETag").value_or(""), json::parse(hq.body).at("$etag").as_string());
  ASSERT_EQ(Call("PUT", "/digitaltwins/lobby" + std::string(kApi),
                 R"({"$metadata":{"$model":"dtmi:ex:Space;1"},"name":"Lobby"})", owner)
                .status,
            200);
  auto rel = Call("PUT", "/digitaltwins/hq/relationships/c1" + std::string(kApi),
                  R"({"$relationshipName":"contains","$targetId":"lobby"})", owner);
  ASSERT_EQ(rel.status, 200) << rel.body;
  net::Headers patch_type;
  patch_type.Set("Content-Type", "application/json-patch+json");
  auto patched =
      Call("PATCH", "/digitaltwins/lobby" + std::string(kApi),
           R"([{"op":"replace","path":"/name","value":"Main lobby"}])", owner, patch_type);
  ASSERT_EQ(patched.status, 204) << patched.body;
  EXPECT_TRUE(patched.headers.Get("ETag"));
  auto bad = Call("PUT", "/digitaltwins/x" + std::string(kApi),
                  R"({"$metadata":{"$model":"dtmi:ex:Space;1"},"name":1})", owner);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Code(bad), "ValidationFailed");
  EXPECT_EQ(Code(Call("GET", "/digitaltwins/nobody" + std::string(kApi), {}, owner)),
            "DigitalTwinNotFound");

  server_.Restart(SIGKILL);
  ASSERT_TRUE(server_.started()) << server_.process().output();
  auto lobby = Call("GET", "/digitaltwins/lobby" + std::string(kApi), {}, owner);
  ASSERT_EQ(lobby.status, 200) << lobby.body;
  EXPECT_EQ(json::parse(lobby.body).at("name").as_string(), "Main lobby");
  auto incoming =
      Call("GET", "/digitaltwins/lobby/incomingrelationships" + std::string(kApi), {}, owner);
  ASSERT_EQ(incoming.status, 200);
  EXPECT_EQ(json::parse(incoming.body).at("value").as_array().size(), 1u);
  auto in_use = Call("DELETE", "/digitaltwins/lobby" + std::string(kApi), {}, owner);
  EXPECT_EQ(Code(in_use), "RelationshipsNotDeleted");
  EXPECT_EQ(
      Call("DELETE", "/digitaltwins/hq/relationships/c1" + std::string(kApi), {}, owner).status,
      204);
  EXPECT_EQ(Call("DELETE", "/digitaltwins/lobby" + std::string(kApi), {}, owner).status, 204);
}

TEST_F(TwinsServeTest, ModelCli) {
  ASSERT_TRUE(server_.started()) << server_.process().output();
  auto p = Principal("cli", "owner");
  std::vector<std::string> env = {
      "AZURE_CLIENT_ID=" + std::string(p.at("clientId").as_string()),
      "AZURE_CLIENT_SECRET=" + std::string(p.at("clientSecret").as_string())};
  testing::TempDir dir("twins-models");
  // Files in an order that does not upload: the CLI orders them by dependency.
  std::ofstream(dir.path() / "a-room.json") << kRoom;
  std::ofstream(dir.path() / "b-both.json") << fmt::format("[{},{}]", kSensor, kSpace);
  auto added = Cli(server_, {"dt", "model", "add", dir.path().string()}, env);
  ASSERT_EQ(added.code, 0) << added.out;
  EXPECT_NE(added.out.find("read 3 models from 2 files"), std::string::npos) << added.out;

  auto listed = Cli(server_, {"dt", "model", "list", "--dependencies-for", "dtmi:ex:Room;1"}, env);
  ASSERT_EQ(listed.code, 0) << listed.out;
  auto lv = JsonOf(listed.out);
  ASSERT_TRUE(lv.is_array()) << listed.out;
  EXPECT_EQ(lv.as_array().size(), 3u);
  auto shown = Cli(server_, {"dt", "model", "show", "dtmi:ex:Room;1", "--definition"}, env);
  ASSERT_EQ(shown.code, 0) << shown.out;
  EXPECT_EQ(JsonOf(shown.out).at("model").at("extends").as_string(), "dtmi:ex:Space;1");

  auto refused = Cli(server_, {"dt", "model", "delete", "dtmi:ex:Space;1"}, env);
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.out.find("HTTP 409 ModelReferencesNotDeleted"), std::string::npos)
      << refused.out;
  EXPECT_EQ(Cli(server_, {"dt", "model", "decommission", "dtmi:ex:Room;1"}, env).code, 0);
  EXPECT_EQ(Cli(server_, {"dt", "model", "delete", "dtmi:ex:Room;1"}, env).code, 0);

  // Twins and relationships.
  std::ofstream(dir.path() / "site.json") << R"({"@context":"dtmi:dtdl:context;3",
    "@id":"dtmi:ex:Site;1","@type":"Interface","contents":[{"@type":"Relationship",
    "name":"contains","target":"dtmi:ex:Space;1"}]})";
  ASSERT_EQ(Cli(server_, {"dt", "model", "add", (dir.path() / "site.json").string()}, env).code, 0);
  auto created = Cli(server_,
                     {"dt", "twin", "create", "lobby", "--model", "dtmi:ex:Space;1", "--properties",
                      R"({"name":"Lobby"})", "--if-none-match"},
                     env);
  ASSERT_EQ(created.code, 0) << created.out;
  std::string etag(JsonOf(created.out).at("$etag").as_string());
  ASSERT_EQ(Cli(server_, {"dt", "twin", "create", "hq", "--model", "dtmi:ex:Site;1"}, env).code, 0);
  auto again =
      Cli(server_,
          {"dt", "twin", "create", "lobby", "--model", "dtmi:ex:Space;1", "--if-none-match"}, env);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.out.find("HTTP 412 PreconditionFailed"), std::string::npos) << again.out;
  auto updated = Cli(server_,
                     {"dt", "twin", "update", "lobby", "--patch",
                      R"([{"op":"replace","path":"/name","value":"Main lobby"}])", "--etag", etag},
                     env);
  ASSERT_EQ(updated.code, 0) << updated.out;
  EXPECT_TRUE(updated.out.starts_with("W/\"")) << updated.out;
  auto stale = Cli(server_,
                   {"dt", "twin", "update", "lobby", "--patch",
                    R"([{"op":"remove","path":"/name"}])", "--etag", etag},
                   env);
  EXPECT_NE(stale.out.find("HTTP 412"), std::string::npos) << stale.out;
  auto shown_twin = Cli(server_, {"dt", "twin", "show", "lobby"}, env);
  EXPECT_EQ(JsonOf(shown_twin.out).at("name").as_string(), "Main lobby") << shown_twin.out;
  auto rel = Cli(
      server_,
      {"dt", "relationship", "create", "hq", "c1", "--name", "contains", "--target", "lobby"}, env);
  ASSERT_EQ(rel.code, 0) << rel.out;
  auto incoming = Cli(server_, {"dt", "relationship", "list", "lobby", "--incoming"}, env);
  ASSERT_EQ(incoming.code, 0) << incoming.out;
  EXPECT_EQ(JsonOf(incoming.out).as_array().size(), 1u) << incoming.out;
  auto queried = Cli(server_,
                     {"dt", "query",
                      "SELECT L FROM DIGITALTWINS H JOIN L RELATED H.contains "
                      "WHERE H.$dtId = 'hq'"},
                     env);
  ASSERT_EQ(queried.code, 0) << queried.out;
  EXPECT_EQ(JsonOf(queried.out).at(0).at("L").at("name").as_string(), "Main lobby") << queried.out;
  auto malformed = Cli(server_, {"dt", "query", "SELECT FROM"}, env);
  EXPECT_EQ(malformed.code, 1);
  EXPECT_NE(malformed.out.find("HTTP 400 BadRequest"), std::string::npos) << malformed.out;
  auto bound = Cli(server_, {"dt", "twin", "delete", "lobby"}, env);
  EXPECT_NE(bound.out.find("RelationshipsNotDeleted"), std::string::npos) << bound.out;
  EXPECT_EQ(Cli(server_, {"dt", "relationship", "delete", "hq", "c1"}, env).code, 0);
  EXPECT_EQ(Cli(server_, {"dt", "twin", "delete", "lobby"}, env).code, 0);
  EXPECT_EQ(Cli(server_, {"dt", "twin", "show", "lobby"}, env).code, 1);

  auto no_secret = Cli(server_, {"dt", "model", "list"});
  EXPECT_EQ(no_secret.code, 2);
  EXPECT_NE(no_secret.out.find("orrery identity sp create"), std::string::npos) << no_secret.out;
  env[1] = "AZURE_CLIENT_SECRET=wrong";
  auto bad = Cli(server_, {"dt", "model", "list"}, env);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("HTTP 401"), std::string::npos) << bad.out;
}

// Event routes through the real binary: a webhook endpoint receives CloudEvents batches
// (signed), an event-log endpoint puts telemetry on the hub's log for monitor-events, and
// an event raised while the webhook is down reaches it after a kill -9 and a restart.
struct WithReceiver {
  testing::WebhookReceiver hook{0, "twins-hook"};
};

class TwinsEventsTest : public WithReceiver, public TwinsServeTest {
 protected:
  TwinsEventsTest() : TwinsServeTest({"ORRERY_TWINS_WEBHOOK_CA_FILE=" + hook.ca().string()}) {}

  // The CloudEvents the webhook accepted, each batch's signature checked.
  std::vector<json::object> Events() {
    std::vector<json::object> out;
    for (auto& req : hook.received()) {
      EXPECT_EQ(req.headers.Get("Content-Type").value_or(""),
                "application/cloudevents-batch+json; charset=utf-8");
      EXPECT_EQ(req.headers.Get("X-Orrery-Signature").value_or(""),
                "sha256=" + routing::WebhookSignature("s3cret", req.body));
      json::value batch = json::parse(req.body);
      for (auto& e : batch.as_array())
        out.push_back(e.as_object());
    }
    return out;
  }
  bool Arrived(std::string_view type, std::string_view subject) {
    for (auto& e : Events()) {
      if (e.at("type").as_string() == type && e.at("subject").as_string() == subject) return true;
    }
    return false;
  }
};

TEST_F(TwinsEventsTest, RoutesDeliverCloudEventsAndSurviveKill9) {
  ASSERT_TRUE(server_.started()) << server_.process().output();
  std::string owner = Token(Principal("events", "owner"));
  std::string reader = Token(Principal("watcher", "reader"));
  std::string api(kApi);
  ASSERT_EQ(Call("POST", "/models" + api, fmt::format("[{},{},{}]", kSpace, kSensor, kRoom), owner)
                .status,
            201);

  // Endpoints (Orrery's API) and routes (ADT's), with ADT's refusals.
  auto bad_url = Call("PUT", "/endpoints/hook" + api,
                      R"({"endpointType":"Webhook","url":"http://localhost/x"})", owner);
  EXPECT_EQ(bad_url.status, 400);
  EXPECT_NE(bad_url.body.find("https://"), std::string::npos) << bad_url.body;
  auto ep =
      Call("PUT", "/endpoints/hook" + api,
           fmt::format(R"({{"endpointType":"Webhook","url":"{}","secret":"s3cret"}})", hook.url()),
           owner);
  ASSERT_EQ(ep.status, 200) << ep.body;
  EXPECT_EQ(json::parse(ep.body).at("secret").as_string(), "********");
  EXPECT_EQ(Call("PUT", "/endpoints/stream" + api, R"({"endpointType":"EventLog"})", reader).status,
            403);
  ASSERT_EQ(Call("PUT", "/endpoints/stream" + api, R"({"endpointType":"EventLog"})", owner).status,
            200);
  EXPECT_EQ(Code(Call("PUT", "/eventroutes/r" + api,
                      R"({"endpointName":"nowhere","filter":"true"})", owner)),
            "EventRouteEndpointInvalid");
  EXPECT_EQ(Code(Call("PUT", "/eventroutes/r" + api,
                      R"({"endpointName":"hook","filter":"type = = 'x'"})", owner)),
            "EventRouteFilterInvalid");
  ASSERT_EQ(Call("PUT", "/eventroutes/changes" + api,
                 R"({"endpointName":"hook","filter":"type != 'microsoft.iot.telemetry'"})", owner)
                .status,
            204);
  ASSERT_EQ(Call("PUT", "/eventroutes/hot" + api,
                 R"({"endpointName":"stream",
                     "filter":"type = 'microsoft.iot.telemetry' AND $body.temperature > 25"})",
                 owner)
                .status,
            204);
  auto route = Call("GET", "/eventroutes/changes" + api, {}, reader);
  ASSERT_EQ(route.status, 200);
  EXPECT_EQ(json::parse(route.body), json::parse(R"({"id":"changes","endpointName":"hook",
                            "filter":"type != 'microsoft.iot.telemetry'"})"));
  EXPECT_EQ(
      json::parse(Call("GET", "/eventroutes" + api, {}, reader).body).at("value").as_array().size(),
      2u);
  EXPECT_EQ(Code(Call("DELETE", "/endpoints/hook" + api, {}, owner)), "EndpointInUse");
  EXPECT_EQ(Code(Call("GET", "/eventroutes/none" + api, {}, reader)), "EventRouteNotFound");

  // Changes reach the webhook.
  ASSERT_EQ(
      Call("PUT", "/digitaltwins/room1" + api,
           R"({"$metadata":{"$model":"dtmi:ex:Room;1"},"name":"A","sensor":{"$metadata":{}}})",
           owner)
          .status,
      200);
  net::Headers patch_type;
  patch_type.Set("Content-Type", "application/json-patch+json");
  ASSERT_EQ(Call("PATCH", "/digitaltwins/room1" + api,
                 R"([{"op":"replace","path":"/name","value":"B"}])", owner, patch_type)
                .status,
            204);
  ASSERT_TRUE(hook.WaitUntil([&] {
    return Arrived("Microsoft.DigitalTwins.Twin.Create", "room1") &&
           Arrived("Microsoft.DigitalTwins.Twin.Update", "room1");
  })) << hook.received().size();
  for (auto& e : Events()) {
    if (e.at("type").as_string() != "Microsoft.DigitalTwins.Twin.Update") continue;
    EXPECT_EQ(e.at("data").at("patch"),
              json::parse(R"([{"op":"replace","path":"/name","value":"B"}])"));
    EXPECT_EQ(e.at("source").as_string(), "localhost");
    EXPECT_EQ(e.at("specversion").as_string(), "1.0");
  }

  // Telemetry: Message-Id required, the twin must exist; the hot one reaches the hub's log.
  auto telemetry = [&](std::string path, std::string body, std::string id) {
    net::Headers h;
    if (!id.empty()) h.Set("Message-Id", id);
    h.Set("Telemetry-Source-Time", "2026-12-01T12:00:00Z");
    return Call("POST", path + api, body, owner, std::move(h));
  };
  EXPECT_EQ(telemetry("/digitaltwins/room1/telemetry", R"({"temperature":30})", "").status, 400);
  EXPECT_EQ(Code(telemetry("/digitaltwins/ghost/telemetry", R"({"temperature":30})", "t0")),
            "DigitalTwinNotFound");
  EXPECT_EQ(Code(telemetry("/digitaltwins/room1/components/nope/telemetry", "{}", "t0")),
            "ComponentNotFound");
  EXPECT_EQ(telemetry("/digitaltwins/room1/telemetry", R"({"temperature":20})", "cool-1").status,
            204);
  EXPECT_EQ(
      telemetry("/digitaltwins/room1/components/sensor/telemetry", R"({"temperature":31})", "hot-1")
          .status,
      204);
  auto mon =
      Process::Spawn({OrreryBinary(), "monitor-events", "--data-dir", server_.data_dir().string(),
                      "--https-port", std::to_string(server_.ports().https), "--from", "earliest",
                      "--properties", "all", "--count", "1", "--timeout", "10"});
  ASSERT_EQ(mon->Wait(std::chrono::seconds(60)), 0) << mon->output();
  EXPECT_NE(mon->output().find("hot-1"), std::string::npos) << mon->output();
  EXPECT_NE(mon->output().find("dtmi:ex:Sensor;1"), std::string::npos) << mon->output();
  EXPECT_EQ(mon->output().find("cool-1"), std::string::npos) << mon->output();

  // The webhook goes down; a change acknowledged meanwhile waits in the notification log,
  // survives kill -9, and arrives once the webhook is back.
  hook.set_down(true);
  ASSERT_EQ(
      Call("PUT", "/digitaltwins/room2" + api,
           R"({"$metadata":{"$model":"dtmi:ex:Room;1"},"name":"C","sensor":{"$metadata":{}}})",
           owner)
          .status,
      200);
  int before = hook.attempts();
  ASSERT_TRUE(hook.WaitUntil([&] { return hook.attempts() > before; }));
  server_.Restart(SIGKILL);
  ASSERT_TRUE(server_.started()) << server_.process().output();
  EXPECT_FALSE(Arrived("Microsoft.DigitalTwins.Twin.Create", "room2"));
  hook.set_down(false);
  ASSERT_TRUE(
      hook.WaitUntil([&] { return Arrived("Microsoft.DigitalTwins.Twin.Create", "room2"); }));

  // The CLI manages both.
  auto p = Principal("cli", "owner");
  std::vector<std::string> env = {
      "AZURE_CLIENT_ID=" + std::string(p.at("clientId").as_string()),
      "AZURE_CLIENT_SECRET=" + std::string(p.at("clientSecret").as_string())};
  auto created = Cli(server_,
                     {"dt", "route", "create", "deletes", "--endpoint-name", "hook", "--filter",
                      "type = 'Microsoft.DigitalTwins.Twin.Delete'"},
                     env);
  ASSERT_EQ(created.code, 0) << created.out;
  EXPECT_EQ(JsonOf(created.out).at("endpointName").as_string(), "hook");
  auto listed = Cli(server_, {"dt", "route", "list"}, env);
  ASSERT_EQ(listed.code, 0) << listed.out;
  EXPECT_EQ(JsonOf(listed.out).as_array().size(), 3u);
  auto shown = Cli(server_, {"dt", "endpoint", "show", "hook"}, env);
  ASSERT_EQ(shown.code, 0) << shown.out;
  EXPECT_EQ(JsonOf(shown.out).at("health").at("status").as_string(), "healthy") << shown.out;
  auto both =
      Cli(server_, {"dt", "endpoint", "create", "x", "--event-log", "--webhook", hook.url()}, env);
  EXPECT_EQ(both.code, 2) << both.out;
  EXPECT_EQ(Cli(server_, {"dt", "route", "delete", "deletes"}, env).code, 0);
  EXPECT_EQ(Cli(server_, {"dt", "route", "delete", "hot"}, env).code, 0);
  EXPECT_EQ(Cli(server_, {"dt", "endpoint", "delete", "stream"}, env).code, 0);
  auto gone = Cli(server_, {"dt", "endpoint", "list"}, env);
  ASSERT_EQ(gone.code, 0) << gone.out;
  EXPECT_EQ(JsonOf(gone.out).as_array().size(), 1u);
}

// Ingestion through the real binary: a device's HTTPS telemetry patches its twin through a
// mapping rule, and a propagation rule carries the reading to the room that has the sensor.
TEST_F(TwinsServeTest, HubTelemetryUpdatesTwinsThroughMappingRules) {
  ASSERT_TRUE(server_.started()) << server_.process().output();
  std::string owner = Token(Principal("ingest", "owner"));
  std::string api(kApi);
  const char* sensor =
      R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Thermo;1","@type":"Interface",
    "contents":[{"@type":"Property","name":"temperature","schema":"double"}]})";
  const char* room =
      R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Office;1","@type":"Interface",
    "contents":[{"@type":"Property","name":"temperature","schema":"double"},
                {"@type":"Relationship","name":"hasSensor","target":"dtmi:ex:Thermo;1"}]})";
  ASSERT_EQ(Call("POST", "/models" + api, fmt::format("[{},{}]", sensor, room), owner).status, 201);
  ASSERT_EQ(Call("PUT", "/digitaltwins/thermo-1" + api,
                 R"({"$metadata":{"$model":"dtmi:ex:Thermo;1"}})", owner)
                .status,
            200);
  ASSERT_EQ(Call("PUT", "/digitaltwins/office-1" + api,
                 R"({"$metadata":{"$model":"dtmi:ex:Office;1"}})", owner)
                .status,
            200);
  ASSERT_EQ(Call("PUT", "/digitaltwins/office-1/relationships/s1" + api,
                 R"({"$relationshipName":"hasSensor","$targetId":"thermo-1"})", owner)
                .status,
            200);
  auto bad =
      Call("PUT", "/mappings/bad" + api, R"({"source":"telemetry","patch":{"/a":1}})", owner);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("twinId"), std::string::npos) << bad.body;
  ASSERT_EQ(Call("PUT", "/mappings/thermo" + api,
                 R"j({"source":"telemetry","condition":"is_defined($body.temperature)",
                      "twinId":"{deviceId}","patch":{"/temperature":"$body.temperature"}})j",
                 owner)
                .status,
            200);
  ASSERT_EQ(Call("PUT", "/mappings/office" + api,
                 R"({"source":"digitalTwinChange","condition":"$body.modelId = 'dtmi:ex:Thermo;1'",
                     "relationship":"hasSensor","direction":"incoming",
                     "patch":{"/temperature":"$twin.temperature"}})",
                 owner)
                .status,
            200);

  // The device, through the hub's service API, and its telemetry over HTTPS.
  auto cs = Process::Spawn(
      {OrreryBinary(), "hub", "connection-string", "--data-dir", server_.data_dir().string()});
  ASSERT_EQ(cs->Wait(), 0);
  auto parsed = hub::ParseServiceConnectionString(cs->output().substr(0, cs->output().find('\n')));
  ASSERT_TRUE(parsed);
  std::string service = *hub::MakeSasToken(parsed->host_name, parsed->key,
                                           timeutil::NowMs() / 1000 + 3600, parsed->key_name);
  net::HttpClientOptions trust;
  trust.tls.ca_file = server_.ca_file();
  auto hub_call = [&](std::string method, std::string path, std::string body, std::string token,
                      net::Headers h = {}) {
    h.Set("Authorization", token);
    auto r = net::Fetch(method, server_.Url(path + "?api-version=2021-04-12"), h, body, trust);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : net::HttpResponse{};
  };
  auto dev = hub_call("PUT", "/devices/thermo-1", "{}", service);
  ASSERT_EQ(dev.status, 200) << dev.body;
  std::string key(
      json::parse(dev.body).at("authentication").at("symmetricKey").at("primaryKey").as_string());
  std::string device = *hub::MakeSasToken("localhost/devices/thermo-1", key,
                                          timeutil::NowMs() / 1000 + 3600, "", true);
  net::Headers json_type;
  json_type.Set("iothub-contenttype", "application/json");
  json_type.Set("iothub-contentencoding", "utf-8");
  ASSERT_EQ(hub_call("POST", "/devices/thermo-1/messages/events", R"({"temperature":22.5})", device,
                     json_type)
                .status,
            204);
  auto temperature = [&](std::string id) {
    auto r = Call("GET", "/digitaltwins/" + id + api, {}, owner);
    auto v = json::parse(r.body);
    auto* t = v.as_object().if_contains("temperature");
    return t ? t->to_number<double>() : -1.0;
  };
  testing::WebhookReceiver poll;  // for its bounded polling only
  EXPECT_TRUE(poll.WaitUntil([&] { return temperature("thermo-1") == 22.5; }));
  EXPECT_TRUE(poll.WaitUntil([&] { return temperature("office-1") == 22.5; }));
  auto listed = Call("GET", "/mappings" + api, {}, owner);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(json::parse(listed.body).at("value").as_array().size(), 2u);
  EXPECT_GE(json::parse(listed.body).at("stats").at("applied").to_number<uint64_t>(), 2u)
      << listed.body;
  EXPECT_EQ(Call("DELETE", "/mappings/office" + api, {}, owner).status, 204);
  EXPECT_EQ(Code(Call("GET", "/mappings/office" + api, {}, owner)), "MappingNotFound");
}

}  // namespace
}  // namespace orrery
