// `orrery device|twin|method|c2d|dps` against the real `orrery serve`: the service CLIs as
// clients of the service REST APIs (the hub's and the provisioning service's), their output,
// their error lines and their exit codes.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <fstream>
#include <regex>
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
using testing::LineCount;
using testing::OrreryBinary;
using testing::OrreryServer;
using testing::Process;
using testing::TempDir;

constexpr std::string_view kKey1 = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
constexpr std::string_view kKey2 = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU=";
constexpr std::string_view kThumbprint = "0123456789ABCDEF0123456789ABCDEF01234567";

struct Ran {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// Runs `orrery <args…> --data-dir <server's> --https-port <server's>`.
Ran Cli(const OrreryServer& server, std::vector<std::string> args,
        std::vector<std::string> env = {}) {
  std::vector<std::string> argv = {OrreryBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--data-dir", server.data_dir().string(), "--https-port",
                           std::to_string(server.ports().https)});
  auto p = Process::Spawn(argv, std::move(env));
  auto code = p->Wait(std::chrono::seconds(60));
  return {code.value_or(-1), p->output()};
}

bool Has(const Ran& r, std::string_view text) {
  return r.out.find(text) != std::string::npos;
}

// The first string value of `"key": "…"` in pretty-printed JSON ("" when absent or null).
std::string Field(const std::string& out, std::string_view key) {
  std::string needle = "\"" + std::string(key) + "\": \"";
  auto at = out.find(needle);
  if (at == std::string::npos) return "";
  at += needle.size();
  return out.substr(at, out.find('"', at) - at);
}

size_t Count(const std::string& out, std::string_view text) {
  size_t n = 0;
  for (auto at = out.find(text); at != std::string::npos; at = out.find(text, at + 1))
    ++n;
  return n;
}

// An error is one line on stderr with exit code 1 (2 for usage errors).
void ExpectError(const Ran& r, int code, std::string_view text) {
  EXPECT_EQ(r.code, code) << r.out;
  EXPECT_TRUE(Has(r, text)) << r.out;
  EXPECT_EQ(LineCount(r.out), 1u) << r.out;
  EXPECT_TRUE(r.out.starts_with("orrery: ")) << r.out;
}

