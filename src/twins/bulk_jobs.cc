#include "twins/bulk_jobs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/time.h"
#include "twins/errc.h"
#include "twins/model_batches.h"
#include "twins/model_store.h"
#include "twins/twin_graph.h"

namespace orrery::twins {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {
constexpr std::string_view kSpace = "dt.job";
constexpr size_t kModelBatch = 250;      // ADT's models per upload (ModelStore's limit)
constexpr size_t kDeleteChunk = 10'000;  // ids collected under the graph's lock at a time
constexpr int kDeleteRounds = 3;         // relationships, then twins, again while twins remain

constexpr JobStatus kStatuses[] = {JobStatus::kNotStarted, JobStatus::kRunning,
                                   JobStatus::kFailed,     JobStatus::kSucceeded,
                                   JobStatus::kCancelling, JobStatus::kCancelled};

Error Invalid(std::string message) {
  return Error(Errc::kValidationFailed, std::move(message));
}

bool Active(JobStatus s) {
  return s == JobStatus::kNotStarted || s == JobStatus::kRunning || s == JobStatus::kCancelling;
}

std::string Key(JobKind kind, std::string_view id) {
  return fmt::format("{}/{}", kind == JobKind::kImport ? "import" : "delete", id);
}

Status CheckId(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '~';
  });
  if (ok) return Ok();
  return Invalid(
      fmt::format("job id '{}' is not valid: 1 to 128 letters, digits, '-', '_', '.' or '~'", id));
}

int64_t Int(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : v && v->is_uint64() ? v->to_number<int64_t>() : 0;
}

std::string Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

json::object ProgressJson(const JobProgress& p, JobKind kind) {
  json::object o;
  if (kind == JobKind::kImport) {
    o["section"] = p.section;
    o["line"] = p.line;
  }
  o["models"] = p.models;
  o["twins"] = p.twins;
  o["relationships"] = p.relationships;
  o["errors"] = p.errors;
  return o;
}

std::string Encode(const BulkJob& j) {
  json::object o{{"kind", j.kind == JobKind::kImport ? "import" : "delete"},
                 {"id", j.id},
                 {"seq", j.seq},
                 {"status", StatusName(j.status)},
                 {"inputUri", j.input_uri},
                 {"outputUri", j.output_uri},
                 {"input", j.input.string()},
                 {"output", j.output.string()},
                 {"created", j.created_ms},
                 {"lastAction", j.last_action_ms},
                 {"finished", j.finished_ms},
                 {"purge", j.purge_ms},
                 {"timeout", j.timeout_ms},
                 {"errorCode", j.error_code},
                 {"errorMessage", j.error_message},
                 {"progress", ProgressJson(j.progress, JobKind::kImport)},
                 {"checkpoint", j.checkpoint},
                 {"started", j.started}};
  return json::serialize(o);
}

std::optional<BulkJob> Decode(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.get_object();
  BulkJob j;
  j.kind = Str(o, "kind") == "delete" ? JobKind::kDelete : JobKind::kImport;
  j.id = Str(o, "id");
  j.seq = static_cast<uint64_t>(Int(o, "seq"));
  std::string status = Str(o, "status");
  bool known = false;
  for (auto s : kStatuses) {
    if (StatusName(s) == status) {
      j.status = s;
      known = true;
    }
  }
  if (j.id.empty() || !known) return std::nullopt;
  j.input_uri = Str(o, "inputUri");
  j.output_uri = Str(o, "outputUri");
  j.input = Str(o, "input");
  j.output = Str(o, "output");
  j.created_ms = Int(o, "created");
  j.last_action_ms = Int(o, "lastAction");
  j.finished_ms = Int(o, "finished");
  j.purge_ms = Int(o, "purge");
  j.timeout_ms = Int(o, "timeout");
  j.error_code = Str(o, "errorCode");
  j.error_message = Str(o, "errorMessage");
  if (auto* p = o.if_contains("progress"); p && p->is_object()) {
    auto& po = p->get_object();
    j.progress.section = Str(po, "section");
    j.progress.line = static_cast<size_t>(Int(po, "line"));
    j.progress.models = static_cast<size_t>(Int(po, "models"));
    j.progress.twins = static_cast<size_t>(Int(po, "twins"));
    j.progress.relationships = static_cast<size_t>(Int(po, "relationships"));
    j.progress.errors = static_cast<size_t>(Int(po, "errors"));
  }
  j.checkpoint = static_cast<size_t>(Int(o, "checkpoint"));
  auto* started = o.if_contains("started");
  j.started = started && started->is_bool() && started->get_bool();
  return j;
}

