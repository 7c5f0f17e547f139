#include "apps/orrery/options.h"

#include <unistd.h>

#include <thread>

extern char** environ;

namespace orrery::app {

const config::Schema& Schema() {
  static const config::Schema schema = [] {
    using config::Type;
    config::Schema s;
    // server
    s.Add({.key = "server.data_dir",
           .type = Type::kString,
           .default_value = "var",
           .help = "Directory for all state: stores, logs, certificates, keys.",
           .flag = "data-dir"});
    s.Add({.key = "server.host_name",
           .type = Type::kString,
           .default_value = "localhost",
           .help = "The hub's host name: in connection strings, SAS tokens and the server "
                   "certificate.",
           .flag = "host-name"});
    s.Add({.key = "server.bind",
           .type = Type::kStringList,
           .default_value = "localhost",
           .help = "Addresses the HTTPS and MQTT/TLS listeners bind (`localhost` = 127.0.0.1 "
                   "and ::1; `0.0.0.0`, `::` for all).",
           .flag = "bind"});
    s.Add({.key = "server.threads",
           .type = Type::kInt,
           .default_value = "0",
           .help = "I/O threads (one io_context each); 0 = one per CPU core.",
           .min = 0,
           .max = 256});
    // tls
    s.Add({.key = "tls.cert",
           .type = Type::kString,
           .default_value = "",
           .help = "Server certificate chain (PEM). Empty: a development CA and certificate "
                   "are generated under <data_dir>/tls. Reloaded on SIGHUP.",
           .flag = "tls-cert"});
    s.Add({.key = "tls.key",
           .type = Type::kString,
           .default_value = "",
           .help = "Private key (PEM) for tls.cert.",
           .flag = "tls-key"});
    // https
    s.Add({.key = "https.port",
           .type = Type::kInt,
           .default_value = "443",
           .help = "HTTPS port: service REST, device HTTPS, MQTT over WebSockets, /metrics. "
                   "0 turns it off. The Azure SDKs' REST clients only use 443.",
           .min = 0,
           .max = 65535,
           .flag = "https-port"});
    s.Add({.key = "https.max_connections",
           .type = Type::kInt,
           .default_value = "20000",
           .help = "Open HTTPS connections at most; more are refused.",
           .min = 1,
           .max = 10'000'000});
    s.Add({.key = "https.max_body",
           .type = Type::kSize,
           .default_value = "1MiB",
           .help = "Largest request body accepted by default (413 beyond).",
           .min = 1024,
           .max = int64_t{1} << 30});
    s.Add({.key = "https.max_header",
           .type = Type::kSize,
           .default_value = "16KiB",
           .help = "Largest request header block (431 beyond).",
           .min = 1024,
           .max = 1 << 20});
    s.Add({.key = "https.request_timeout",
           .type = Type::kDuration,
           .default_value = "30s",
           .help = "Time allowed to receive a request or send a response.",
           .min = 1000,
           .max = 3'600'000});
    s.Add({.key = "https.idle_timeout",
           .type = Type::kDuration,
           .default_value = "120s",
           .help = "Idle keep-alive connections are closed after this.",
           .min = 1000,
           .max = 86'400'000});
    // mqtt
    s.Add({.key = "mqtts.port",
           .type = Type::kInt,
           .default_value = "8883",
           .help = "MQTT over TLS port (devices, DPS registrations), on server.bind. 0 turns it "
                   "off.",
           .min = 0,
           .max = 65535,
           .flag = "mqtts-port"});
    s.Add({.key = "mqtt.port",
           .type = Type::kInt,
           .default_value = "1883",
           .help = "MQTT over plain TCP port, on mqtt.bind (loopback by default). 0 turns it off.",
           .min = 0,
           .max = 65535,
           .flag = "mqtt-port"});
    s.Add({.key = "mqtt.bind",
           .type = Type::kStringList,
           .default_value = "127.0.0.1",
           .help = "Addresses of the plain (unencrypted) MQTT and WebSocket listeners.",
           .flag = "mqtt-bind"});
    s.Add({.key = "mqtt.ws_paths",
           .type = Type::kStringList,
           .default_value = "/mqtt,/$iothub/websocket",
           .help = "Paths on the HTTPS port that accept MQTT over secure WebSockets "
                   "(subprotocol `mqtt`)."});
    s.Add({.key = "mqtt.ws_port",
           .type = Type::kInt,
           .default_value = "0",
           .help = "Plain-WebSocket MQTT port on mqtt.bind (same paths). 0 (default) turns it "
                   "off.",
           .min = 0,
           .max = 65535,
           .flag = "mqtt-ws-port"});
    s.Add({.key = "mqtt.max_connections",
           .type = Type::kInt,
           .default_value = "1000000",
           .help = "Open MQTT connections at most, per listener; more are refused.",
           .min = 1,
           .max = 100'000'000});
    s.Add({.key = "mqtt.max_packet_size",
           .type = Type::kSize,
           .default_value = "1MiB",
           .help = "Largest MQTT packet accepted (MQTT 5: 0x95 Packet too large; 3.1.1: close).",
           .min = 64,
           .max = 268'435'455});
    s.Add({.key = "mqtt.receive_maximum",
           .type = Type::kInt,
           .default_value = "1024",
           .help = "Inbound QoS 1/2 messages per connection awaiting our acknowledgement "
                   "(advertised to MQTT 5 clients; 3.1.1 clients are read more slowly).",
           .min = 1,
           .max = 65535});
    s.Add({.key = "mqtt.max_inflight",
           .type = Type::kInt,
           .default_value = "256",
           .help = "Outbound QoS 1/2 messages per session awaiting the client's "
                   "acknowledgement (also bounded by the client's Receive Maximum).",
           .min = 1,
           .max = 65535});
    s.Add({.key = "mqtt.max_queued_messages",
           .type = Type::kInt,
           .default_value = "1000",
           .help = "Messages queued per session beyond the in-flight window; newer ones are "
                   "dropped and counted in orrery_mqtt_dropped_total{reason=\"queue_full\"}.",
           .min = 1,
           .max = 10'000'000});
    s.Add({.key = "mqtt.max_subscriptions_per_client",
           .type = Type::kInt,
           .default_value = "1000",
           .help = "Subscriptions per session (SUBACK 0x97 Quota exceeded beyond).",
           .min = 1,
           .max = 1'000'000});
    s.Add({.key = "mqtt.topic_alias_maximum",
           .type = Type::kInt,
           .default_value = "64",
           .help = "Topic aliases an MQTT 5 client may use towards the server.",
           .min = 0,
           .max = 65535});
    s.Add({.key = "mqtt.max_session_expiry",
           .type = Type::kDuration,
           .default_value = "0s",
           .help = "Longest time an offline session is kept (caps MQTT 5 Session Expiry; "
                   "applies to 3.1.1 clean-session-0 sessions). 0s = no limit.",
           .min = 0,
           .max = int64_t{0xFFFFFFFE} * 1000});
    s.Add({.key = "mqtt.connect_timeout",
           .type = Type::kDuration,
           .default_value = "10s",
           .help = "Time a new connection has to send CONNECT.",
           .min = 100,
           .max = 3'600'000});
    s.Add({.key = "mqtt.retain_available",
           .type = Type::kBool,
           .default_value = "true",
           .help = "Whether retained messages are supported."});
    s.Add({.key = "mqtt.allow_anonymous",
           .type = Type::kBool,
           .default_value = "true",
           .help = "Accept MQTT clients without a user name (they still get ACLs for "
                   "anonymous users from mqtt.users_file).",
           .flag = "mqtt-allow-anonymous"});
    s.Add({.key = "mqtt.users_file",
           .type = Type::kString,
           .default_value = "",
           .help = "TOML file with MQTT users (PBKDF2 password hashes from `orrery mqtt "
                   "passwd`) and topic ACLs. See docs/mqtt.md.",
           .flag = "mqtt-users-file"});
    // eventlog
    s.Add({.key = "eventlog.partitions",
           .type = Type::kInt,
           .default_value = "4",
           .help = "Partitions of the event log, fixed when it is first created (a device's "
                   "messages always go to the same one). Changing it later is refused.",
           .min = 1,
           .max = 128});
    s.Add({.key = "eventlog.retention",
           .type = Type::kDuration,
           .default_value = "1d",
           .help = "How long events are kept; whole segments older than this are deleted.",
           .min = 1000,
           .max = int64_t{3650} * 24 * 3600 * 1000});
    s.Add({.key = "eventlog.max_bytes",
           .type = Type::kSize,
           .default_value = "0",
           .help = "Size budget of the whole event log (split evenly over partitions); the "
                   "oldest segments are deleted beyond it. 0 = no size limit.",
           .min = 0});
    s.Add({.key = "eventlog.segment_size",
           .type = Type::kSize,
           .default_value = "64MiB",
           .help = "Segment file size at which a partition rolls to a new segment (retention "
                   "deletes whole segments).",
           .min = 4096,
           .max = int64_t{1} << 30});
    s.Add({.key = "eventlog.durability",
           .type = Type::kString,
           .default_value = "fsync",
           .help = "`fsync`: an append is acknowledged once fdatasync'ed (survives power loss). "
                   "`os`: once written to the OS — survives kill -9 but NOT power loss or a "
                   "kernel crash; only for disposable data.",
           .choices = {"fsync", "os"}});
    s.Add({.key = "eventlog.max_pending_bytes",
           .type = Type::kSize,
           .default_value = "64MiB",
           .help = "Appended bytes waiting for the disk at most; producers are slowed "
                   "(backpressure) beyond it rather than memory growing.",
           .min = 1 << 20,
           .max = int64_t{16} << 30});
    s.Add({.key = "eventlog.max_message_bytes",
           .type = Type::kSize,
           .default_value = "1MiB",
           .help = "Largest encoded event (body and properties); at most half of "
                   "eventlog.max_pending_bytes.",
           .min = 1024,
           .max = int64_t{16} << 20});
    s.Add({.key = "eventlog.max_streams",
           .type = Type::kInt,
           .default_value = "256",
           .help = "Concurrent event-stream WebSockets (/eventhub/events); more get 503.",
           .min = 1,
           .max = 100'000});
    // hub
    s.Add({.key = "hub.max_devices",
           .type = Type::kInt,
           .default_value = "1000000",
           .help = "Device identities the registry holds at most (creates beyond: 403 "
                   "IotHubQuotaExceeded).",
           .min = 1,
           .max = 100'000'000});
    s.Add({.key = "hub.max_modules_per_device",
           .type = Type::kInt,
           .default_value = "50",
           .help = "Module identities per device at most (IoT Hub: 50).",
           .min = 1,
           .max = 1000});
    s.Add({.key = "hub.rate_limit.service_per_second",
           .type = Type::kInt,
           .default_value = "0",
           .help = "Service API requests per second per shared access policy (token bucket); "
                   "beyond: 429 with Retry-After. 0 = no limit.",
           .min = 0,
           .max = 10'000'000});
    s.Add({.key = "hub.rate_limit.service_burst",
           .type = Type::kInt,
           .default_value = "100",
           .help = "Service API requests a policy may make at once above its rate.",
           .min = 1,
           .max = 10'000'000});
    s.Add({.key = "hub.rate_limit.device_per_second",
           .type = Type::kInt,
           .default_value = "0",
           .help = "Device-to-cloud messages per second per device (token bucket). Over it, MQTT "
                   "acknowledgements wait and HTTPS answers 429. 0 = no limit.",
           .min = 0,
           .max = 10'000'000});
    s.Add({.key = "hub.rate_limit.device_burst",
           .type = Type::kInt,
           .default_value = "100",
           .help = "Messages a device may send at once above its rate.",
           .min = 1,
           .max = 10'000'000});
    s.Add({.key = "cloud_to_device.max_queue_depth",
           .type = Type::kInt,
           .default_value = "50",
           .help = "Cloud-to-device messages queued per device at most (IoT Hub: 50); sends "
                   "beyond are refused with 403.",
           .min = 1,
           .max = 10'000});
    s.Add({.key = "cloud_to_device.default_ttl",
           .type = Type::kDuration,
           .default_value = "1h",
           .help = "Time to live of a cloud-to-device message sent without an expiry time.",
           .min = 1000,
           .max = int64_t{2} * 24 * 3600 * 1000});
    s.Add({.key = "cloud_to_device.max_ttl",
           .type = Type::kDuration,
           .default_value = "2d",
           .help = "Longest time to live a sender may ask for (IoT Hub: 2 days).",
           .min = 1000,
           .max = int64_t{365} * 24 * 3600 * 1000});
    s.Add({.key = "cloud_to_device.lock_timeout",
           .type = Type::kDuration,
           .default_value = "60s",
           .help = "How long a message received over HTTPS stays locked before it is "
                   "delivered again.",
           .min = 1000,
           .max = 3'600'000});
    s.Add({.key = "cloud_to_device.max_delivery_count",
           .type = Type::kInt,
           .default_value = "10",
           .help = "Deliveries of one message at most; beyond, it is dead-lettered (feedback "
                   "DeliveryCountExceeded).",
           .min = 1,
           .max = 100});
    // routing
    s.Add({.key = "routing.file",
           .type = Type::kString,
           .default_value = "",
           .help = "JSON file with the message-routing configuration (IoT Hub's routing shape, "
                   "docs/routing.md); read at start and replaces the stored one. Empty: the "
                   "configuration last set through PUT /routing.",
           .flag = "routing-file"});
    s.Add({.key = "routing.min_batch_frequency",
           .type = Type::kDuration,
           .default_value = "60s",
           .help = "Shortest batch frequency a storage endpoint may ask for (IoT Hub: 60 s).",
           .min = 1000,
           .max = 720'000});
    s.Add({.key = "routing.webhook_ca_file",
           .type = Type::kString,
           .default_value = "",
           .help = "CA certificates (PEM) that webhook endpoints' servers are verified against. "
                   "Empty: the system's trust store."});
    // dps
    s.Add({.key = "dps.enabled",
           .type = Type::kBool,
           .default_value = "true",
           .help = "Run the Device Provisioning Service (device registration over MQTT and "
                   "HTTPS, enrollments REST) on the hub's listeners (docs/dps.md)."});
    s.Add({.key = "dps.id_scope",
           .type = Type::kString,
           .default_value = "",
           .help = "The provisioning service's ID scope. Empty: generated on first start and "
                   "kept in <data_dir>/dps/id_scope (`orrery dps id-scope` prints it)."});
    s.Add({.key = "dps.allocation_policy",
           .type = Type::kString,
           .default_value = "hashed",
           .help = "How devices whose enrollment names no policy are spread over the linked "
                   "hubs: hashed (evenly weighted), geoLatency (the local hub) or static.",
           .choices = {"hashed", "geoLatency", "static"}});
    s.Add({.key = "dps.local_hub_weight",
           .type = Type::kInt,
           .default_value = "1",
           .help = "Allocation weight of this process's hub; 0 links it only for enrollments "
                   "that name it.",
           .min = 0,
           .max = 1000});
    s.Add({.key = "dps.linked_hubs_file",
           .type = Type::kString,
           .default_value = "",
           .help = "JSON file listing other hubs to assign devices to: [{\"connectionString\": "
                   "\"HostName=…;SharedAccessKeyName=…;SharedAccessKey=…\", \"allocationWeight\": "
                   "1, \"applyAllocationPolicy\": true}] (a policy with RegistryWrite and "
                   "ServiceConnect)."});
    s.Add({.key = "dps.linked_hub_ca_file",
           .type = Type::kString,
           .default_value = "",
           .help = "CA certificates (PEM) that linked hubs' HTTPS servers are verified against. "
                   "Empty: the system's trust store."});
    s.Add({.key = "dps.custom_allocation_ca_file",
           .type = Type::kString,
           .default_value = "",
           .help = "CA certificates (PEM) that custom allocation webhooks are verified against. "
                   "Empty: the system's trust store."});
    s.Add({.key = "dps.retry_after",
           .type = Type::kDuration,
           .default_value = "1s",
           .help = "How long devices are told to wait before polling a registration that is "
                   "still assigning (whole seconds).",
           .min = 1000,
           .max = 60'000});
    s.Add({.key = "dps.answer_within",
           .type = Type::kDuration,
           .default_value = "2s",
           .help = "A registration that completes within this is answered at once (one round "
                   "trip); a slower one answers `assigning` and the device polls. 0 = always "
                   "poll, as Azure DPS does.",
           .min = 0,
           .max = 30'000});
    s.Add({.key = "dps.max_enrollments",
           .type = Type::kInt,
           .default_value = "1000000",
           .help = "Individual enrollments at most (Azure DPS: 1,000,000).",
           .min = 1,
           .max = 100'000'000});
    s.Add({.key = "dps.max_enrollment_groups",
           .type = Type::kInt,
           .default_value = "100",
           .help = "Enrollment groups at most (Azure DPS: 100).",
           .min = 1,
           .max = 10'000});
    // twins
    s.Add({.key = "twins.enabled",
           .type = Type::kBool,
           .default_value = "true",
           .help = "Run the Azure Digital Twins data plane (models REST API) and the OAuth 2.0 "
                   "token endpoint its clients use, on twins.port (docs/twins.md)."});
    s.Add({.key = "twins.port",
           .type = Type::kInt,
           .default_value = "9443",
           .help = "HTTPS port of the digital twins API and its token endpoint (ADT's paths "
                   "collide with the hub's, so it has its own). 0 turns it off.",
           .min = 0,
           .max = 65535,
           .flag = "twins-port"});
    s.Add({.key = "twins.max_models",
           .type = Type::kInt,
           .default_value = "10000",
           .help = "DTDL models stored at most (Azure Digital Twins: 10,000).",
           .min = 1,
           .max = 1'000'000});
    s.Add({.key = "twins.webhook_ca_file",
           .type = Type::kString,
           .default_value = "",
           .help = "CA certificates (PEM) that the servers of digital twins webhook endpoints "
                   "(event routes) are verified against. Empty: the system's trust store."});
    s.Add({.key = "twins.mappings_file",
           .type = Type::kString,
           .default_value = "",
           .help = "A JSON file of ingestion rules ({\"name\": rule, …}; docs/twins.md) created or "
                   "replaced at start, beside those made through the API."});
    s.Add({.key = "twins.max_event_routes",
           .type = Type::kInt,
           .default_value = "6",
           .help = "Event routes, and separately endpoints, at most (Azure Digital Twins: 6).",
           .min = 1,
           .max = 100});
    s.Add({.key = "twins.jobs_dir",
           .type = Type::kString,
           .default_value = "",
           .help = "The only directory import jobs read and write: their inputBlobUri and "
                   "outputBlobUri must be file: URIs or paths inside it (docs/twins.md). "
                   "Empty: <data_dir>/twins/jobs."});
    // asa (stream analytics jobs)
    s.Add({.key = "asa.enabled",
           .type = Type::kBool,
           .default_value = "true",
           .help = "Run Stream Analytics jobs on the hub's event stream (/asa/jobs, `orrery asa "
                   "job`; docs/stream-jobs.md)."});
    s.Add({.key = "asa.max_jobs",
           .type = Type::kInt,
           .default_value = "50",
           .help = "Stream jobs defined at most (each running job has its own thread).",
           .min = 1,
           .max = 1000});
    s.Add({.key = "asa.checkpoint_interval",
           .type = Type::kDuration,
           .default_value = "5s",
           .help = "How often a running job checkpoints its input positions and clocks; after a "
                   "crash it replays its state horizon from the last checkpoint, and rows since "
                   "then may come twice (with the same ids).",
           .min = 100,
           .max = 600'000});
    s.Add({.key = "asa.heartbeat_margin",
           .type = Type::kDuration,
           .default_value = "200ms",
           .help = "An idle partition's clock follows the wall clock minus this (events must be "
                   "readable within it after they are enqueued); windows close this late when a "
                   "partition is idle.",
           .min = 10,
           .max = 60'000});
    s.Add({.key = "asa.worker_threads",
           .type = Type::kInt,
           .default_value = "0",
           .help = "Runner threads of a job whose query is partition-parallel (PARTITION BY "
                   "PartitionId, or filters and projections; docs/stream.md): each reads its own "
                   "partitions of the hub's log, up to one per partition. Other jobs merge every "
                   "partition on one thread. 0: the number of cores. Changing it changes the ids "
                   "of the rows a resumed job repeats.",
           .min = 0,
           .max = 256});
    s.Add({.key = "asa.reference_dir",
           .type = Type::kString,
           .default_value = "",
           .help = "The directory reference data files are read from (jobs name paths inside it; "
                   "a changed file is reloaded). Empty: <data_dir>/asa/reference."});
    s.Add({.key = "asa.webhook_ca_file",
           .type = Type::kString,
           .default_value = "",
           .help = "CA certificates (PEM) that the servers of stream jobs' webhook outputs are "
                   "verified against. Empty: the system's trust store."});
    s.Add({.key = "identity.token_lifetime",
           .type = Type::kDuration,
           .default_value = "1h",
           .help = "Lifetime of the access tokens the token endpoint issues to service "
                   "principals (`orrery identity sp create`).",
           .min = 60'000,
           .max = 24 * 3'600'000});
    // log
    s.Add({.key = "log.level",
           .type = Type::kString,
           .default_value = "info",
           .help = "Log level.",
           .choices = {"trace", "debug", "info", "warn", "error", "critical", "off"},
           .flag = "log-level"});
    s.Add({.key = "log.format",
           .type = Type::kString,
           .default_value = "human",
           .help = "Log format on stderr: `human` lines or `json` objects.",
           .choices = {"human", "json"},
           .flag = "log-format"});
    return s;
  }();
  return schema;
}

void AddFlags(CLI::App& cmd, FlagBindings& b, std::initializer_list<const char*> keys) {
  cmd.add_option("--config", b.config_file,
                 "TOML configuration file (also ORRERY_CONFIG); flags override it")
      ->check(CLI::ExistingFile);
  for (const char* key : keys) {
    const config::Option* o = Schema().Find(key);
    std::string name = "--" + o->flag;
    std::string help = o->help;
    if (!o->default_value.empty()) help += " [default: " + o->default_value + "]";
    help += " (" + std::string(key) + ", " + config::Schema::EnvName(key) + ")";
    b.options[key] = cmd.add_option(name, b.values[key], help);
  }
}

Result<config::Settings> LoadSettings(const FlagBindings& b) {
  config::Sources src;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    src.env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  if (!b.config_file.empty()) {
    src.file = b.config_file;
  } else if (auto it = src.env.find("ORRERY_CONFIG"); it != src.env.end() && !it->second.empty()) {
    src.file = it->second;
  }
  src.env.erase("ORRERY_CONFIG");
  for (auto& [key, opt] : b.options) {
    if (opt->count() > 0) src.flags[key] = b.values.at(key);
  }
  return config::Settings::Load(Schema(), src);
}

}  // namespace orrery::app
