// The real `orrery` binary on loopback: health, metrics, configuration errors, port
// conflicts, the owner credential, the data-directory lock and certificate reload.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "base/files.h"
#include "net/http_client.h"
#include "test/support/orrery_server.h"

namespace orrery {
namespace {
using testing::LineCount;
using testing::OrreryBinary;
using testing::OrreryServer;
using testing::Process;
using testing::TempDir;

net::HttpClientOptions Trust(const std::filesystem::path& ca) {
  net::HttpClientOptions o;
  o.tls.ca_file = ca;
  o.timeout = std::chrono::seconds(10);
  return o;
}

TEST(ServeTest, ServesHealthReadinessAndMetricsOverTlsThenStopsCleanly) {
  OrreryServer server("serve");
  ASSERT_TRUE(server.started()) << server.process().output();
  auto health = net::Fetch("GET", server.Url("/healthz"), {}, "", Trust(server.ca_file()));
  ASSERT_TRUE(health) << health.error().message();
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, R"({"status":"ok"})");

  auto ready = net::Fetch("GET", server.Url("/readyz"), {}, "", Trust(server.ca_file()));
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);

  auto metrics = net::Fetch("GET", server.Url("/metrics"), {}, "", Trust(server.ca_file()));
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->headers.Get("Content-Type")->find("text/plain; version=0.0.4"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("# TYPE orrery_build_info gauge"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("process_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(metrics->body.find("orrery_net_connections{listener=\"https\"}"), std::string::npos);

  server.process().Signal(SIGTERM);
  EXPECT_EQ(server.process().Wait(), 0) << server.process().output();
  EXPECT_NE(server.process().output().find("shutting down"), std::string::npos);
}

TEST(ServeTest, BrokenConfigFileIsOneLineAndExit2) {
  TempDir dir("badcfg");
  auto cfg = dir.path() / "orrery.toml";
  std::ofstream(cfg) << "[https]\nport = \"not a number\"\n";
  auto p = Process::Spawn({OrreryBinary(), "serve", "--config", cfg.string(), "--data-dir",
                           (dir.path() / "data").string()});
  EXPECT_EQ(p->Wait(), 2);
  EXPECT_EQ(LineCount(p->output()), 1u) << p->output();
  EXPECT_NE(p->output().find("orrery: https.port: expected an integer"), std::string::npos)
      << p->output();

  std::ofstream(cfg) << "[https\n";
  p = Process::Spawn({OrreryBinary(), "serve", "--config", cfg.string()});
  EXPECT_EQ(p->Wait(), 2);
  EXPECT_EQ(LineCount(p->output()), 1u) << p->output();
  EXPECT_NE(p->output().find("line 1"), std::string::npos) << p->output();

  std::ofstream(cfg) << "[https]\nprot = 1\n";
  p = Process::Spawn({OrreryBinary(), "serve", "--config", cfg.string()});
  EXPECT_EQ(p->Wait(), 2);
  EXPECT_NE(p->output().find("unknown configuration key 'https.prot'"), std::string::npos)
      << p->output();
}

TEST(ServeTest, BadUsageIsExit2) {
  auto p = Process::Spawn({OrreryBinary(), "serve", "--no-such-flag"});
  EXPECT_EQ(p->Wait(), 2);
  EXPECT_EQ(LineCount(p->output()), 1u) << p->output();
  p = Process::Spawn({OrreryBinary(), "serve", "--https-port", "99999"});
  EXPECT_EQ(p->Wait(), 2);
  EXPECT_NE(p->output().find("0..65535"), std::string::npos) << p->output();
  p = Process::Spawn({OrreryBinary(), "serve", "--help"});
  EXPECT_EQ(p->Wait(), 0);
  EXPECT_NE(p->output().find("--https-port"), std::string::npos);
}

TEST(ServeTest, TakenPortIsOneLineAndNonZero) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  TempDir dir("port");
  auto p = Process::Spawn({OrreryBinary(), "serve", "--data-dir", dir.path().string(), "--bind",
                           "127.0.0.1", "--https-port", std::to_string(ntohs(addr.sin_port)),
                           "--twins-port", "0"});
  auto code = p->Wait();
  ::close(fd);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 1) << p->output();
  std::string last = p->output().substr(p->output().rfind("orrery:"));
  EXPECT_EQ(LineCount(last), 1u) << p->output();
  EXPECT_NE(last.find("already in use"), std::string::npos) << p->output();
}