// The job's output file: ADT's log lines, appended (the file was created with the job).
class OutputLog {
 public:
  OutputLog(const fs::path& path, std::string job_id, std::function<int64_t()> now_ms,
            size_t max_errors)
      : job_id_(std::move(job_id)), now_ms_(std::move(now_ms)), max_errors_(max_errors) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd_ < 0) error_ = std::strerror(errno);
  }
  ~OutputLog() {
    if (fd_ >= 0) {
      ::fsync(fd_);
      ::close(fd_);
    }
  }
  OutputLog(const OutputLog&) = delete;
  OutputLog& operator=(const OutputLog&) = delete;

  bool ok() const { return fd_ >= 0; }
  const std::string& error() const { return error_; }

  void Info(json::object details) { Write("Info", std::move(details)); }
  // Errors beyond max_errors are counted by the job, not written (one line says so).
  void Err(json::object details) {
    if (errors_ == max_errors_) {
      Write("Warning", json::object{{"message", fmt::format("more than {} errors: the rest are "
                                                            "counted in the summary, not listed",
                                                            max_errors_)}});
    }
    if (errors_++ >= max_errors_) return;
    Write("Error", std::move(details));
  }
  void Sync() {
    if (fd_ >= 0) ::fsync(fd_);
  }

 private:
  void Write(std::string_view type, json::object details) {
    if (fd_ < 0) return;
    json::object line{{"timestamp", timeutil::FormatUtcMs(now_ms_())},
                      {"jobId", job_id_},
                      {"jobType", "Import"},
                      {"logType", type},
                      {"details", std::move(details)}};
    std::string text = json::serialize(line) + "\n";
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::write(fd_, text.data() + off, text.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a full disk loses log lines, not the job
      off += static_cast<size_t>(n);
    }
  }

  int fd_ = -1;
  std::string error_;
  std::string job_id_;
  std::function<int64_t()> now_ms_;
  size_t max_errors_;
  size_t errors_ = 0;
};

json::object LineError(ImportSection section, size_t line, std::string_view id,
                       std::string_view code, std::string_view message) {
  json::object o{{"section", SectionName(section)}, {"line", line}};
  if (!id.empty()) o["id"] = id;
  o["code"] = code;
  o["message"] = message;
  return o;
}
}  // namespace

// Writes in flight to the graph, bounded; completions arrive on the store's writer thread.
struct BulkJobs::Pipeline {
  struct Failure {
    size_t key;  // the line (import) or a sequence number (delete)
    ImportSection section;
    std::string id;
    Error error;
  };
  std::mutex mu;
  std::condition_variable cv;
  size_t max = 1;
  std::set<size_t> pending;  // guarded by mu
  std::vector<Failure> failures;
  size_t ok[5] = {};
  size_t last_issued = 0;  // runner thread only

  // Blocks while `max` writes are outstanding, then runs `write` with its completion.
  void Issue(size_t key, ImportSection section, std::string id,
             const std::function<void(std::function<void(Status)>)>& write,
             const std::shared_ptr<Pipeline>& self) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return pending.size() < max; });
      pending.insert(key);
    }
    last_issued = key;
    write([self, key, section, id = std::move(id)](Status st) {
      std::lock_guard lock(self->mu);
      self->pending.erase(key);
      if (st) {
        ++self->ok[static_cast<size_t>(section)];
      } else {
        self->failures.push_back({key, section, id, st.error()});
      }
      self->cv.notify_all();
    });
  }
  void Drain() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return pending.empty(); });
  }
  // Every key at or below this has completed.
  size_t Checkpoint() {
    std::lock_guard lock(mu);
    return pending.empty() ? last_issued : *pending.begin() - 1;
  }
  // Takes what completed since the last call.
  void Take(std::vector<Failure>& failed, size_t (&succeeded)[5]) {
    std::lock_guard lock(mu);
    failed = std::move(failures);
    failures.clear();
    std::copy(std::begin(ok), std::end(ok), std::begin(succeeded));
    std::fill(std::begin(ok), std::end(ok), 0);
  }
};

std::string_view StatusName(JobStatus s) {
  switch (s) {
    case JobStatus::kNotStarted:
      return "notstarted";
    case JobStatus::kRunning:
      return "running";
    case JobStatus::kFailed:
      return "failed";
    case JobStatus::kSucceeded:
      return "succeeded";
    case JobStatus::kCancelling:
      return "cancelling";
    case JobStatus::kCancelled:
      return "cancelled";
  }
  return "";
}

json::object ToJson(const BulkJob& j) {
  json::object o{{"id", j.id}};
  if (j.kind == JobKind::kImport) {
    o["inputBlobUri"] = j.input_uri;
    o["outputBlobUri"] = j.output_uri;
  }
  o["status"] = StatusName(j.status);
  o["createdDateTime"] = timeutil::FormatUtcMs(j.created_ms);
  if (j.kind == JobKind::kImport) {
    o["lastActionDateTime"] = timeutil::FormatUtcMs(j.last_action_ms);
  }
  if (j.finished_ms) o["finishedDateTime"] = timeutil::FormatUtcMs(j.finished_ms);
  if (j.purge_ms) o["purgeDateTime"] = timeutil::FormatUtcMs(j.purge_ms);
  if (!j.error_code.empty()) {
    o["error"] = json::object{{"code", j.error_code}, {"message", j.error_message}};
  }
  o["progress"] = ProgressJson(j.progress, j.kind);
  return o;
}

fs::path JobsDirectory(const fs::path& data_dir, std::string_view configured) {
  if (!configured.empty()) return fs::path(configured);
  return data_dir / "twins" / "jobs";
}

