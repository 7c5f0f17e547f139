// Stream Analytics jobs running on the hub: durable job resources (keyspace "asa.job"), each
// running job one or more runner threads that read the hub's event log, feed the engine
// (src/stream) and write its rows, with checkpoints that survive kill -9 (keyspace "asa.ckpt").
//
//   hub event log ──readers (one per partition)──▶ Engine(s) ──rows──▶ output log (<dir>/log)
//        ▲                                                              │ routing endpoint
//        └──── "stream" outputs (derived streams) ◀────────────────────┤ workers: webhook,
//                                                                       │ storage; action sinks:
//                                                                       ▼ c2d, method, desired,
//                                                                         digital twin
//
// Inputs. An "iothub" input takes what the hub routes to its built-in endpoint (as an ASA job
// reading a consumer group of it), except derived streams; a "stream" input takes the rows
// another job's "stream" output appended. Events are the message bodies (a JSON object, an array
// of objects, or CSV with a header), with ASA's IoT Hub fields added: EventEnqueuedUtcTime,
// EventProcessedUtcTime, PartitionId, IoTHub {MessageId, CorrelationId, ConnectionDeviceId,
// ConnectionDeviceGenerationId, ConnectionModuleId, EnqueuedTime, StreamId}; application
// properties are read with GetMetadataPropertyValue(input, '[User].[name]'). An event's arrival
// is its enqueued time, so a replay feeds the engine exactly what the first run fed it.
//
// Outputs are durable before the checkpoint that passes their inputs: rows are appended to the
// output log (deterministic message ids: the same row at the same System.Timestamp gets the same
// id after a restart) and delivered from there by one reader per output, checkpointed as
// routing's endpoints are (at-least-once). Webhook outputs POST JSON arrays of rows
// (X-Orrery-Signature, retries with backoff; outputErrorPolicy "drop" dead-letters after
// maxAttempts, "retry" tries 100 times); storage outputs write routing's batch files (rows as JSON
// lines or Avro records); "stream" rows go straight to the hub's log (message source "asa",
// properties asa-job, asa-output), so routes, other jobs and `orrery monitor-events` see them.
//
// Latency. Runners read the hub's log, and outputs the output log, with
// eventlog::Visibility::kWritten: an event reaches the job, and a row its output, once written
// (page cache, which kill -9 keeps), not after its fdatasync; no fsync is on the path from a
// device's publish to a webhook's POST. Durability is still what checkpoints wait for: a job's
// checkpoint passes only events durable on the hub's log and rows durable on the output log,
// and an output's checkpoint never passes the output log's durable end, so a power loss
// costs repeats (same ids), never a gap.
//
// Checkpoints and recovery. Every checkpoint_interval, once every row produced so far is
// durable, a runner stores per partition it reads: the position it has read to, its clock, and the
// position from which a replay rebuilds the engine's state — the first event that arrived
// within the query's state horizon (StreamQuery::StateHorizon: windows, LIMIT DURATION,
// DATEDIFF bounds) plus the ordering tolerances. After a restart the runner replays from there
// to the stored positions with the output discarded (those rows were delivered), restores the
// clocks, and goes on: no window is lost, and rows produced since the checkpoint may come
// twice, with the same ids. Operator state is thus rebuilt from the durable log rather than
// serialised (the log keeps it for its retention, which must exceed the horizon).
//
// Threads. A job whose query allows it (StreamQuery::PartitionParallel: PARTITION BY
// PartitionId, or no cross-event state) runs as K = min(partitions, worker_threads) runners;
// runner k reads the partitions p with p % K == k into its own Engine, the other partitions
// heartbeaten once far ahead so its merge never waits for them. Any other job has one runner
// merging every partition by arrival. The runners write one checkpoint record together (each
// its own partitions' entries, under a mutex; written once every runner has an entry), marked
// parallel: a query that is not partition-parallel never resumes from such a record. Row ids
// of K > 1 runners include the runner (k, K), so they are deterministic for a given K: when
// asa.worker_threads changes between runs, rows produced since the last checkpoint that come
// again after the restart get other ids (downstream deduplication misses them). A runner then
// may merge partitions whose entries other runners wrote at other clocks (or not yet: a
// partition without a clock resumes from where the run started); each of its partitions
// replays from the state horizon before the least of those clocks, never before the job's
// input began (`origin`), so that windows closing while the laggard catches up come out
// whole: duplicates, never partial rows.
// A runner that fails stops its siblings; GET reports "runners" and "partitionClocks".
//
// Thread safety: JobService's methods are safe from any thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "asa/job.h"
#include "base/error.h"
#include "base/metrics.h"
#include "eventlog/event_log.h"
#include "net/tls.h"
#include "store/kv_store.h"

