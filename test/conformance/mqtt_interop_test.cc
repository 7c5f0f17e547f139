// Real MQTT clients from Debian packages against the real `orrery serve`: mosquitto_pub /
// mosquitto_sub (MQTT 3.1.1 and 5) and python3-paho-mqtt, over TCP, TLS, WebSocket and
// secure WebSocket. Skips with a reason when a client is not installed.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "test/support/orrery_server.h"

namespace orrery {
namespace {
using testing::OrreryServer;
using testing::Process;

bool Installed(const char* path) {
  return ::access(path, X_OK) == 0;
}

std::string PahoScript() {
  const char* src = std::getenv("ORRERY_SOURCE_DIR");
  return std::string(src ? src : ".") + "/test/conformance/mqtt/paho_check.py";
}

class MqttInteropTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!Installed("/usr/bin/mosquitto_pub") || !Installed("/usr/bin/mosquitto_sub")) {
      skip_reason_ = "mosquitto-clients is not installed (scripts/install-deps installs it)";
      return;
    }
    server_ = new OrreryServer("mqtt-interop");
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(server_->started()) << server_->process().output();
  }

  // mosquitto_sub in debug mode, returned once its SUBACK arrived. Its stdout is a pipe, so
  // stdbuf makes it line-buffered: the harness waits on what it prints.
  static std::unique_ptr<Process> Sub(std::vector<std::string> args) {
    std::vector<std::string> argv = {"stdbuf", "-oL", "mosquitto_sub", "-d"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = Process::Spawn(argv);
    EXPECT_TRUE(p->WaitForOutput("received SUBACK")) << p->output();
    return p;
  }
  static int Pub(std::vector<std::string> args) {
    std::vector<std::string> argv = {"mosquitto_pub"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = Process::Spawn(argv);
    auto code = p->Wait();
    EXPECT_EQ(code, 0) << p->output();
    return code.value_or(-1);
  }
  static std::vector<std::string> Tcp() {
    return {"-h", "127.0.0.1", "-p", std::to_string(server_->ports().mqtt)};
  }
  static std::vector<std::string> Tls() {
    return {"-h",       "localhost",
            "-p",       std::to_string(server_->ports().mqtts),
            "--cafile", server_->ca_file().string()};
  }
  static std::vector<std::string> Join(std::vector<std::string> a,
                                       const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  static OrreryServer* server_;
  static std::string skip_reason_;
};
OrreryServer* MqttInteropTest::server_ = nullptr;
std::string MqttInteropTest::skip_reason_;

TEST_F(MqttInteropTest, MosquittoQosRoundTripsOverTcpAndTlsIn311And5) {
  int n = 0;
  for (auto transport : {Tcp(), Tls()}) {
    for (std::string version : {"mqttv311", "mqttv5"}) {
      std::string topic = "rt/" + std::to_string(n++);
      auto sub = Sub(Join(transport, {"-V", version, "-q", "2", "-t", topic, "-C", "3", "-v"}));
      for (std::string qos : {"0", "1", "2"}) {
        Pub(Join(transport, {"-V", version, "-q", qos, "-t", topic, "-m", "qos" + qos}));
      }
      ASSERT_EQ(sub->Wait(), 0) << sub->output();
      for (std::string qos : {"0", "1", "2"}) {
        EXPECT_NE(sub->output().find(topic + " qos" + qos), std::string::npos) << version << "\n"
                                                                               << sub->output();
      }
    }
  }
}

TEST_F(MqttInteropTest, MosquittoRetainedMessages) {
  Pub(Join(Tcp(), {"-t", "retained/lamp", "-m", "on", "-r", "-q", "1"}));
  auto sub = Process::Spawn(
      Join({"mosquitto_sub", "-V", "mqttv5"}, Join(Tcp(), {"-t", "retained/#", "-C", "1", "-v"})));
  ASSERT_EQ(sub->Wait(), 0) << sub->output();
  EXPECT_NE(sub->output().find("retained/lamp on"), std::string::npos) << sub->output();
  Pub(Join(Tcp(), {"-t", "retained/lamp", "-n", "-r", "-q", "1"}));  // clear
}

TEST_F(MqttInteropTest, MosquittoWillOnAbruptDisconnect) {
  auto watcher = Sub(Join(Tcp(), {"-t", "wills/#", "-C", "1", "-v", "-q", "1"}));
  auto dying = Sub(Join(Tcp(), {"-i", "dying-sub", "-t", "anything", "--will-topic",
                                "wills/dying-sub", "--will-payload", "lost", "--will-qos", "1"}));
  dying->Signal(SIGKILL);  // no DISCONNECT
  ASSERT_EQ(watcher->Wait(), 0) << watcher->output();
  EXPECT_NE(watcher->output().find("wills/dying-sub lost"), std::string::npos) << watcher->output();
}

TEST_F(MqttInteropTest, MosquittoTakeOverOfADuplicateClientId) {
  auto first = Sub(Join(Tcp(), {"-V", "mqttv5", "-i", "same-id", "-t", "x"}));
  auto second = Sub(Join(Tcp(), {"-V", "mqttv5", "-i", "same-id", "-t", "x"}));
  // MQTT 5 reason 0x8E Session taken over.
  EXPECT_TRUE(first->WaitForOutput("Received DISCONNECT (142)")) << first->output();
  second->Signal(SIGTERM);
}

TEST_F(MqttInteropTest, PersistentSessionSurvivesKill9OfTheServer) {
  // A 3.1.1 persistent session (-c = clean session 0) subscribes, then goes away.
  auto sub = Sub(Join(Tcp(), {"-c", "-i", "persistent-dev", "-q", "1", "-t", "cmd/persistent"}));
  sub->Signal(SIGTERM);
  sub->Wait();
  // A QoS 1 message is acknowledged while the device is offline…
  Pub(Join(Tcp(), {"-q", "1", "-t", "cmd/persistent", "-m", "queued-then-crashed"}));
  // …and the server is killed without warning.
  server_->Restart(SIGKILL);
  ASSERT_TRUE(server_->started()) << server_->process().output();
  auto again = Process::Spawn(Join(
      {"mosquitto_sub"},
      Join(Tcp(), {"-c", "-i", "persistent-dev", "-q", "1", "-t", "cmd/persistent", "-C", "1"})));
  ASSERT_EQ(again->Wait(), 0) << again->output();
  EXPECT_NE(again->output().find("queued-then-crashed"), std::string::npos) << again->output();
}

class PahoTest : public MqttInteropTest,
                 public ::testing::WithParamInterface<std::tuple<std::string, std::string, int>> {};

TEST_P(PahoTest, Scenario) {
  if (!Installed("/usr/bin/python3") ||
      Process::Spawn({"/usr/bin/python3", "-c", "import paho.mqtt.client"})->Wait() != 0) {
    GTEST_SKIP() << "python3-paho-mqtt is not installed (scripts/install-deps installs it)";
  }
  auto [scenario, transport, version] = GetParam();
  const auto& ports = server_->ports();
  std::vector<std::string> argv = {"/usr/bin/python3",     PahoScript(), scenario,
                                   "--transport",          transport,    "--version",
                                   std::to_string(version)};
  if (transport == "tcp") argv.insert(argv.end(), {"--port", std::to_string(ports.mqtt)});
  if (transport == "ws") argv.insert(argv.end(), {"--port", std::to_string(ports.mqtt_ws)});
  if (transport == "tls") {
    argv.insert(argv.end(),
                {"--port", std::to_string(ports.mqtts), "--cafile", server_->ca_file().string()});
  }
  if (transport == "wss") {
    argv.insert(argv.end(), {"--port", std::to_string(ports.https), "--cafile",
                             server_->ca_file().string(), "--ws-path", "/$iothub/websocket"});
  }
  auto p = Process::Spawn(argv);
  EXPECT_EQ(p->Wait(std::chrono::seconds(60)), 0) << p->output();
  EXPECT_NE(p->output().find(" OK"), std::string::npos) << p->output();
}

INSTANTIATE_TEST_SUITE_P(
    AllTransports, PahoTest,
    ::testing::Combine(::testing::Values("roundtrip", "shared", "will", "takeover"),
                       ::testing::Values("tcp", "tls", "ws", "wss"), ::testing::Values(3, 5)),
    [](const auto& param_info) {
      return std::get<0>(param_info.param) + "_" + std::get<1>(param_info.param) + "_v" +
             std::to_string(std::get<2>(param_info.param));
    });

}  // namespace
}  // namespace orrery
