#include "asa/jobs.h"

#include <sys/stat.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <xxhash.h>
#include <boost/json.hpp>

#include "asa/actions.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/time.h"
#include "hub/annotator.h"
#include "routing/annotation.h"
#include "routing/endpoints.h"
#include "stream/local_run.h"

namespace orrery::asa {
namespace json = boost::json;
namespace fs = std::filesystem;
using stream::Micros;

namespace {

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("asa");
  return l;
}

constexpr std::string_view kJobSpace = "asa.job";
constexpr std::string_view kCheckpointSpace = "asa.ckpt";
constexpr std::string_view kDerivedSource = "asa";
constexpr size_t kReadBatch = 512;
constexpr int64_t kIdleWakeMs = 50;  // idle partitions' clocks move this often
constexpr Micros kReplayMargin = 1'000'000;
// Where a runner of a partition-parallel job heartbeats the partitions it does not read, so
// the engine's merge never waits for them: far enough to pass any event time, and far enough
// below the engine's own kMaxTime (the end of input) that no bound computed from it overflows.
constexpr Micros kFarFuture = std::numeric_limits<Micros>::max() / 4;

Error Invalid(std::string m) {
  return Error(Errc::kInvalidJob, std::move(m));
}

std::string IsoMs(int64_t ms) {
  return timeutil::FormatUtcMs(ms);
}

// What a job is, besides its definition.
struct JobRecord {
  Job job;
  std::string state = "Created";  // Created, Running, Stopped, Failed
  std::string error;              // why it failed
  int64_t created_ms = 0;
  int64_t started_ms = 0;
  int64_t stopped_ms = 0;
  StartFrom start;  // how the current (or last) run started
};

json::object RecordToJson(const JobRecord& r, bool with_secrets) {
  json::object o = JobToJson(r.job, with_secrets);
  o["state"] = r.state;
  if (!r.error.empty()) o["error"] = r.error;
  o["createdAt"] = IsoMs(r.created_ms);
  if (r.started_ms) o["startedAt"] = IsoMs(r.started_ms);
  if (r.stopped_ms) o["stoppedAt"] = IsoMs(r.stopped_ms);
  return o;
}

struct PartitionCheckpoint {
  uint64_t next = 0;    // read up to here
  uint64_t replay = 0;  // a replay starts here
  Micros clock = 0;     // the partition's clock
  // Where the job's input begins (its first run's first read): a replay never starts before
  // it. Absent in checkpoints written before it existed: then `replay` bounds the replay.
  std::optional<uint64_t> origin;
};

// One record per job. With several runners each writes its own partitions' entries into it
// (under RunShared::mu), once every partition has one.
struct Checkpoint {
  std::vector<PartitionCheckpoint> partitions;
  std::string query;  // the query it belongs to
  int64_t written_ms = 0;
  // Written by runners each reading some partitions alone (StreamQuery::PartitionParallel):
  // a partition's replay position then follows its own runner's clocks, too late for an
  // engine merging every partition. Records without it come from one runner.
  bool parallel = false;
  uint32_t runners = 1;
};

std::string CheckpointToText(const Checkpoint& c) {
  json::array parts;
  for (auto& p : c.partitions) {
    json::object po{{"next", p.next}, {"replay", p.replay}, {"clock", p.clock}};
    if (p.origin) po["origin"] = *p.origin;
    parts.push_back(std::move(po));
  }
  return json::serialize(json::object{{"partitions", std::move(parts)},
                                      {"query", c.query},
                                      {"at", c.written_ms},
                                      {"parallel", c.parallel},
                                      {"runners", c.runners}});
}

std::optional<Checkpoint> CheckpointFromText(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  Checkpoint c;
  auto& o = v.get_object();
  auto* parts = o.if_contains("partitions");
  if (!parts || !parts->is_array()) return std::nullopt;
  for (auto& p : parts->get_array()) {
    if (!p.is_object()) return std::nullopt;
    auto& po = p.get_object();
    PartitionCheckpoint pc;
    auto num = [&](std::string_view k) -> int64_t {
      auto* x = po.if_contains(k);
      return x && x->is_number() ? x->to_number<int64_t>() : 0;
    };
    pc.next = static_cast<uint64_t>(num("next"));
    pc.replay = static_cast<uint64_t>(num("replay"));
    pc.clock = num("clock");
    if (po.contains("origin")) pc.origin = static_cast<uint64_t>(num("origin"));
    c.partitions.push_back(pc);
  }
  if (auto* q = o.if_contains("query"); q && q->is_string()) c.query = q->get_string();
  if (auto* a = o.if_contains("at"); a && a->is_number()) c.written_ms = a->to_number<int64_t>();
  if (auto* x = o.if_contains("parallel"); x && x->is_bool()) c.parallel = x->get_bool();
  if (auto* x = o.if_contains("runners"); x && x->is_number())
    c.runners = static_cast<uint32_t>(x->to_number<int64_t>());
  return c;
}

// Per-job counters, read by the API and /metrics while the runner writes them.
struct JobCounters {
  std::atomic<uint64_t> input_events{0};
  std::atomic<uint64_t> output_events{0};
  std::atomic<uint64_t> deserialization_errors{0};
  std::atomic<uint64_t> runtime_errors{0};
  std::atomic<uint64_t> late_dropped{0};
  std::atomic<uint64_t> adjusted{0};
  std::atomic<uint64_t> backlog{0};
  std::atomic<int64_t> watermark_delay_ms{0};
  std::atomic<int64_t> last_output_ms{0};
  std::atomic<int64_t> last_checkpoint_ms{0};
  std::atomic<uint64_t> replayed_events{0};
  std::atomic<uint64_t> reference_reloads{0};
  // The current (or last) run: its runners, and per partition its clock and backlog.
  mutable std::mutex mu;
  uint32_t runners = 0;            // guarded by mu
  bool parallel = false;           // guarded by mu
  std::vector<Micros> clocks;      // guarded by mu
  std::vector<uint64_t> backlogs;  // guarded by mu
};

json::object CountersToJson(const JobCounters& c) {
  json::object o{
      {"inputEvents", c.input_events.load()},
      {"outputEvents", c.output_events.load()},
      {"inputEventsDeserializationErrors", c.deserialization_errors.load()},
      {"runtimeErrors", c.runtime_errors.load()},
      {"lateInputEventsDropped", c.late_dropped.load()},
      {"lateInputEventsAdjusted", c.adjusted.load()},
      {"backloggedInputEvents", c.backlog.load()},
      {"watermarkDelayMs", c.watermark_delay_ms.load()},
      {"replayedEvents", c.replayed_events.load()},
      {"referenceReloads", c.reference_reloads.load()},
  };
  if (int64_t t = c.last_output_ms.load()) o["lastOutputEventTime"] = IsoMs(t);
  if (int64_t t = c.last_checkpoint_ms.load()) o["lastCheckpointTime"] = IsoMs(t);
  std::lock_guard lock(c.mu);
  if (c.runners) {
    o["runners"] = c.runners;
    o["partitionParallel"] = c.parallel;
    json::array clocks;
    for (Micros t : c.clocks)
      clocks.push_back(t > 0 ? json::value(stream::FormatDateTime(t)) : json::value(nullptr));
    o["partitionClocks"] = std::move(clocks);
  }
  return o;
}

// Appends whose completion a checkpoint waits for: tickets in issue order; the checkpoint may
// be written once every ticket up to the one it was taken at has completed.
class Tickets {
 public:
  uint64_t Issue() {
    std::lock_guard lock(mu_);
    return ++issued_;
  }
  void Complete(uint64_t t, bool ok) {
    std::lock_guard lock(mu_);
    if (!ok) failed_ = true;
    done_.insert(t);
    while (done_.count(completed_ + 1)) {
      done_.erase(completed_ + 1);
      ++completed_;
    }
    cv_.notify_all();
  }
  uint64_t issued() const {
    std::lock_guard lock(mu_);
    return issued_;
  }
  bool CompletedThrough(uint64_t t) const {
    std::lock_guard lock(mu_);
    return completed_ >= t;
  }
  bool failed() const {
    std::lock_guard lock(mu_);
    return failed_;
  }
  // Waits until every issued ticket completed (shutdown), at most `ms`.
  void WaitAll(int64_t ms) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return completed_ >= issued_; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t issued_ = 0, completed_ = 0;
  std::set<uint64_t> done_;
  bool failed_ = false;
};

}  // namespace