namespace orrery::hub {
class Hub;
class MessageAnnotator;
}  // namespace orrery::hub
namespace orrery::twins {
class TwinGraph;
}

namespace orrery::asa {

struct JobServiceOptions {
  std::filesystem::path dir;            // <data-dir>/asa: the output log, dead letters
  std::filesystem::path reference_dir;  // reference data files live under it
  std::filesystem::path archive_root;   // storage outputs write under it
  net::TlsClientOptions webhook_tls;    // trust for webhook receivers
  eventlog::Options log;                // the output log
  JobLimits limits;
  size_t max_jobs = 50;
  int64_t checkpoint_interval_ms = 5'000;
  // An idle partition's clock is moved to (now - margin): events appended at `now` become
  // readable after their group commit, and must not arrive before a clock already given.
  int64_t heartbeat_margin_ms = 200;
  int64_t reference_poll_ms = 2'000;  // how often reference files are checked for changes
  // The runners of a job whose query is partition-parallel (StreamQuery::PartitionParallel):
  // min(partitions, this), at least 1. Other jobs have one.
  uint32_t worker_threads = std::max(1u, std::thread::hardware_concurrency());
  std::string hub_name = "localhost";
  metrics::Registry* metrics = nullptr;
  std::function<int64_t()> now_ms;  // default: the system clock
};

// How a started job positions its input (ASA's outputStartMode).
struct StartFrom {
  enum class Mode { kNow, kCustomTime, kLastStopped };
  Mode mode = Mode::kNow;
  int64_t time_ms = 0;  // kCustomTime
};
Result<StartFrom> StartFromJson(const boost::json::value& body);  // {"outputStartMode", …}

class JobService {
 public:
  // Loads the jobs; those that were running when the process stopped resume from their
  // checkpoints. `hub` (c2d, method, desired outputs), `annotator` (routes over derived
  // streams) and `graph` (digital twin outputs) may be null: such outputs then fail to start.
  static Result<std::unique_ptr<JobService>> Open(
      store::KvStore* store, eventlog::EventLog* hub_log, hub::Hub* hub,
      std::shared_ptr<const hub::MessageAnnotator> annotator, twins::TwinGraph* graph,
      JobServiceOptions options);
  ~JobService();  // Stop()s

  // Creates a stopped job (kJobExists, kInvalidJob, kLimitExceeded).
  Result<boost::json::object> Create(std::string name, const boost::json::value& definition);
  // Replaces a stopped job's definition (kConflict while running: ASA refuses it too). Its
  // checkpoint is dropped when the query changes (the state no longer matches).
  Result<boost::json::object> Update(std::string name, const boost::json::value& definition);
  Status Delete(std::string_view name);  // kConflict while running
  Result<boost::json::object> Get(std::string_view name) const;
  std::vector<boost::json::object> List() const;
  Result<boost::json::object> Start(std::string_view name, StartFrom from);
  Result<boost::json::object> Stop(std::string_view name);

  // Stops every runner (state stays "Running": they resume at the next Open) and the output
  // workers. Idempotent.
  void Stop();

  eventlog::EventLog* output_log();

 private:
  struct Impl;
  explicit JobService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::asa
