// Hub administration through the real binary: shared access policies managed with
// `orrery hub policy` (permissions, key rotation, the owner-only rule) and the optional rate
// limits (429 with Retry-After).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/time.h"
#include "hub/sas.h"
#include "net/http_client.h"
#include "test/support/orrery_server.h"

namespace orrery {
namespace {
using testing::OrreryBinary;
using testing::OrreryServer;
using testing::Process;

struct Ran {
  int code = -1;
  std::string out;
};

Ran Cli(const OrreryServer& server, std::vector<std::string> args) {
  std::vector<std::string> argv = {OrreryBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--data-dir", server.data_dir().string(), "--https-port",
                           std::to_string(server.ports().https)});
  auto p = Process::Spawn(argv);
  auto code = p->Wait(std::chrono::seconds(60));
  return {code.value_or(-1), p->output()};
}

// Read from the data directory (works with or without the server).
std::string ConnectionString(const OrreryServer& server, const std::string& policy) {
  auto p = Process::Spawn({OrreryBinary(), "hub", "connection-string", "--policy", policy,
                           "--data-dir", server.data_dir().string()});
  EXPECT_EQ(p->Wait(), 0) << p->output();
  return p->output().substr(0, p->output().find('\n'));
}

TEST(HubAdminTest, PoliciesAreManagedByOwnersAndKeysRotate) {
  OrreryServer server("hub-admin");
  ASSERT_TRUE(server.started()) << server.process().output();
  auto created =
      Cli(server, {"hub", "policy", "set", "telemetryReader", "--rights", "ServiceConnect"});
  ASSERT_EQ(created.code, 0) << created.out;
  EXPECT_NE(created.out.find(R"("rights": "ServiceConnect")"), std::string::npos) << created.out;
  auto listed = Cli(server, {"hub", "policy", "list"});
  ASSERT_EQ(listed.code, 0) << listed.out;
  for (auto name : {"iothubowner", "service", "device", "registryRead", "registryReadWrite",
                    "telemetryReader"}) {
    EXPECT_NE(listed.out.find(fmt::format(R"("keyName": "{}")", name)), std::string::npos) << name;
  }
  // The new policy works where it has the permission, and nowhere else.
  std::string reader = ConnectionString(server, "telemetryReader");
  auto twin = Cli(server, {"device", "create", "pol-dev"});
  ASSERT_EQ(twin.code, 0) << twin.out;
  auto read = Cli(server, {"twin", "show", "pol-dev", "--connection-string", reader});
  EXPECT_EQ(read.code, 0) << read.out;
  auto write = Cli(server, {"device", "create", "nope", "--connection-string", reader});
  EXPECT_EQ(write.code, 1);
  EXPECT_NE(write.out.find("HTTP 403"), std::string::npos) << write.out;
  // A policy without every permission cannot manage policies (it could grant itself more).
  auto escalate =
      Cli(server, {"hub", "policy", "set", "telemetryReader", "--rights", "RegistryWrite",
                   "--connection-string", ConnectionString(server, "registryReadWrite")});
  EXPECT_EQ(escalate.code, 1);
  EXPECT_NE(escalate.out.find("HTTP 403"), std::string::npos) << escalate.out;
  // Rotating the primary key invalidates the old connection string at once.
  auto rotated = Cli(server, {"hub", "policy", "rotate-key", "telemetryReader"});
  ASSERT_EQ(rotated.code, 0) << rotated.out;
  auto stale = Cli(server, {"twin", "show", "pol-dev", "--connection-string", reader});
  EXPECT_EQ(stale.code, 1);
  EXPECT_NE(stale.out.find("HTTP 401"), std::string::npos) << stale.out;
  auto fresh = Cli(server, {"twin", "show", "pol-dev", "--connection-string",
                            ConnectionString(server, "telemetryReader")});
  EXPECT_EQ(fresh.code, 0) << fresh.out;
  // Deleting it, and refusing to delete the last policy that can write the registry.
  EXPECT_EQ(Cli(server, {"hub", "policy", "delete", "telemetryReader"}).code, 0);
  EXPECT_EQ(Cli(server, {"twin", "show", "pol-dev", "--connection-string", reader}).code, 1);
  EXPECT_EQ(Cli(server, {"hub", "policy", "delete", "registryReadWrite"}).code, 0);
  auto last = Cli(server, {"hub", "policy", "delete", "iothubowner"});
  EXPECT_EQ(last.code, 1);
  EXPECT_NE(last.out.find("last policy with RegistryWrite"), std::string::npos) << last.out;
  auto bad = Cli(server, {"hub", "policy", "set", "x", "--rights", "Everything"});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("unknown permission"), std::string::npos) << bad.out;
  // Changes are in policies.json: they survive a restart.
  server.Restart();
  ASSERT_TRUE(server.started());
  auto after = Cli(server, {"hub", "policy", "list"});
  EXPECT_EQ(after.out.find("telemetryReader"), std::string::npos) << after.out;
}

TEST(HubAdminTest, RateLimitsAnswer429WithRetryAfter) {
  OrreryServer server("hub-limits", std::vector<std::string>{},
                      std::vector<std::string>{"ORRERY_HUB_RATE_LIMIT_SERVICE_PER_SECOND=1",
                                               "ORRERY_HUB_RATE_LIMIT_SERVICE_BURST=3"});
  ASSERT_TRUE(server.started()) << server.process().output();
  auto cs = hub::ParseServiceConnectionString(ConnectionString(server, "iothubowner"));
  ASSERT_TRUE(cs);
  auto token =
      hub::MakeSasToken(cs->host_name, cs->key, timeutil::NowMs() / 1000 + 600, cs->key_name);
  net::HttpClientOptions trust;
  trust.tls.ca_file = server.ca_file();
  auto get = [&] {
    net::Headers h;
    h.Set("Authorization", *token);
    auto r =
        net::Fetch("GET", server.Url("/statistics/devices?api-version=2021-04-12"), h, "", trust);
    EXPECT_TRUE(r);
    return r ? *r : net::HttpResponse{};
  };
  // A burst of 3 passes; faster than 1/s after it, requests are throttled (ten requests on
  // loopback take far less than the seconds that would refill the bucket that often).
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(get().status, 200) << i;
  std::optional<net::HttpResponse> throttled;
  for (int i = 0; i < 10 && !throttled; ++i) {
    auto r = get();
    if (r.status == 429) throttled = r;
  }
  ASSERT_TRUE(throttled) << "no request was throttled";
  EXPECT_NE(throttled->body.find("ThrottlingException"), std::string::npos) << throttled->body;
  auto retry = throttled->headers.Get("Retry-After");
  ASSERT_TRUE(retry);
  EXPECT_GE(std::stoi(std::string(*retry)), 1);
  // Other policies have their own buckets.
  auto svc = hub::ParseServiceConnectionString(ConnectionString(server, "registryRead"));
  auto other =
      hub::MakeSasToken(svc->host_name, svc->key, timeutil::NowMs() / 1000 + 600, svc->key_name);
  net::Headers h;
  h.Set("Authorization", *other);
  auto r =
      net::Fetch("GET", server.Url("/statistics/devices?api-version=2021-04-12"), h, "", trust);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace orrery