Result<StartFrom> StartFromJson(const json::value& body) {
  StartFrom s;
  auto* o = body.if_object();
  if (!o) return s;  // no body: now
  auto* mode = o->if_contains("outputStartMode");
  if (!mode || mode->is_null()) return s;
  if (!mode->is_string()) return Invalid("\"outputStartMode\" must be a string");
  std::string_view m = mode->get_string();
  if (strings::IEquals(m, "JobStartTime")) {
    s.mode = StartFrom::Mode::kNow;
  } else if (strings::IEquals(m, "LastOutputEventTime")) {
    s.mode = StartFrom::Mode::kLastStopped;
  } else if (strings::IEquals(m, "CustomTime")) {
    s.mode = StartFrom::Mode::kCustomTime;
    auto* t = o->if_contains("outputStartTime");
    std::optional<Micros> at;
    if (t && t->is_string()) at = stream::ParseDateTime(t->get_string());
    if (!at) {
      return Invalid("\"outputStartMode\": \"CustomTime\" needs \"outputStartTime\", a date-time");
    }
    s.time_ms = *at / 1000;
  } else {
    return Invalid(
        "\"outputStartMode\" must be \"JobStartTime\", \"CustomTime\" or \"LastOutputEventTime\"");
  }
  return s;
}

// ------------------------------------------------------------------------------- the runner

struct JobService::Impl {
  store::KvStore* store = nullptr;
  eventlog::EventLog* hub_log = nullptr;
  hub::Hub* hub = nullptr;
  std::shared_ptr<const hub::MessageAnnotator> annotator;
  twins::TwinGraph* graph = nullptr;
  JobServiceOptions options;
  std::unique_ptr<eventlog::EventLog> out_log;
  std::unique_ptr<routing::EndpointManager> endpoints;
  metrics::ScopedCollector collector;

  class Shard;
  class Runner;
  // A runner's job could not go on: record it (called from the runner's thread).
  void RunnerFailed(const std::string& name, const std::string& why);

  struct Entry {
    JobRecord record;
    std::shared_ptr<JobCounters> counters = std::make_shared<JobCounters>();
    std::unique_ptr<Runner> runner;
    std::vector<std::unique_ptr<Runner>> retiring;  // stopped, still finishing
    std::set<std::string> attached;                 // action consumers of its outputs
  };
  std::vector<std::unique_ptr<Runner>> TakeRunners(Entry& e);
  mutable std::mutex mu;
  std::map<std::string, Entry, std::less<>> jobs;  // guarded by mu
  bool stopped = false;

  Status Persist(const JobRecord& r) {
    store::WriteBatch b;
    b.Put(kJobSpace, r.job.name, json::serialize(RecordToJson(r, true)));
    auto st = store->Write(std::move(b), store::Durability::kDurable);
    if (!st) return Error(Errc::kUnavailable, st.error().message());
    return Ok();
  }
  Status DropCheckpoint(std::string_view name) {
    store::WriteBatch b;
    b.Delete(kCheckpointSpace, name);
    auto st = store->Write(std::move(b), store::Durability::kDurable);
    if (!st) return Error(Errc::kUnavailable, st.error().message());
    return Ok();
  }
  std::optional<Checkpoint> LoadCheckpoint(std::string_view name) {
    auto v = store->Get(kCheckpointSpace, name);
    if (!v || !*v) return std::nullopt;
    return CheckpointFromText(**v);
  }
  Status SaveCheckpoint(std::string_view name, const Checkpoint& c) {
    store::WriteBatch b;
    b.Put(kCheckpointSpace, name, CheckpointToText(c));
    return store->Write(std::move(b), store::Durability::kDurable);
  }

  // The routing endpoints of every job's webhook and storage outputs (all jobs, running or
  // not: their readers deliver what is in the output log). Call with mu held.
  Status ApplyEndpoints() {
    routing::RoutingConfig config;
    for (auto& [name, e] : jobs) {
      for (auto& out : e.record.job.outputs) {
        if (out.type == JobOutput::Type::kWebhook) config.webhooks.push_back(out.webhook);
        if (out.type == JobOutput::Type::kStorage) config.storage.push_back(out.storage);
      }
    }
    return endpoints->Apply(config);
  }
  // The action consumers of a job's c2d/method/desired/twin outputs. Call with mu held.
  Status AttachActions(Entry& e) {
    for (auto& out : e.record.job.outputs) {
      if (!IsAction(out.type)) continue;
      std::string ep = EndpointName(e.record.job.name, out.name);
      if (e.attached.contains(ep)) continue;
      ORRERY_ASSIGN_OR_RETURN(auto sink,
                              MakeActionSink(out, ep, e.record.job.drop_on_output_error,
                                             {.hub = hub, .graph = graph, .now_ms = options.now_ms},
                                             e.counters ? &e.counters->runtime_errors : nullptr));
      ORRERY_TRY(endpoints->AttachConsumer(ep, "route." + ep, std::move(sink)));
      e.attached.insert(ep);
    }
    return Ok();
  }
  void DetachActions(Entry& e) {
    for (auto& ep : e.attached)
      endpoints->DetachConsumer(ep);
    e.attached.clear();
  }
};

namespace {
// What the runners of one run share: how the job runs, the checkpoint they write together.
struct RunShared {
  bool parallel = false;             // StreamQuery::PartitionParallel
  uint32_t runners = 1;              // K: runner k reads the partitions p with p % K == k
  std::optional<Checkpoint> loaded;  // the checkpoint this run resumes from (read only)
  std::function<void()> stop_all;    // a runner failed: its siblings stop too
  std::mutex mu;
  Checkpoint merged;       // guarded by mu: the record as the runners last wrote it
  std::vector<bool> have;  // guarded by mu: the partitions with an entry in `merged`
};
}  // namespace

