// The event log inside the real `orrery serve`: its configuration, its metrics, and
// `orrery monitor-events` reading it through the authenticated HTTPS event stream.
#include <gtest/gtest.h>

#include "eventlog/event_log.h"
#include "net/http_client.h"
#include "test/support/orrery_server.h"

namespace orrery {
namespace {
using testing::OrreryBinary;
using testing::OrreryServer;
using testing::Process;

// Appends while the server is stopped (the log is locked while it runs).
void AppendOffline(const std::filesystem::path& data_dir,
                   const std::vector<eventlog::Message>& messages) {
  auto log = eventlog::EventLog::Open(data_dir / "eventlog", {.partitions = 4});
  ASSERT_TRUE(log) << log.error().message();
  std::atomic<size_t> done{0};
  for (auto& m : messages) {
    ASSERT_TRUE((*log)->Append(m, [&](const Result<eventlog::Appended>& r) {
      EXPECT_TRUE(r);
      ++done;
    }));
  }
  (*log)->Close();  // makes every accepted append durable and runs its callback
  EXPECT_EQ(done.load(), messages.size());
}

eventlog::Message Telemetry(std::string device, std::string body,
                            std::vector<std::pair<std::string, std::string>> props = {}) {
  eventlog::Message m;
  m.body = std::move(body);
  m.properties = std::move(props);
  m.system.connection_device_id = std::move(device);
  m.system.message_source = "Telemetry";
  m.system.content_type = "application/json";
  return m;
}

std::vector<std::string> Monitor(const OrreryServer& server, std::vector<std::string> extra) {
  std::vector<std::string> argv = {OrreryBinary(), "monitor-events",
                                   "--data-dir",   server.data_dir().string(),
                                   "--https-port", std::to_string(server.ports().https),
                                   "--timeout",    "20"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

TEST(EventHubServeTest, MonitorEventsReadsTheLogThroughTheServer) {
  OrreryServer server("eventhub");
  ASSERT_TRUE(server.started()) << server.process().output();
  EXPECT_NE(server.process().output().find("event log: 4 partitions"), std::string::npos);
  server.Stop();
  AppendOffline(server.data_dir(), {Telemetry("dev-a", R"({"temp":21})"),
                                    Telemetry("dev-b", R"({"temp":22})", {{"alert", "high"}}),
                                    Telemetry("dev-b", "plain text")});
  server.Start();
  ASSERT_TRUE(server.started()) << server.process().output();

  auto mon = Process::Spawn(Monitor(server, {"--from", "earliest", "--device-id", "dev-b",
                                             "--count", "2", "--properties", "all"}));
  ASSERT_EQ(mon->Wait(std::chrono::seconds(30)), 0) << mon->output();
  const std::string& out = mon->output();
  EXPECT_NE(out.find("filtering on device: dev-b"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("origin": "dev-b")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("temp": 22)"), std::string::npos) << out;  // JSON payload, parsed
  EXPECT_NE(out.find(R"("payload": "plain text")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("alert": "high")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("x-opt-sequence-number": )"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("content-type": "application/json")"), std::string::npos) << out;
  EXPECT_EQ(out.find("dev-a"), std::string::npos) << out;

  // Without --device-id and from a sequence number on one partition.
  auto all = Process::Spawn(Monitor(server, {"--from", "earliest", "--count", "3"}));
  ASSERT_EQ(all->Wait(std::chrono::seconds(30)), 0) << all->output();
  EXPECT_NE(all->output().find(R"("origin": "dev-a")"), std::string::npos) << all->output();

  // A policy without ServiceConnect, and a forged key, are refused with the reason.
  auto cs = Process::Spawn({OrreryBinary(), "hub", "connection-string", "--data-dir",
                            server.data_dir().string(), "--policy", "registryRead"});
  ASSERT_EQ(cs->Wait(), 0);
  std::string registry_read = cs->output().substr(0, cs->output().find('\n'));
  auto weak = Process::Spawn(Monitor(server, {"--connection-string", registry_read}));
  EXPECT_EQ(weak->Wait(), 1);
  EXPECT_NE(weak->output().find("HTTP 403"), std::string::npos) << weak->output();
  EXPECT_NE(weak->output().find("lacks the ServiceConnect permission"), std::string::npos)
      << weak->output();
  auto forged = Process::Spawn(
      Monitor(server, {"--connection-string",
                       "HostName=localhost;SharedAccessKeyName=service;SharedAccessKey="
                       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}));
  EXPECT_EQ(forged->Wait(), 1);
  EXPECT_NE(forged->output().find("signature does not verify"), std::string::npos)
      << forged->output();

  // Size, lag and latency metrics.
  net::HttpClientOptions trust;
  trust.tls.ca_file = server.ca_file();
  auto metrics = net::Fetch("GET", server.Url("/metrics"), {}, "", trust);
  ASSERT_TRUE(metrics) << metrics.error().message();
  for (auto name : {"orrery_eventlog_disk_bytes", "orrery_eventlog_consumer_lag",
                    "orrery_eventlog_pending_bytes", "orrery_eventhub_events_sent_total"}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name;
  }
}

TEST(EventHubServeTest, PartitionCountIsFixedWhenTheLogIsCreated) {
  OrreryServer server("eventhub-parts");
  ASSERT_TRUE(server.started()) << server.process().output();
  server.Stop();
  auto again =
      Process::Spawn({OrreryBinary(), "serve", "--data-dir", server.data_dir().string(), "--bind",
                      "127.0.0.1", "--https-port", "0", "--mqtts-port", "0", "--mqtt-port", "0"},
                     {"ORRERY_EVENTLOG_PARTITIONS=8"});
  auto code = again->Wait();
  ASSERT_TRUE(code);
  EXPECT_NE(*code, 0);
  EXPECT_NE(again->output().find("partition"), std::string::npos) << again->output();
  auto bad = Process::Spawn({OrreryBinary(), "config", "check"}, {"ORRERY_EVENTLOG_PARTITIONS=0"});
  EXPECT_EQ(bad->Wait(), 2);
  EXPECT_NE(bad->output().find("eventlog.partitions"), std::string::npos) << bad->output();
}

}  // namespace
}  // namespace orrery