Result<fs::path> ResolveJobFile(const fs::path& jobs_dir, std::string_view uri, bool input) {
  std::string_view what = input ? "inputBlobUri" : "outputBlobUri";
  std::string path;
  auto decoded = [&](std::string_view rest) -> Status {
    auto d = strings::UrlDecode(rest);
    if (!d) return Invalid(fmt::format("{} '{}' is not a valid file: URI", what, uri));
    path = std::move(*d);
    return Ok();
  };
  if (uri.size() >= 7 && strings::IEquals(uri.substr(0, 7), "file://")) {
    std::string_view rest = uri.substr(7);
    if (strings::StartsWith(rest, "localhost/")) rest.remove_prefix(9);
    if (!rest.starts_with('/')) {
      return Invalid(
          fmt::format("{} '{}': a file URI names a local path, file:///path", what, uri));
    }
    ORRERY_TRY(decoded(rest));
  } else if (uri.size() >= 5 && strings::IEquals(uri.substr(0, 5), "file:")) {
    ORRERY_TRY(decoded(uri.substr(5)));
  } else if (uri.find("://") != std::string_view::npos) {
    return Invalid(fmt::format(
        "{} '{}' is not a file: URI or path; Orrery reads and writes job files only in its jobs "
        "directory {} (twins.jobs_dir)",
        what, uri, jobs_dir.string()));
  } else {
    path = std::string(uri);
  }
  if (path.empty()) return Invalid(fmt::format("{} is empty", what));
  fs::path p(path);
  if (p.is_relative()) p = jobs_dir / p;
  std::error_code ec;
  fs::path full;
  if (input) {
    full = fs::canonical(p, ec);
    if (ec) return Invalid(fmt::format("{} '{}': {}: {}", what, uri, p.string(), ec.message()));
  } else {
    if (p.filename().empty() || p.filename() == "." || p.filename() == "..") {
      return Invalid(fmt::format("{} '{}' names a directory, not a file", what, uri));
    }
    fs::path dir = fs::canonical(p.parent_path(), ec);
    if (ec) {
      return Invalid(fmt::format("{} '{}': directory {}: {}", what, uri, p.parent_path().string(),
                                 ec.message()));
    }
    full = dir / p.filename();
  }
  fs::path rel = full.lexically_relative(jobs_dir);
  if (rel.empty() || *rel.begin() == "..") {
    return Invalid(
        fmt::format("{} '{}' is outside the jobs directory {} (twins.jobs_dir); "
                    "job files must be inside it",
                    what, uri, jobs_dir.string()));
  }
  if (input && !fs::is_regular_file(full, ec)) {
    return Invalid(fmt::format("{} '{}' is not a regular file", what, uri));
  }
  if (!input && fs::exists(fs::symlink_status(full, ec))) {
    return Invalid(
        fmt::format("{} '{}' exists already; each job writes a new output file", what, uri));
  }
  return full;
}

BulkJobs::BulkJobs(store::KvStore* store, ModelStore* models, TwinGraph* graph,
                   BulkJobsOptions options, std::function<int64_t()> now_ms)
    : store_(store),
      models_(models),
      graph_(graph),
      options_(std::move(options)),
      now_ms_(std::move(now_ms)) {}

Result<std::unique_ptr<BulkJobs>> BulkJobs::Open(store::KvStore* store, ModelStore* models,
                                                 TwinGraph* graph, BulkJobsOptions options,
                                                 std::function<int64_t()> now_ms) {
  std::error_code ec;
  options.jobs_dir = fs::canonical(options.jobs_dir, ec);
  if (ec) {
    return Error(Errc::kUnavailable,
                 fmt::format("the jobs directory {}: {}", options.jobs_dir.string(), ec.message()));
  }
  std::unique_ptr<BulkJobs> jobs(
      new BulkJobs(store, models, graph, std::move(options), std::move(now_ms)));
  ORRERY_TRY(jobs->Load());
  return jobs;
}

BulkJobs::~BulkJobs() {
  Shutdown();
}

Status BulkJobs::Load() {
  std::lock_guard lock(mu_);
  std::vector<BulkJob> loaded;
  Status failure = Ok();
  ORRERY_TRY(store_->Scan(kSpace, "", [&](std::string_view key, std::string_view value) {
    auto j = Decode(value);
    if (!j) {
      failure = Error(Errc::kCorruptState, fmt::format("stored job '{}' does not decode", key));
      return false;
    }
    loaded.push_back(std::move(*j));
    return true;
  }));
  ORRERY_TRY(failure);
  std::sort(loaded.begin(), loaded.end(),
            [](const BulkJob& a, const BulkJob& b) { return a.seq < b.seq; });
  for (auto& j : loaded) {
    next_seq_ = std::max(next_seq_, j.seq + 1);
    if (j.status == JobStatus::kCancelling) {
      // Stopped while being cancelled: nothing more will run.
      j.status = JobStatus::kCancelled;
      j.finished_ms = j.last_action_ms = now_ms_();
      j.purge_ms = j.finished_ms + options_.retention_ms;
      j.error_code = "JobCancelled";
      j.error_message = "the job was cancelled";
      ORRERY_TRY(Persist(j));
    }
    if (j.status == JobStatus::kNotStarted || j.status == JobStatus::kRunning) {
      queue_.emplace_back(j.kind, j.id);
    }
    auto& map = j.kind == JobKind::kImport ? imports_ : deletes_;
    map[j.id] = std::move(j);
  }
  PurgeExpired();
  return Ok();
}

Status BulkJobs::Persist(const BulkJob& job) {
  store::WriteBatch b;
  b.Put(kSpace, Key(job.kind, job.id), Encode(job));
  return store_->Write(std::move(b), store::Durability::kDurable);
}