// One runner thread: an engine fed the partitions it owns.
class JobService::Impl::Shard {
 public:
  Shard(Impl* svc, Job job, StartFrom from, std::shared_ptr<JobCounters> counters,
        std::shared_ptr<RunShared> shared, uint32_t index)
      : svc_(svc),
        job_(std::move(job)),
        from_(from),
        counters_(std::move(counters)),
        wake_(std::make_shared<Wake>()),
        shared_(std::move(shared)),
        index_(index) {}
  ~Shard() {
    RequestStop();
    Join();
  }
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  void RequestStop() {
    {
      std::lock_guard lock(wake_->mu);
      stopping_ = true;
      wake_->woken = true;
    }
    wake_->cv.notify_all();
  }

 private:
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;
  };
  struct Reference {
    std::string name;
    fs::path path;
    int64_t mtime_ns = -1;
    int64_t size = -1;
  };
  struct Part {
    std::unique_ptr<eventlog::Reader> reader;
    Micros clock = 0;
    uint64_t start = 0;                               // where this run started reading
    std::optional<uint64_t> origin;                   // PartitionCheckpoint::origin
    std::deque<std::pair<Micros, uint64_t>> samples;  // (arrival, sequence) about once a second
    std::optional<uint64_t> replay_until;             // replaying: stop before this sequence
    std::vector<eventlog::Event> held;  // read past replay_until, fed after the replay
  };

  bool stopping() {
    std::lock_guard lock(wake_->mu);
    return stopping_;
  }

  void Fail(const std::string& why) {
    Log()->error("stream job '{}' failed: {}", job_.name, why);
    svc_->RunnerFailed(job_.name, why);
  }

  void Run() {
    auto st = RunJob();
    if (!st && !stopping()) {
      Fail(st.error().message());
      if (shared_->stop_all) shared_->stop_all();
    }
  }

  Status LoadReferences(stream::Engine& engine, bool initial) {
    for (auto& r : references_) {
      struct stat sb {};
      if (::stat(r.path.c_str(), &sb) != 0) {
        if (initial) {
          return Invalid(fmt::format("reference '{}': cannot open {}: {}", r.name, r.path.string(),
                                     std::strerror(errno)));
        }
        continue;  // gone for now: keep the rows loaded
      }
      int64_t mtime = static_cast<int64_t>(sb.st_mtim.tv_sec) * 1'000'000'000 + sb.st_mtim.tv_nsec;
      if (mtime == r.mtime_ns && sb.st_size == r.size) continue;
      auto reader = stream::EventReader::Open(r.path);
      Status loaded = [&]() -> Status {
        if (!reader) return reader.error();
        std::vector<json::object> rows;
        json::object row;
        while (true) {
          ORRERY_ASSIGN_OR_RETURN(bool more, (*reader)->Next(row));
          if (!more) break;
          rows.push_back(std::move(row));
          row = {};
        }
        size_t n = rows.size();
        ORRERY_TRY(engine.SetReference(r.name, std::move(rows)));
        Log()->info("stream job '{}': reference '{}' loaded, {} rows from {}", job_.name, r.name, n,
                    r.path.string());
        return Ok();
      }();
      if (!loaded) {
        if (initial)
          return Invalid(fmt::format("reference '{}': {}", r.name, loaded.error().message()));
        ++counters_->runtime_errors;
        Log()->warn("stream job '{}': reference '{}' not reloaded (the previous rows stay): {}",
                    job_.name, r.name, loaded.error().message());
      } else {
        ++counters_->reference_reloads;
      }
      // Not again until the file changes again, whether it loaded or not.
      r.mtime_ns = mtime;
      r.size = sb.st_size;
    }
    return Ok();
  }

  // The inputs an event of the hub's log belongs to.
  void InputsFor(const eventlog::Event& e, std::vector<const JobInput*>& out) const {
    out.clear();
    const auto& sys = e.message.system;
    bool derived = sys.message_source == kDerivedSource;
    std::string_view job, output;
    if (derived) {
      for (auto& [k, v] : e.message.properties) {
        if (k == "asa-job") job = v;
        if (k == "asa-output") output = v;
      }
    }
    for (auto& in : job_.inputs) {
      if (in.source == JobInput::Source::kIotHub) {
        if (!derived && routing::RoutedTo(sys.route_annotation, routing::kBuiltInEndpoint)) {
          out.push_back(&in);
        }
      } else if (derived && job == in.job && output == in.output) {
        out.push_back(&in);
      }
    }
  }

  // The events of one message for `input`, with ASA's IoT Hub fields.
  void Decode(const eventlog::Event& e, const JobInput& input, Micros arrival,
              std::vector<json::object>& events) {
    events.clear();
    const auto& m = e.message;
    if (input.serialization == JobInput::Serialization::kCsv) {
      auto reader =
          stream::EventReader::FromText(m.body, input.name, stream::EventReader::Format::kCsv);
      json::object row;
      while (true) {
        auto more = reader->Next(row);
        if (!more) {
          ++counters_->deserialization_errors;
          events.clear();
          return;
        }
        if (!*more) break;
        events.push_back(std::move(row));
        row = {};
      }
    } else {
      boost::system::error_code ec;
      json::value v = json::parse(m.body, ec);
      if (!ec && v.is_object()) {
        events.push_back(std::move(v.get_object()));
      } else if (!ec && v.is_array()) {
        for (auto& x : v.get_array()) {
          if (!x.is_object()) {
            ec = json::error::not_object;
            break;
          }
          events.push_back(std::move(x.get_object()));
        }
      } else if (!ec) {
        ec = json::error::not_object;
      }
      if (ec) {
        ++counters_->deserialization_errors;
        events.clear();
        return;
      }
    }
    std::string enqueued = stream::FormatDateTime(e.enqueued_ms * 1000);
    std::string processed = stream::FormatDateTime(arrival);
    for (auto& ev : events) {
      ev["EventProcessedUtcTime"] = processed;
      ev["EventEnqueuedUtcTime"] = enqueued;
      ev["PartitionId"] = static_cast<int64_t>(e.partition);
      if (input.source == JobInput::Source::kIotHub) {
        auto str = [](const std::string& s) {
          return s.empty() ? json::value(nullptr) : json::value(s);
        };
        ev["IoTHub"] = json::object{
            {"MessageId", str(m.system.message_id)},
            {"CorrelationId", str(m.system.correlation_id)},
            {"ConnectionDeviceId", str(m.system.connection_device_id)},
            {"ConnectionDeviceGenerationId", str(m.system.connection_auth_generation_id)},
            {"ConnectionModuleId", str(m.system.connection_module_id)},
            {"EnqueuedTime", enqueued},
            {"StreamId", nullptr},
        };
      }
      json::object user;
      for (auto& [k, v] : m.properties)
        user[k] = v;
      ev[stream::kMetadataMember] = json::object{{"User", std::move(user)}};
    }
  }

  // The deterministic id of a row: the same row at the same timestamp, the n-th time.
  std::string RowId(const std::string& target, Micros ts, const std::string& body) {
    XXH3_state_t* st = XXH3_createState();
    XXH3_128bits_reset(st);
    XXH3_128bits_update(st, job_.name.data(), job_.name.size());
    XXH3_128bits_update(st, "\0", 1);
    XXH3_128bits_update(st, target.data(), target.size());
    XXH3_128bits_update(st, &ts, sizeof ts);
    XXH3_128bits_update(st, body.data(), body.size());
    // Several runners: identical rows of two runners are two rows (the occurrence counter is
    // per runner). A partition always maps to the same runner for a given K.
    if (shared_->runners > 1) {
      uint32_t k[2] = {index_, shared_->runners};
      XXH3_128bits_update(st, k, sizeof k);
    }
    XXH128_hash_t h = XXH3_128bits_digest(st);
    uint32_t n = ++occurrences_[target][{ts, h.low64 ^ h.high64}];
    XXH3_128bits_update(st, &n, sizeof n);
    h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    return fmt::format("{:016x}{:016x}", h.high64, h.low64);
  }

  void PruneOccurrences(Micros before) {
    for (auto& [target, m] : occurrences_) {
      m.erase(m.begin(), m.lower_bound({before, 0}));
    }
  }

  // Appends the engine's rows (durable before the next checkpoint passes their inputs).
  Status Emit(stream::Engine& engine, bool discard) {
    auto outputs = engine.TakeOutputs();
    for (auto& [target, rows] : outputs) {
      const JobOutput* out = nullptr;
      for (auto& o : job_.outputs) {
        if (strings::IEquals(o.name, target)) out = &o;
      }
      if (!out) continue;  // validated at create: cannot happen
      for (auto& r : rows) {
        std::string body = json::serialize(r.row);
        std::string id = RowId(out->name, r.timestamp, body);
        if (discard) continue;
        eventlog::Message m;
        m.body = std::move(body);
        m.system.message_id = std::move(id);
        m.system.content_type = "application/json";
        m.system.content_encoding = "utf-8";
        m.system.message_source = std::string(kDerivedSource);
        m.system.connection_device_id = EndpointName(job_.name, out->name);
        m.properties = {{"asa-job", job_.name},
                        {"asa-output", out->name},
                        {"asa-timestamp", stream::FormatDateTime(r.timestamp)}};
        eventlog::EventLog* log = svc_->out_log.get();
        if (out->type == JobOutput::Type::kStream) {
          log = svc_->hub_log;
          if (svc_->annotator) svc_->annotator->Annotate(m, hub::MessageSource::kDeviceMessages);
        } else {
          routing::Annotation a;
          a.endpoints = {EndpointName(job_.name, out->name)};
          m.system.route_annotation = routing::EncodeAnnotation(a);
        }
        ORRERY_TRY(AppendWaiting(log, m));
        ++counters_->output_events;
        counters_->last_output_ms = r.timestamp / 1000;
      }
    }
    return Ok();
  }

  // Appends, waiting out backpressure (which holds the job's input back too).
  Status AppendWaiting(eventlog::EventLog* log, const eventlog::Message& m) {
    while (true) {
      uint64_t t = tickets_.Issue();
      auto tickets = tickets_ptr_;
      auto st = log->Append(m, [tickets, t](const Result<eventlog::Appended>& r) {
        tickets->Complete(t, r.has_value());
      });
      if (st) return Ok();
      tickets_.Complete(t, true);  // nothing queued under this ticket
      if (st.error().code() != eventlog::Errc::kBackpressure || stopping()) {
        return Error(Errc::kUnavailable,
                     fmt::format("output append failed: {}", st.error().message()));
      }
      std::promise<void> writable;
      auto f = writable.get_future();
      auto shared = std::make_shared<std::promise<void>>(std::move(writable));
      if (!log->NotifyWhenWritable([shared] { shared->set_value(); })) continue;
      while (f.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
        if (stopping()) return Error(Errc::kUnavailable, "stopping");
      }
    }
  }

  Status RunJob() {
    auto q = ParseJobQuery(job_, svc_->options.limits);
    if (!q) return q.error();
    eventlog::EventLog* log = svc_->hub_log;
    const uint32_t parts = log->partition_count();
    const uint32_t runners = shared_->runners;
    std::vector<uint32_t> mine;  // the partitions this runner reads
    for (uint32_t i = 0; i < parts; ++i) {
      if (i % runners == index_) mine.push_back(i);
    }
    stream::Engine engine(*q, job_.ordering, parts);
    for (uint32_t i = 0; i < parts && runners > 1; ++i) {
      if (i % runners == index_) continue;
      for (auto& in : job_.inputs)
        ORRERY_TRY(engine.Heartbeat(in.name, i, kFarFuture));
    }
    for (auto& r : job_.references) {
      references_.push_back({r.name, svc_->options.reference_dir / r.path});
    }
    ORRERY_TRY(LoadReferences(engine, true));
    int64_t last_reference_check = Now();

    // How far back a replay must start: the state horizon plus the ordering tolerances;
    // unbounded (replay from where the run started) when late arrival is indefinite.
    std::optional<Micros> lookback;
    if (job_.ordering.late_arrival_tolerance) {
      lookback = q->StateHorizon() + *job_.ordering.late_arrival_tolerance +
                 job_.ordering.out_of_order_tolerance + kReplayMargin;
    }

    const std::optional<Checkpoint>& ckpt = shared_->loaded;
    std::vector<Part> p(parts);
    int64_t start_ms = from_.mode == StartFrom::Mode::kCustomTime ? from_.time_ms : Now();
    // A checkpoint's replay positions reach back `lookback` from the clock of the runner that
    // wrote them, the least clock of its partitions. Resumed by another number of runners,
    // this runner may merge partitions of different runners, whose least clock is lower:
    // windows between the two close only after output resumes, so their state must be
    // complete too (else they come out again with partial counts). Each partition then
    // replays from `lookback` before this runner's least clock as well (by enqueued time,
    // which is the arrival the clocks count).
    // A partition without a clock in the checkpoint (its runner had not checkpointed it yet;
    // it resumes from where the run started) counts with the arrival of the first event it
    // will read.
    std::vector<std::optional<uint64_t>> replay_from(parts);
    if (ckpt && lookback) {
      Micros least = INT64_MAX;
      for (uint32_t i : mine) {
        Micros c = ckpt->partitions[i].clock;
        if (c <= 0) {
          ORRERY_ASSIGN_OR_RETURN(
              auto r, log->OpenReader(i, eventlog::Position::Sequence(ckpt->partitions[i].next)));
          ORRERY_ASSIGN_OR_RETURN(auto first, r->TryRead(1));
          c = (first.events.empty() ? Now() : first.events.front().enqueued_ms) * 1000;
        }
        least = std::min(least, c);
      }
      if (least != INT64_MAX) {
        for (uint32_t i : mine) {
          // Without an origin (an older checkpoint) there is no telling where the input
          // began: the replay keeps to what the checkpoint says.
          if (!ckpt->partitions[i].origin) continue;
          ORRERY_ASSIGN_OR_RETURN(
              auto r,
              log->OpenReader(i, eventlog::Position::EnqueuedTime((least - *lookback) / 1000)));
          replay_from[i] = std::max(*ckpt->partitions[i].origin, r->next_sequence());
        }
      }
    }
    for (uint32_t i : mine) {
      eventlog::Position pos = eventlog::Position::EnqueuedTime(start_ms);
      if (ckpt) {
        uint64_t replay = ckpt->partitions[i].replay;
        if (replay_from[i]) replay = std::min(replay, *replay_from[i]);
        pos = eventlog::Position::Sequence(replay);
        p[i].replay_until = ckpt->partitions[i].next;
      }
      // Events are read once written, not once durable: the hub's fdatasync is off the
      // alert's path. Checkpoints wait for it (below).
      ORRERY_ASSIGN_OR_RETURN(p[i].reader, log->OpenReader(i, pos, eventlog::Visibility::kWritten));
      p[i].start = p[i].reader->next_sequence();
      if (ckpt) p[i].start = std::min(p[i].start, static_cast<uint64_t>(pos.value));
      p[i].origin = ckpt ? ckpt->partitions[i].origin : std::optional<uint64_t>(p[i].start);
    }
    if (!ckpt) {
      // Until its first checkpoint, a partition resumes from where this run started.
      std::lock_guard lock(shared_->mu);
      for (uint32_t i : mine) {
        shared_->merged.partitions[i] = PartitionCheckpoint{p[i].start, p[i].start, 0, p[i].origin};
        shared_->have[i] = true;
      }
    }
    bool replaying = ckpt.has_value();
    if (replaying) {
      Log()->info(
          "stream job '{}': resuming from its checkpoint of {} (replaying the state horizon)",
          job_.name, IsoMs(ckpt->written_ms));
    } else {
      Log()->info("stream job '{}': started, reading from {}", job_.name, IsoMs(start_ms));
    }

    std::vector<const JobInput*> inputs, fed;
    std::vector<json::object> events;
    int64_t last_checkpoint = Now();
    // A checkpoint taken but not yet written: waits for its appends.
    std::optional<std::pair<uint64_t, Checkpoint>> pending;
    // A checkpoint also waits for the events it read past to be durable on the hub's log: after
    // a power loss the log could hold other events under those sequence numbers, which the job
    // would then never read.
    auto inputs_durable = [&](const std::pair<uint64_t, Checkpoint>& c) {
      for (uint32_t i : mine) {
        if (c.second.partitions[i].next > p[i].reader->durable_next()) return false;
      }
      return true;
    };

    auto feed = [&](uint32_t i, eventlog::Event& e) -> Status {
      Part& part = p[i];
      Micros arrival = std::max(e.enqueued_ms * 1000, part.clock);
      part.clock = arrival;
      if (part.samples.empty() || arrival - part.samples.back().first >= 1'000'000) {
        part.samples.emplace_back(arrival, e.sequence);
      }
      InputsFor(e, inputs);
      fed.clear();
      for (const JobInput* in : inputs) {
        Decode(e, *in, arrival, events);
        if (!events.empty()) fed.push_back(in);
        for (auto& ev : events) {
          ORRERY_TRY(engine.Push(in->name, i, ev, arrival));
          ++counters_->input_events;
          if (replaying) ++counters_->replayed_events;
        }
      }
      // part.clock is what the engine was told of this partition, for every input: an input
      // this event did not feed (another source, the job's own rows on the hub's log, a body
      // that did not decode) hears of its arrival as a heartbeat. Otherwise a later
      // heartbeat at the same time would be skipped as old news, and that input's merge
      // would wait for the partition forever (a window never closing).
      for (auto& in : job_.inputs) {
        if (std::find(fed.begin(), fed.end(), &in) == fed.end())
          ORRERY_TRY(engine.Heartbeat(in.name, i, arrival));
      }
      return Ok();
    };
    auto heartbeat = [&](uint32_t i, Micros t) -> Status {
      if (t <= p[i].clock) return Ok();
      p[i].clock = t;
      for (auto& in : job_.inputs)
        ORRERY_TRY(engine.Heartbeat(in.name, i, t));
      return Ok();
    };

    while (!stopping()) {
      bool any = false;
      bool all_caught_up = true;
      for (uint32_t i : mine) {
        if (stopping()) break;
        Part& part = p[i];
        if (replaying && part.replay_until && part.reader->next_sequence() >= *part.replay_until) {
          continue;  // replayed to its checkpoint: waits for the others
        }
        // The time an empty read may heartbeat: taken before the read, so that every event
        // enqueued before it was visible to the read (taken after, an event appended in
        // between would arrive behind its own heartbeat).
        int64_t read_at = Now();
        auto batch = part.reader->TryRead(kReadBatch);
        if (!batch) {
          if (batch.error().code() == eventlog::Errc::kClosed) return Ok();
          return batch.error();
        }
        for (auto& e : batch->events) {
          any = true;
          if (replaying && part.replay_until && e.sequence >= *part.replay_until) {
            part.held.push_back(std::move(e));
            continue;
          }
          ORRERY_TRY(feed(i, e));
        }
        if (replaying && part.replay_until && part.reader->next_sequence() < *part.replay_until) {
          all_caught_up = false;
        }
        if (batch->events.empty() && !replaying) {
          // At the log's end: this partition's clock follows the wall clock.
          ORRERY_TRY(heartbeat(i, (read_at - svc_->options.heartbeat_margin_ms) * 1000));
        }
      }
      if (replaying && all_caught_up) {
        for (uint32_t i : mine) {
          if (ckpt->partitions[i].clock > p[i].clock)
            ORRERY_TRY(heartbeat(i, ckpt->partitions[i].clock));
        }
        ORRERY_TRY(Emit(engine, /*discard=*/true));
        replaying = false;
        Log()->info("stream job '{}': state rebuilt from {} events; output resumes", job_.name,
                    counters_->replayed_events.load());
        for (uint32_t i : mine) {
          for (auto& e : p[i].held)
            ORRERY_TRY(feed(i, e));
          p[i].held.clear();
        }
        any = true;
      }
      ORRERY_TRY(Emit(engine, replaying));
      if (tickets_.failed()) return Error(Errc::kUnavailable, "an output append failed");
      const auto& s = engine.stats();
      counters_->late_dropped += s.dropped_late - reported_.dropped_late;
      counters_->adjusted += s.adjusted - reported_.adjusted;
      reported_ = s;

      int64_t now = Now();
      if (!replaying) {
        Micros min_clock = INT64_MAX;  // of this runner's partitions
        {
          std::lock_guard lock(counters_->mu);
          for (uint32_t i : mine) {
            min_clock = std::min(min_clock, p[i].clock);
            counters_->clocks[i] = p[i].clock;
            if (auto props = log->GetPartitionProperties(i); props) {
              counters_->backlogs[i] = props->next_sequence -
                                       std::min(props->next_sequence, p[i].reader->next_sequence());
            }
          }
          // The job's: every partition's.
          Micros job_clock = *std::min_element(counters_->clocks.begin(), counters_->clocks.end());
          uint64_t backlog = 0;
          for (uint64_t b : counters_->backlogs)
            backlog += b;
          counters_->backlog = backlog;
          counters_->watermark_delay_ms =
              job_clock > 0 ? std::max<int64_t>(0, now - job_clock / 1000) : 0;
        }
        if (!pending && now - last_checkpoint >= svc_->options.checkpoint_interval_ms) {
          Checkpoint c;
          c.query = job_.query;
          c.written_ms = now;
          c.partitions.resize(parts);
          for (uint32_t i : mine) {
            Part& part = p[i];
            PartitionCheckpoint pc{part.reader->next_sequence(), part.start, part.clock,
                                   part.origin};
            if (lookback) {
              // The newest sample at or before clock - lookback; older samples are not needed.
              Micros from = min_clock - *lookback;
              while (part.samples.size() >= 2 && part.samples[1].first <= from)
                part.samples.pop_front();
              if (!part.samples.empty() && part.samples.front().first <= from) {
                pc.replay = part.samples.front().second;
                part.start = pc.replay;
              } else if (!part.samples.empty()) {
                pc.replay = std::min(part.start, part.samples.front().second);
              }
            }
            c.partitions[i] = pc;
          }
          if (lookback) PruneOccurrences(min_clock - *lookback);
          pending.emplace(tickets_.issued(), std::move(c));
          last_checkpoint = now;
        }
        if (pending && tickets_.CompletedThrough(pending->first) && inputs_durable(*pending)) {
          if (auto st = SaveShare(mine, pending->second); !st) {
            ++counters_->runtime_errors;
            Log()->error("stream job '{}': checkpoint not written: {}", job_.name,
                         st.error().message());
          } else if (*st) {
            counters_->last_checkpoint_ms = pending->second.written_ms;
          }
          pending.reset();
        }
      }
      if (!references_.empty() && now - last_reference_check >= svc_->options.reference_poll_ms) {
        ORRERY_TRY(LoadReferences(engine, false));
        last_reference_check = now;
      }
      if (any) continue;
      // Nothing to read: sleep until the log appends or the idle heartbeat is due.
      {
        std::lock_guard lock(wake_->mu);
        wake_->woken = false;
      }
      for (uint32_t i : mine) {
        Part& part = p[i];
        std::weak_ptr<Wake> weak = wake_;
        bool kept = part.reader->NotifyWhenReadable([weak] {
          if (auto w = weak.lock()) {
            std::lock_guard lock(w->mu);
            w->woken = true;
            w->cv.notify_all();
          }
        });
        if (!kept) {
          std::lock_guard lock(wake_->mu);
          wake_->woken = true;
        }
      }
      std::unique_lock lock(wake_->mu);
      wake_->cv.wait_for(lock, std::chrono::milliseconds(pending ? 5 : kIdleWakeMs),
                         [&] { return wake_->woken || stopping_; });
    }
    // Stopping: what is appended completes; the last checkpoint stands (a resume replays from
    // it, which rebuilds exactly the state held now).
    tickets_.WaitAll(5000);
    if (pending && tickets_.CompletedThrough(pending->first) && inputs_durable(*pending)) {
      if (auto st = SaveShare(mine, pending->second); st && *st)
        counters_->last_checkpoint_ms = pending->second.written_ms;
    }
    return Ok();
  }

  // Writes this runner's partitions of `c` into the job's checkpoint record; false: not yet
  // (another runner has not opened its readers).
  Result<bool> SaveShare(const std::vector<uint32_t>& mine, const Checkpoint& c) {
    std::lock_guard lock(shared_->mu);
    Checkpoint& m = shared_->merged;
    for (uint32_t i : mine) {
      m.partitions[i] = c.partitions[i];
      shared_->have[i] = true;
    }
    m.query = c.query;
    m.written_ms = c.written_ms;
    m.parallel = shared_->parallel;
    m.runners = shared_->runners;
    // Every partition has an entry once every runner has opened its readers.
    for (bool h : shared_->have) {
      if (!h) return false;
    }
    ORRERY_TRY(svc_->SaveCheckpoint(job_.name, m));
    return true;
  }

  int64_t Now() const { return svc_->options.now_ms(); }

  Impl* svc_;
  const Job job_;
  const StartFrom from_;
  std::shared_ptr<JobCounters> counters_;
  std::shared_ptr<Wake> wake_;
  bool stopping_ = false;  // guarded by wake_->mu
  std::vector<Reference> references_;
  std::shared_ptr<Tickets> tickets_ptr_ = std::make_shared<Tickets>();
  Tickets& tickets_ = *tickets_ptr_;
  std::map<std::string, std::map<std::pair<Micros, uint64_t>, uint32_t>> occurrences_;
  std::shared_ptr<RunShared> shared_;
  const uint32_t index_;          // k
  stream::EngineStats reported_;  // what the counters have of the engine's stats
  std::thread thread_;
};