TEST(CliTest, DevicesAndModules) {
  OrreryServer server("cli-registry");
  ASSERT_TRUE(server.started()) << server.process().output();

  auto d1 = Cli(server, {"device", "create", "d1"});
  ASSERT_EQ(d1.code, 0) << d1.out;
  EXPECT_TRUE(Has(d1, R"("deviceId": "d1")")) << d1.out;
  EXPECT_TRUE(Has(d1, R"("type": "sas")")) << d1.out;
  EXPECT_TRUE(Has(d1, R"("status": "enabled")")) << d1.out;
  std::string key = Field(d1.out, "primaryKey"), etag = Field(d1.out, "etag");
  EXPECT_FALSE(key.empty()) << "the server generates keys: " << d1.out;
  EXPECT_NE(key, Field(d1.out, "secondaryKey"));

  auto d2 =
      Cli(server, {"device", "create", "d2", "--primary-key", std::string(kKey1), "--secondary-key",
                   std::string(kKey2), "--status", "disabled", "--status-reason", "new", "--edge"});
  ASSERT_EQ(d2.code, 0) << d2.out;
  EXPECT_EQ(Field(d2.out, "primaryKey"), kKey1);
  EXPECT_EQ(Field(d2.out, "secondaryKey"), kKey2);
  EXPECT_EQ(Field(d2.out, "status"), "disabled");
  EXPECT_EQ(Field(d2.out, "statusReason"), "new");
  EXPECT_TRUE(Has(d2, R"("iotEdge": true)")) << d2.out;

  auto x1 = Cli(server, {"device", "create", "x1", "--auth", "selfSigned", "--primary-thumbprint",
                         std::string(kThumbprint)});
  ASSERT_EQ(x1.code, 0) << x1.out;
  EXPECT_EQ(Field(x1.out, "type"), "selfSigned");
  EXPECT_EQ(Field(x1.out, "primaryThumbprint"), kThumbprint);

  // Ids go into the path URL-encoded: '#', '?' and '%' are valid in device ids.
  auto odd = Cli(server, {"device", "create", "a#b?c%d"});
  ASSERT_EQ(odd.code, 0) << odd.out;
  auto odd_show = Cli(server, {"device", "show", "a#b?c%d"});
  ASSERT_EQ(odd_show.code, 0) << odd_show.out;
  EXPECT_EQ(Field(odd_show.out, "deviceId"), "a#b?c%d");

  ExpectError(Cli(server, {"device", "create", "d1"}), 1,
              "HTTP 409 DeviceAlreadyExists: device 'd1' already exists");

  auto m1 = Cli(server, {"device", "create", "d1", "--module", "m1"});
  ASSERT_EQ(m1.code, 0) << m1.out;
  EXPECT_EQ(Field(m1.out, "moduleId"), "m1");
  std::string module_key = Field(m1.out, "primaryKey");
  auto m1_show = Cli(server, {"device", "show", "d1", "-m", "m1"});
  ASSERT_EQ(m1_show.code, 0) << m1_show.out;
  EXPECT_EQ(Field(m1_show.out, "primaryKey"), module_key);

  auto list = Cli(server, {"device", "list", "--top", "10"});
  ASSERT_EQ(list.code, 0) << list.out;
  for (auto id : {"d1", "d2", "x1"})
    EXPECT_TRUE(Has(list, fmt::format(R"("deviceId": "{}")", id))) << list.out;
  EXPECT_FALSE(Has(list, "moduleId")) << list.out;
  auto top1 = Cli(server, {"device", "list", "--top", "1"});
  ASSERT_EQ(top1.code, 0) << top1.out;
  EXPECT_EQ(Count(top1.out, R"("deviceId")"), 1u) << top1.out;
  auto modules = Cli(server, {"device", "list", "--modules-of", "d1"});
  ASSERT_EQ(modules.code, 0) << modules.out;
  EXPECT_TRUE(Has(modules, R"("moduleId": "m1")")) << modules.out;

  // Update changes only what was given, under the etag read with the identity.
  auto disabled = Cli(
      server, {"device", "update", "d1", "--status", "disabled", "--status-reason", "maintenance"});
  ASSERT_EQ(disabled.code, 0) << disabled.out;
  EXPECT_EQ(Field(disabled.out, "status"), "disabled");
  EXPECT_EQ(Field(disabled.out, "statusReason"), "maintenance");
  EXPECT_EQ(Field(disabled.out, "primaryKey"), key);
  EXPECT_NE(Field(disabled.out, "etag"), etag);
  auto shown = Cli(server, {"device", "show", "d1"});
  ASSERT_EQ(shown.code, 0) << shown.out;
  EXPECT_EQ(Field(shown.out, "status"), "disabled");
  ExpectError(Cli(server, {"device", "update", "d1", "--status", "enabled", "--etag", etag}), 1,
              "HTTP 412 PreconditionFailed");
  auto rekeyed = Cli(server, {"device", "update", "d1", "--secondary-key", std::string(kKey2),
                              "--etag", Field(shown.out, "etag")});
  ASSERT_EQ(rekeyed.code, 0) << rekeyed.out;
  EXPECT_EQ(Field(rekeyed.out, "primaryKey"), key);
  EXPECT_EQ(Field(rekeyed.out, "secondaryKey"), kKey2);
  EXPECT_EQ(Field(rekeyed.out, "status"), "disabled");

  // Connection strings: the host of the service connection string, the key, the module.
  auto cs = Cli(server, {"device", "connection-string", "d1"});
  ASSERT_EQ(cs.code, 0) << cs.out;
  EXPECT_TRUE(cs.out.starts_with("HostName=")) << cs.out;
  EXPECT_TRUE(cs.out.ends_with(fmt::format(";DeviceId=d1;SharedAccessKey={}\n", key))) << cs.out;
  EXPECT_EQ(LineCount(cs.out), 1u);
  auto cs2 = Cli(server, {"device", "connection-string", "d1", "--secondary"});
  ASSERT_EQ(cs2.code, 0) << cs2.out;
  EXPECT_TRUE(cs2.out.ends_with(fmt::format(";SharedAccessKey={}\n", kKey2))) << cs2.out;
  auto cs_module = Cli(server, {"device", "connection-string", "d1", "--module", "m1"});
  ASSERT_EQ(cs_module.code, 0) << cs_module.out;
  EXPECT_TRUE(cs_module.out.ends_with(
      fmt::format(";DeviceId=d1;ModuleId=m1;SharedAccessKey={}\n", module_key)))
      << cs_module.out;
  ExpectError(Cli(server, {"device", "connection-string", "x1"}), 1,
              "device 'x1' uses selfSigned authentication and has no shared access key");

  // Delete: the module, then the device.
  auto m1_gone = Cli(server, {"device", "delete", "d1", "--module", "m1"});
  EXPECT_EQ(m1_gone.code, 0) << m1_gone.out;
  ExpectError(Cli(server, {"device", "show", "d1", "--module", "m1"}), 1,
              "HTTP 404 ModuleNotFound: module 'm1' of device 'd1' does not exist");
  ExpectError(Cli(server, {"device", "delete", "d2", "--etag", "bm90IGl0"}), 1,
              "HTTP 412 PreconditionFailed");
  auto d1_gone = Cli(server, {"device", "delete", "d1"});
  EXPECT_EQ(d1_gone.code, 0) << d1_gone.out;
  EXPECT_EQ(d1_gone.out, "");
  auto missing = Cli(server, {"device", "show", "d1"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.out, "orrery: HTTP 404 DeviceNotFound: device 'd1' does not exist\n");
}

TEST(CliTest, Twins) {
  OrreryServer server("cli-twins");
  ASSERT_TRUE(server.started()) << server.process().output();
  ASSERT_EQ(Cli(server, {"device", "create", "t1"}).code, 0);

  auto before = Cli(server, {"twin", "show", "t1"});
  ASSERT_EQ(before.code, 0) << before.out;
  EXPECT_EQ(Field(before.out, "deviceId"), "t1");
  std::string etag0 = Field(before.out, "etag");
  ASSERT_FALSE(etag0.empty()) << before.out;

  auto patched = Cli(server, {"twin", "update", "t1", "--desired", R"({"temp":21,"mode":"eco"})",
                              "--tags", R"({"site":"lab"})"});
  ASSERT_EQ(patched.code, 0) << patched.out;
  EXPECT_TRUE(Has(patched, R"("temp": 21)")) << patched.out;
  auto after = Cli(server, {"twin", "show", "t1"});
  ASSERT_EQ(after.code, 0) << after.out;
  EXPECT_TRUE(Has(after, R"("temp": 21)")) << after.out;
  EXPECT_TRUE(Has(after, R"("mode": "eco")")) << after.out;
  EXPECT_TRUE(Has(after, R"("site": "lab")")) << after.out;
  std::string etag1 = Field(after.out, "etag");
  EXPECT_NE(etag1, etag0);

  // A stale etag is refused; the current one (quoted or not) is accepted.
  ExpectError(Cli(server, {"twin", "update", "t1", "--desired", R"({"temp":22})", "--etag", etag0}),
              1, "HTTP 412 PreconditionFailed");
  auto removed = Cli(server, {"twin", "update", "t1", "--desired", R"({"temp":null})", "--etag",
                              "\"" + etag1 + "\""});
  ASSERT_EQ(removed.code, 0) << removed.out;
  EXPECT_FALSE(Has(removed, R"("temp": 21)")) << removed.out;
  EXPECT_TRUE(Has(removed, R"("mode": "eco")")) << removed.out;

  // Usage errors are found before anything is sent.
  ExpectError(Cli(server, {"twin", "update", "t1", "--desired", R"({"temp":)"}), 2,
              "--desired is not valid JSON");
  ExpectError(Cli(server, {"twin", "update", "t1", "--tags", "[1]"}), 2,
              "--tags must be a JSON object");
  ExpectError(Cli(server, {"twin", "update", "t1"}), 2, "give --desired, --tags or both");

  auto replaced = Cli(server, {"twin", "replace", "t1", "--twin", R"({"tags":{"floor":3}})"});
  ASSERT_EQ(replaced.code, 0) << replaced.out;
  EXPECT_TRUE(Has(replaced, R"("floor": 3)")) << replaced.out;
  EXPECT_FALSE(Has(replaced, R"("site")")) << replaced.out;

  ASSERT_EQ(Cli(server, {"device", "create", "t1", "--module", "tm"}).code, 0);
  auto module_twin = Cli(server, {"twin", "update", "t1", "-m", "tm", "--desired", R"({"x":1})"});
  ASSERT_EQ(module_twin.code, 0) << module_twin.out;
  EXPECT_EQ(Field(module_twin.out, "moduleId"), "tm");
  EXPECT_TRUE(Has(module_twin, R"("x": 1)")) << module_twin.out;
  ExpectError(Cli(server, {"twin", "show", "nope"}), 1, "HTTP 404 DeviceNotFound");
}

TEST(CliTest, MethodsAndCloudToDeviceMessages) {
  OrreryServer server("cli-c2d");
  ASSERT_TRUE(server.started()) << server.process().output();
  ASSERT_EQ(Cli(server, {"device", "create", "c1"}).code, 0);

  ExpectError(Cli(server, {"method", "invoke", "c1", "--name", "reboot"}), 1,
              "HTTP 404 DeviceNotOnline");
  ExpectError(Cli(server, {"method", "invoke", "c1", "--name", "reboot", "--payload", "{bad"}), 2,
              "--payload is not valid JSON");
  ExpectError(Cli(server, {"method", "invoke", "nope", "--name", "reboot"}), 1,
              "HTTP 404 DeviceNotFound");

  auto sent =
      Cli(server, {"c2d", "send", "c1", "--body", "hello", "--ack", "full", "--message-id", "msg-1",
                   "--property", "color=blue", "--property", "size=L", "--expiry", "3600"});
  ASSERT_EQ(sent.code, 0) << sent.out;
  EXPECT_TRUE(Has(sent, R"("queueDepth": 1)")) << sent.out;
  TempDir dir("cli-body");
  auto body_file = dir.path() / "body.json";
  std::ofstream(body_file) << R"({"cmd":"on"})";
  auto from_file = Cli(server, {"c2d", "send", "c1", "--body-file", body_file.string(),
                                "--content-type", "application/json", "--expiry",
                                timeutil::FormatUtcMs(timeutil::NowMs() + 3600'000)});
  ASSERT_EQ(from_file.code, 0) << from_file.out;
  EXPECT_TRUE(Has(from_file, R"("queueDepth": 2)")) << from_file.out;
  auto device = Cli(server, {"device", "show", "c1"});
  EXPECT_TRUE(Has(device, R"("cloudToDeviceMessageCount": 2)")) << device.out;

  ExpectError(Cli(server, {"c2d", "send", "c1", "--property", "novalue"}), 2, "--property");
  ExpectError(Cli(server, {"c2d", "send", "c1", "--expiry", "tomorrow"}), 2, "--expiry");
  ExpectError(Cli(server, {"c2d", "send", "c1", "--ack", "always"}), 2, "--ack");
  ExpectError(Cli(server, {"c2d", "send", "nope", "--body", "x"}), 1, "HTTP 404 DeviceNotFound");

  auto none = Cli(server, {"c2d", "feedback"});
  ASSERT_EQ(none.code, 0) << none.out;
  EXPECT_EQ(none.out, "[]\n");

  auto purged = Cli(server, {"c2d", "purge", "c1"});
  ASSERT_EQ(purged.code, 0) << purged.out;
  EXPECT_TRUE(Has(purged, R"("totalMessagesPurged": 2)")) << purged.out;

  // Only the message that asked for feedback reports; a look leaves it queued.
  auto look = Cli(server, {"c2d", "feedback", "--wait", "10"});
  ASSERT_EQ(look.code, 0) << look.out;
  EXPECT_EQ(Field(look.out, "statusCode"), "Purged") << look.out;
  EXPECT_EQ(Field(look.out, "originalMessageId"), "msg-1") << look.out;
  EXPECT_EQ(Field(look.out, "deviceId"), "c1") << look.out;
  EXPECT_EQ(Count(look.out, "statusCode"), 1u) << look.out;
  auto take = Cli(server, {"c2d", "feedback", "--complete"});
  ASSERT_EQ(take.code, 0) << take.out;
  EXPECT_EQ(Field(take.out, "statusCode"), "Purged") << take.out;
  auto empty = Cli(server, {"c2d", "feedback"});
  ASSERT_EQ(empty.code, 0) << empty.out;
  EXPECT_EQ(empty.out, "[]\n");
  ExpectError(Cli(server, {"c2d", "purge", "nope"}), 1, "HTTP 404 DeviceNotFound");
}

// A device (mosquitto_sub/_pub with the device's SAS token) receives what the CLI sends and
// answers a method call; the CLI prints the answer and exits 0 although its status is 404.
TEST(CliTest, ADeviceReceivesMessagesAndAnswersMethods) {
  if (::access("/usr/bin/mosquitto_sub", X_OK) != 0 ||
      ::access("/usr/bin/mosquitto_pub", X_OK) != 0) {
    GTEST_SKIP() << "mosquitto-clients is not installed (scripts/install-deps installs it)";
  }
  OrreryServer server("cli-device");
  ASSERT_TRUE(server.started()) << server.process().output();
  ASSERT_EQ(Cli(server, {"device", "create", "m1", "--primary-key", std::string(kKey1)}).code, 0);
  auto token = hub::MakeSasToken("localhost/devices/m1", kKey1, timeutil::NowMs() / 1000 + 3600, {},
                                 /*encode_resource=*/true);
  ASSERT_TRUE(token) << token.error().message();
  std::vector<std::string> device = {"-h",       "localhost",
                                     "-p",       std::to_string(server.ports().mqtts),
                                     "--cafile", server.ca_file().string(),
                                     "-V",       "mqttv311",
                                     "-i",       "m1",
                                     "-u",       "localhost/m1/?api-version=2021-04-12",
                                     "-P",       *token};

  auto sent = Cli(server, {"c2d", "send", "m1", "--body", "hello", "--message-id", "msg-7",
                           "--property", "color=blue"});
  ASSERT_EQ(sent.code, 0) << sent.out;
  // The call waits for the device to come online (--connect-timeout).
  std::vector<std::string> invoke = {OrreryBinary(),
                                     "method",
                                     "invoke",
                                     "m1",
                                     "--name",
                                     "lookup",
                                     "--payload",
                                     R"({"what":42})",
                                     "--connect-timeout",
                                     "60",
                                     "--timeout",
                                     "60",
                                     "--data-dir",
                                     server.data_dir().string(),
                                     "--https-port",
                                     std::to_string(server.ports().https)};
  auto call = Process::Spawn(invoke);

  std::vector<std::string> sub = {"stdbuf",
                                  "-oL",
                                  "mosquitto_sub",
                                  "-v",
                                  "-C",
                                  "2",
                                  "-t",
                                  "devices/m1/messages/devicebound/#",
                                  "-t",
                                  "$iothub/methods/POST/#"};
  sub.insert(sub.end(), device.begin(), device.end());
  auto receiver = Process::Spawn(sub);
  ASSERT_TRUE(receiver->WaitForOutput(R"({"what":42})", std::chrono::seconds(60)))
      << receiver->output() << call->output();
  ASSERT_EQ(receiver->Wait(std::chrono::seconds(20)), 0) << receiver->output();
  const std::string& got = receiver->output();
  EXPECT_NE(got.find("%24.mid=msg-7"), std::string::npos) << got;
  EXPECT_NE(got.find("color=blue hello"), std::string::npos) << got;
  std::smatch rid;
  ASSERT_TRUE(
      std::regex_search(got, rid, std::regex(R"(\$iothub/methods/POST/lookup/\?\$rid=(\S+))")))
      << got;

  std::vector<std::string> pub = {"mosquitto_pub", "-t",
                                  "$iothub/methods/res/404/?$rid=" + rid[1].str(), "-m",
                                  R"({"error":"not here"})"};
  pub.insert(pub.end(), device.begin(), device.end());
  auto answer = Process::Spawn(pub);
  ASSERT_EQ(answer->Wait(), 0) << answer->output();
  ASSERT_EQ(call->Wait(std::chrono::seconds(60)), 0) << call->output();
  EXPECT_NE(call->output().find(R"("status": 404)"), std::string::npos) << call->output();
  EXPECT_NE(call->output().find(R"("error": "not here")"), std::string::npos) << call->output();
}

TEST(CliTest, CredentialsAndUsageErrors) {
  OrreryServer server("cli-auth");
  ASSERT_TRUE(server.started()) << server.process().output();
  auto cs = Process::Spawn({OrreryBinary(), "hub", "connection-string", "--data-dir",
                            server.data_dir().string(), "--policy", "registryRead"});
  ASSERT_EQ(cs->Wait(), 0) << cs->output();
  std::string read_only = cs->output().substr(0, cs->output().find('\n'));
  std::string read_key = read_only.substr(read_only.find("SharedAccessKey=") + 16);
  ASSERT_FALSE(read_key.empty());

  // registryRead may read but not write; the refusal names the permission, not the key.
  ExpectError(Cli(server, {"device", "show", "r1", "--connection-string", read_only}), 1,
              "HTTP 404 DeviceNotFound");
  auto refused = Cli(server, {"device", "create", "r1", "--login", read_only});
  ExpectError(refused, 1, "HTTP 403 IotHubUnauthorizedAccess");
  EXPECT_TRUE(Has(refused, "RegistryWrite")) << refused.out;
  EXPECT_FALSE(Has(refused, read_key)) << refused.out;
  ExpectError(Cli(server, {"device", "create", "r1"}, {"ORRERY_CONNECTION_STRING=" + read_only}), 1,
              "HTTP 403");
  auto forged = Cli(server, {"device", "list", "--connection-string",
                             "HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey="
                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="});
  ExpectError(forged, 1, "HTTP 401");
  EXPECT_FALSE(Has(forged, "AAAAAAAAAAAAAAAAAAAA")) << forged.out;
  ExpectError(Cli(server, {"device", "list", "--connection-string", "HostName=localhost"}), 2,
              "SharedAccessKey");

  // Usage errors exit 2 without a request.
  EXPECT_EQ(Cli(server, {"device", "create"}).code, 2);
  EXPECT_EQ(Cli(server, {"device", "list", "--top", "5", "--modules-of", "d"}).code, 2);
  EXPECT_EQ(Cli(server, {"device", "frobnicate", "d"}).code, 2);
  ExpectError(Cli(server, {"device", "create", "u1", "--status", "sleeping"}), 2, "--status");
  ExpectError(Cli(server, {"device", "create", "u1", "--module", "m", "--edge"}), 2,
              "modules have no status");
  ExpectError(Cli(server, {"device", "update", "u1"}), 2, "nothing to update");
  EXPECT_EQ(Cli(server, {"device", "show", "u1"}).code, 1) << "no usage error created u1";
}

// Runs `orrery <args…> --data-dir <dir>`: the commands that need no server.
Ran Offline(const std::filesystem::path& data_dir, std::vector<std::string> args) {
  std::vector<std::string> argv = {OrreryBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--data-dir", data_dir.string()});
  auto p = Process::Spawn(argv);
  auto code = p->Wait(std::chrono::seconds(60));
  return {code.value_or(-1), p->output()};
}

// base64(HMAC-SHA256(base64decode(group_key), registration_id)), straight from OpenSSL.
std::string DerivedKey(std::string_view group_key, std::string_view registration_id) {
  std::string key(group_key.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                          reinterpret_cast<const unsigned char*>(group_key.data()),
                          static_cast<int>(group_key.size()));
  if (n < 0) return "";
  size_t pad = group_key.ends_with("==") ? 2 : group_key.ends_with("=") ? 1 : 0;
  key.resize(static_cast<size_t>(n) - pad);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(registration_id.data()), registration_id.size(), mac,
       &mac_len);
  std::string out(4 * ((mac_len + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(mac_len));
  return out;
}

// A device registers over HTTPS as the SDK does (a SAS token for <scope>/registrations/<id>
// signed with `key`), following the operation until it ends; returns its final status.
std::string Register(const OrreryServer& server, const std::string& scope,
                     const std::string& registration_id, std::string_view key) {
  auto token = hub::MakeSasToken(fmt::format("{}/registrations/{}", scope, registration_id), key,
                                 timeutil::NowMs() / 1000 + 3600, "registration");
  if (!token) return "no token: " + token.error().message();
  net::HttpClientOptions trust;
  trust.tls.ca_file = server.ca_file();
  std::string path = fmt::format("/{}/registrations/{}/register", scope, registration_id);
  std::string method = "PUT";
  for (int i = 0; i < 100; ++i) {
    net::Headers h;
    h.Set("Authorization", *token);
    h.Set("Content-Type", "application/json");
    std::string body =
        method == "PUT" ? fmt::format(R"({{"registrationId":"{}"}})", registration_id) : "";
    auto r = net::Fetch(method, server.Url(path + "?api-version=2019-03-31"), h, body, trust);
    if (!r) return r.error().message();
    boost::system::error_code ec;
    auto v = boost::json::parse(r->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("status")) return r->body;
    std::string status(v.as_object().at("status").as_string());
    if (status != "assigning") return status;
    // The server tells the device when to come back: that is the protocol, not a sync hack.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    method = "GET";
    path = fmt::format("/{}/registrations/{}/operations/{}", scope, registration_id,
                       std::string(v.as_object().at("operationId").as_string()));
  }
  return "still assigning";
}

TEST(CliTest, ProvisioningServiceOffline) {
  TempDir dir("cli-dps-offline");
  // The first call creates DPS's policies and ID scope; later calls print the same.
  auto cs = Offline(dir.path(), {"dps", "connection-string"});
  ASSERT_EQ(cs.code, 0) << cs.out;
  EXPECT_TRUE(std::regex_match(
      cs.out, std::regex("HostName=[^;]+;SharedAccessKeyName=provisioningserviceowner;"
                         "SharedAccessKey=[A-Za-z0-9+/]{43}=\n")))
      << cs.out;
  EXPECT_EQ(Offline(dir.path(), {"dps", "connection-string"}).out, cs.out);
  auto read = Offline(dir.path(), {"dps", "connection-string", "--policy", "enrollmentread"});
  ASSERT_EQ(read.code, 0) << read.out;
  EXPECT_TRUE(Has(read, ";SharedAccessKeyName=enrollmentread;")) << read.out;
  auto secondary = Offline(dir.path(), {"dps", "connection-string", "--secondary"});
  ASSERT_EQ(secondary.code, 0) << secondary.out;
  EXPECT_NE(secondary.out, cs.out);
  ExpectError(Offline(dir.path(), {"dps", "connection-string", "--policy", "iothubowner"}), 2,
              "iothubowner");
  // The hub's policies are another store.
  auto hub_cs = Offline(dir.path(), {"hub", "connection-string"});
  ASSERT_EQ(hub_cs.code, 0) << hub_cs.out;
  EXPECT_NE(hub_cs.out.substr(hub_cs.out.find("SharedAccessKey=")),
            cs.out.substr(cs.out.find("SharedAccessKey=")));

  auto scope = Offline(dir.path(), {"dps", "id-scope"});
  ASSERT_EQ(scope.code, 0) << scope.out;
  EXPECT_TRUE(std::regex_match(scope.out, std::regex("0ne[0-9A-F]{8}\n"))) << scope.out;
  EXPECT_EQ(Offline(dir.path(), {"dps", "id-scope"}).out, scope.out);
  TempDir other("cli-dps-offline-2");
  EXPECT_NE(Offline(other.path(), {"dps", "id-scope"}).out, scope.out);

  // derive-key --key needs nothing: no server, no credential read or created.
  TempDir empty("cli-dps-derive");
  auto derived = Offline(empty.path(), {"dps", "derive-key", "dev-1", "--key", std::string(kKey1)});
  ASSERT_EQ(derived.code, 0) << derived.out;
  EXPECT_EQ(derived.out, DerivedKey(kKey1, "dev-1") + "\n");
  EXPECT_NE(DerivedKey(kKey1, "dev-1"), DerivedKey(kKey1, "dev-2"));
  EXPECT_FALSE(std::filesystem::exists(empty.path() / "dps")) << "derive-key --key read policies";
  ExpectError(Offline(empty.path(), {"dps", "derive-key", "dev-1", "--key", "not base64!"}), 2,
              "--key must be the base64 of 16 to 64 bytes");
  ExpectError(Offline(empty.path(), {"dps", "derive-key", "dev 1", "--key", std::string(kKey1)}), 2,
              "the registration id");
  ExpectError(Offline(empty.path(), {"dps", "derive-key", "dev-1"}), 2,
              "give the group's key with --key, or --group");
}

TEST(CliTest, ProvisioningService) {
  OrreryServer server("cli-dps");
  ASSERT_TRUE(server.started()) << server.process().output();

  // Individual enrollments: keys the server generates, or given ones.
  auto e1 = Cli(server, {"dps", "enrollment", "create", "e1"});
  ASSERT_EQ(e1.code, 0) << e1.out;
  EXPECT_EQ(Field(e1.out, "registrationId"), "e1");
  EXPECT_EQ(Field(e1.out, "type"), "symmetricKey");
  EXPECT_EQ(Field(e1.out, "provisioningStatus"), "enabled");
  std::string key = Field(e1.out, "primaryKey"), etag = Field(e1.out, "etag");
  ASSERT_FALSE(key.empty()) << "the server generates keys: " << e1.out;
  EXPECT_NE(key, Field(e1.out, "secondaryKey"));
  ExpectError(Cli(server, {"dps", "enrollment", "create", "e1"}), 1,
              "enrollment 'e1' already exists");
  EXPECT_EQ(Field(Cli(server, {"dps", "enrollment", "show", "e1"}).out, "primaryKey"), key)
      << "a second create replaced the first";

  auto e2 = Cli(server, {"dps",
                         "enrollment",
                         "create",
                         "e2",
                         "--primary-key",
                         std::string(kKey1),
                         "--secondary-key",
                         std::string(kKey2),
                         "--device-id",
                         "dev-2",
                         "--edge",
                         "--disabled",
                         "--reprovision",
                         "never",
                         "--allocation",
                         "static",
                         "--hub",
                         "localhost",
                         "--initial-twin",
                         R"({"tags":{"site":"lab"}})"});
  ASSERT_EQ(e2.code, 0) << e2.out;
  EXPECT_EQ(Field(e2.out, "primaryKey"), kKey1);
  EXPECT_EQ(Field(e2.out, "secondaryKey"), kKey2);
  EXPECT_EQ(Field(e2.out, "deviceId"), "dev-2");
  EXPECT_EQ(Field(e2.out, "provisioningStatus"), "disabled");
  EXPECT_EQ(Field(e2.out, "allocationPolicy"), "static");
  EXPECT_EQ(Field(e2.out, "site"), "lab");
  EXPECT_TRUE(Has(e2, R"("iotEdge": true)")) << e2.out;
  EXPECT_TRUE(Has(e2, R"("updateHubAssignment": false)")) << e2.out;
  EXPECT_TRUE(Has(e2, "\"iotHubs\": [\n        \"localhost\"\n    ]")) << e2.out;

  // x509: the certificate's PEM goes up, its info comes back (the server's CA will do).
  std::string pem_file = server.ca_file().string();
  auto x1 = Cli(server, {"dps", "enrollment", "create", "x1", "--certificate", pem_file});
  ASSERT_EQ(x1.code, 0) << x1.out;
  EXPECT_EQ(Field(x1.out, "type"), "x509");
  std::string thumbprint = Field(x1.out, "sha1Thumbprint");
  EXPECT_EQ(thumbprint.size(), 40u) << x1.out;

  // Update changes only what was given, under the etag read with it.
  auto updated = Cli(server, {"dps", "enrollment", "update", "e1", "--disabled", "--reprovision",
                              "reset", "--initial-twin", R"({"properties":{"desired":{"x":1}}})"});
  ASSERT_EQ(updated.code, 0) << updated.out;
  EXPECT_EQ(Field(updated.out, "provisioningStatus"), "disabled");
  EXPECT_EQ(Field(updated.out, "primaryKey"), key);
  EXPECT_TRUE(Has(updated, R"("updateHubAssignment": true)")) << updated.out;
  EXPECT_TRUE(Has(updated, R"("migrateDeviceData": false)")) << updated.out;
  EXPECT_TRUE(Has(updated, R"("x": 1)")) << updated.out;
  EXPECT_NE(Field(updated.out, "etag"), etag);
  ExpectError(Cli(server, {"dps", "enrollment", "update", "e1", "--enabled", "--etag", etag}), 1,
              "HTTP 412 412002");
  auto rekeyed = Cli(server, {"dps", "enrollment", "update", "e1", "--enabled", "--secondary-key",
                              std::string(kKey2), "--etag", Field(updated.out, "etag")});
  ASSERT_EQ(rekeyed.code, 0) << rekeyed.out;
  EXPECT_EQ(Field(rekeyed.out, "provisioningStatus"), "enabled");
  EXPECT_EQ(Field(rekeyed.out, "primaryKey"), key);
  EXPECT_EQ(Field(rekeyed.out, "secondaryKey"), kKey2);
  EXPECT_TRUE(Has(rekeyed, R"("x": 1)")) << rekeyed.out;
  auto x1_edge = Cli(server, {"dps", "enrollment", "update", "x1", "--edge"});
  ASSERT_EQ(x1_edge.code, 0) << x1_edge.out;
  EXPECT_EQ(Field(x1_edge.out, "sha1Thumbprint"), thumbprint) << "the certificate was kept";
  EXPECT_TRUE(Has(x1_edge, R"("iotEdge": true)")) << x1_edge.out;
  ExpectError(
      Cli(server, {"dps", "enrollment", "update", "x1", "--primary-key", std::string(kKey1)}), 2,
      "add --attestation symmetricKey");
  auto x1_keys = Cli(server, {"dps", "enrollment", "update", "x1", "--attestation", "symmetricKey",
                              "--primary-key", std::string(kKey1)});
  ASSERT_EQ(x1_keys.code, 0) << x1_keys.out;
  EXPECT_EQ(Field(x1_keys.out, "type"), "symmetricKey");
  EXPECT_EQ(Field(x1_keys.out, "primaryKey"), kKey1);

  // Lists follow the continuation page after page, up to --top.
  auto all = Cli(server, {"dps", "enrollment", "list"});
  ASSERT_EQ(all.code, 0) << all.out;
  EXPECT_EQ(Count(all.out, R"("registrationId")"), 3u) << all.out;
  auto paged = Cli(server, {"dps", "enrollment", "list", "--page-size", "1"});
  ASSERT_EQ(paged.code, 0) << paged.out;
  EXPECT_EQ(paged.out, all.out);
  auto top2 = Cli(server, {"dps", "enrollment", "list", "--page-size", "1", "--top", "2"});
  ASSERT_EQ(top2.code, 0) << top2.out;
  EXPECT_EQ(Count(top2.out, R"("registrationId")"), 2u) << top2.out;
  auto queried = Cli(server, {"dps", "enrollment", "list", "--query",
                              "SELECT * FROM enrollments WHERE provisioningStatus = 'disabled'"});
  ASSERT_EQ(queried.code, 0) << queried.out;
  EXPECT_EQ(Count(queried.out, R"("registrationId")"), 1u) << queried.out;
  EXPECT_EQ(Field(queried.out, "registrationId"), "e2") << queried.out;
  ExpectError(Cli(server, {"dps", "enrollment", "list", "--query", "SELECT * FROM devices"}), 1,
              "HTTP 400 400004: unsupported query");

  // Delete, with and without the etag.
  ExpectError(Cli(server, {"dps", "enrollment", "delete", "e2", "--etag", "bm90IGl0"}), 1,
              "HTTP 412 412002");
  auto gone = Cli(server, {"dps", "enrollment", "delete", "e2"});
  EXPECT_EQ(gone.code, 0) << gone.out;
  EXPECT_EQ(gone.out, "");
  auto missing = Cli(server, {"dps", "enrollment", "show", "e2"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.out, "orrery: HTTP 404 404201: enrollment 'e2' does not exist\n");

  // Groups, and the keys their devices derive.
  auto g1 = Cli(server, {"dps", "enrollment-group", "create", "g1", "--primary-key",
                         std::string(kKey1), "--hub", "localhost"});
  ASSERT_EQ(g1.code, 0) << g1.out;
  EXPECT_EQ(Field(g1.out, "enrollmentGroupId"), "g1");
  std::string group_secondary = Field(g1.out, "secondaryKey");
  auto member = Cli(server, {"dps", "derive-key", "dev-a", "--group", "g1"});
  ASSERT_EQ(member.code, 0) << member.out;
  EXPECT_EQ(member.out, DerivedKey(kKey1, "dev-a") + "\n");
  auto member2 = Cli(server, {"dps", "derive-key", "dev-a", "--group", "g1", "--secondary"});
  ASSERT_EQ(member2.code, 0) << member2.out;
  EXPECT_EQ(member2.out, DerivedKey(group_secondary, "dev-a") + "\n");
  auto gx = Cli(server, {"dps", "enrollment-group", "create", "gx", "--certificate", pem_file});
  ASSERT_EQ(gx.code, 0) << gx.out;
  EXPECT_EQ(Field(gx.out, "sha1Thumbprint"), thumbprint) << gx.out;
  ExpectError(Cli(server, {"dps", "derive-key", "dev-a", "--group", "gx"}), 1,
              "enrollment group 'gx' uses x509 attestation and has no symmetric key");
  ExpectError(Cli(server, {"dps", "derive-key", "dev-a", "--group", "nope"}), 1, "HTTP 404 404201");
  auto groups = Cli(server, {"dps", "enrollment-group", "list"});
  ASSERT_EQ(groups.code, 0) << groups.out;
  EXPECT_EQ(Count(groups.out, R"("enrollmentGroupId")"), 2u) << groups.out;
  // The derived keys work: two devices of the group register, and their states show.
  auto scope = Offline(server.data_dir(), {"dps", "id-scope"});
  ASSERT_EQ(scope.code, 0) << scope.out;
  scope.out.pop_back();
  ASSERT_EQ(Register(server, scope.out, "dev-a", DerivedKey(kKey1, "dev-a")), "assigned");
  ASSERT_EQ(Register(server, scope.out, "dev-b", DerivedKey(kKey1, "dev-b")), "assigned");
  auto state = Cli(server, {"dps", "registration", "show", "dev-a"});
  ASSERT_EQ(state.code, 0) << state.out;
  EXPECT_EQ(Field(state.out, "status"), "assigned") << state.out;
  EXPECT_EQ(Field(state.out, "deviceId"), "dev-a") << state.out;
  EXPECT_EQ(Field(state.out, "enrollmentGroupId"), "g1") << state.out;
  EXPECT_EQ(Field(state.out, "assignedHub"), "localhost") << state.out;
  auto states = Cli(server, {"dps", "registration", "list", "--group", "g1"});
  ASSERT_EQ(states.code, 0) << states.out;
  EXPECT_EQ(Count(states.out, R"("registrationId")"), 2u) << states.out;
  auto states_paged =
      Cli(server, {"dps", "registration", "list", "--group", "g1", "--page-size", "1"});
  ASSERT_EQ(states_paged.code, 0) << states_paged.out;
  EXPECT_EQ(states_paged.out, states.out);
  auto device = Cli(server, {"device", "show", "dev-a"});
  EXPECT_EQ(device.code, 0) << "provisioning created the device in the hub: " << device.out;
  ExpectError(Cli(server, {"dps", "registration", "delete", "dev-a", "--etag", "bm90IGl0"}), 1,
              "HTTP 412 412002");
  auto state_gone = Cli(server, {"dps", "registration", "delete", "dev-a"});
  EXPECT_EQ(state_gone.code, 0) << state_gone.out;
  EXPECT_EQ(state_gone.out, "");
  ExpectError(Cli(server, {"dps", "registration", "show", "dev-a"}), 1, "HTTP 404 404202");

  auto g1_off = Cli(server, {"dps", "enrollment-group", "update", "g1", "--disabled"});
  ASSERT_EQ(g1_off.code, 0) << g1_off.out;
  EXPECT_EQ(Field(g1_off.out, "primaryKey"), kKey1);
  EXPECT_EQ(Field(g1_off.out, "provisioningStatus"), "disabled");

  auto none = Cli(server, {"dps", "registration", "list", "--group", "gx"});
  ASSERT_EQ(none.code, 0) << none.out;
  EXPECT_EQ(none.out, "[]\n");
  auto unknown = Cli(server, {"dps", "registration", "show", "nope"});
  ExpectError(unknown, 1, "HTTP 404 404202: no registration state for 'nope'");
  ExpectError(Cli(server, {"dps", "registration", "list", "--group", "nope"}), 1, "HTTP 404");
  auto g1_gone = Cli(server, {"dps", "enrollment-group", "delete", "g1"});
  EXPECT_EQ(g1_gone.code, 0) << g1_gone.out;

  // Credentials: DPS's own policies (a hub connection string in the environment is not used),
  // and the refusal names the permission, never the key.
  auto read = Process::Spawn({OrreryBinary(), "dps", "connection-string", "--data-dir",
                              server.data_dir().string(), "--policy", "enrollmentread"});
  ASSERT_EQ(read->Wait(), 0) << read->output();
  std::string read_only = read->output().substr(0, read->output().find('\n'));
  std::string read_key = read_only.substr(read_only.find("SharedAccessKey=") + 16);
  auto shown = Cli(server, {"dps", "enrollment", "show", "e1", "--connection-string", read_only});
  ASSERT_EQ(shown.code, 0) << shown.out;
  EXPECT_TRUE(Has(shown, R"("primaryKey": null)")) << "keys need EnrollmentWrite: " << shown.out;
  auto refused = Cli(server, {"dps", "enrollment", "create", "r1"},
                     {"ORRERY_DPS_CONNECTION_STRING=" + read_only});
  ExpectError(refused, 1, "HTTP 403 403002");
  EXPECT_TRUE(Has(refused, "EnrollmentWrite")) << refused.out;
  EXPECT_FALSE(Has(refused, read_key)) << refused.out;
  auto hub_cs = Process::Spawn(
      {OrreryBinary(), "hub", "connection-string", "--data-dir", server.data_dir().string()});
  ASSERT_EQ(hub_cs->Wait(), 0) << hub_cs->output();
  std::string hub_owner = hub_cs->output().substr(0, hub_cs->output().find('\n'));
  auto despite_hub =
      Cli(server, {"dps", "enrollment", "show", "e1"}, {"ORRERY_CONNECTION_STRING=" + hub_owner});
  EXPECT_EQ(despite_hub.code, 0) << despite_hub.out;
  ExpectError(Cli(server, {"dps", "enrollment", "show", "e1", "--connection-string", hub_owner}), 1,
              "HTTP 401");

  // Usage errors exit 2 before any request.
  TempDir files("cli-dps-files");
  auto not_pem = files.path() / "not.pem";
  std::ofstream(not_pem) << "hello";
  auto usage = [&](std::vector<std::string> args, std::string_view text) {
    std::vector<std::string> argv = {"dps"};
    argv.insert(argv.end(), args.begin(), args.end());
    ExpectError(Cli(server, argv), 2, text);
  };
  usage({"enrollment", "create", "u1", "--attestation", "tpm"}, "--attestation");
  usage({"enrollment", "create", "u1", "--attestation", "x509"}, "needs --certificate");
  usage({"enrollment", "create", "u1", "--certificate", not_pem.string()}, "not a PEM certificate");
  usage({"enrollment", "create", "u1", "--primary-key", "c2hvcnQ="}, "--primary-key must be");
  usage({"enrollment", "create", "u1", "--primary-key", std::string(kKey1), "--certificate",
         pem_file},
        "not both");
  usage({"enrollment", "create", "u1", "--initial-twin", "[1]"}, "--initial-twin must be a JSON");
  usage({"enrollment", "create", "u1", "--initial-twin", "{"}, "--initial-twin is not valid JSON");
  usage({"enrollment", "create", "u1", "--allocation", "custom"}, "needs --webhook-url");
  usage({"enrollment", "create", "u1", "--allocation", "custom", "--webhook-url", "http://x"},
        "https://");
  usage({"enrollment", "create", "u1", "--allocation", "static", "--hub", "a", "--hub", "b"},
        "static takes one --hub");
  usage({"enrollment", "create", "u1", "--reprovision", "always"}, "--reprovision");
  usage({"enrollment", "create", "bad id"}, "the registration id");
  usage({"enrollment", "update", "e1"}, "nothing to update");
  usage({"enrollment-group", "create", "u1", "--attestation", "x509"}, "--ca-name");
  usage({"enrollment", "list", "--top", "0"}, "--top");
  EXPECT_EQ(Cli(server, {"dps", "enrollment", "create", "u1", "--ca-name", "root"}).code, 2);
  EXPECT_EQ(Cli(server, {"dps", "enrollment-group", "create", "u1", "--device-id", "d"}).code, 2);
  EXPECT_EQ(Cli(server, {"dps", "enrollment", "show", "u1"}).code, 1)
      << "no usage error created u1";
  EXPECT_EQ(Cli(server, {"dps", "enrollment-group", "show", "u1"}).code, 1);
}

// `orrery dt model validate`: the DTDL linter over files and directories, offline.
TEST(CliTest, DtdlModelValidate) {
  TempDir dir("cli-dtdl");
  auto models = dir.path() / "models";
  std::filesystem::create_directories(models / "sub");
  std::ofstream(models / "thermostat.json") << R"({"@context": "dtmi:dtdl:context;3",
      "@id": "dtmi:cli:thermostat;1", "@type": "Interface", "extends": "dtmi:cli:base;1",
      "contents": [{"@type": "Telemetry", "name": "temp", "schema": "double"},
                   {"@type": "Component", "name": "info", "schema": "dtmi:cli:info;1"}]})";
  std::ofstream(models / "sub" / "base.json") << R"([{"@context": "dtmi:dtdl:context;3",
      "@id": "dtmi:cli:base;1", "@type": "Interface",
      "contents": [{"@type": "Property", "name": "serial", "schema": "string"}]},
    {"@context": "dtmi:dtdl:context;3", "@id": "dtmi:cli:info;1", "@type": "Interface"}])";
  auto run = [](std::vector<std::string> args) {
    std::vector<std::string> argv = {OrreryBinary(), "dt", "model", "validate"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = Process::Spawn(argv);
    auto code = p->Wait(std::chrono::seconds(60));
    return Ran{code.value_or(-1), p->output()};
  };
  // A directory: references resolve across its files.
  auto ok = run({models.string()});
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_TRUE(Has(ok, "2 files, 3 interfaces: valid")) << ok.out;
  // One file alone: what it references is missing.
  auto alone = run({(models / "thermostat.json").string()});
  EXPECT_EQ(alone.code, 1) << alone.out;
  EXPECT_TRUE(Has(alone, "unresolved reference: dtmi:cli:base;1")) << alone.out;
  // An error names the file, the official parser's ValidationID and the element.
  auto bad = dir.path() / "bad.json";
  std::ofstream(bad) << R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:cli:bad;1",
      "@type": "Interface", "contents": [
        {"@type": "Property", "name": "x", "schema": "double"},
        {"@type": "Telemetry", "name": "x", "schema": "double"}]})";
  auto dup = run({bad.string()});
  EXPECT_EQ(dup.code, 1) << dup.out;
  EXPECT_TRUE(Has(dup, bad.string() + ": dtmi:dtdl:parsingError:")) << dup.out;
  EXPECT_TRUE(Has(dup, "[dtmi:cli:bad;1]")) << dup.out;
  EXPECT_TRUE(Has(dup, "1 files: ")) << dup.out;
  std::ofstream(dir.path() / "broken.json") << "{ not json";
  auto broken = run({(dir.path() / "broken.json").string()});
  EXPECT_EQ(broken.code, 1) << broken.out;
  // Usage: nothing to read.
  EXPECT_EQ(run({(dir.path() / "missing").string()}).code, 2);
  std::filesystem::create_directories(dir.path() / "empty");
  EXPECT_EQ(run({(dir.path() / "empty").string()}).code, 2);
}

}  // namespace
}  // namespace orrery
