// orrery — one binary: `orrery serve` runs the platform; the other commands are its tools.
// This file is wiring only: it parses the command line and calls into the components.
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <iostream>
#include <list>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "api/asa_cli.h"
#include "api/dps_cli.h"
#include "api/monitor.h"
#include "api/service_cli.h"
#include "api/twins_cli.h"
#include "api/twins_jobs_cli.h"
#include "apps/orrery/options.h"
#include "apps/orrery/serve.h"
#include "base/strings.h"
#include "dps/access.h"
#include "dtdl/lint.h"
#include "hub/policies.h"
#include "mqtt/auth.h"
#include "pki/pki.h"
#include "stream/local_run.h"
#include "twins/bulk_jobs.h"

#ifndef ORRERY_VERSION
#define ORRERY_VERSION "dev"
#endif

namespace {

int Fail(const orrery::Error& e, int code) {
  fmt::print(stderr, "orrery: {}\n", e.message());
  return code;
}

// A client command of a service API (the hub's: monitor-events, device, twin, method, c2d…;
// the provisioning service's: dps …): the connection flags every one of them takes, and what
// it runs once connected.
struct ServiceCommand {
  CLI::App* app = nullptr;
  orrery::app::FlagBindings flags;
  std::string policy;  // the default credential: this policy read from --data-dir
  // --connection-string: each command's own, since CLI11 applies environment variables to
  // every subcommand's options, parsed or not (the hub's and DPS's use different ones).
  std::string connection_string;
  const orrery::hub::PolicySchema* schema = nullptr;  // whose policy: the hub's when null
  std::function<orrery::Status(const orrery::api::ServiceConnection&)> run;
  // When set and true after parsing, `run` gets no connection (nothing is resolved or read).
  std::function<bool()> offline;
};

// What a service command runs: `fn` with the options its flags filled in.
template <class Options>
std::function<orrery::Status(const orrery::api::ServiceConnection&)> Calls(
    orrery::Status (*fn)(const orrery::api::ServiceConnection&, const Options&, std::FILE*,
                         std::FILE*),
    const Options& options) {
  return [fn, &options](const orrery::api::ServiceConnection& c) {
    return fn(c, options, stdout, stderr);
  };
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
  app::AddFlags(
      *serve, serve_flags,
      {"server.data_dir", "server.host_name", "server.bind", "https.port", "mqtts.port",
       "mqtt.port", "mqtt.bind", "mqtt.ws_port", "mqtt.allow_anonymous", "mqtt.users_file",
       "twins.port", "tls.cert", "tls.key", "log.level", "log.format"});

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

  // Client commands of the service APIs share their connection flags. Only one command
  // parses, so they all bind the same variables (but for --connection-string: see
  // ServiceCommand).
  std::deque<ServiceCommand> service_commands;  // stable addresses: CLI11 keeps pointers
  api::ServiceConnectionOptions service;
  using Run = std::function<Status(const api::ServiceConnection&)>;
  auto service_command = [&](CLI::App* parent, const char* name, std::string help, Run run,
                             std::string default_policy = "iothubowner",
                             const hub::PolicySchema* schema = nullptr) -> CLI::App* {
    auto& sc = service_commands.emplace_back();
    sc.app = parent->add_subcommand(name, std::move(help));
    sc.policy = default_policy;
    sc.schema = schema;
    sc.run = std::move(run);
    app::AddFlags(*sc.app, sc.flags, {"server.data_dir", "server.host_name", "https.port"});
    sc.app
        ->add_option("--connection-string,--login", sc.connection_string,
                     fmt::format("Service connection string; default: the '{}' policy read "
                                 "from --data-dir",
                                 default_policy))
        ->envname("ORRERY_CONNECTION_STRING");
    sc.app->add_option("--url", service.url,
                       "HTTPS endpoint (default https://<HostName>:<https.port>)");
    sc.app
        ->add_option("--cafile", service.ca_file,
                     "CA to trust (default <data-dir>/tls/ca.pem when it exists)")
        ->check(CLI::ExistingFile);
    return sc.app;
  };

  // orrery monitor-events
  api::MonitorOptions monitor;
  std::string monitor_props;
  int64_t monitor_timeout = 0;
  int64_t monitor_partition = -1;
  auto* monitor_cmd = service_command(
      &app, "monitor-events",
      "Follow the hub's events (like az iot hub monitor-events) through the HTTPS event stream",
      [&](const api::ServiceConnection& c) -> Status {
        monitor.url = c.url;
        monitor.token = c.token;
        monitor.tls = c.tls;
        if (monitor_partition >= 0) monitor.partition = static_cast<uint32_t>(monitor_partition);
        for (auto piece : strings::Split(monitor_props, ',')) {
          auto p = strings::Trim(piece);
          if (p.empty()) continue;
          if (p == "sys" || p == "all") monitor.system_properties = true;
          if (p == "app" || p == "all") monitor.application_properties = true;
          if (p == "anno" || p == "all") monitor.annotations = true;
          if (p != "sys" && p != "app" && p != "anno" && p != "all") {
            return Error(BaseErrc::kInvalidArgument,
                         fmt::format("--properties takes sys, app, anno or all, not '{}'", p));
          }
        }
        monitor.idle_timeout = std::chrono::seconds(monitor_timeout);
        return api::MonitorEvents(monitor, stdout, stderr);
      },
      "service");
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

  // The registry, twin, method and C2D commands (like az iot hub device-identity,
  // module-identity, device-twin, invoke-device-method, c2d-message).
  auto add_ref = [](CLI::App* c, api::IdentityRef& ref, bool modules = true) {
    c->add_option("device-id", ref.device_id, "Device id")->required();
    if (modules) {
      c->add_option("--module,-m", ref.module_id, "Act on this module of the device instead");
    }
  };
  auto add_etag = [](CLI::App* c, std::string& etag, const char* fallback) {
    c->add_option("--etag", etag,
                  fmt::format("Only if the etag still is this (If-Match); default {}", fallback));
  };
  auto add_seconds = [](CLI::App* c, const char* name, std::chrono::seconds& target,
                        std::string help) {
    return c
        ->add_option_function<int64_t>(
            name, [&target](int64_t s) { target = std::chrono::seconds(s); }, std::move(help))
        ->default_str(std::to_string(target.count()))
        ->check(CLI::NonNegativeNumber);
  };
  // --auth, keys, thumbprints, --status, --status-reason, --edge: only given ones are sent.
  auto add_fields = [](CLI::App* c, api::IdentityFields& fields, bool update) {
    auto text = [c](const char* name, std::optional<std::string>& target, std::string help) {
      c->add_option_function<std::string>(
          name, [&target](const std::string& v) { target = v; }, std::move(help));
    };
    text("--auth", fields.auth,
         update ? "Authentication type: sas, selfSigned or certificateAuthority"
                : "Authentication type: sas (default), selfSigned or certificateAuthority");
    const char* generated = update ? "" : " (generated when not given)";
    text("--primary-key", fields.primary_key,
         fmt::format("SAS primary key, base64 of 16..64 bytes{}", generated));
    text("--secondary-key", fields.secondary_key,
         fmt::format("SAS secondary key, base64 of 16..64 bytes{}", generated));
    text("--primary-thumbprint", fields.primary_thumbprint,
         "X.509 primary thumbprint, SHA-1 or SHA-256 hex (selfSigned)");
    text("--secondary-thumbprint", fields.secondary_thumbprint,
         "X.509 secondary thumbprint (selfSigned)");
    text("--status", fields.status, "enabled or disabled (devices only)");
    text("--status-reason", fields.status_reason, "Why the status is what it is (devices only)");
    c->add_flag_function(
        update ? "--edge,!--no-edge" : "--edge", [&fields](int64_t n) { fields.edge = n > 0; },
        update ? "Make it (or, with --no-edge, stop it being) an IoT Edge device"
               : "An IoT Edge device (devices only)");
  };

  // orrery device create|show|list|update|delete|connection-string
  auto* device = app.add_subcommand("device", "Device and module identities (the registry)")
                     ->require_subcommand(1);
  api::DeviceCreateOptions create;
  auto* device_create =
      service_command(device, "create", "Create a device, or with --module a module of a device",
                      Calls(api::DeviceCreate, create));
  add_ref(device_create, create.ref);
  add_fields(device_create, create.fields, false);
  api::IdentityRef shown;
  auto* device_show =
      service_command(device, "show", "Print a device or module", Calls(api::DeviceShow, shown));
  add_ref(device_show, shown);
  api::DeviceListOptions list;
  auto* device_list =
      service_command(device, "list", "List devices, or with --modules-of the modules of one",
                      Calls(api::DeviceList, list));
  auto* modules_of =
      device_list->add_option("--modules-of", list.modules_of, "List this device's modules");
  device_list
      ->add_option_function<uint64_t>(
          "--top", [&](uint64_t n) { list.top = n; }, "At most this many devices (at most 1000)")
      ->check(CLI::PositiveNumber)
      ->excludes(modules_of);
  api::DeviceUpdateOptions update;
  auto* device_update = service_command(
      device, "update",
      "Change a device or module: reads it, changes only the given properties and writes it "
      "back if nobody changed it in between",
      Calls(api::DeviceUpdate, update));
  add_ref(device_update, update.ref);
  add_fields(device_update, update.fields, true);
  add_etag(device_update, update.etag, "the etag read with it");
  api::DeviceDeleteOptions deletion;
  auto* device_delete =
      service_command(device, "delete", "Delete a device (with its modules) or a module",
                      Calls(api::DeviceDelete, deletion));
  add_ref(device_delete, deletion.ref);
  add_etag(device_delete, deletion.etag, "any");
  api::DeviceConnectionStringOptions device_cs_options;
  auto* device_cs =
      service_command(device, "connection-string",
                      "Print the device's (or module's) connection string; SAS authentication only",
                      Calls(api::DeviceConnectionString, device_cs_options));
  add_ref(device_cs, device_cs_options.ref);
  device_cs->add_flag("--secondary", device_cs_options.secondary, "Use the secondary key");

  // orrery twin show|update|replace
  auto* twin = app.add_subcommand("twin", "Device and module twins")->require_subcommand(1);
  api::IdentityRef twin_ref;
  auto* twin_show = service_command(twin, "show", "Print a twin", Calls(api::TwinShow, twin_ref));
  add_ref(twin_show, twin_ref);
  api::TwinUpdateOptions twin_patch;
  auto* twin_update = service_command(
      twin, "update", "Patch desired properties and/or tags (null removes a member)",
      Calls(api::TwinUpdate, twin_patch));
  add_ref(twin_update, twin_patch.ref);
  twin_update->add_option("--desired", twin_patch.desired,
                          "Desired-properties patch, a JSON object");
  twin_update->add_option("--tags", twin_patch.tags, "Tags patch, a JSON object");
  add_etag(twin_update, twin_patch.etag, "any");
  api::TwinReplaceOptions twin_new;
  auto* twin_replace =
      service_command(twin, "replace", "Replace tags and desired properties with those of --twin",
                      Calls(api::TwinReplace, twin_new));
  add_ref(twin_replace, twin_new.ref);
  twin_replace
      ->add_option("--twin", twin_new.twin,
                   R"(The new twin, a JSON object: {"tags":{...},"properties":{"desired":{...}}})")
      ->required();
  add_etag(twin_replace, twin_new.etag, "any");

  // orrery method invoke
  auto* method = app.add_subcommand("method", "Direct methods")->require_subcommand(1);
  api::MethodInvokeOptions call;
  auto* method_invoke = service_command(
      method, "invoke",
      "Call a direct method and print the device's answer {status, payload}; exits 0 whenever "
      "the device answered, whatever status it answered with",
      Calls(api::MethodInvoke, call));
  add_ref(method_invoke, call.ref);
  method_invoke->add_option("--name,-n", call.name, "Method name")->required();
  method_invoke->add_option("--payload", call.payload, "Payload, JSON (default null)");
  add_seconds(method_invoke, "--timeout", call.response_timeout,
              "Seconds to wait for the device's answer (5..300)");
  add_seconds(method_invoke, "--connect-timeout", call.connect_timeout,
              "Seconds to wait for the device to come online (0..300; 0: it must be now)");

  // orrery c2d send|purge|feedback
  auto* c2d = app.add_subcommand("c2d", "Cloud-to-device messages")->require_subcommand(1);
  api::C2dSendOptions message;
  auto* c2d_send =
      service_command(c2d, "send", "Queue a message for a device; prints the queue depth",
                      Calls(api::C2dSend, message));
  c2d_send->add_option("device-id", message.device_id, "Device id")->required();
  auto* body = c2d_send->add_option("--body", message.body, "Message body (text)");
  c2d_send->add_option("--body-file", message.body_file, "Read the message body from a file")
      ->check(CLI::ExistingFile)
      ->excludes(body);
  c2d_send->add_option("--message-id", message.message_id, "Message id");
  c2d_send->add_option("--correlation-id", message.correlation_id, "Correlation id");
  c2d_send->add_option(
      "--ack", message.ack,
      "Feedback to ask for: none, positive (delivered), negative (expired, rejected, purged…) "
      "or full");
  c2d_send->add_option("--expiry", message.expiry,
                       "Expiry: an ISO 8601 time or seconds from now (default: the hub's TTL)");
  c2d_send->add_option("--content-type", message.content_type, "Content type of the body");
  c2d_send->add_option("--content-encoding", message.content_encoding,
                       "Content encoding of the body, e.g. utf-8");
  c2d_send
      ->add_option("--property,-p", message.properties,
                   "Application property name=value (repeat the flag for more)")
      ->allow_extra_args(false);
  std::string purged_device;
  auto* c2d_purge = service_command(
      c2d, "purge", "Drop every message queued for a device (feedback 'Purged' where asked)",
      Calls(api::C2dPurge, purged_device));
  c2d_purge->add_option("device-id", purged_device, "Device id")->required();
  api::C2dFeedbackOptions feedback;
  auto* c2d_feedback = service_command(
      c2d, "feedback",
      "Print one batch of delivery feedback records (a JSON array, [] when none); without "
      "--complete they stay queued",
      Calls(api::C2dFeedback, feedback));
  add_seconds(c2d_feedback, "--wait", feedback.wait,
              "Seconds to wait for a first record (0: ask once)");
  c2d_feedback->add_flag("--complete", feedback.complete,
                         "Remove the printed records from the feedback queue");

  // orrery hub ca add|list|show|delete|verification-code|verify
  auto* ca = hub_cmd->add_subcommand(
      "ca", "X.509 CA certificates that certificateAuthority devices chain to");
  ca->require_subcommand(1);
  api::CaOptions ca_opts;
  auto ca_command = [&](const char* name, std::string help, api::CaOptions::Op op,
                        bool takes_name) {
    auto* cmd = service_command(ca, name, std::move(help), [&ca_opts, op](const auto& c) {
      api::CaOptions o = ca_opts;
      o.op = op;
      return api::CaCommand(c, o, stdout, stderr);
    });
    if (takes_name) cmd->add_option("name", ca_opts.name, "Certificate name")->required();
    return cmd;
  };
  auto* ca_add =
      ca_command("add", "Register a CA certificate (PEM)", api::CaOptions::Op::kAdd, true);
  ca_add->add_option("--cert", ca_opts.cert, "The CA certificate (PEM file)")
      ->required()
      ->check(CLI::ExistingFile);
  ca_add->add_flag("--verified", ca_opts.verified,
                   "Trust it at once instead of through a proof of possession");
  ca_command("list", "List the registered CA certificates", api::CaOptions::Op::kList, false);
  ca_command("show", "Print a CA certificate", api::CaOptions::Op::kShow, true);
  ca_command("delete", "Remove a CA certificate", api::CaOptions::Op::kDelete, true);
  ca_command("verification-code",
             "Issue a verification code: sign a certificate with CN=<code> with the CA's key, "
             "then run `orrery hub ca verify`",
             api::CaOptions::Op::kVerificationCode, true);
  auto* ca_verify = ca_command("verify", "Verify a CA with the proof-of-possession certificate",
                               api::CaOptions::Op::kVerify, true);
  ca_verify->add_option("--cert", ca_opts.cert, "The proof (PEM file, CN = verification code)")
      ->required()
      ->check(CLI::ExistingFile);

  // orrery hub policy list|set|delete|rotate-key
  auto* policy_cmd = hub_cmd->add_subcommand("policy", "Shared access policies and their keys");
  policy_cmd->require_subcommand(1);
  api::PolicyOptions policy_opts;
  auto policy_command = [&](const char* name, std::string help, api::PolicyOptions::Op op,
                            bool takes_name) {
    auto* cmd =
        service_command(policy_cmd, name, std::move(help), [&policy_opts, op](const auto& c) {
          api::PolicyOptions o = policy_opts;
          o.op = op;
          return api::PolicyCommand(c, o, stdout, stderr);
        });
    if (takes_name) cmd->add_option("name", policy_opts.name, "Policy name")->required();
    return cmd;
  };
  policy_command("list", "List the policies with their permissions and keys",
                 api::PolicyOptions::Op::kList, false);
  policy_command("set", "Create a policy, or change its permissions", api::PolicyOptions::Op::kSet,
                 true)
      ->add_option("--rights", policy_opts.rights,
                   "Permissions: RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect "
                   "(comma-separated)")
      ->required();
  policy_command("delete", "Remove a policy (its keys stop working)",
                 api::PolicyOptions::Op::kDelete, true);
  policy_command("rotate-key", "Replace a policy's primary (or --secondary) key with a new one",
                 api::PolicyOptions::Op::kRotateKey, true)
      ->add_flag("--secondary", policy_opts.secondary, "Rotate the secondary key");

  // orrery dt model validate FILE|DIR … (the DTDL linter; offline)
  auto* dt_cmd = app.add_subcommand("dt", "Digital twins: models, twins, relationships")
                     ->require_subcommand(1);
  auto* dt_model = dt_cmd->add_subcommand("model", "DTDL models")->require_subcommand(1);
  std::vector<std::filesystem::path> dt_paths;
  auto* dt_validate = dt_model->add_subcommand(
      "validate",
      "Validate DTDL v2/v3 models: every *.json file given or under a directory, as one set "
      "(a model repository, a directory with dtmi/, file by file as its tooling does); "
      "one line per error, exit 1 on errors");
  dt_validate->add_option("paths", dt_paths, "Model files or directories")->required();
  // orrery dt model add|list|show|decommission|delete: the models REST API on twins.port,
  // with a service principal's token.
  // Each command binds its own flags (a binding remembers one option per key). Every client
  // of the twins API takes the same connection flags; `run` is what it does once connected.
  struct TwinsClientCommand {
    CLI::App* app;
    app::FlagBindings flags;
    std::function<Status(const api::ServiceConnection&)> run;
  };
  std::list<TwinsClientCommand> twins_clients;
  std::list<std::pair<CLI::App*, app::FlagBindings>> identity_commands;
  api::TwinsConnectionOptions dt_conn;
  auto twins_client = [&](CLI::App* parent, const char* name, std::string help,
                          std::function<Status(const api::ServiceConnection&)> run) {
    auto* cmd = parent->add_subcommand(name, std::move(help));
    auto& c = twins_clients.emplace_back(TwinsClientCommand{cmd, {}, std::move(run)});
    app::AddFlags(*cmd, c.flags, {"server.data_dir", "server.host_name", "twins.port"});
    cmd->add_option("--endpoint", dt_conn.endpoint,
                    "The twins API's URL [default: https://<host-name>:<twins-port>]");
    cmd->add_option("--tenant", dt_conn.tenant, "Tenant id [default: the data directory's]")
        ->envname("AZURE_TENANT_ID");
    cmd->add_option("--client-id", dt_conn.client_id, "Service principal's client id")
        ->envname("AZURE_CLIENT_ID");
    cmd->add_option("--client-secret", dt_conn.client_secret, "Service principal's secret")
        ->envname("AZURE_CLIENT_SECRET");
    cmd->add_option("--ca-file", dt_conn.ca_file,
                    "CA certificate to trust [default: <data-dir>/tls/ca.pem]");
    return cmd;
  };
  api::ModelCommandOptions dt_opts;
  auto dt_command = [&](const char* name, std::string help, api::ModelCommandOptions::Op op) {
    auto* cmd = twins_client(dt_model, name, std::move(help), [&dt_opts](const auto& c) {
      return api::ModelCommand(c, dt_opts, stdout, stderr);
    });
    cmd->callback([&dt_opts, op] { dt_opts.op = op; });
    return cmd;
  };
  dt_command("add",
             "Upload models: every *.json file given or under a directory (batches of 250 in "
             "dependency order)",
             api::ModelCommandOptions::Op::kAdd)
      ->add_option("paths", dt_opts.paths, "Model files or directories")
      ->required();
  auto* dt_list = dt_command("list", "List models", api::ModelCommandOptions::Op::kList);
  dt_list->add_option("--dependencies-for", dt_opts.dependencies_for,
                      "Only these models and what they depend on");
  dt_list->add_flag("--definition", dt_opts.definition, "Include each model's DTDL");
  auto* dt_show = dt_command("show", "Show a model", api::ModelCommandOptions::Op::kShow);
  dt_show->add_option("id", dt_opts.id, "Model id (DTMI)")->required();
  dt_show->add_flag("--definition", dt_opts.definition, "Include the model's DTDL");
  dt_command("decommission", "Decommission a model (no new twins may use it)",
             api::ModelCommandOptions::Op::kDecommission)
      ->add_option("id", dt_opts.id, "Model id (DTMI)")
      ->required();
  dt_command("delete", "Delete a model that no other model references",
             api::ModelCommandOptions::Op::kDelete)
      ->add_option("id", dt_opts.id, "Model id (DTMI)")
      ->required();

  // orrery dt twin create|show|update|delete, orrery dt relationship create|show|list|delete
  api::TwinCommandOptions twin_opts;
  auto twin_command = [&](CLI::App* parent, const char* name, std::string help,
                          api::TwinCommandOptions::Op op) {
    auto* cmd = twins_client(parent, name, std::move(help), [&twin_opts](const auto& c) {
      return api::TwinCommand(c, twin_opts, stdout, stderr);
    });
    cmd->callback([&twin_opts, op] { twin_opts.op = op; });
    return cmd;
  };
  using TwinOp = api::TwinCommandOptions::Op;
  auto* dt_twin = dt_cmd->add_subcommand("twin", "Digital twins")->require_subcommand(1);
  auto* twin_create =
      twin_command(dt_twin, "create", "Create or replace a twin", TwinOp::kTwinCreate);
  twin_create->add_option("id", twin_opts.id, "Twin id")->required();
  twin_create->add_option("--model", twin_opts.model, "Its model (DTMI)")->required();
  twin_create->add_option("--properties", twin_opts.properties,
                          "Properties and components, a JSON object");
  twin_create->add_flag("--if-none-match", twin_opts.create_only, "Refuse a twin that exists");
  twin_command(dt_twin, "show", "Show a twin", TwinOp::kTwinShow)
      ->add_option("id", twin_opts.id, "Twin id")
      ->required();
  auto* dt_twin_update =
      twin_command(dt_twin, "update", "Patch a twin (prints the new etag)", TwinOp::kTwinUpdate);
  dt_twin_update->add_option("id", twin_opts.id, "Twin id")->required();
  dt_twin_update->add_option("--patch", twin_opts.patch, "A JSON Patch array")->required();
  dt_twin_update->add_option("--etag", twin_opts.etag, "Only if the twin still has this etag");
  auto* twin_delete =
      twin_command(dt_twin, "delete", "Delete a twin (without relationships)", TwinOp::kTwinDelete);
  twin_delete->add_option("id", twin_opts.id, "Twin id")->required();
  twin_delete->add_option("--etag", twin_opts.etag, "Only if the twin still has this etag");
  auto* dt_rel =
      dt_cmd->add_subcommand("relationship", "Relationships between twins")->require_subcommand(1);
  auto* rel_create =
      twin_command(dt_rel, "create", "Create or replace a relationship", TwinOp::kRelCreate);
  rel_create->add_option("source", twin_opts.id, "Source twin id")->required();
  rel_create->add_option("relationship-id", twin_opts.relationship_id, "Relationship id")
      ->required();
  rel_create->add_option("--name", twin_opts.name, "Relationship name in the source's model")
      ->required();
  rel_create->add_option("--target", twin_opts.target, "Target twin id")->required();
  rel_create->add_option("--properties", twin_opts.properties, "Properties, a JSON object");
  rel_create->add_flag("--if-none-match", twin_opts.create_only,
                       "Refuse a relationship that exists");
  auto* rel_show = twin_command(dt_rel, "show", "Show a relationship", TwinOp::kRelShow);
  rel_show->add_option("source", twin_opts.id, "Source twin id")->required();
  rel_show->add_option("relationship-id", twin_opts.relationship_id, "Relationship id")->required();
  auto* rel_list = twin_command(dt_rel, "list", "List a twin's relationships", TwinOp::kRelList);
  rel_list->add_option("twin", twin_opts.id, "Twin id")->required();
  rel_list->add_option("--name", twin_opts.name, "Only relationships of this name");
  rel_list->add_flag("--incoming", twin_opts.incoming, "Relationships to the twin instead");
  auto* rel_delete = twin_command(dt_rel, "delete", "Delete a relationship", TwinOp::kRelDelete);
  rel_delete->add_option("source", twin_opts.id, "Source twin id")->required();
  rel_delete->add_option("relationship-id", twin_opts.relationship_id, "Relationship id")
      ->required();

  twin_command(dt_cmd, "query", "Run an ADT query (every page; the rows as one JSON array)",
               TwinOp::kQuery)
      ->add_option("query", twin_opts.query, "The query, e.g. \"SELECT * FROM DIGITALTWINS\"")
      ->required();

  // orrery dt route create|show|list|delete, orrery dt endpoint create|show|list|delete
  auto* dt_route = dt_cmd
                       ->add_subcommand("route",
                                        "Event routes: which notifications and "
                                        "telemetry go to which endpoint")
                       ->require_subcommand(1);
  auto* route_create =
      twin_command(dt_route, "create", "Create or replace an event route", TwinOp::kRouteCreate);
  route_create->add_option("id", twin_opts.id, "Route id")->required();
  route_create
      ->add_option("--endpoint-name,--en", twin_opts.endpoint_name, "The endpoint it sends to")
      ->required();
  route_create->add_option("--filter", twin_opts.filter,
                           "ADT's filter, e.g. \"type = 'Microsoft.DigitalTwins.Twin.Update'\" "
                           "[default: true, every event]");
  twin_command(dt_route, "show", "Show an event route", TwinOp::kRouteShow)
      ->add_option("id", twin_opts.id, "Route id")
      ->required();
  twin_command(dt_route, "list", "List the event routes", TwinOp::kRouteList);
  twin_command(dt_route, "delete", "Delete an event route", TwinOp::kRouteDelete)
      ->add_option("id", twin_opts.id, "Route id")
      ->required();
  auto* dt_endpoint =
      dt_cmd->add_subcommand("endpoint", "Endpoints event routes send to")->require_subcommand(1);
  auto* endpoint_create =
      twin_command(dt_endpoint, "create", "Create or replace an endpoint", TwinOp::kEndpointCreate);
  endpoint_create->add_option("name", twin_opts.id, "Endpoint name")->required();
  endpoint_create->add_option("--webhook", twin_opts.url,
                              "An https:// URL that receives CloudEvents batches");
  endpoint_create->add_option("--secret", twin_opts.secret,
                              "HMAC-SHA256 key of the webhook's X-Orrery-Signature header");
  endpoint_create->add_option("--max-attempts", twin_opts.max_attempts,
                              "Webhook deliveries tried before dead-lettering (1-100)");
  endpoint_create->add_flag("--event-log", twin_opts.event_log,
                            "Send to the hub's event log (read by monitor-events and stream jobs)");
  twin_command(dt_endpoint, "show", "Show an endpoint and its health", TwinOp::kEndpointShow)
      ->add_option("name", twin_opts.id, "Endpoint name")
      ->required();
  twin_command(dt_endpoint, "list", "List the endpoints", TwinOp::kEndpointList);
  twin_command(dt_endpoint, "delete", "Delete an endpoint no route uses", TwinOp::kEndpointDelete)
      ->add_option("name", twin_opts.id, "Endpoint name")
      ->required();
  // orrery dt job import|delete-all|list|show|cancel|delete: the Jobs API
  api::JobCommandOptions job_opts;
  auto* dt_job = dt_cmd->add_subcommand("job", "Bulk jobs: import a file, delete everything")
                     ->require_subcommand(1);
  auto job_command = [&](const char* name, std::string help, api::JobCommandOptions::Op op) {
    auto* cmd = twins_client(dt_job, name, std::move(help), [&job_opts](const auto& c) {
      return api::JobCommand(c, job_opts, stdout, stderr);
    });
    cmd->callback([&job_opts, op] { job_opts.op = op; });
    return cmd;
  };
  using JobOp = api::JobCommandOptions::Op;
  auto* job_import = job_command(
      "import",
      "Import models, twins and relationships from a bulk import (NDJSON) file, copied into the "
      "jobs directory; follows the job to its end",
      JobOp::kImport);
  job_import->add_option("file", job_opts.file, "The import file")->required();
  auto* job_delete_all = job_command(
      "delete-all", "Delete every model, twin and relationship (a delete job)", JobOp::kDeleteAll);
  job_delete_all->add_flag("--yes", job_opts.yes, "Do not ask for confirmation");
  for (auto* cmd : {job_import, job_delete_all}) {
    cmd->add_option("--id", job_opts.id, "Job id [default: generated]");
    cmd->add_flag("--no-wait", job_opts.no_wait, "Print the job once created; do not follow it");
  }
  job_command("list", "List import and delete jobs", JobOp::kList);
  for (auto [name, help, op] :
       {std::tuple{"show", "Show an import or delete job", JobOp::kShow},
        std::tuple{"cancel", "Cancel an import job", JobOp::kCancel},
        std::tuple{"delete", "Forget an import job that is not running", JobOp::kRemove}}) {
    job_command(name, help, op)->add_option("id", job_opts.id, "Job id")->required();
  }

  // orrery dt mapping create|show|list|delete (ingestion and propagation rules)
  auto* dt_mapping = dt_cmd
                         ->add_subcommand("mapping",
                                          "Ingestion rules: hub messages and twin changes to twin "
                                          "patches (docs/twins.md)")
                         ->require_subcommand(1);
  auto* mapping_create =
      twin_command(dt_mapping, "create", "Create or replace a rule", TwinOp::kMappingCreate);
  mapping_create->add_option("name", twin_opts.id, "Rule name")->required();
  mapping_create
      ->add_option("--rule", twin_opts.rule,
                   "The rule, a JSON object: {\"source\", \"condition\", \"twinId\" or "
                   "\"twinQuery\" | \"relationship\", \"direction\", \"patch\"}")
      ->required();
  twin_command(dt_mapping, "show", "Show a rule", TwinOp::kMappingShow)
      ->add_option("name", twin_opts.id, "Rule name")
      ->required();
  twin_command(dt_mapping, "list", "List the rules, with counts of patches applied and refused",
               TwinOp::kMappingList);
  twin_command(dt_mapping, "delete", "Delete a rule", TwinOp::kMappingDelete)
      ->add_option("name", twin_opts.id, "Rule name")
      ->required();

  // orrery identity tenant | sp create|list|delete (offline: edits <data-dir>/identity)
  auto* id_cmd = app.add_subcommand("identity", "OAuth 2.0 identity: tenant and service principals")
                     ->require_subcommand(1);
  api::PrincipalCommandOptions sp_opts;
  auto identity_command = [&](CLI::App* parent, const char* name, std::string help,
                              api::PrincipalCommandOptions::Op op) {
    auto* cmd = parent->add_subcommand(name, std::move(help));
    auto& [_, flags] = identity_commands.emplace_back(cmd, app::FlagBindings{});
    app::AddFlags(*cmd, flags, {"server.data_dir", "server.host_name", "twins.port"});
    cmd->callback([&sp_opts, op] { sp_opts.op = op; });
    return cmd;
  };
  identity_command(id_cmd, "tenant", "Print the tenant id",
                   api::PrincipalCommandOptions::Op::kTenant);
  auto* sp_cmd = id_cmd->add_subcommand("sp", "Service principals")->require_subcommand(1);
  auto* sp_create = identity_command(sp_cmd, "create",
                                     "Create a service principal; prints its client id and secret "
                                     "(shown once)",
                                     api::PrincipalCommandOptions::Op::kCreate);
  sp_create->add_option("--name", sp_opts.name, "Display name")->required();
  sp_create->add_option("--role", sp_opts.roles, "owner (read and write) or reader")->required();
  identity_command(sp_cmd, "list", "List service principals (no secrets)",
                   api::PrincipalCommandOptions::Op::kList);
  identity_command(sp_cmd, "delete", "Delete a service principal (by client id or name)",
                   api::PrincipalCommandOptions::Op::kDelete)
      ->add_option("principal", sp_opts.name, "Client id or name")
      ->required();

  // orrery asa run QUERY --input NAME=FILE … (a Stream Analytics query over files; offline)
  auto* asa_cmd =
      app.add_subcommand("asa", "Azure Stream Analytics queries")->require_subcommand(1);
  stream::LocalRunOptions asa_opts;
  std::vector<std::string> asa_inputs, asa_refs;
  std::string asa_late = "5s", asa_ooo = "0s";
  bool asa_drop = false;
  auto* asa_run = asa_cmd->add_subcommand(
      "run",
      "Run a query locally over JSON (array or one object per line) and CSV files; each "
      "output's rows go to <out>/<output>.json as JSON Lines");
  asa_run->add_option("query", asa_opts.query_file, "The query file")->required();
  asa_run->add_option("--input", asa_inputs, "NAME=FILE: a stream input of the query")->required();
  asa_run->add_option("--reference", asa_refs, "NAME=FILE: a reference data input");
  asa_run->add_option("--out", asa_opts.out_dir, "Output directory ('-': stdout)")
      ->capture_default_str();
  asa_run
      ->add_option("--late-arrival", asa_late,
                   "Late arrival tolerance (e.g. 5s, 1m; 'none': nothing is late)")
      ->capture_default_str();
  asa_run->add_option("--out-of-order", asa_ooo, "Out-of-order tolerance")->capture_default_str();
  asa_run->add_flag("--drop", asa_drop, "Drop late and out-of-order events instead of adjusting");

  // orrery asa job create|update|start|stop|show|list|delete (jobs on the server)
  auto* asa_job = asa_cmd
                      ->add_subcommand("job",
                                       "Stream Analytics jobs on the server's hub "
                                       "(docs/stream-jobs.md)")
                      ->require_subcommand(1);
  api::AsaJobOptions asa_job_opts;
  auto asa_job_command = [&](const char* name, std::string help, api::AsaJobOptions::Op op) {
    auto* cmd = service_command(asa_job, name, std::move(help), [&asa_job_opts](const auto& c) {
      return api::AsaJobCommand(c, asa_job_opts, stdout, stderr);
    });
    cmd->callback([&asa_job_opts, op] { asa_job_opts.op = op; });
    if (op != api::AsaJobOptions::Op::kList) {
      cmd->add_option("name", asa_job_opts.name, "Job name")->required();
    }
    return cmd;
  };
  using AsaOp = api::AsaJobOptions::Op;
  for (auto [name, help, op] :
       {std::tuple{"create", "Create a stopped job from a definition (its query is validated)",
                   AsaOp::kCreate},
        std::tuple{"update", "Replace a stopped job's definition", AsaOp::kUpdate}}) {
    auto* cmd = asa_job_command(name, help, op);
    cmd->add_option("--definition", asa_job_opts.definition,
                    "The job's JSON: inputs, references, outputs, eventOrdering, …")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--query", asa_job_opts.query_file,
                    "The query from its own file (replaces the definition's \"query\")")
        ->check(CLI::ExistingFile);
  }
  auto* asa_start = asa_job_command("start", "Start a job", AsaOp::kStart);
  asa_start
      ->add_option("--from", asa_job_opts.start_mode,
                   "now (JobStartTime), last (LastOutputEventTime: where it stopped) or time "
                   "(CustomTime, with --time) [default: now]")
      ->check(CLI::IsMember(
          {"now", "last", "time", "JobStartTime", "LastOutputEventTime", "CustomTime"}));
  asa_start->add_option("--time", asa_job_opts.start_time,
                        "Read events enqueued from this ISO 8601 time on");
  asa_job_command("stop", "Stop a job (it checkpoints; start --from last resumes it)",
                  AsaOp::kStop);
  asa_job_command("show", "Show a job, its state and metrics", AsaOp::kShow);
  asa_job_command("list", "List the jobs", AsaOp::kList);
  asa_job_command("delete", "Delete a stopped job", AsaOp::kDelete);