// A running job: one runner merging every partition, or, when the query allows it
// (StreamQuery::PartitionParallel), K runners each reading its own partitions.
class JobService::Impl::Runner {
 public:
  Runner(Impl* svc, const Job& job, StartFrom from, std::shared_ptr<JobCounters> counters)
      : shared_(std::make_shared<RunShared>()) {
    const uint32_t parts = svc->hub_log->partition_count();
    auto q = ParseJobQuery(job, svc->options.limits);  // an error fails the runner
    shared_->parallel = q && q->PartitionParallel();
    shared_->runners =
        shared_->parallel ? std::clamp(svc->options.worker_threads, 1u, std::max(parts, 1u)) : 1;
    if (from.mode == StartFrom::Mode::kLastStopped) {
      auto& c = shared_->loaded;
      c = svc->LoadCheckpoint(job.name);
      // Another query's, or replay positions a merging engine cannot rebuild its state from.
      if (c && (c->partitions.size() != parts || c->query != job.query ||
                (c->parallel && !shared_->parallel))) {
        c.reset();
      }
      if (c && c->runners != shared_->runners) {
        Log()->info("stream job '{}': checkpoint of {} runners resumed by {}", job.name, c->runners,
                    shared_->runners);
      }
    }
    shared_->merged.partitions.resize(parts);
    shared_->have.assign(parts, false);
    if (shared_->loaded) {
      shared_->merged = *shared_->loaded;
      shared_->have.assign(parts, true);
    }
    {
      std::lock_guard lock(counters->mu);
      counters->runners = shared_->runners;
      counters->parallel = shared_->parallel;
      counters->clocks.assign(parts, 0);
      counters->backlogs.assign(parts, 0);
    }
    counters->late_dropped = 0;
    counters->adjusted = 0;
    for (uint32_t k = 0; k < shared_->runners; ++k)
      shards_.push_back(std::make_unique<Shard>(svc, job, from, counters, shared_, k));
    shared_->stop_all = [this] { RequestStop(); };
    for (auto& s : shards_)
      s->Start();
  }
  ~Runner() {
    RequestStop();
    for (auto& s : shards_)  // joined before any is destroyed: a failing one calls stop_all
      s->Join();
  }
  void RequestStop() {
    for (auto& s : shards_)
      s->RequestStop();
  }