void BulkJobs::PurgeExpired() {
  int64_t now = now_ms_();
  store::WriteBatch b;
  for (auto* map : {&imports_, &deletes_}) {
    for (auto it = map->begin(); it != map->end();) {
      if (it->second.purge_ms && it->second.purge_ms <= now && !Active(it->second.status)) {
        b.Delete(kSpace, Key(it->second.kind, it->first));
        it = map->erase(it);
      } else {
        ++it;
      }
    }
  }
  if (!b.empty()) (void)store_->Write(std::move(b), store::Durability::kDurable);
}

BulkJob* BulkJobs::Find(JobKind kind, std::string_view id) {
  auto& map = kind == JobKind::kImport ? imports_ : deletes_;
  auto it = map.find(id);
  return it == map.end() ? nullptr : &it->second;
}

void BulkJobs::Start() {
  std::lock_guard lock(mu_);
  if (runner_.joinable() || stopping_) return;
  runner_ = std::thread([this] { Run(); });
}

void BulkJobs::Shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (runner_.joinable() && runner_.get_id() != std::this_thread::get_id()) runner_.join();
}

Result<BulkJob> BulkJobs::AddImport(std::string id, std::string input_uri, std::string output_uri) {
  ORRERY_TRY(CheckId(id));
  if (input_uri.empty() || output_uri.empty()) {
    return Invalid("an import job needs \"inputBlobUri\" and \"outputBlobUri\"");
  }
  std::lock_guard lock(mu_);
  PurgeExpired();
  if (imports_.contains(id)) {
    return Invalid(
        fmt::format("an import job '{}' exists already (delete it to reuse the id)", id));
  }
  if (imports_.size() >= options_.max_jobs) {
    return Error(
        Errc::kJobLimitReached,
        fmt::format("{} import jobs are stored, the limit; delete finished ones", imports_.size()));
  }
  ORRERY_ASSIGN_OR_RETURN(fs::path input, ResolveJobFile(options_.jobs_dir, input_uri, true));
  ORRERY_ASSIGN_OR_RETURN(fs::path output, ResolveJobFile(options_.jobs_dir, output_uri, false));
  int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Invalid(fmt::format("outputBlobUri '{}': cannot create {}: {}", output_uri,
                               output.string(), std::strerror(errno)));
  }
  ::close(fd);
  BulkJob j{.kind = JobKind::kImport,
            .id = id,
            .seq = next_seq_++,
            .input_uri = std::move(input_uri),
            .output_uri = std::move(output_uri),
            .input = std::move(input),
            .output = std::move(output)};
  j.created_ms = j.last_action_ms = now_ms_();
  if (auto st = Persist(j); !st) {
    std::error_code ec;
    fs::remove(j.output, ec);
    return st.error();
  }
  imports_[id] = j;
  queue_.emplace_back(JobKind::kImport, id);
  cv_.notify_all();
  return j;
}

Result<BulkJob> BulkJobs::AddDelete(std::string id, int64_t timeout_minutes) {
  if (id.empty()) id = crypto::RandomUuid();
  ORRERY_TRY(CheckId(id));
  if (timeout_minutes == 0) timeout_minutes = 720;
  if (timeout_minutes < 15 || timeout_minutes > 1440) {
    return Invalid(fmt::format("timeoutInMinutes {} is not between 15 and 1440", timeout_minutes));
  }
  std::lock_guard lock(mu_);
  PurgeExpired();
  if (deletes_.contains(id)) {
    return Invalid(fmt::format("Operation-Id '{}' already exists", id));
  }
  // The runner forgets its job a moment after the job has finished: that one is not busy.
  std::optional<std::pair<JobKind, std::string>> busy;
  bool running = false;
  if (current_) {
    BulkJob* c = Find(current_->first, current_->second);
    if (c && Active(c->status)) {
      busy = current_;
      running = true;
    }
  }
  if (!busy && !queue_.empty()) busy = queue_.front();
  if (busy) {
    return Error(Errc::kJobLimitReached,
                 fmt::format("{} job '{}' is {}; one bulk job runs at a time",
                             busy->first == JobKind::kImport ? "import" : "delete", busy->second,
                             running ? "running" : "queued"));
  }
  if (deletes_.size() >= options_.max_jobs) {
    return Error(Errc::kJobLimitReached,
                 fmt::format("{} delete jobs are stored, the limit", deletes_.size()));
  }
  BulkJob j{.kind = JobKind::kDelete, .id = id, .seq = next_seq_++};
  j.created_ms = j.last_action_ms = now_ms_();
  j.timeout_ms = timeout_minutes * 60'000;
  ORRERY_TRY(Persist(j));
  deletes_[id] = j;
  queue_.emplace_back(JobKind::kDelete, id);
  cv_.notify_all();
  return j;
}

Result<BulkJob> BulkJobs::Get(JobKind kind, std::string_view id) const {
  std::lock_guard lock(mu_);
  auto& map = kind == JobKind::kImport ? imports_ : deletes_;
  auto it = map.find(id);
  if (it == map.end()) {
    if (kind == JobKind::kImport) {
      return Error(Errc::kImportJobNotFound, fmt::format("there is no import job '{}'", id));
    }
    return Error(Errc::kDeleteJobNotFound, fmt::format("there is no delete job '{}'", id));
  }
  return it->second;
}