TEST(ServeTest, OwnerConnectionStringWithoutServerIsStableAndPrivate) {
  TempDir dir("cs");
  auto p = Process::Spawn({OrreryBinary(), "hub", "connection-string", "--data-dir",
                           dir.path().string(), "--host-name", "hub.local"});
  ASSERT_EQ(p->Wait(), 0) << p->output();
  std::string first = p->output();
  EXPECT_TRUE(
      std::regex_match(first, std::regex("HostName=hub\\.local;SharedAccessKeyName=iothubowner;"
                                         "SharedAccessKey=[A-Za-z0-9+/]{43}=\n")))
      << first;
  auto perms = std::filesystem::status(dir.path() / "hub" / "policies.json").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all, files::kSecretPerms);

  p = Process::Spawn({OrreryBinary(), "hub", "connection-string", "--data-dir", dir.path().string(),
                      "--host-name", "hub.local"});
  ASSERT_EQ(p->Wait(), 0);
  EXPECT_EQ(p->output(), first);

  p = Process::Spawn({OrreryBinary(), "hub", "connection-string", "--data-dir", dir.path().string(),
                      "--policy", "registryRead"});
  ASSERT_EQ(p->Wait(), 0);
  EXPECT_NE(p->output().find("SharedAccessKeyName=registryRead;"), std::string::npos);

  p = Process::Spawn({OrreryBinary(), "hub", "connection-string", "--data-dir", dir.path().string(),
                      "--policy", "nobody"});
  EXPECT_EQ(p->Wait(), 2);
  EXPECT_NE(p->output().find("no shared access policy named 'nobody'"), std::string::npos);
}

TEST(ServeTest, SecondServerOnTheSameDataDirIsRefused) {
  OrreryServer server("lock");
  ASSERT_TRUE(server.started()) << server.process().output();
  auto p =
      Process::Spawn({OrreryBinary(), "serve", "--data-dir", server.data_dir().string(), "--bind",
                      "127.0.0.1", "--https-port", std::to_string(testing::FreePort())});
  EXPECT_EQ(p->Wait(), 1);
  EXPECT_NE(p->output().find("is in use by another orrery (pid "), std::string::npos)
      << p->output();
}

TEST(ServeTest, EnvironmentOverridesFileAndFlagsOverrideEnvironment) {
  TempDir dir("prec");
  auto cfg = dir.path() / "orrery.toml";
  uint16_t file_port = testing::FreePort(), env_port = testing::FreePort();
  std::ofstream(cfg) << "[https]\nport = " << file_port << "\n";
  auto p = Process::Spawn({OrreryBinary(), "config", "check", "--config", cfg.string()},
                          {"ORRERY_HTTPS_PORT=" + std::to_string(env_port)});
  ASSERT_EQ(p->Wait(), 0) << p->output();
  EXPECT_NE(
      p->output().find("https.port = " + std::to_string(env_port) + "  (env ORRERY_HTTPS_PORT)"),
      std::string::npos)
      << p->output();

  OrreryServer server("prec-serve", {"--config", cfg.string()},
                      {"ORRERY_HTTPS_PORT=" + std::to_string(env_port)});
  ASSERT_TRUE(server.started()) << server.process().output();
  // --https-port (a flag, given by the harness) wins over both.
  auto ok = net::Fetch("GET", server.Url("/healthz"), {}, "", Trust(server.ca_file()));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->status, 200);
}

TEST(ServeTest, SighupReloadsTheCertificate) {
  OrreryServer server("sighup");
  ASSERT_TRUE(server.started()) << server.process().output();
  auto old_ca = files::ReadFile(server.ca_file()).value();
  auto old_ca_copy = server.data_dir() / "old-ca.pem";
  ASSERT_TRUE(files::WriteFileAtomic(old_ca_copy, old_ca));

  // A new CA and server certificate on disk; the running server still uses the old ones.
  auto init = Process::Spawn(
      {OrreryBinary(), "certs", "init", "--force", "--data-dir", server.data_dir().string()});
  ASSERT_EQ(init->Wait(), 0) << init->output();
  EXPECT_TRUE(net::Fetch("GET", server.Url("/healthz"), {}, "", Trust(old_ca_copy)));
  EXPECT_FALSE(net::Fetch("GET", server.Url("/healthz"), {}, "", Trust(server.ca_file())));

  server.process().Signal(SIGHUP);
  ASSERT_TRUE(server.process().WaitForOutput("reloaded the TLS certificate"))
      << server.process().output();
  EXPECT_TRUE(net::Fetch("GET", server.Url("/healthz"), {}, "", Trust(server.ca_file())));
  EXPECT_FALSE(net::Fetch("GET", server.Url("/healthz"), {}, "", Trust(old_ca_copy)));
}

}  // namespace
}  // namespace orrery

namespace orrery {
namespace {

TEST(ReadmeTest, ConfigurationReferenceMatchesTheBinary) {
  const char* src = std::getenv("ORRERY_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  auto readme = files::ReadFile(std::filesystem::path(src) / "README.md");
  ASSERT_TRUE(readme) << readme.error().message();
  auto p = testing::Process::Spawn({testing::OrreryBinary(), "config", "reference"});
  ASSERT_EQ(p->Wait(), 0);
  EXPECT_NE(readme->find("<!-- config-reference:begin -->\n" + p->output() +
                         "<!-- config-reference:end -->"),
            std::string::npos)
      << "README.md's configuration reference is stale: run scripts/update-config-reference";
}

}  // namespace
}  // namespace orrery
