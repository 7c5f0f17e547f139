// Azure Digital Twins' Jobs: import jobs (a bulk import file of models, twins and
// relationships, import_file.h) and delete jobs (every relationship, twin and model), run one
// at a time on a background thread, with their status in the state store.
//
//   auto jobs = BulkJobs::Open(kv, models, graph, {.jobs_dir = dir}, now_ms);
//   jobs->Start();
//   jobs->AddImport("import1", "file:///…/jobs/graph.ndjson", "graph.log.ndjson");
//   jobs->AddDelete("", 720);                                // an id is generated
//
// Files. Orrery is self-hosted: ADT's "blob URIs" are `file:` URIs or paths (relative ones
// to the jobs directory), and both files must be inside the jobs directory (symlinks
// resolved) — the API cannot make the server read or write anything else. The output file
// must not exist: it is created when the job is, and receives the job's log as ADT writes it
// (NDJSON: {"timestamp","jobId","jobType":"Import","logType":"Info"|"Error","details":{…}}):
// the start, each section's start and end, progress every 10,000 entities, every problem with
// its line, and a summary.
//
// An import job runs in two passes. The first reads the whole file and checks its structure
// and each line's shape: any problem fails the job with every problem logged, and nothing is
// imported. The second applies it: the models (those stored already with the same definition
// are skipped; batches of 250 in dependency order, validated by the ModelStore — a failure
// stops the job), then the twins, then the relationships, created or replaced as by PUT (up
// to max_in_flight writes outstanding). A twin or relationship that is refused is logged with
// its line and the job goes on; it then ends `failed` (ADT: jobs are not atomic, and there is
// no rollback).
//
// Queueing: one job runs at a time (ADT's "one bulk job at a time"). Import jobs queue behind
// the running job (`notstarted`); a delete job is refused while any other job is queued or
// running (kJobLimitReached), so jobs run in the order they were accepted.
//
// Restarts. Jobs are kept in keyspace "dt.job". A job that was running when the server stopped
// (or crashed) resumes when it starts again: a delete job from the beginning (it is
// idempotent), an import job from its checkpoint — the last line below which every write was
// durable, recorded about once a second — re-reading the models (identical ones are skipped)
// and re-applying later twins and relationships (PUTs are idempotent). The log says
// "Resumed". A job that was being cancelled ends `cancelled`.
//
// Thread safety: every method is safe from any thread. AddImport, AddDelete, Cancel and
// Delete write the store durably (fsync): call them off the I/O threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "base/error.h"
#include "store/kv_store.h"
#include "twins/import_file.h"

namespace orrery::twins {

class ModelStore;
class TwinGraph;

enum class JobKind { kImport, kDelete };
enum class JobStatus { kNotStarted, kRunning, kFailed, kSucceeded, kCancelling, kCancelled };
// ADT's status strings: "notstarted", "running", "failed", "succeeded", "cancelling",
// "cancelled".
std::string_view StatusName(JobStatus s);

struct BulkJobsOptions {
  std::filesystem::path jobs_dir;  // the only place job files may be (must exist)
  size_t max_jobs = 100;           // stored jobs of each kind (kJobLimitReached beyond)
  int64_t retention_ms = 30LL * 24 * 3'600'000;  // a finished job is purged after this
  size_t max_in_flight = 256;                    // twin and relationship writes outstanding
  size_t max_logged_errors = 1000;     // errors written to the output file (all are counted)
  size_t max_models_bytes = 64 << 20;  // the Models section, held in memory to order it
  size_t progress_every = 10'000;      // entities between progress lines in the output file
  ImportFileLimits file;
  int64_t checkpoint_every_ms = 1000;
};

// What a job has done so far (an Orrery extension of ADT's job objects: "progress").
struct JobProgress {
  std::string section;                              // import: the section being applied
  size_t line = 0;                                  // import: the last line read
  size_t models = 0, twins = 0, relationships = 0;  // imported (deleted, for delete jobs)
  size_t errors = 0;
};

struct BulkJob {
  JobKind kind = JobKind::kImport;
  std::string id;
  uint64_t seq = 0;  // acceptance order
  JobStatus status = JobStatus::kNotStarted;
  std::string input_uri, output_uri;    // import: as given
  std::filesystem::path input, output;  // import: resolved inside the jobs directory
  int64_t created_ms = 0, last_action_ms = 0, finished_ms = 0, purge_ms = 0;  // 0: not yet
  int64_t timeout_ms = 0;                 // delete: from the start
  std::string error_code, error_message;  // set when failed (or cancelled)
  JobProgress progress;
  size_t checkpoint = 0;  // import: lines at or below this are durably applied
  bool started = false;   // the output file has its "Started" line
};

// ADT's ImportJob / DeleteJob JSON: {"id", ["inputBlobUri", "outputBlobUri",] "status",
// "createdDateTime", ["lastActionDateTime",] "finishedDateTime", "purgeDateTime", ["error"],
// "progress"}.
boost::json::object ToJson(const BulkJob& job);

// The jobs directory `twins.jobs_dir` names: `configured`, or <data_dir>/twins/jobs when empty.
std::filesystem::path JobsDirectory(const std::filesystem::path& data_dir,
                                    std::string_view configured);

// Resolves a job file's URI or path inside `jobs_dir` (canonical): "file:///abs",
// "file:rel", "/abs" or "rel" (to the jobs directory). An input must be a regular file; an
// output must not exist and its directory must. kValidationFailed otherwise, saying why.
Result<std::filesystem::path> ResolveJobFile(const std::filesystem::path& jobs_dir,
                                             std::string_view uri, bool input);

class BulkJobs {
 public:
  static Result<std::unique_ptr<BulkJobs>> Open(store::KvStore* store, ModelStore* models,
                                                TwinGraph* graph, BulkJobsOptions options,
                                                std::function<int64_t()> now_ms);
  ~BulkJobs();  // Shutdown()