  // orrery dps connection-string|id-scope|derive-key|enrollment|enrollment-group|registration
  // (like az iot dps): the provisioning service on the same listener, with its own policies.
  auto* dps_cmd =
      app.add_subcommand("dps", "The Device Provisioning Service")->require_subcommand(1);
  app::FlagBindings dps_cs_flags;
  std::string dps_policy = "provisioningserviceowner";
  bool dps_secondary = false;
  auto* dps_cs = dps_cmd->add_subcommand(
      "connection-string",
      "Print the provisioning service's connection string (works without a running server; "
      "creates its keys on first use)");
  app::AddFlags(*dps_cs, dps_cs_flags, {"server.data_dir", "server.host_name"});
  dps_cs->add_option("--policy", dps_policy, "Shared access policy name")->capture_default_str();
  dps_cs->add_flag("--secondary", dps_secondary, "Use the policy's secondary key");
  app::FlagBindings id_scope_flags;
  auto* id_scope = dps_cmd->add_subcommand(
      "id-scope",
      "Print the ID scope devices provision under (works without a running server; created "
      "on first use)");
  app::AddFlags(*id_scope, id_scope_flags, {"server.data_dir"});

  // The REST commands: DPS's own policies, and its own environment variable, so that a hub
  // connection string in ORRERY_CONNECTION_STRING does not get in the way.
  auto dps_command = [&](CLI::App* parent, const char* name, std::string help, Run run) {
    auto* cmd = service_command(parent, name, std::move(help), std::move(run),
                                "provisioningserviceowner", &dps::DpsPolicySchema());
    cmd->get_option("--connection-string")->envname("ORRERY_DPS_CONNECTION_STRING");
    return cmd;
  };
  api::DeriveKeyOptions derive;
  auto* derive_key =
      dps_command(dps_cmd, "derive-key",
                  "Print the symmetric key of a device in an enrollment group, "
                  "base64(HMAC-SHA256(group key, registration id)); with --key it needs no server",
                  Calls(api::DeriveKey, derive));
  service_commands.back().offline = [&derive] { return api::DeriveKeyIsOffline(derive); };
  derive_key->add_option("registration-id", derive.registration_id, "The device's registration id")
      ->required();
  auto* derive_from = derive_key->add_option("--key", derive.key, "The group's key (base64)");
  auto* derive_group =
      derive_key
          ->add_option("--group", derive.group,
                       "Read the key of this symmetric-key enrollment group from the server")
          ->excludes(derive_from);
  derive_key->add_flag("--secondary", derive.secondary, "Derive from the group's secondary key")
      ->needs(derive_group);

