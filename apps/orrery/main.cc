// orrery — one binary: `orrery serve` runs the platform; the other commands are its tools.
// This file is wiring only: it parses the command line and calls into the components.
#include <cstdio>
#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "apps/orrery/options.h"
#include "apps/orrery/serve.h"
#include "hub/policies.h"
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