 private:
  std::shared_ptr<RunShared> shared_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

// ------------------------------------------------------------------------------- the service

JobService::JobService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

JobService::~JobService() {
  Stop();
}

eventlog::EventLog* JobService::output_log() {
  return impl_->out_log.get();
}

Result<std::unique_ptr<JobService>> JobService::Open(
    store::KvStore* store, eventlog::EventLog* hub_log, hub::Hub* hub,
    std::shared_ptr<const hub::MessageAnnotator> annotator, twins::TwinGraph* graph,
    JobServiceOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->store = store;
  impl->hub_log = hub_log;
  impl->hub = hub;
  impl->annotator = std::move(annotator);
  impl->graph = graph;
  if (!options.now_ms) options.now_ms = &timeutil::NowMs;
  impl->options = std::move(options);
  auto& o = impl->options;
  ORRERY_ASSIGN_OR_RETURN(impl->out_log, eventlog::EventLog::Open(o.dir / "log", o.log));
  impl->endpoints = std::make_unique<routing::EndpointManager>(
      impl->out_log.get(), routing::EndpointOptions{.archive_root = o.archive_root,
                                                    .dead_letter_root = o.dir / "dead-letter",
                                                    .webhook_tls = o.webhook_tls,
                                                    .hub_name = o.hub_name,
                                                    .visibility = eventlog::Visibility::kWritten,
                                                    .metrics = o.metrics,
                                                    .now_ms = o.now_ms});
  // Load the jobs.
  std::vector<JobRecord> records;
  Status scanned = store->Scan(kJobSpace, "", [&](std::string_view key, std::string_view value) {
    boost::system::error_code ec;
    auto v = json::parse(value, ec);
    if (ec || !v.is_object()) {
      Log()->error("stream job '{}': stored definition unreadable; skipped", key);
      return true;
    }
    auto& obj = v.get_object();
    auto job = JobFromJson(
        std::string(key),
        [&] {
          json::object d = obj;
          for (auto k : {"state", "error", "createdAt", "startedAt", "stoppedAt", "startMode"})
            d.erase(k);
          return json::value(std::move(d));
        }(),
        impl->options.limits);
    if (!job) {
      Log()->error("stream job '{}': stored definition no longer validates ({}); skipped", key,
                   job.error().message());
      return true;
    }
    JobRecord r;
    r.job = std::move(*job);
    auto str = [&](std::string_view k) {
      auto* x = obj.if_contains(k);
      return x && x->is_string() ? std::string(x->get_string()) : std::string();
    };
    r.state = str("state");
    r.error = str("error");
    r.created_ms = timeutil::ParseUtcMs(str("createdAt")).value_or(0);
    r.started_ms = timeutil::ParseUtcMs(str("startedAt")).value_or(0);
    r.stopped_ms = timeutil::ParseUtcMs(str("stoppedAt")).value_or(0);
    records.push_back(std::move(r));
    return true;
  });
  if (!scanned) return scanned.error();
  auto* raw = impl.get();
  std::unique_ptr<JobService> service(new JobService(std::move(impl)));
  {
    std::lock_guard lock(raw->mu);
    for (auto& r : records) {
      auto& e = raw->jobs[r.job.name];
      e.record = std::move(r);
      if (auto st = raw->AttachActions(e); !st) {
        Log()->error("stream job '{}': outputs not started: {}", e.record.job.name,
                     st.error().message());
      }
    }
    ORRERY_TRY(raw->ApplyEndpoints());
    size_t resumed = 0;
    for (auto& [name, e] : raw->jobs) {
      if (e.record.state != "Running") continue;
      e.runner = std::make_unique<Impl::Runner>(
          raw, e.record.job, StartFrom{.mode = StartFrom::Mode::kLastStopped}, e.counters);
      ++resumed;
    }
    if (!raw->jobs.empty()) {
      Log()->info("stream analytics: {} jobs, {} resumed", raw->jobs.size(), resumed);
    }
  }
  if (auto* m = raw->options.metrics) {
    raw->collector = metrics::ScopedCollector(*m, [raw](metrics::Sink& sink) {
      std::lock_guard lock(raw->mu);
      for (auto& [name, e] : raw->jobs) {
        metrics::Labels l{{"job", name}};
        auto& c = *e.counters;
        sink.Counter("orrery_asa_input_events_total", "Input events a stream job read.", l,
                     static_cast<double>(c.input_events.load()));
        sink.Counter("orrery_asa_output_events_total", "Rows a stream job wrote.", l,
                     static_cast<double>(c.output_events.load()));
        sink.Counter("orrery_asa_deserialization_errors_total",
                     "Input messages a stream job could not read as events.", l,
                     static_cast<double>(c.deserialization_errors.load()));
        sink.Counter("orrery_asa_runtime_errors_total",
                     "Stream job errors: output actions refused, reference reloads failed.", l,
                     static_cast<double>(c.runtime_errors.load()));
        sink.Counter("orrery_asa_late_events_total",
                     "Late or out-of-order events adjusted or dropped.", l,
                     static_cast<double>(c.late_dropped.load() + c.adjusted.load()));
        sink.Gauge("orrery_asa_backlogged_input_events", "Events in the hub's log not yet read.", l,
                   static_cast<double>(c.backlog.load()));
        sink.Gauge("orrery_asa_watermark_delay_seconds",
                   "Wall clock minus the job's slowest partition clock.", l,
                   static_cast<double>(c.watermark_delay_ms.load()) / 1000.0);
        sink.Gauge("orrery_asa_running", "1 while the job runs.", l, e.runner ? 1.0 : 0.0);
      }
    });
  }
  return service;
}

void JobService::Stop() {
  std::vector<std::unique_ptr<Impl::Runner>> runners;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
    for (auto& [name, e] : impl_->jobs) {
      for (auto& r : impl_->TakeRunners(e))
        runners.push_back(std::move(r));
    }
  }
  impl_->collector.Reset();
  runners.clear();  // joins
  if (impl_->endpoints) impl_->endpoints->Stop();
  if (impl_->out_log) impl_->out_log->Close();
}

