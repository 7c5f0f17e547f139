// `orrery device|twin|method|c2d` against the real `orrery serve`: the service CLI as a
// client of the service REST API, its output, its error lines and its exit codes.
#include <unistd.h>

#include <fstream>
#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/time.h"
#include "hub/sas.h"
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

}  // namespace
}  // namespace orrery