std::vector<BulkJob> BulkJobs::List(JobKind kind, uint64_t after_seq, size_t max) const {
  std::lock_guard lock(mu_);
  std::vector<BulkJob> out;
  for (auto& [_, j] : kind == JobKind::kImport ? imports_ : deletes_) {
    if (j.seq > after_seq) out.push_back(j);
  }
  std::sort(out.begin(), out.end(),
            [](const BulkJob& a, const BulkJob& b) { return a.seq < b.seq; });
  if (out.size() > max) out.resize(max);
  return out;
}

Result<BulkJob> BulkJobs::Cancel(std::string_view id) {
  std::lock_guard lock(mu_);
  BulkJob* j = Find(JobKind::kImport, id);
  if (!j) return Error(Errc::kImportJobNotFound, fmt::format("there is no import job '{}'", id));
  switch (j->status) {
    case JobStatus::kNotStarted: {
      std::erase(queue_, std::pair<JobKind, std::string>(JobKind::kImport, j->id));
      j->status = JobStatus::kCancelled;
      j->finished_ms = j->last_action_ms = now_ms_();
      j->purge_ms = j->finished_ms + options_.retention_ms;
      j->error_code = "JobCancelled";
      j->error_message = "the job was cancelled before it started";
      OutputLog log(j->output, j->id, now_ms_, options_.max_logged_errors);
      log.Info(json::object{{"status", "Cancelled"}});
      break;
    }
    case JobStatus::kRunning:
      j->status = JobStatus::kCancelling;
      j->last_action_ms = now_ms_();
      break;
    case JobStatus::kCancelling:
      return *j;
    default:
      return Invalid(
          fmt::format("import job '{}' has finished ({}); only a queued or running "
                      "job can be cancelled",
                      id, StatusName(j->status)));
  }
  ORRERY_TRY(Persist(*j));
  return *j;
}

Status BulkJobs::Remove(std::string_view id) {
  std::lock_guard lock(mu_);
  BulkJob* j = Find(JobKind::kImport, id);
  if (!j) return Error(Errc::kImportJobNotFound, fmt::format("there is no import job '{}'", id));
  if (j->status == JobStatus::kRunning || j->status == JobStatus::kCancelling) {
    return Invalid(
        fmt::format("import job '{}' is {}; cancel it and wait until it is "
                    "cancelled before deleting it",
                    id, StatusName(j->status)));
  }
  std::erase(queue_, std::pair<JobKind, std::string>(JobKind::kImport, j->id));
  store::WriteBatch b;
  b.Delete(kSpace, Key(JobKind::kImport, id));
  ORRERY_TRY(store_->Write(std::move(b), store::Durability::kDurable));
  imports_.erase(imports_.find(id));
  return Ok();
}

bool BulkJobs::WaitIdle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return !current_ && queue_.empty(); });
}

void BulkJobs::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    current_ = queue_.front();
    queue_.pop_front();
    auto [kind, id] = *current_;
    lock.unlock();
    if (kind == JobKind::kImport) {
      RunImport(id);
    } else {
      RunDelete(id);
    }
    lock.lock();
    current_.reset();
    cv_.notify_all();
  }
}

bool BulkJobs::Interrupted(JobKind kind, const std::string& id) {
  std::lock_guard lock(mu_);
  BulkJob* j = Find(kind, id);
  return stopping_ || !j || j->status == JobStatus::kCancelling;
}

void BulkJobs::Finish(JobKind kind, const std::string& id, JobStatus status, std::string code,
                      std::string message) {
  std::lock_guard lock(mu_);
  BulkJob* j = Find(kind, id);
  if (!j) return;
  j->status = status;
  j->finished_ms = j->last_action_ms = now_ms_();
  j->purge_ms = j->finished_ms + options_.retention_ms;
  j->error_code = std::move(code);
  j->error_message = std::move(message);
  if (auto st = Persist(*j); !st) {
    log::Get("twins")->error("job {}: cannot store its status: {}", id, st.error().message());
  }
  PurgeExpired();
}