void JobService::Impl::RunnerFailed(const std::string& name, const std::string& why) {
  std::lock_guard lock(mu);
  auto it = jobs.find(name);
  if (it == jobs.end()) return;
  it->second.record.state = "Failed";
  it->second.record.error = why;
  it->second.record.stopped_ms = options.now_ms();
  (void)Persist(it->second.record);
  // The runner's thread is the caller: it is joined when the job is stopped or started again.
}

Result<json::object> JobService::Create(std::string name, const json::value& definition) {
  ORRERY_ASSIGN_OR_RETURN(Job job, JobFromJson(std::move(name), definition, impl_->options.limits));
  std::lock_guard lock(impl_->mu);
  if (impl_->stopped) return Error(Errc::kUnavailable, "shutting down");
  if (impl_->jobs.contains(job.name)) {
    return Error(Errc::kJobExists, fmt::format("job '{}' exists", job.name));
  }
  if (impl_->jobs.size() >= impl_->options.max_jobs) {
    return Error(Errc::kLimitExceeded,
                 fmt::format("at most {} jobs (asa.max_jobs)", impl_->options.max_jobs));
  }
  JobRecord r;
  r.job = std::move(job);
  r.created_ms = impl_->options.now_ms();
  ORRERY_TRY(impl_->Persist(r));
  auto& e = impl_->jobs[r.job.name];
  e.record = std::move(r);
  ORRERY_TRY(impl_->AttachActions(e));
  ORRERY_TRY(impl_->ApplyEndpoints());
  return RecordToJson(e.record, false);
}

