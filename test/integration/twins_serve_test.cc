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
#include "net/http_client.h"
#include "test/support/orrery_server.h"

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
  TwinsServeTest() : server_("twins") {}

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

}  // namespace
}  // namespace orrery