void BulkJobs::RunImport(std::string id) {
  auto logger = log::Get("twins");
  BulkJob job;
  {
    std::lock_guard lock(mu_);
    BulkJob* j = Find(JobKind::kImport, id);
    if (!j || !Active(j->status)) return;
    job = *j;
  }
  // Accepted under another twins.jobs_dir: its files are no longer the server's to touch.
  for (auto* f : {&job.input, &job.output}) {
    fs::path rel = f->lexically_relative(options_.jobs_dir);
    if (rel.empty() || *rel.begin() == "..") {
      return Finish(JobKind::kImport, id, JobStatus::kFailed, "ValidationFailed",
                    fmt::format("{} is outside the jobs directory {} (twins.jobs_dir changed)",
                                f->string(), options_.jobs_dir.string()));
    }
  }
  OutputLog out(job.output, id, now_ms_, options_.max_logged_errors);
  if (!out.ok()) {
    Finish(
        JobKind::kImport, id, JobStatus::kFailed, "OutputNotWritable",
        fmt::format("cannot append to the output file {}: {}", job.output.string(), out.error()));
    return;
  }
  bool resumed = job.started;
  {
    std::lock_guard lock(mu_);
    BulkJob* j = Find(JobKind::kImport, id);
    if (!j) return;
    if (j->status == JobStatus::kNotStarted) j->status = JobStatus::kRunning;
    j->started = true;
    j->last_action_ms = now_ms_();
    (void)Persist(*j);
    job = *j;
  }
  if (resumed) {
    out.Info(json::object{{"status", "Resumed"}, {"line", job.checkpoint}});
    logger->info("import job {}: resumed after line {}", id, job.checkpoint);
  } else {
    out.Info(json::object{{"status", "Started"}});
    logger->info("import job {}: started ({})", id, job.input.string());
  }

  // What happens when the job must stop: a shutdown leaves it running (it resumes), a
  // cancellation ends it.
  auto interrupted = [&](const std::shared_ptr<Pipeline>& p) {
    if (!Interrupted(JobKind::kImport, id)) return false;
    if (p) p->Drain();
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
    }
    if (stopping) return true;  // Drain's completions are recorded by the caller
    out.Info(json::object{{"status", "Cancelled"}});
    Finish(JobKind::kImport, id, JobStatus::kCancelled, "JobCancelled", "the job was cancelled");
    logger->info("import job {}: cancelled", id);
    return true;
  };
  auto fail = [&](std::string code, std::string message) {
    out.Info(json::object{{"status", "Failed"}});
    logger->warn("import job {}: failed: {}", id, message);
    Finish(JobKind::kImport, id, JobStatus::kFailed, std::move(code), std::move(message));
  };

  // Pass 1: the structure and the shape of every line; nothing is imported from a bad file.
  {
    std::ifstream in(job.input, std::ios::binary);
    if (!in) return fail("InputNotReadable", fmt::format("cannot read {}", job.input.string()));
    ImportReader check(in, options_.file);
    size_t n = 0;
    while (check.Next()) {
      if (++n % 4096 == 0 && interrupted(nullptr)) return;
    }
    if (check.problem_count() > 0) {
      for (auto& p : check.problems())
        out.Err(LineError(p.section, p.line, "", "ValidationFailed", p.message));
      auto& first = check.problems().front();
      {
        std::lock_guard lock(mu_);
        if (BulkJob* j = Find(JobKind::kImport, id)) j->progress.errors = check.problem_count();
      }
      return fail("ValidationFailed",
                  fmt::format("the import file has {} problem{} (the first, line {}: {}); nothing "
                              "was imported; the output file lists each",
                              check.problem_count(), check.problem_count() == 1 ? "" : "s",
                              first.line, first.message));
    }
  }

  // Pass 2: apply.
  std::ifstream in(job.input, std::ios::binary);
  if (!in) return fail("InputNotReadable", fmt::format("cannot read {}", job.input.string()));
  ImportReader reader(in, options_.file);
  auto pipeline = std::make_shared<Pipeline>();
  pipeline->max = std::max<size_t>(1, options_.max_in_flight);
  pipeline->last_issued = job.checkpoint;
  size_t section_errors[5] = {}, section_ok[5] = {};
  int64_t last_checkpoint_ms = now_ms_();
  size_t since_progress = 0;

  // Records completions: errors in the output file, counts in the job; stores the checkpoint
  // when `persist` (or a second has passed).
  auto collect = [&](bool persist) {
    std::vector<Pipeline::Failure> failed;
    size_t ok[5];
    pipeline->Take(failed, ok);
    for (auto& f : failed) {
      auto w = ToWireError(f.error);
      out.Err(LineError(f.section, f.key, f.id, w.code, f.error.message()));
      ++section_errors[static_cast<size_t>(f.section)];
    }
    for (size_t s = 0; s < 5; ++s)
      section_ok[s] += ok[s];
    int64_t now = now_ms_();
    persist = persist || now - last_checkpoint_ms >= options_.checkpoint_every_ms;
    std::lock_guard lock(mu_);
    BulkJob* j = Find(JobKind::kImport, id);
    if (!j) return;
    j->progress.twins += ok[static_cast<size_t>(ImportSection::kTwins)];
    j->progress.relationships += ok[static_cast<size_t>(ImportSection::kRelationships)];
    j->progress.errors += failed.size();
    j->progress.line = reader.line();
    j->progress.section = std::string(SectionName(reader.section()));
    if (persist) {
      j->checkpoint = std::max(j->checkpoint, pipeline->Checkpoint());
      j->last_action_ms = now;
      (void)Persist(*j);
      last_checkpoint_ms = now;
    }
  };
  auto section_end = [&](ImportSection s) {
    pipeline->Drain();
    collect(true);
    size_t i = static_cast<size_t>(s);
    out.Info(json::object{{"section", SectionName(s)},
                          {"status", section_errors[i] ? "Failed" : "Succeeded"},
                          {"imported", section_ok[i]},
                          {"errors", section_errors[i]}});
  };

  // Models: collected, then added in dependency order; those stored with the same definition
  // are skipped (a re-run, or a resumed job).
  std::vector<ImportEntity> models;
  size_t models_bytes = 0;
  bool models_done = false;
  auto apply_models = [&]() -> bool {
    models_done = true;
    if (models.empty()) return true;
    out.Info(json::object{{"section", "Models"}, {"status", "Started"}});
    std::map<std::string, size_t, std::less<>> line_of;
    std::vector<json::value> fresh;
    size_t existing = 0, model_errors = 0;
    for (auto& m : models) {
      line_of[m.id] = m.line;
      if (auto stored = models_->Get(m.id)) {
        if (stored->definition == json::value(m.value)) {
          ++existing;
          continue;
        }
        out.Err(LineError(ImportSection::kModels, m.line, m.id, "ModelAlreadyExists",
                          "a model with this id and another definition exists; delete it (or "
                          "give the new one another version) to import this one"));
        ++model_errors;
        continue;
      }
      fresh.emplace_back(std::move(m.value));
    }
    size_t added = 0;
    if (model_errors == 0) {
      for (auto& batch : ModelBatches(std::move(fresh), kModelBatch)) {
        std::vector<std::string> details;
        auto r = models_->Add(batch, &details);
        if (!r) {
          auto w = ToWireError(r.error());
          json::array lines, detail_json;
          for (auto& m : batch) {
            auto& mid = m.as_object().at("@id").as_string();
            auto it = line_of.find(std::string_view(mid));
            lines.push_back(it == line_of.end() ? 0 : it->second);
          }
          for (auto& d : details)
            detail_json.emplace_back(d);
          json::object e =
              LineError(ImportSection::kModels, lines.empty() ? 0 : lines[0].as_uint64(), "",
                        w.code, r.error().message());
          e["lines"] = std::move(lines);
          if (!detail_json.empty()) e["details"] = std::move(detail_json);
          out.Err(std::move(e));
          ++model_errors;
          break;
        }
        added += r->size();
      }
    }
    {
      std::lock_guard lock(mu_);
      if (BulkJob* j = Find(JobKind::kImport, id)) {
        j->progress.models = added + existing;
        j->progress.errors += model_errors;
      }
    }
    out.Info(json::object{{"section", "Models"},
                          {"status", model_errors ? "Failed" : "Succeeded"},
                          {"imported", added},
                          {"unchanged", existing},
                          {"errors", model_errors}});
    models.clear();
    if (model_errors) {
      fail("ValidationFailed",
           "the models could not be imported (the output file says why); no twins or "
           "relationships were imported");
      return false;
    }
    return true;
  };

  ImportSection applying = ImportSection::kNone;
  while (auto e = reader.Next()) {
    if (e->section == ImportSection::kModels) {
      models_bytes += json::serialize(e->value).size();
      if (models_bytes > options_.max_models_bytes) {
        return fail("LimitExceeded", fmt::format("the Models section is larger than {} bytes",
                                                 options_.max_models_bytes));
      }
      models.push_back(std::move(*e));
      continue;
    }
    if (!models_done && !apply_models()) return;
    if (e->section != applying) {
      if (applying != ImportSection::kNone) section_end(applying);
      applying = e->section;
      out.Info(json::object{{"section", SectionName(applying)}, {"status", "Started"}});
    }
    if (e->line <= job.checkpoint) continue;  // applied before a restart
    if (e->section == ImportSection::kTwins) {
      std::string twin_id = e->id;
      json::object body = std::move(e->value);
      pipeline->Issue(
          e->line, e->section, twin_id,
          [&](std::function<void(Status)> done) {
            graph_->PutTwin(twin_id, std::move(body), "",
                            [done = std::move(done)](Result<json::object> r) {
                              done(r ? Ok() : Status(r.error()));
                            });
          },
          pipeline);
    } else {
      json::object body = std::move(e->value);
      std::string source(body.at("$dtId").as_string());
      std::string rel_id(body.at("$relationshipId").as_string());
      body.erase("$dtId");
      pipeline->Issue(
          e->line, e->section, e->id,
          [&](std::function<void(Status)> done) {
            graph_->PutRelationship(source, rel_id, std::move(body), "",
                                    [done = std::move(done)](Result<json::object> r) {
                                      done(r ? Ok() : Status(r.error()));
                                    });
          },
          pipeline);
    }
    if (++since_progress >= options_.progress_every) {
      since_progress = 0;
      collect(false);
      BulkJob now;
      {
        std::lock_guard lock(mu_);
        if (BulkJob* j = Find(JobKind::kImport, id)) now = *j;
      }
      out.Info(json::object{{"section", SectionName(applying)},
                            {"status", "InProgress"},
                            {"line", reader.line()},
                            {"twins", now.progress.twins},
                            {"relationships", now.progress.relationships},
                            {"errors", now.progress.errors}});
    } else if (since_progress % 64 == 0) {
      collect(false);
    }
    if (since_progress % 64 == 0 && interrupted(pipeline)) {
      collect(true);
      return;
    }
  }
  if (!models_done && !apply_models()) return;
  if (applying != ImportSection::kNone) section_end(applying);
  collect(true);
  if (interrupted(pipeline)) return;

  BulkJob final_job;
  {
    std::lock_guard lock(mu_);
    if (BulkJob* j = Find(JobKind::kImport, id)) final_job = *j;
  }
  auto& p = final_job.progress;
  json::object summary{{"status", p.errors ? "Failed" : "Succeeded"},
                       {"models", p.models},
                       {"twins", p.twins},
                       {"relationships", p.relationships},
                       {"errors", p.errors}};
  out.Info(std::move(summary));
  out.Sync();
  if (p.errors) {
    logger->warn("import job {}: {} errors", id, p.errors);
    Finish(JobKind::kImport, id, JobStatus::kFailed, "ValidationFailed",
           fmt::format("{} of the file's entities could not be imported; the output file lists "
                       "each with its line",
                       p.errors));
    return;
  }
  logger->info("import job {}: {} models, {} twins, {} relationships", id, p.models, p.twins,
               p.relationships);
  Finish(JobKind::kImport, id, JobStatus::kSucceeded);
}