  // --attestation, keys, certificates, --device-id, --hub, --allocation, --webhook-url,
  // --initial-twin, --edge, --disabled, --reprovision: only given ones are sent.
  auto add_enrollment_fields = [](CLI::App* c, api::EnrollmentFields& fields, bool group,
                                  bool updating) {
    auto text = [c](const char* name, std::optional<std::string>& target, std::string help) {
      return c->add_option_function<std::string>(
          name, [&target](const std::string& v) { target = v; }, std::move(help));
    };
    auto file = [c](const char* name, std::optional<std::filesystem::path>& target,
                    std::string help) {
      c->add_option_function<std::string>(
           name, [&target](const std::string& v) { target = v; }, std::move(help))
          ->check(CLI::ExistingFile);
    };
    text("--attestation", fields.attestation,
         updating ? "Attestation: symmetricKey or x509 (switching needs its keys or certificates)"
                  : "Attestation: symmetricKey (default) or x509 (implied by a certificate flag)");
    const char* generated = updating ? "" : " (generated when not given)";
    text("--primary-key", fields.primary_key,
         fmt::format("Symmetric primary key, base64 of 16..64 bytes{}", generated));
    text("--secondary-key", fields.secondary_key,
         fmt::format("Symmetric secondary key, base64 of 16..64 bytes{}", generated));
    const char* replaces =
        updating ? "; replaces the certificates (give --secondary-certificate again to keep one)"
                 : "";
    file("--certificate", fields.certificate,
         std::string(group ? "x509: the group's CA certificate (PEM file), signingCertificates"
                           : "x509: the device's certificate (PEM file)") +
             replaces);
    file("--secondary-certificate", fields.secondary_certificate,
         group ? "x509: a second CA certificate (PEM file), with --certificate"
               : "x509: the device's second certificate (PEM file), with --certificate");
    if (group) {
      text("--ca-name", fields.ca_name,
           "x509: a CA registered and verified with `orrery hub ca` (caReferences)");
    } else {
      text("--device-id", fields.device_id,
           "The device id to provision as (default: the registration id)");
    }
    c->add_option("--hub", fields.hubs,
                  updating ? "Hubs it may be assigned to, by host name (repeat the flag; replaces "
                             "the list)"
                           : "Hubs it may be assigned to, by host name (repeat the flag; default "
                             "all linked hubs)")
        ->allow_extra_args(false);
    text("--allocation", fields.allocation,
         "Allocation policy: hashed, static, geoLatency or custom (default: the service's)");
    text("--webhook-url", fields.webhook_url,
         "The custom allocation webhook (https://), with --allocation custom");
    text(
        "--initial-twin", fields.initial_twin,
        R"(The device's initial twin, a JSON object: {"tags":{...},"properties":{"desired":{...}}})");
    c->add_flag_function(
        updating ? "--edge,!--no-edge" : "--edge", [&fields](int64_t n) { fields.edge = n > 0; },
        updating ? "Provision IoT Edge devices (or, with --no-edge, stop that)"
                 : "Provision IoT Edge devices");
    c->add_flag_function(
        updating ? "--disabled,!--enabled" : "--disabled",
        [&fields](int64_t n) { fields.disabled = n > 0; },
        updating ? "Refuse (or, with --enabled, allow again) its devices' registrations"
                 : "Refuse its devices' registrations until enabled");
    text("--reprovision", fields.reprovision,
         "When a provisioned device registers again: migrate (reassign, move its data), reset "
         "(reassign, initial twin) or never (keep its hub) — default migrate");
  };

