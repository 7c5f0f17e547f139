#include "apps/orrery/serve.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "api/asa_api.h"
#include "api/device_http.h"
#include "api/dps_api.h"
#include "api/eventhub.h"
#include "api/ops.h"
#include "api/routing_api.h"
#include "api/service_api.h"
#include "api/twins_api.h"
#include "asa/jobs.h"
#include "base/files.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/strings.h"
#include "base/time.h"
#include "dps/access.h"
#include "dps/mqtt_front.h"
#include "dps/provisioning.h"
#include "eventlog/event_log.h"
#include "hub/hub.h"
#include "hub/jobs.h"
#include "hub/mqtt_adapter.h"
#include "hub/policies.h"
#include "identity/principals.h"
#include "identity/token.h"
#include "mqtt/auth.h"
#include "mqtt/broker.h"
#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/stream_server.h"
#include "net/tls.h"
#include "pki/pki.h"
#include "routing/service.h"
#include "store/kv_store.h"
#include "twins/bulk_jobs.h"
#include "twins/ingestion.h"
#include "twins/model_store.h"
#include "twins/notifications.h"
#include "twins/twin_graph.h"

#ifndef ORRERY_VERSION
#define ORRERY_VERSION "dev"
#endif

namespace orrery::app {
namespace {

// Holds an exclusive lock on <data-dir>/orrery.lock for the life of the process, so that two
// servers never share one data directory.
class DataDirLock {
 public:
  static Result<DataDirLock> Acquire(const std::filesystem::path& dir) {
    auto path = dir / "orrery.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Error(BaseErrc::kPermissionDenied,
                   fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      ::close(fd);
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
      while (!pid.empty() && (pid.back() == '\n'))
        pid.pop_back();
      return Error(
          BaseErrc::kAlreadyExists,
          fmt::format("data directory {} is in use by another orrery (pid {})", dir.string(), pid));
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      // The lock itself is what matters; the pid is only a hint for the message above.
    }
    DataDirLock l;
    l.fd_ = fd;
    return l;
  }
  DataDirLock(DataDirLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ~DataDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  DataDirLock() = default;
  int fd_ = -1;
};

int Fail(const Error& e, int code = 1) {
  fmt::print(stderr, "orrery: {}\n", e.message());
  return code;
}

}  // namespace

int Serve(const config::Settings& s) {
  auto fmt_r = log::ParseFormat(s.String("log.format"));
  if (auto st = log::Init({.level = s.String("log.level"), .format = *fmt_r}); !st) {
    return Fail(st.error(), 2);
  }
  auto logger = log::Get("server");
  for (auto& name : s.unknown_env()) {
    logger->warn("ignoring environment variable {}: not a configuration key", name);
  }

  const std::filesystem::path data_dir = s.String("server.data_dir");
  const std::string host = s.String("server.host_name");
  if (auto st = files::EnsureDirectory(data_dir, std::filesystem::perms::owner_all); !st) {
    return Fail(st.error());
  }
  auto lock = DataDirLock::Acquire(data_dir);
  if (!lock) return Fail(lock.error());

  // TLS: the configured certificate, or the development CA's.
  std::filesystem::path cert = s.String("tls.cert"), key = s.String("tls.key");
  std::filesystem::path trust_hint;
  if (cert.empty() != key.empty()) {
    return Fail(Error(BaseErrc::kInvalidArgument, "tls.cert and tls.key must be set together"), 2);
  }
  if (cert.empty()) {
    auto dev = pki::EnsureDevelopmentCerts(data_dir, host);
    if (!dev) return Fail(dev.error());
    if (dev->created_ca)
      logger->info("created a development CA at {}", dev->paths.ca_cert.string());
    if (dev->issued_server) logger->info("issued a server certificate for {}", host);
    cert = dev->paths.server_cert;
    key = dev->paths.server_key;
    trust_hint = dev->paths.ca_cert;
  }
  auto tls = net::TlsServerContext::Create({.cert_chain = cert, .key = key});
  if (!tls) return Fail(tls.error(), 2);

  auto policies = hub::PolicyStore::Open(data_dir);
  if (!policies) return Fail(policies.error());

  metrics::Registry registry;
  api::AddProcessCollector(registry, ORRERY_VERSION);
  api::Readiness readiness;

  size_t threads = static_cast<size_t>(s.Int("server.threads"));
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  // Declaration order is destruction order in reverse: servers, broker, store, then the pool
  // whose contexts the store's callbacks post to.
  net::IoPool pool(threads);

  auto kv = store::OpenRocksDb({.path = data_dir / "state", .metrics = &registry});
  if (!kv) return Fail(kv.error());
  std::unique_ptr<store::KvStore> state = std::move(*kv);

  // The event log: the built-in Event Hubs-compatible endpoint. Declared after the pool: its
  // sync thread posts readiness hooks to the pool's contexts, so it closes first.
  auto durability = eventlog::ParseDurability(s.String("eventlog.durability"));
  if (!durability) return Fail(durability.error(), 2);
  eventlog::Options eo{
      .partitions = static_cast<uint32_t>(s.Int("eventlog.partitions")),
      .segment_size = static_cast<uint64_t>(s.Bytes("eventlog.segment_size")),
      .retention_ms = s.DurationMs("eventlog.retention"),
      .max_bytes = static_cast<uint64_t>(s.Bytes("eventlog.max_bytes")),
      .durability = *durability,
      .max_pending_bytes = static_cast<uint64_t>(s.Bytes("eventlog.max_pending_bytes")),
      .max_record_bytes = static_cast<uint64_t>(s.Bytes("eventlog.max_message_bytes")),
      .metrics = &registry};
  if (auto st = eventlog::ValidateOptions(eo); !st) return Fail(st.error(), 2);
  auto opened_log = eventlog::EventLog::Open(data_dir / "eventlog", eo);
  if (!opened_log) return Fail(opened_log.error());
  std::unique_ptr<eventlog::EventLog> event_log = std::move(*opened_log);
  for (auto& r : event_log->recovery()) {
    if (r.truncated_bytes > 0 || r.removed_segments > 0 || r.rebuilt_indexes > 0) {
      logger->warn(
          "event log partition {}: recovered a torn tail ({} bytes cut{}{}), {} segments "
          "removed, {} indexes rebuilt",
          r.partition, r.truncated_bytes, r.problem.empty() ? "" : ": ", r.problem,
          r.removed_segments, r.rebuilt_indexes);
    }
  }
  logger->info("event log: {} partitions, {:.1f} h retention, durability {}",
               event_log->partition_count(), static_cast<double>(eo.retention_ms) / 3'600'000,
               eventlog::DurabilityName(*durability));
  // Checkpoints and consumer-group changes fsync: they run here, off the I/O threads.
  boost::asio::thread_pool blocking(1);

  // MQTT broker core.
  std::shared_ptr<mqtt::ConfigAuth> mqtt_auth;
  if (auto users = s.String("mqtt.users_file"); !users.empty()) {
    auto a = mqtt::ConfigAuth::Load(users, s.Bool("mqtt.allow_anonymous"));
    if (!a) return Fail(a.error(), 2);
    mqtt_auth = std::move(*a);
  } else {
    mqtt_auth = std::make_shared<mqtt::ConfigAuth>(s.Bool("mqtt.allow_anonymous"),
                                                   std::vector<mqtt::ConfigAuth::User>{},
                                                   std::vector<mqtt::ConfigAuth::Acl>{});
  }
  int64_t max_expiry_ms = s.DurationMs("mqtt.max_session_expiry");
  mqtt::BrokerOptions bo{
      .max_packet_size = static_cast<size_t>(s.Bytes("mqtt.max_packet_size")),
      .receive_maximum = static_cast<uint16_t>(s.Int("mqtt.receive_maximum")),
      .max_inflight = static_cast<uint16_t>(s.Int("mqtt.max_inflight")),
      .max_queued_messages = static_cast<size_t>(s.Int("mqtt.max_queued_messages")),
      .max_subscriptions_per_client =
          static_cast<size_t>(s.Int("mqtt.max_subscriptions_per_client")),
      .topic_alias_maximum = static_cast<uint16_t>(s.Int("mqtt.topic_alias_maximum")),
      .max_session_expiry_s = max_expiry_ms == 0 ? mqtt::kSessionNeverExpires
                                                 : static_cast<uint32_t>(max_expiry_ms / 1000),
      .connect_timeout = std::chrono::milliseconds(s.DurationMs("mqtt.connect_timeout")),
      .retain_available = s.Bool("mqtt.retain_available"),
      .metrics = &registry};
  // The hub core (registry, twins, C2D queues, methods) and its MQTT device protocol, which
  // authenticates devices and hands plain MQTT clients to mqtt_auth. Declared before the
  // broker, which holds the adapter, so the broker goes first.
  hub::HubOptions ho{
      .host_name = host,
      .registry = {.max_devices = static_cast<size_t>(s.Int("hub.max_devices")),
                   .max_modules_per_device =
                       static_cast<size_t>(s.Int("hub.max_modules_per_device"))},
      .c2d = {.max_queue_depth = static_cast<size_t>(s.Int("cloud_to_device.max_queue_depth")),
              .default_ttl_ms = s.DurationMs("cloud_to_device.default_ttl"),
              .max_ttl_ms = s.DurationMs("cloud_to_device.max_ttl"),
              .lock_timeout_ms = s.DurationMs("cloud_to_device.lock_timeout"),
              .max_delivery_count =
                  static_cast<uint32_t>(s.Int("cloud_to_device.max_delivery_count"))},
      .service_requests_per_second =
          static_cast<double>(s.Int("hub.rate_limit.service_per_second")),
      .service_burst = static_cast<double>(s.Int("hub.rate_limit.service_burst")),
      .device_messages_per_second = static_cast<double>(s.Int("hub.rate_limit.device_per_second")),
      .device_burst = static_cast<double>(s.Int("hub.rate_limit.device_burst")),
      .metrics = &registry};
  auto opened_hub =
      hub::Hub::Open(ho, state.get(), event_log.get(), policies->get(), pool.Get(0).get_executor());
  if (!opened_hub) return Fail(opened_hub.error());
  std::unique_ptr<hub::Hub> hub_core = std::move(*opened_hub);
  // Message routing: decided at ingestion (the hub's annotator), delivered by endpoint
  // workers reading the event log. Declared after the log, so it stops first.
  std::string hub_name = host.substr(0, host.find('.'));
  hub::Registry* registry_ptr = &hub_core->registry();
  auto opened_routing = routing::RoutingService::Open(
      event_log.get(),
      {.state_dir = data_dir / "routing",
       .config_file = s.String("routing.file"),
       .limits = {.min_batch_frequency_s = s.DurationMs("routing.min_batch_frequency") / 1000},
       .router = {.hub_name = hub_name,
                  .twin =
                      [registry_ptr](std::string_view twin_key) {
                        return registry_ptr->CachedTwin(twin_key);
                      },
                  .metrics = &registry},
       .endpoints = {.archive_root = data_dir / "archive",
                     .webhook_tls = {.ca_file = s.String("routing.webhook_ca_file")},
                     .hub_name = hub_name,
                     .metrics = &registry}});
  if (!opened_routing) return Fail(opened_routing.error(), 2);
  std::unique_ptr<routing::RoutingService> routing_service = std::move(*opened_routing);
  hub_core->SetAnnotator(routing_service->router());
  auto opened_jobs = hub::Jobs::Open(hub_core.get(), state.get(), {.metrics = &registry},
                                     pool.Get(0).get_executor());
  if (!opened_jobs) return Fail(opened_jobs.error());
  std::unique_ptr<hub::Jobs> jobs = std::move(*opened_jobs);
  // The provisioning service: enrollments and registrations in the state store, devices
  // assigned to this hub and any linked ones, served on the hub's MQTT and HTTPS listeners.
  std::unique_ptr<hub::PolicyStore> dps_policies;
  std::unique_ptr<dps::ProvisioningService> provisioning;
  if (s.Bool("dps.enabled")) {
    auto scope = dps::LoadIdScope(data_dir, s.String("dps.id_scope"));
    if (!scope) return Fail(scope.error(), 2);
    auto opened_policies = hub::PolicyStore::Open(data_dir, dps::DpsPolicySchema());
    if (!opened_policies) return Fail(opened_policies.error());
    dps_policies = std::move(*opened_policies);
    std::string policy = s.String("dps.allocation_policy");
    auto opened_dps = dps::ProvisioningService::Open(
        {.id_scope = *scope,
         .service_host = host,
         .default_allocation = policy == "static"       ? dps::AllocationPolicy::kStatic
                               : policy == "geoLatency" ? dps::AllocationPolicy::kGeoLatency
                                                        : dps::AllocationPolicy::kHashed,
         .retry_after_s = static_cast<int>(s.DurationMs("dps.retry_after") / 1000),
         .answer_within = std::chrono::milliseconds(s.DurationMs("dps.answer_within")),
         .webhook_tls = {.ca_file = s.String("dps.custom_allocation_ca_file")},
         .limits = {.max_enrollments = static_cast<size_t>(s.Int("dps.max_enrollments")),
                    .max_groups = static_cast<size_t>(s.Int("dps.max_enrollment_groups"))},
         .metrics = &registry},
        state.get(), &hub_core->certificates(), pool.Get(0).get_executor());
    if (!opened_dps) return Fail(opened_dps.error());
    provisioning = std::move(*opened_dps);
    int local_weight = static_cast<int>(s.Int("dps.local_hub_weight"));
    provisioning->AddLinkedHub({.host_name = host,
                                .weight = local_weight,
                                .apply_allocation_policy = local_weight > 0,
                                .local = true,
                                .target = dps::LocalHubTarget(hub_core.get())});
    if (auto file = s.String("dps.linked_hubs_file"); !file.empty()) {
      auto text = files::ReadFile(file, 1 << 20);
      if (!text) return Fail(text.error(), 2);
      auto linked = dps::ParseLinkedHubs(*text);
      if (!linked) {
        return Fail(
            Error(linked.error().code(), fmt::format("{}: {}", file, linked.error().message())), 2);
      }
      for (auto& l : *linked) {
        if (strings::IEquals(l.host_name, host)) {
          return Fail(Error(BaseErrc::kInvalidArgument,
                            fmt::format("{}: hub {} is this server's own hub (linked already)",
                                        file, host)),
                      2);
        }
        auto target = dps::RemoteHubTarget(pool.Get(0).get_executor(), l.connection_string,
                                           {.ca_file = s.String("dps.linked_hub_ca_file")});
        if (!target) return Fail(target.error(), 2);
        provisioning->AddLinkedHub({.host_name = l.host_name,
                                    .weight = l.weight,
                                    .apply_allocation_policy = l.apply_allocation_policy,
                                    .target = std::move(*target)});
      }
    }
    std::vector<std::string> names;
    for (auto& h : provisioning->linked_hubs())
      names.push_back(fmt::format("{} (weight {})", h.host_name, h.weight));
    logger->info("provisioning service: ID scope {}, linked hubs {}", *scope,
                 fmt::join(names, ", "));
  }

  // Digital twins: the DTDL model store in the state store, and the OAuth 2.0 identity its
  // clients authenticate with (signing key, tenant and service principals under identity/).
  std::unique_ptr<twins::ModelStore> models;
  std::unique_ptr<twins::TwinGraph> twin_graph;
  std::unique_ptr<twins::Notifier> notifier;
  std::unique_ptr<twins::Ingestion> ingestion;
  std::unique_ptr<identity::TokenIssuer> token_issuer;
  std::unique_ptr<identity::PrincipalStore> principals;
  std::unique_ptr<twins::BulkJobs> bulk_jobs;  // import and delete jobs (twins.jobs_dir)
  if (s.Bool("twins.enabled")) {
    auto opened_models = twins::ModelStore::Open(
        state.get(), {.max_models = static_cast<size_t>(s.Int("twins.max_models"))},
        timeutil::NowMs);
    if (!opened_models) return Fail(opened_models.error());
    models = std::move(*opened_models);
    auto opened_graph = twins::TwinGraph::Open(state.get(), models.get(), {}, timeutil::NowMs);
    if (!opened_graph) return Fail(opened_graph.error());
    twin_graph = std::move(*opened_graph);
    // Event routes: their own notification log under twins/, and the hub's log for
    // derived-stream endpoints.
    auto max_routes = static_cast<size_t>(s.Int("twins.max_event_routes"));
    auto opened_notifier = twins::Notifier::Open(
        state.get(), {.dir = data_dir / "twins" / "events",
                      .source = host,
                      .hub_log = event_log.get(),
                      .webhook_tls = {.ca_file = s.String("twins.webhook_ca_file")},
                      .max_endpoints = max_routes,
                      .max_routes = max_routes,
                      .log = {.partitions = 1, .durability = *durability},
                      .now_ms = timeutil::NowMs});
    if (!opened_notifier) return Fail(opened_notifier.error());
    notifier = std::move(*opened_notifier);
    twin_graph->SetObserver(notifier.get());
    // Ingestion rules read the hub's log (consumer group dt.ingest) and the twins' changes.
    auto opened_ingestion =
        twins::Ingestion::Open(state.get(), twin_graph.get(), notifier.get(), event_log.get());
    if (!opened_ingestion) return Fail(opened_ingestion.error());
    ingestion = std::move(*opened_ingestion);
    if (auto file = s.String("twins.mappings_file"); !file.empty()) {
      if (auto st = ingestion->LoadFile(file); !st) return Fail(st.error(), 2);
    }
    auto opened_issuer = identity::TokenIssuer::Open(data_dir / "identity");
    if (!opened_issuer) return Fail(opened_issuer.error());
    token_issuer = std::move(*opened_issuer);
    principals = std::make_unique<identity::PrincipalStore>(data_dir / "identity");
    auto jobs_dir = twins::JobsDirectory(data_dir, s.String("twins.jobs_dir"));
    if (auto st = files::EnsureDirectory(jobs_dir, std::filesystem::perms::owner_all |
                                                       std::filesystem::perms::group_read |
                                                       std::filesystem::perms::group_exec);
        !st) {
      return Fail(st.error());
    }
    auto opened_bulk_jobs = twins::BulkJobs::Open(state.get(), models.get(), twin_graph.get(),
                                                  {.jobs_dir = jobs_dir}, timeutil::NowMs);
    if (!opened_bulk_jobs) return Fail(opened_bulk_jobs.error());
    bulk_jobs = std::move(*opened_bulk_jobs);
    logger->info("digital twins: {} models, {} twins, {} relationships; tenant {}", models->size(),
                 twin_graph->twin_count(), twin_graph->relationship_count(),
                 token_issuer->tenant());
  }

  // Stream Analytics jobs: runners reading the hub's log, their own output log under asa/.
  std::unique_ptr<asa::JobService> asa_jobs;
  if (s.Bool("asa.enabled")) {
    auto reference_dir = s.String("asa.reference_dir").empty()
                             ? data_dir / "asa" / "reference"
                             : std::filesystem::path(s.String("asa.reference_dir"));
    if (auto st = files::EnsureDirectory(reference_dir, std::filesystem::perms::owner_all); !st) {
      return Fail(st.error());
    }
    auto opened_asa = asa::JobService::Open(
        state.get(), event_log.get(), hub_core.get(), routing_service->router(), twin_graph.get(),
        {.dir = data_dir / "asa",
         .reference_dir = reference_dir,
         .archive_root = data_dir / "archive",
         .webhook_tls = {.ca_file = s.String("asa.webhook_ca_file")},
         .log = {.partitions = 4, .durability = *durability},
         .limits = {.min_batch_frequency_s = s.DurationMs("routing.min_batch_frequency") / 1000},
         .max_jobs = static_cast<size_t>(s.Int("asa.max_jobs")),
         .checkpoint_interval_ms = s.DurationMs("asa.checkpoint_interval"),
         .heartbeat_margin_ms = s.DurationMs("asa.heartbeat_margin"),
         .worker_threads = s.Int("asa.worker_threads") > 0
                               ? static_cast<uint32_t>(s.Int("asa.worker_threads"))
                               : std::max(1u, std::thread::hardware_concurrency()),
         .hub_name = hub_name,
         .metrics = &registry});
    if (!opened_asa) return Fail(opened_asa.error());
    asa_jobs = std::move(*opened_asa);
  }

  auto adapter = std::make_shared<hub::MqttAdapter>(*hub_core, mqtt_auth, mqtt_auth);
  // With the provisioning service, its front sees every client first and hands all but DPS
  // registrations to the hub's adapter.
  std::shared_ptr<dps::MqttFront> dps_front;
  if (provisioning) dps_front = std::make_shared<dps::MqttFront>(*provisioning, adapter);
  std::shared_ptr<mqtt::Authenticator> authn = adapter;
  std::shared_ptr<mqtt::Authorizer> authz = adapter;
  std::shared_ptr<mqtt::PublishInterceptor> interceptor = adapter;
  std::shared_ptr<mqtt::ConnectionObserver> observer = adapter;
  if (dps_front) {
    authn = dps_front;
    authz = dps_front;
    interceptor = dps_front;
    observer = dps_front;
  }
  auto broker =
      std::make_unique<mqtt::Broker>(bo, state.get(), authn, authz, pool.Get(0).get_executor());
  adapter->SetBroker(broker.get());
  if (dps_front) dps_front->SetBroker(broker.get());
  broker->SetInterceptor(interceptor);
  broker->SetObserver(observer);
  if (auto st = broker->Load(); !st) return Fail(st.error());
  auto accept_mqtt = [b = broker.get()](net::StreamPtr stream) { b->Accept(std::move(stream)); };

  auto router = std::make_shared<net::Router>();
  api::RegisterOpsRoutes(*router, registry, readiness);
  api::RegisterServiceRoutes(*router, {.hub = hub_core.get(),
                                       .jobs = jobs.get(),
                                       .policies = policies->get(),
                                       .metrics = &registry});
  api::RegisterDeviceHttpRoutes(*router, {.hub = hub_core.get()});
  if (provisioning) {
    api::RegisterDpsRoutes(*router,
                           {.service = provisioning.get(), .policies = dps_policies.get()});
  }
  api::RegisterRoutingRoutes(*router,
                             {.routing = routing_service.get(), .policies = policies->get()});
  if (asa_jobs)
    api::RegisterAsaRoutes(*router, {.jobs = asa_jobs.get(), .policies = policies->get()});
  api::RegisterEventHubRoutes(*router,
                              {.log = event_log.get(),
                               .policies = policies->get(),
                               .metrics = &registry,
                               .max_streams = static_cast<size_t>(s.Int("eventlog.max_streams")),
                               .blocking = blocking.get_executor()});
  auto ws_router = std::make_shared<net::Router>();
  for (auto& path : s.List("mqtt.ws_paths")) {
    net::WebSocketRoute route{
        .path = path,
        .subprotocols = {"mqtt", "mqttv3.1"},
        .handler = accept_mqtt,
        .max_message = static_cast<size_t>(s.Bytes("mqtt.max_packet_size")) + 16};
    router->AddWebSocket(route);
    ws_router->AddWebSocket(route);
  }

  const auto& bind = s.List("server.bind");
  const auto& mqtt_bind = s.List("mqtt.bind");
  std::vector<std::string> endpoints;
  auto mqtt_limit = static_cast<size_t>(s.Int("mqtt.max_connections"));
  std::unique_ptr<net::StreamServer> mqtts, mqtt_plain;
  std::unique_ptr<net::HttpServer> mqtt_ws;
  if (int port = static_cast<int>(s.Int("mqtts.port")); port != 0) {
    auto server = net::StreamServer::Start(pool,
                                           {.name = "mqtts",
                                            .addresses = bind,
                                            .port = static_cast<uint16_t>(port),
                                            .tls = *tls,
                                            .max_connections = mqtt_limit,
                                            .metrics = &registry},
                                           accept_mqtt);
    if (!server) return Fail(server.error());
    mqtts = std::move(*server);
    endpoints.push_back(fmt::format("mqtts://{}:{}", host, mqtts->port()));
  }
  if (int port = static_cast<int>(s.Int("mqtt.port")); port != 0) {
    auto server = net::StreamServer::Start(pool,
                                           {.name = "mqtt",
                                            .addresses = mqtt_bind,
                                            .port = static_cast<uint16_t>(port),
                                            .max_connections = mqtt_limit,
                                            .metrics = &registry},
                                           accept_mqtt);
    if (!server) return Fail(server.error());
    mqtt_plain = std::move(*server);
    endpoints.push_back(
        fmt::format("mqtt://{}:{} ({})", mqtt_bind.front(), mqtt_plain->port(), "plain TCP"));
  }
  if (int port = static_cast<int>(s.Int("mqtt.ws_port")); port != 0) {
    auto server = net::HttpServer::Start(pool,
                                         {.name = "mqtt-ws",
                                          .addresses = mqtt_bind,
                                          .port = static_cast<uint16_t>(port),
                                          .max_connections = mqtt_limit,
                                          .metrics = &registry},
                                         ws_router);
    if (!server) return Fail(server.error());
    mqtt_ws = std::move(*server);
    endpoints.push_back(
        fmt::format("ws://{}:{}{}", mqtt_bind.front(), mqtt_ws->port(),
                    s.List("mqtt.ws_paths").empty() ? "" : s.List("mqtt.ws_paths").front()));
  }
  if (s.Bool("mqtt.allow_anonymous")) {
    for (auto& a : bind) {
      if (a != "localhost" && a != "127.0.0.1" && a != "::1") {
        logger->warn(
            "MQTT accepts anonymous clients on {} (set mqtt.allow_anonymous = false "
            "and mqtt.users_file for a network-facing broker)",
            a);
        break;
      }
    }
  }

  // The HTTPS listeners (the hub's and the twins') share the https.* limits.
  auto https_options = [&](const char* name, int port) {
    return net::HttpServerOptions{
        .name = name,
        .addresses = bind,
        .port = static_cast<uint16_t>(port),
        .tls = *tls,
        .max_connections = static_cast<size_t>(s.Int("https.max_connections")),
        .max_header_bytes = static_cast<size_t>(s.Bytes("https.max_header")),
        .max_body_bytes = static_cast<size_t>(s.Bytes("https.max_body")),
        .request_timeout = std::chrono::milliseconds(s.DurationMs("https.request_timeout")),
        .idle_timeout = std::chrono::milliseconds(s.DurationMs("https.idle_timeout")),
        .metrics = &registry};
  };
  std::unique_ptr<net::HttpServer> https;
  if (int port = static_cast<int>(s.Int("https.port")); port != 0) {
    auto server = net::HttpServer::Start(pool, https_options("https", port), router);
    if (!server) return Fail(server.error());
    https = std::move(*server);
    logger->info("https listening on {} port {} (service REST, device HTTPS, /metrics)",
                 fmt::join(bind, ", "), https->port());
    for (auto& p : s.List("mqtt.ws_paths")) {
      endpoints.push_back(fmt::format("wss://{}:{}{}", host, https->port(), p));
    }
    logger->info("event stream on wss://{}:{}/eventhub/events (orrery monitor-events)", host,
                 https->port());
  }
  std::unique_ptr<net::HttpServer> twins_https;
  if (int port = static_cast<int>(s.Int("twins.port")); port != 0 && models) {
    auto twins_router = std::make_shared<net::Router>();
    api::RegisterTwinsRoutes(*twins_router,
                             {.models = models.get(),
                              .graph = twin_graph.get(),
                              .notifier = notifier.get(),
                              .ingestion = ingestion.get(),
                              .issuer = token_issuer.get(),
                              .principals = principals.get(),
                              .blocking = blocking.get_executor(),
                              .token_lifetime_s = s.DurationMs("identity.token_lifetime") / 1000,
                              .jobs = bulk_jobs.get()});
    auto server = net::HttpServer::Start(pool, https_options("twins", port), twins_router);
    if (!server) return Fail(server.error());
    twins_https = std::move(*server);
    logger->info(
        "digital twins API on https://{}:{} (token endpoint https://{}:{}/{}/oauth2/v2.0/token)",
        host, twins_https->port(), host, twins_https->port(), token_issuer->tenant());
  }
  for (auto& e : endpoints)
    logger->info("MQTT listening on {}", e);
  broker->Start();
  hub_core->Start();
  jobs->Start();
  if (bulk_jobs) bulk_jobs->Start();

  boost::asio::signal_set signals(pool.Get(0), SIGINT, SIGTERM, SIGHUP);
  std::function<void()> shutdown_wait;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          if (auto st = (*tls)->Reload(); st) {
            logger->info("SIGHUP: reloaded the TLS certificate and key");
          } else {
            logger->error("SIGHUP: kept the old TLS certificate: {}", st.error().message());
          }
          signals.async_wait(on_signal);
          return;
        }
        logger->info("{}: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
        readiness.stopping = true;
        for (auto* srv : {mqtts.get(), mqtt_plain.get()}) {
          if (srv) srv->Stop();
        }
        for (auto* srv : {https.get(), mqtt_ws.get(), twins_https.get()}) {
          if (srv) srv->Stop();
        }
        // Clients get DISCONNECT (0x8B Server shutting down for MQTT 5), then the pool stops
        // once they are gone or after a grace period.
        jobs->Shutdown();
        if (provisioning) provisioning->Shutdown();
        hub_core->Shutdown();
        broker->Shutdown();
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        auto timer = std::make_shared<boost::asio::steady_timer>(pool.Get(0));
        shutdown_wait = [&, timer, deadline] {
          if (broker->connection_count() == 0 || std::chrono::steady_clock::now() >= deadline) {
            pool.Stop();
            return;
          }
          timer->expires_after(std::chrono::milliseconds(20));
          timer->async_wait([&](const boost::system::error_code&) { shutdown_wait(); });
        };
        shutdown_wait();
      };
  signals.async_wait(on_signal);

  logger->info("Orrery {} serving hub '{}' from {} with {} I/O threads", ORRERY_VERSION, host,
               std::filesystem::absolute(data_dir).string(), threads);
  if (!trust_hint.empty()) {
    logger->info("clients trust the development CA at {}", trust_hint.string());
  }
  readiness.ready = true;
  logger->info("orrery is ready");
  pool.Run();
  // Stream jobs stop reading and checkpoint (state stays Running: they resume at start).
  if (asa_jobs) asa_jobs->Stop();
  if (bulk_jobs) bulk_jobs->Shutdown();  // a running job stays running: it resumes at start
  // Durable-write callbacks hold connections, whose timers belong to the pool's contexts.
  state->Drain();
  blocking.join();
  if (notifier) {
    // Ingestion stops reading first (its patches go through the graph), then the notifier
    // routes what committed changes left, while the hub's log is still open.
    ingestion->Stop();
    twin_graph->SetObserver(nullptr);
    notifier->Stop();
  }
  routing_service->Stop();  // endpoints flush and checkpoint while the log is still open
  event_log->Close();
  logger->info("stopped");
  return 0;
}

}  // namespace orrery::app