// Runners are joined outside the lock: a failing runner takes it to record why.
std::vector<std::unique_ptr<JobService::Impl::Runner>> JobService::Impl::TakeRunners(Entry& e) {
  std::vector<std::unique_ptr<Runner>> out;
  if (e.runner) out.push_back(std::move(e.runner));
  for (auto& r : e.retiring)
    out.push_back(std::move(r));
  e.retiring.clear();
  return out;
}

Result<json::object> JobService::Update(std::string name, const json::value& definition) {
  ORRERY_ASSIGN_OR_RETURN(Job job, JobFromJson(std::move(name), definition, impl_->options.limits));
  std::vector<std::unique_ptr<Impl::Runner>> old;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->jobs.find(job.name);
    if (it == impl_->jobs.end())
      return Error(Errc::kJobNotFound, fmt::format("no job '{}'", job.name));
    if (it->second.record.state == "Running") {
      return Error(Errc::kConflict, fmt::format("job '{}' is running: stop it first", job.name));
    }
    old = impl_->TakeRunners(it->second);
  }
  old.clear();
  std::lock_guard lock(impl_->mu);
  auto it = impl_->jobs.find(job.name);
  if (it == impl_->jobs.end())
    return Error(Errc::kJobNotFound, fmt::format("no job '{}'", job.name));
  auto& e = it->second;
  if (e.record.state == "Running") {
    return Error(Errc::kConflict, fmt::format("job '{}' is running: stop it first", job.name));
  }
  bool query_changed = e.record.job.query != job.query;
  JobRecord r = e.record;
  r.job = std::move(job);
  ORRERY_TRY(impl_->Persist(r));
  if (query_changed) ORRERY_TRY(impl_->DropCheckpoint(r.job.name));
  impl_->DetachActions(e);
  e.record = std::move(r);
  ORRERY_TRY(impl_->AttachActions(e));
  ORRERY_TRY(impl_->ApplyEndpoints());
  return RecordToJson(e.record, false);
}

