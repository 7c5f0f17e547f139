// Custom endpoints: each one reads the event log on its own (a consumer group named
// "route.<endpoint>" with durable checkpoints), takes the events whose routing annotation
// names it, and hands them to its sink — files on the local filesystem (the cold archive) or
// an HTTPS webhook. A checkpoint only moves past events once the sink has them safely (a file
// renamed into place, a 2xx from the webhook, or a dead-letter file), so a restart — kill -9
// included — re-reads from there: at-least-once delivery, nothing lost.
//
// Design note. One worker thread per endpoint serves all partitions in turn: it drains what is
// readable, lets the sink flush what is due, checkpoints (at most once a second per
// partition), and otherwise sleeps until the log wakes it (Reader::NotifyWhenReadable) or the
// sink's next deadline. A webhook sink delivers synchronously on that thread, with retries and
// exponential backoff; while it retries, its endpoint makes no progress (ordered delivery, as
// an unhealthy IoT Hub endpoint), and other endpoints are unaffected.
//
// Thread safety: EndpointManager's methods are safe from any thread; sinks live on their
// worker thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/metrics.h"
#include "eventlog/event_log.h"
#include "net/tls.h"
#include "routing/config.h"

namespace orrery::routing {

enum class HealthStatus { kUnknown, kHealthy, kUnhealthy, kDead };
std::string_view HealthName(HealthStatus s);  // "unknown", "healthy", "unhealthy", "dead"

struct EndpointHealth {
  std::string endpoint;
  HealthStatus status = HealthStatus::kUnknown;
  std::string last_error;
  int64_t last_error_ms = 0;
  int64_t last_success_ms = 0;
  int64_t last_attempt_ms = 0;
  uint64_t delivered = 0;
  uint64_t dead_lettered = 0;
};

// Lets a sink wait (backoff) without delaying shutdown.
class StopToken {
 public:
  // Waits up to `ms`; false when the worker is stopping (give up, deliver after a restart).
  virtual bool SleepFor(int64_t ms) = 0;
  virtual bool stopping() const = 0;

 protected:
  ~StopToken() = default;
};

// Receives the events routed to one endpoint, in sequence order per partition.
class Sink {
 public:
  virtual ~Sink() = default;
  // An event for this endpoint (its enrichments already in its properties).
  virtual void Add(const eventlog::Event& event, StopToken& stop) = 0;
  // Delivers what is due at `now_ms` (everything when `force`, at shutdown).
  virtual void Flush(int64_t now_ms, bool force, StopToken& stop) = 0;
  // The first sequence of `partition` it holds but has not yet delivered; nullopt when it
  // holds none.
  virtual std::optional<uint64_t> PendingFrom(uint32_t partition) const = 0;
  // When Flush must run next (ms since the epoch; INT64_MAX: nothing pending).
  virtual int64_t NextDeadlineMs() const = 0;
  virtual EndpointHealth Health() const = 0;
  // After a failure the sink could not recover from in place (a storage write failed), the
  // sequence of `partition` to read again from, once it is time to retry; the worker then
  // repositions its reader there. The checkpoint never passes it meanwhile.
  virtual std::optional<uint64_t> TakeRewind(uint32_t /*partition*/, int64_t /*now_ms*/) {
    return std::nullopt;
  }
};

struct EndpointOptions {
  std::filesystem::path archive_root;      // storage endpoints write under it
  std::filesystem::path dead_letter_root;  // webhooks dead-letter under it
  net::TlsClientOptions webhook_tls;       // trust for webhook receivers
  std::string hub_name = "localhost";      // {iothub} in file names
  // What the endpoints' readers see. kWritten (stream jobs' output log, whose rows a job makes
  // again after a crash): records before their fdatasync, for latency; checkpoints then never
  // pass the durable end.
  eventlog::Visibility visibility = eventlog::Visibility::kDurable;
  metrics::Registry* metrics = nullptr;
  std::function<int64_t()> now_ms;
};

// A webhook sink (exposed for tests): JSON batches POSTed with
//   Content-Type: application/json
//   X-Orrery-Signature: sha256=<hex HMAC-SHA256 of the body under the endpoint's secret>
//   X-Orrery-Delivery: <endpoint>-<partition>-<first sequence> (stable across retries)
std::unique_ptr<Sink> MakeWebhookSink(const WebhookEndpoint& config,
                                      const EndpointOptions& options);
// A storage sink: batch files per partition (archive::BatchWriter).
std::unique_ptr<Sink> MakeStorageSink(const StorageEndpoint& config,
                                      const EndpointOptions& options);

// The body of a webhook batch and of a storage JSON line: IoT Hub's routing record shape.
std::string WebhookSignature(std::string_view secret, std::string_view body);

class EndpointManager {
 public:
  EndpointManager(eventlog::EventLog* log, EndpointOptions options);
  ~EndpointManager();  // Stop()s

  // Makes the running endpoints those of `config`: endpoints that went away are stopped
  // (flushed) and their consumer groups deleted; new ones get a consumer group checkpointed
  // at the log's current end (they take messages routed from now on); changed ones restart.
  // Call before the router starts annotating with `config`.
  Status Apply(const RoutingConfig& config);
  // Adds a worker outside the routing configuration (Apply leaves it alone) that hands
  // `sink` every event of the log, reading as consumer group `group` — created checkpointed
  // at the log's end when new; not "route.*" — with the same checkpoints and wake-ups.
  // With `routed_only`, the sink takes only the events whose routing annotation names `name`.
  Status AttachConsumer(std::string name, std::string group, std::unique_ptr<Sink> sink,
                        bool routed_only = false);
  // Stops (flushing) the attached consumer `name` and deletes its consumer group; nothing when
  // there is none.
  void DetachConsumer(const std::string& name);
  // Flushes and stops every worker (their checkpoints stay).
  void Stop();
  std::vector<EndpointHealth> Health() const;

 private:
  class Worker;
  eventlog::EventLog* log_;
  EndpointOptions options_;
  mutable std::mutex mu_;
  Status EnsureGroupAtEnd(const std::string& group);
  std::map<std::string, std::unique_ptr<Worker>> workers_;   // guarded by mu_
  std::map<std::string, std::unique_ptr<Worker>> attached_;  // guarded by mu_
  std::map<std::string, std::string> fingerprints_;          // config of each running endpoint
  metrics::ScopedCollector collector_;
};

}  // namespace orrery::routing