void BulkJobs::RunDelete(std::string id) {
  auto logger = log::Get("twins");
  int64_t deadline = 0;
  {
    std::lock_guard lock(mu_);
    BulkJob* j = Find(JobKind::kDelete, id);
    if (!j || !Active(j->status)) return;
    j->status = JobStatus::kRunning;
    j->last_action_ms = now_ms_();
    deadline = j->last_action_ms + j->timeout_ms;
    (void)Persist(*j);
  }
  logger->info("delete job {}: deleting every relationship, twin and model", id);
  auto pipeline = std::make_shared<Pipeline>();
  pipeline->max = std::max<size_t>(1, options_.max_in_flight);
  size_t key = 0;
  std::string last_error;

  // false: stop (shutdown, or the job ended).
  auto proceed = [&]() {
    if (Interrupted(JobKind::kDelete, id)) return false;
    if (now_ms_() >= deadline) {
      Finish(JobKind::kDelete, id, JobStatus::kFailed, "Timeout",
             "the delete job did not finish within its timeout (timeoutInMinutes); what it "
             "deleted stays deleted");
      return false;
    }
    return true;
  };
  // Deletes what `collect` finds, chunk by chunk; false when it must stop.
  auto delete_all =
      [&](ImportSection what,
          const std::function<void(std::vector<std::pair<std::string, std::string>>&)>& collect) {
        for (;;) {
          if (!proceed()) return false;
          std::vector<std::pair<std::string, std::string>> chunk;
          collect(chunk);
          if (chunk.empty()) return true;
          for (auto& item : chunk) {
            pipeline->Issue(
                ++key, what, item.first,
                [&](std::function<void(Status)> done) {
                  auto cb = [done = std::move(done)](Status st) { done(std::move(st)); };
                  if (what == ImportSection::kRelationships) {
                    graph_->DeleteRelationship(item.first, item.second, "", cb);
                  } else {
                    graph_->DeleteTwin(item.first, "", cb);
                  }
                },
                pipeline);
          }
          pipeline->Drain();
          std::vector<Pipeline::Failure> failed;
          size_t ok[5];
          pipeline->Take(failed, ok);
          size_t done = ok[static_cast<size_t>(what)];
          if (!failed.empty()) last_error = failed.front().error.message();
          {
            std::lock_guard lock(mu_);
            if (BulkJob* j = Find(JobKind::kDelete, id)) {
              (what == ImportSection::kTwins ? j->progress.twins : j->progress.relationships) +=
                  done;
              j->last_action_ms = now_ms_();
              (void)Persist(*j);
            }
          }
          // A chunk of which nothing could be deleted would come back: give up on this pass.
          if (done == 0) return true;
        }
      };
  auto relationships = [&](std::vector<std::pair<std::string, std::string>>& chunk) {
    graph_->Read([&](const GraphView& view) {
      view.ForEachRelationship([&](const json::object& r) {
        chunk.emplace_back(std::string(r.at("$sourceId").as_string()),
                           std::string(r.at("$relationshipId").as_string()));
        return chunk.size() < kDeleteChunk;
      });
    });
  };
  auto twins = [&](std::vector<std::pair<std::string, std::string>>& chunk) {
    graph_->Read([&](const GraphView& view) {
      view.ForEachTwin([&](const json::object& t) {
        chunk.emplace_back(std::string(t.at("$dtId").as_string()), std::string());
        return chunk.size() < kDeleteChunk;
      });
    });
  };
  // Writers that keep adding relationships can leave twins behind: a few rounds.
  for (int round = 0; round < kDeleteRounds && graph_->twin_count() + graph_->relationship_count();
       ++round) {
    if (!delete_all(ImportSection::kRelationships, relationships)) return;
    if (!delete_all(ImportSection::kTwins, twins)) return;
  }
  if (size_t left = graph_->twin_count() + graph_->relationship_count(); left > 0) {
    return Finish(JobKind::kDelete, id, JobStatus::kFailed, "InternalServerError",
                  fmt::format("{} twins and {} relationships could not be deleted ({}); stop "
                              "the clients that write the graph and run the job again",
                              graph_->twin_count(), graph_->relationship_count(), last_error));
  }
  // Models: those no other stored model depends on first.
  for (;;) {
    if (!proceed()) return;
    auto all = models_->List({}, "", SIZE_MAX);
    if (!all || all->empty()) break;
    std::set<std::string, std::less<>> needed;
    for (auto& m : *all) {
      for (auto& d : m.dependencies)
        needed.insert(d);
    }
    size_t deleted = 0;
    for (auto& m : *all) {
      if (needed.contains(m.id)) continue;
      if (auto st = models_->Delete(m.id); st) {
        ++deleted;
      } else {
        last_error = st.error().message();
      }
    }
    {
      std::lock_guard lock(mu_);
      if (BulkJob* j = Find(JobKind::kDelete, id)) {
        j->progress.models += deleted;
        j->last_action_ms = now_ms_();
        (void)Persist(*j);
      }
    }
    if (deleted == 0) {
      return Finish(JobKind::kDelete, id, JobStatus::kFailed, "InternalServerError",
                    fmt::format("{} models could not be deleted: {}", all->size(), last_error));
    }
  }
  logger->info("delete job {}: done", id);
  Finish(JobKind::kDelete, id, JobStatus::kSucceeded);
}

}  // namespace orrery::twins