Status JobService::Delete(std::string_view name) {
  std::vector<std::unique_ptr<Impl::Runner>> old;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->jobs.find(name);
    if (it == impl_->jobs.end()) return Error(Errc::kJobNotFound, fmt::format("no job '{}'", name));
    if (it->second.record.state == "Running") {
      return Error(Errc::kConflict, fmt::format("job '{}' is running: stop it first", name));
    }
    old = impl_->TakeRunners(it->second);
  }
  old.clear();
  std::lock_guard lock(impl_->mu);
  auto it = impl_->jobs.find(name);
  if (it == impl_->jobs.end()) return Error(Errc::kJobNotFound, fmt::format("no job '{}'", name));
  if (it->second.record.state == "Running") {
    return Error(Errc::kConflict, fmt::format("job '{}' is running: stop it first", name));
  }
  store::WriteBatch b;
  b.Delete(kJobSpace, name);
  b.Delete(kCheckpointSpace, name);
  if (auto st = impl_->store->Write(std::move(b), store::Durability::kDurable); !st) {
    return Error(Errc::kUnavailable, st.error().message());
  }
  impl_->DetachActions(it->second);
  impl_->jobs.erase(it);
  return impl_->ApplyEndpoints();
}

Result<json::object> JobService::Get(std::string_view name) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->jobs.find(name);
  if (it == impl_->jobs.end()) return Error(Errc::kJobNotFound, fmt::format("no job '{}'", name));
  json::object o = RecordToJson(it->second.record, false);
  o["metrics"] = CountersToJson(*it->second.counters);
  return o;
}

std::vector<json::object> JobService::List() const {
  std::lock_guard lock(impl_->mu);
  std::vector<json::object> out;
  for (auto& [name, e] : impl_->jobs) {
    json::object o = RecordToJson(e.record, false);
    o["metrics"] = CountersToJson(*e.counters);
    out.push_back(std::move(o));
  }
  return out;
}

Result<json::object> JobService::Start(std::string_view name, StartFrom from) {
  std::vector<std::unique_ptr<Impl::Runner>> old;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->jobs.find(name);
    if (it == impl_->jobs.end()) return Error(Errc::kJobNotFound, fmt::format("no job '{}'", name));
    if (it->second.record.state == "Running") {
      return Error(Errc::kConflict, fmt::format("job '{}' is running", name));
    }
    old = impl_->TakeRunners(it->second);
  }
  old.clear();  // a stopped run finishes (and writes its last checkpoint) first
  std::lock_guard lock(impl_->mu);
  if (impl_->stopped) return Error(Errc::kUnavailable, "shutting down");
  auto it = impl_->jobs.find(name);
  if (it == impl_->jobs.end()) return Error(Errc::kJobNotFound, fmt::format("no job '{}'", name));
  auto& e = it->second;
  if (e.record.state == "Running")
    return Error(Errc::kConflict, fmt::format("job '{}' is running", name));
  for (auto& out : e.record.job.outputs) {
    if (IsAction(out.type) && !e.attached.contains(EndpointName(name, out.name))) {
      ORRERY_TRY(impl_->AttachActions(e));  // says what is missing (the hub, digital twins)
    }
  }
  for (auto& r : e.record.job.references) {
    auto path = impl_->options.reference_dir / r.path;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      return Error(Errc::kInvalidJob,
                   fmt::format("reference '{}': {} is not a file (reference files live under {})",
                               r.name, path.string(), impl_->options.reference_dir.string()));
    }
  }
  e.record.state = "Running";
  e.record.error.clear();
  e.record.started_ms = impl_->options.now_ms();
  e.record.start = from;
  ORRERY_TRY(impl_->Persist(e.record));
  e.runner = std::make_unique<Impl::Runner>(impl_.get(), e.record.job, from, e.counters);
  return RecordToJson(e.record, false);
}

Result<json::object> JobService::Stop(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->jobs.find(name);
  if (it == impl_->jobs.end()) return Error(Errc::kJobNotFound, fmt::format("no job '{}'", name));
  auto& e = it->second;
  if (e.runner) {
    // Asked, not joined: the runner finishes its batch and checkpoint on its own thread.
    e.runner->RequestStop();
    e.retiring.push_back(std::move(e.runner));
  }
  auto& r = e.record;
  if (r.state == "Running") {
    r.state = "Stopped";
    r.stopped_ms = impl_->options.now_ms();
    ORRERY_TRY(impl_->Persist(r));
  }
  return RecordToJson(r, false);
}

}  // namespace orrery::asa