  // Starts the runner thread, which resumes what was running and runs what is queued.
  void Start();
  // Stops the runner after the current entity: outstanding writes complete, the checkpoint is
  // stored and the job stays `running` (it resumes on the next Start or Open). Idempotent.
  void Shutdown();

  // A new import job (ADT: PUT /jobs/imports/{id}). kValidationFailed: a bad id, an id in
  // use, a file outside the jobs directory, a missing input, an existing output;
  // kJobLimitReached: max_jobs stored.
  Result<BulkJob> AddImport(std::string id, std::string input_uri, std::string output_uri);
  // A new delete job (POST /jobs/deletions); `id` empty: a UUID. `timeout_minutes` 0: 12 h
  // (ADT's default); else 15 to 1440. kJobLimitReached while another job is queued or running.
  Result<BulkJob> AddDelete(std::string id, int64_t timeout_minutes);
  // kImportJobNotFound / kDeleteJobNotFound.
  Result<BulkJob> Get(JobKind kind, std::string_view id) const;
  // Jobs of `kind` in acceptance order after `after_seq`, at most `max`.
  std::vector<BulkJob> List(JobKind kind, uint64_t after_seq, size_t max) const;
  // Cancels an import job: a queued one at once (`cancelled`), a running one at its next
  // entity (`cancelling`, then `cancelled`). kValidationFailed once it has finished.
  Result<BulkJob> Cancel(std::string_view id);
  // Forgets an import job that is not running (its files stay). kValidationFailed while it
  // runs or is being cancelled.
  Status Remove(std::string_view id);

  // Tests: waits until nothing is queued or running (or the timeout passes).
  bool WaitIdle(std::chrono::milliseconds timeout) const;

 private:
  struct Pipeline;
  BulkJobs(store::KvStore* store, ModelStore* models, TwinGraph* graph, BulkJobsOptions options,
           std::function<int64_t()> now_ms);
  Status Load();
  Status Persist(const BulkJob& job);  // REQUIRES: mu_ held
  void PurgeExpired();                 // REQUIRES: mu_ held
  BulkJob* Find(JobKind kind, std::string_view id);
  void Run();
  void RunImport(std::string id);
  void RunDelete(std::string id);
  // Sets the job's final status (and error), persists it; REQUIRES: mu_ not held.
  void Finish(JobKind kind, const std::string& id, JobStatus status, std::string code = {},
              std::string message = {});
  bool Interrupted(JobKind kind, const std::string& id);  // stopping or cancelling

  store::KvStore* store_;
  ModelStore* models_;
  TwinGraph* graph_;
  BulkJobsOptions options_;
  std::function<int64_t()> now_ms_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, BulkJob, std::less<>> imports_, deletes_;  // guarded by mu_
  std::deque<std::pair<JobKind, std::string>> queue_;              // guarded by mu_
  std::optional<std::pair<JobKind, std::string>> current_;         // guarded by mu_
  uint64_t next_seq_ = 1;                                          // guarded by mu_
  bool stopping_ = false;                                          // guarded by mu_
  std::thread runner_;
};

}  // namespace orrery::twins
