// orrery — one binary: `orrery serve` runs the platform; the other commands are its tools.
// This file is wiring only: it parses the command line and calls into the components.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "api/monitor.h"
#include "apps/orrery/options.h"
#include "apps/orrery/serve.h"
#include "base/strings.h"
#include "base/time.h"
#include "hub/policies.h"
#include "hub/sas.h"
#include "mqtt/auth.h"
#include "pki/pki.h"

#ifndef ORRERY_VERSION
#define ORRERY_VERSION "dev"
#endif

namespace {

int Fail(const orrery::Error& e, int code) {
  fmt::print(stderr, "orrery: {}\n", e.message());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace orrery;
  CLI::App app{"Orrery: a self-hosted IoT platform (device gateway, provisioning, streams, twins)",
               "orrery"};
  app.require_subcommand(1);
  app.set_version_flag("--version", ORRERY_VERSION);

  // orrery serve
  app::FlagBindings serve_flags;
  auto* serve = app.add_subcommand("serve", "Run every enabled service");
  app::AddFlags(*serve, serve_flags,
                {"server.data_dir", "server.host_name", "server.bind", "https.port", "mqtts.port",
                 "mqtt.port", "mqtt.bind", "mqtt.ws_port", "mqtt.allow_anonymous",
                 "mqtt.users_file", "tls.cert", "tls.key", "log.level", "log.format"});

  // orrery certs init
  auto* certs = app.add_subcommand("certs", "Certificates")->require_subcommand(1);
  app::FlagBindings certs_flags;
  bool force = false;
  auto* certs_init = certs->add_subcommand(
      "init", "Create the development CA and server certificate under <data-dir>/tls");
  app::AddFlags(*certs_init, certs_flags, {"server.data_dir", "server.host_name"});
  certs_init->add_flag("--force", force, "Replace an existing CA and certificate");

  // orrery hub connection-string
  auto* hub_cmd = app.add_subcommand("hub", "The hub itself")->require_subcommand(1);
  app::FlagBindings cs_flags;
  std::string policy = "iothubowner";
  bool secondary = false;
  auto* cs = hub_cmd->add_subcommand(
      "connection-string",
      "Print a service connection string (works without a running server; creates the hub's "
      "keys on first use)");
  app::AddFlags(*cs, cs_flags, {"server.data_dir", "server.host_name"});
  cs->add_option("--policy", policy, "Shared access policy name")->capture_default_str();
  cs->add_flag("--secondary", secondary, "Use the policy's secondary key");

  // orrery mqtt passwd
  auto* mqtt_cmd = app.add_subcommand("mqtt", "The MQTT broker")->require_subcommand(1);
  std::string password;
  int iterations = 20000;
  auto* passwd = mqtt_cmd->add_subcommand(
      "passwd", "Print a password hash for mqtt.users_file (reads the password from stdin)");
  passwd->add_option("--iterations", iterations, "PBKDF2 iterations")
      ->capture_default_str()
      ->check(CLI::Range(1000, 10'000'000));

  // orrery monitor-events
  app::FlagBindings monitor_flags;
  api::MonitorOptions monitor;
  std::string monitor_cs, monitor_url, monitor_ca, monitor_props;
  int64_t monitor_timeout = 0;
  int64_t monitor_partition = -1;
  auto* monitor_cmd = app.add_subcommand(
      "monitor-events",
      "Follow the hub's events (like az iot hub monitor-events) through the HTTPS event stream");
  app::AddFlags(*monitor_cmd, monitor_flags, {"server.data_dir", "server.host_name", "https.port"});
  monitor_cmd
      ->add_option("--connection-string,--login", monitor_cs,
                   "Service connection string (a policy with ServiceConnect); default: the "
                   "'service' policy read from --data-dir")
      ->envname("ORRERY_CONNECTION_STRING");
  monitor_cmd->add_option("--url", monitor_url,
                          "HTTPS endpoint (default https://<HostName>:<https.port>)");
  monitor_cmd->add_option("--cafile", monitor_ca,
                          "CA to trust (default <data-dir>/tls/ca.pem when it exists)");
  monitor_cmd->add_option("--device-id,-d", monitor.device_id, "Only this device's events");
  monitor_cmd->add_option("--consumer-group,--cg", monitor.consumer_group, "Consumer group")
      ->capture_default_str();
  monitor_cmd->add_option("--partition", monitor_partition, "Only this partition (default all)");
  monitor_cmd
      ->add_option("--from", monitor.from,
                   "Where to start: latest, earliest, checkpoint, sequence:<n>, time:<ISO 8601>")
      ->capture_default_str();
  monitor_cmd->add_option("--properties,--props", monitor_props,
                          "Also show: comma-separated sys, app, anno, or all");
  monitor_cmd->add_option("--count", monitor.count, "Stop after this many events (0: never)");
  monitor_cmd
      ->add_option("--timeout", monitor_timeout,
                   "Stop after this many seconds without an event (0: never)")
      ->check(CLI::NonNegativeNumber);

  // orrery config reference|check
  auto* cfg = app.add_subcommand("config", "Configuration")->require_subcommand(1);
  cfg->add_subcommand("reference", "Print every configuration key as a Markdown table");
  app::FlagBindings check_flags;
  auto* check = cfg->add_subcommand("check", "Validate the configuration and print it");
  app::AddFlags(*check, check_flags, {});

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "orrery: {} (see --help)\n", e.what());
    return 2;
  }

  auto settings_for = [](const app::FlagBindings& b) { return app::LoadSettings(b); };

  if (serve->parsed()) {
    auto s = settings_for(serve_flags);
    if (!s) return Fail(s.error(), 2);
    return app::Serve(*s);
  }
  if (certs_init->parsed()) {
    auto s = settings_for(certs_flags);
    if (!s) return Fail(s.error(), 2);
    auto r = pki::EnsureDevelopmentCerts(s->String("server.data_dir"),
                                         s->String("server.host_name"), force);
    if (!r) return Fail(r.error(), 1);
    fmt::print("CA certificate (trust this): {}{}\n", r->paths.ca_cert.string(),
               r->created_ca ? " (created)" : "");
    fmt::print("server certificate:          {}{}\n", r->paths.server_cert.string(),
               r->issued_server ? " (issued)" : "");
    return 0;
  }
  if (cs->parsed()) {
    auto s = settings_for(cs_flags);
    if (!s) return Fail(s.error(), 2);
    auto store = hub::PolicyStore::Open(s->String("server.data_dir"));
    if (!store) return Fail(store.error(), 1);
    auto text = (*store)->ConnectionString(s->String("server.host_name"), policy, secondary);
    if (!text) return Fail(text.error(), 2);
    fmt::print("{}\n", *text);
    return 0;
  }
  if (passwd->parsed()) {
    std::getline(std::cin, password);
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) {
      fmt::print(stderr,
                 "orrery: no password on stdin (try: echo -n secret | orrery mqtt passwd)\n");
      return 2;
    }
    fmt::print("{}\n", mqtt::HashPassword(password, iterations));
    return 0;
  }
  if (monitor_cmd->parsed()) {
    auto s = settings_for(monitor_flags);
    if (!s) return Fail(s.error(), 2);
    std::filesystem::path data_dir = s->String("server.data_dir");
    if (monitor_cs.empty()) {
      auto store = hub::PolicyStore::Open(data_dir);
      if (!store) return Fail(store.error(), 2);
      auto text = (*store)->ConnectionString(s->String("server.host_name"), "service");
      if (!text) return Fail(text.error(), 2);
      monitor_cs = *text;
    }
    auto cs_parsed = hub::ParseServiceConnectionString(monitor_cs);
    if (!cs_parsed) return Fail(cs_parsed.error(), 2);
    auto token = hub::MakeSasToken(cs_parsed->host_name, cs_parsed->key,
                                   timeutil::NowMs() / 1000 + 3600, cs_parsed->key_name);
    if (!token) return Fail(token.error(), 2);
    monitor.token = *token;
    monitor.url = !monitor_url.empty()
                      ? monitor_url
                      : fmt::format("https://{}:{}", cs_parsed->host_name, s->Int("https.port"));
    if (!monitor_ca.empty()) {
      monitor.tls.ca_file = monitor_ca;
    } else if (std::filesystem::exists(data_dir / "tls" / "ca.pem")) {
      monitor.tls.ca_file = data_dir / "tls" / "ca.pem";
    }
    if (monitor_partition >= 0) monitor.partition = static_cast<uint32_t>(monitor_partition);
    for (auto piece : strings::Split(monitor_props, ',')) {
      auto p = strings::Trim(piece);
      if (p.empty()) continue;
      if (p == "sys" || p == "all") monitor.system_properties = true;
      if (p == "app" || p == "all") monitor.application_properties = true;
      if (p == "anno" || p == "all") monitor.annotations = true;
      if (p != "sys" && p != "app" && p != "anno" && p != "all") {
        fmt::print(stderr, "orrery: --properties takes sys, app, anno or all, not '{}'\n", p);
        return 2;
      }
    }
    monitor.idle_timeout = std::chrono::seconds(monitor_timeout);
    auto st = api::MonitorEvents(monitor, stdout, stderr);
    if (!st) return Fail(st.error(), 1);
    return 0;
  }
  if (cfg->got_subcommand("reference")) {
    fmt::print("{}", app::Schema().MarkdownReference());
    return 0;
  }
  if (check->parsed()) {
    auto s = settings_for(check_flags);
    if (!s) return Fail(s.error(), 2);
    for (auto& o : app::Schema().options()) {
      std::string value;
      switch (o.type) {
        case config::Type::kString:
          value = s->String(o.key);
          break;
        case config::Type::kBool:
          value = s->Bool(o.key) ? "true" : "false";
          break;
        case config::Type::kStringList:
          value = fmt::format("{}", fmt::join(s->List(o.key), ","));
          break;
        default:
          value = std::to_string(s->Int(o.key));
          break;
      }
      fmt::print("{} = {}  ({})\n", o.key, value, s->Origin(o.key));
    }
    for (auto& e : s->unknown_env())
      fmt::print("warning: {} is not a configuration key\n", e);
    return 0;
  }
  return 2;
}