  auto add_page_size = [](CLI::App* c, uint64_t& page_size) {
    c->add_option("--page-size", page_size,
                  "Rows per request (the server sends at most its own maximum)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
  };

  // orrery dps enrollment|enrollment-group create|show|list|update|delete
  struct EnrollmentCommandOptions {
    api::EnrollmentCreateOptions create;
    api::EnrollmentRef shown;
    api::EnrollmentListOptions list;
    api::EnrollmentUpdateOptions update;
    api::EnrollmentDeleteOptions deletion;
  };
  EnrollmentCommandOptions individual_options, group_options;
  auto enrollment_commands = [&](CLI::App* parent, bool group, EnrollmentCommandOptions& e) {
    e.create.ref.group = e.shown.group = e.list.group = e.update.ref.group = e.deletion.ref.group =
        group;
    const char* id = group ? "enrollment-group-id" : "registration-id";
    const char* id_help = group ? "Enrollment group id" : "The device's registration id";
    const char* what = group ? "an enrollment group" : "an individual enrollment";
    auto* create_cmd = dps_command(parent, "create", fmt::format("Create {}", what),
                                   Calls(api::EnrollmentCreate, e.create));
    create_cmd->add_option(id, e.create.ref.id, id_help)->required();
    add_enrollment_fields(create_cmd, e.create.fields, group, false);
    auto* show_cmd = dps_command(parent, "show", fmt::format("Print {} with its keys", what),
                                 Calls(api::EnrollmentShow, e.shown));
    show_cmd->add_option(id, e.shown.id, id_help)->required();
    auto* list_cmd = dps_command(parent, "list",
                                 group ? "List enrollment groups (a JSON array)"
                                       : "List individual enrollments (a JSON array)",
                                 Calls(api::EnrollmentList, e.list));
    list_cmd->add_option("--query,-q", e.list.query,
                         group ? R"(Only these: "SELECT * FROM enrollmentGroups WHERE ...")"
                               : R"(Only these: "SELECT * FROM enrollments WHERE ...")");
    list_cmd
        ->add_option_function<uint64_t>(
            "--top", [&e](uint64_t n) { e.list.top = n; }, "At most this many")
        ->check(CLI::PositiveNumber);
    add_page_size(list_cmd, e.list.page_size);
    auto* update_cmd = dps_command(
        parent, "update",
        fmt::format("Change {}: reads it, changes only the given properties and writes it back "
                    "if nobody changed it in between",
                    what),
        Calls(api::EnrollmentUpdate, e.update));
    update_cmd->add_option(id, e.update.ref.id, id_help)->required();
    add_enrollment_fields(update_cmd, e.update.fields, group, true);
    add_etag(update_cmd, e.update.etag, "the etag read with it");
    auto* delete_cmd =
        dps_command(parent, "delete",
                    group ? "Delete an enrollment group (provisioned devices stay in their hubs)"
                          : "Delete an individual enrollment and its registration state",
                    Calls(api::EnrollmentDelete, e.deletion));
    delete_cmd->add_option(id, e.deletion.ref.id, id_help)->required();
    add_etag(delete_cmd, e.deletion.etag, "any");
  };
  auto* dps_enrollment =
      dps_cmd->add_subcommand("enrollment", "Individual enrollments: one device each");
  dps_enrollment->require_subcommand(1);
  enrollment_commands(dps_enrollment, false, individual_options);
  auto* dps_group = dps_cmd->add_subcommand(
      "enrollment-group", "Enrollment groups: devices that chain to one CA or share a group key");
  dps_group->require_subcommand(1);
  enrollment_commands(dps_group, true, group_options);

  // orrery dps registration show|list|delete
  auto* dps_registration = dps_cmd->add_subcommand(
      "registration", "Device registration states: what provisioning assigned each device");
  dps_registration->require_subcommand(1);
  std::string registration_shown;
  dps_command(dps_registration, "show", "Print a device's registration state",
              Calls(api::RegistrationShow, registration_shown))
      ->add_option("registration-id", registration_shown, "The device's registration id")
      ->required();
  api::RegistrationListOptions registration_list;
  auto* registration_list_cmd =
      dps_command(dps_registration, "list",
                  "List the registration states of an enrollment group's devices (a JSON array)",
                  Calls(api::RegistrationList, registration_list));
  registration_list_cmd->add_option("--group", registration_list.group, "Enrollment group id")
      ->required();
  registration_list_cmd
      ->add_option_function<uint64_t>(
          "--top", [&](uint64_t n) { registration_list.top = n; }, "At most this many")
      ->check(CLI::PositiveNumber);
  add_page_size(registration_list_cmd, registration_list.page_size);
  api::RegistrationDeleteOptions registration_deletion;
  auto* registration_delete =
      dps_command(dps_registration, "delete",
                  "Delete a device's registration state (it registers afresh next time)",
                  Calls(api::RegistrationDelete, registration_deletion));
  registration_delete
      ->add_option("registration-id", registration_deletion.registration_id,
                   "The device's registration id")
      ->required();
  add_etag(registration_delete, registration_deletion.etag, "any");

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
  if (dps_cs->parsed()) {
    auto s = settings_for(dps_cs_flags);
    if (!s) return Fail(s.error(), 2);
    auto store = hub::PolicyStore::Open(s->String("server.data_dir"), dps::DpsPolicySchema());
    if (!store) return Fail(store.error(), 1);
    auto text =
        (*store)->ConnectionString(s->String("server.host_name"), dps_policy, dps_secondary);
    if (!text) return Fail(text.error(), 2);
    fmt::print("{}\n", *text);
    return 0;
  }
  if (dt_validate->parsed()) return dtdl::ValidateFiles(dt_paths, stdout, stderr);
  for (auto& tc : twins_clients) {
    if (!tc.app->parsed()) continue;
    auto s = settings_for(tc.flags);
    if (!s) return Fail(s.error(), 2);
    dt_conn.data_dir = s->String("server.data_dir");
    dt_conn.host_name = s->String("server.host_name");
    dt_conn.port = s->Int("twins.port");
    job_opts.jobs_dir = twins::JobsDirectory(dt_conn.data_dir, s->String("twins.jobs_dir"));
    auto connection = api::ResolveTwinsConnection(dt_conn);
    if (!connection) return Fail(connection.error(), api::ExitCodeFor(connection.error()));
    auto st = tc.run(*connection);
    if (!st) return Fail(st.error(), api::ExitCodeFor(st.error()));
    return 0;
  }
  for (auto& [cmd, flags] : identity_commands) {
    if (!cmd->parsed()) continue;
    auto s = settings_for(flags);
    if (!s) return Fail(s.error(), 2);
    sp_opts.data_dir = s->String("server.data_dir");
    sp_opts.endpoint =
        fmt::format("https://{}:{}", s->String("server.host_name"), s->Int("twins.port"));
    auto st = api::PrincipalCommand(sp_opts, stdout, stderr);
    if (!st) return Fail(st.error(), api::ExitCodeFor(st.error()));
    return 0;
  }
  if (asa_run->parsed()) {
    for (auto* named : {&asa_inputs, &asa_refs}) {
      for (const auto& flag : *named) {
        auto in = stream::ParseNamedFile(flag);
        if (!in) return Fail(in.error(), 2);
        (named == &asa_inputs ? asa_opts.inputs : asa_opts.references).push_back(*in);
      }
    }
    auto late = stream::ParseTolerance(asa_late, true);
    if (!late) return Fail(late.error(), 2);
    auto ooo = stream::ParseTolerance(asa_ooo, false);
    if (!ooo) return Fail(ooo.error(), 2);
    asa_opts.policy.late_arrival_tolerance = *late;
    asa_opts.policy.out_of_order_tolerance = ooo->value_or(0);
    if (asa_drop) asa_opts.policy.action = stream::EventTimePolicy::Action::kDrop;
    return stream::RunLocalCommand(asa_opts, stdout, stderr);
  }
  if (id_scope->parsed()) {
    auto s = settings_for(id_scope_flags);
    if (!s) return Fail(s.error(), 2);
    auto scope = dps::LoadIdScope(s->String("server.data_dir"), s->String("dps.id_scope"));
    if (!scope) return Fail(scope.error(), 1);
    fmt::print("{}\n", *scope);
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
  for (auto& sc : service_commands) {
    if (!sc.app->parsed()) continue;
    auto s = settings_for(sc.flags);
    if (!s) return Fail(s.error(), 2);
    service.data_dir = s->String("server.data_dir");
    service.host_name = s->String("server.host_name");
    service.https_port = s->Int("https.port");
    service.connection_string = sc.connection_string;
    service.default_policy = sc.policy;
    service.policy_schema = sc.schema;
    if (sc.offline && sc.offline()) {
      auto st = sc.run(api::ServiceConnection{});
      if (!st) return Fail(st.error(), api::ExitCodeFor(st.error()));
      return 0;
    }
    auto connection = api::ResolveServiceConnection(service);
    if (!connection) return Fail(connection.error(), api::ExitCodeFor(connection.error()));
    auto st = sc.run(*connection);
    if (!st) return Fail(st.error(), api::ExitCodeFor(st.error()));
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
