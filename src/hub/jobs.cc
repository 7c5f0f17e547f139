#include "hub/jobs.h"

#include <deque>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "base/log.h"
#include "base/time.h"
#include "hub/errc.h"
#include "hub/hub.h"
#include "hub/json_fields.h"
#include "query/iothub/hub_query.h"

namespace orrery::hub {
namespace json = boost::json;
namespace asio = boost::asio;

namespace {

constexpr std::string_view kJobSpace = "hub.jobs";
constexpr std::string_view kResultSpace = "hub.jobdev";

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("hub.jobs");
  return l;
}

std::string ResultKey(std::string_view job, std::string_view device) {
  std::string k(job);
  k += '\0';
  k += device;
  return k;
}

bool Finished(std::string_view status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

Error Invalid(std::string m) {
  return Error(Errc::kInvalidArgument, std::move(m));
}

std::string Str(const json::object& o, std::string_view k) {
  return StringField(o, k);
}

int64_t Int(const json::object& o, std::string_view k, int64_t fallback) {
  return IntField(o, k, fallback);
}

}  // namespace

struct Jobs::Job {
  explicit Job(asio::any_io_executor ex) : timer(ex), deadline(ex) {}
  std::string id, type, query_text;
  std::optional<query::HubCondition> condition;
  json::object update_twin, method;  // the operation (one of them)
  int64_t created_ms = 0, start_ms = 0, end_ms = 0, max_execution_s = 3600;
  uint64_t order = 0;
  std::string status, failure_reason, status_message;
  std::deque<std::string> pending;
  size_t in_flight = 0, device_count = 0, succeeded = 0, failed = 0;
  std::map<std::string, json::object, std::less<>> results;  // by device
  asio::steady_timer timer, deadline;                        // touched on the timer executor only
};

Jobs::Jobs(Hub* hub, store::KvStore* store, JobsOptions options, asio::any_io_executor timers)
    : hub_(hub), store_(store), options_(std::move(options)), timers_(std::move(timers)) {
  if (auto* m = options_.metrics) {
    device_ops_ = &m->GetCounter("orrery_hub_job_device_operations_total",
                                 "Device operations (twin updates, method calls) run by jobs.");
  }
}

Jobs::~Jobs() {
  Shutdown();
}

int64_t Jobs::Now() const {
  return hub_->NowMs();
}

Result<std::unique_ptr<Jobs>> Jobs::Open(Hub* hub, store::KvStore* store, JobsOptions options,
                                         asio::any_io_executor timers) {
  std::unique_ptr<Jobs> j(new Jobs(hub, store, std::move(options), std::move(timers)));
  ORRERY_TRY(j->Load());
  return j;
}

Status Jobs::Load() {
  std::lock_guard lock(mu_);
  size_t corrupt = 0;
  ORRERY_TRY(store_->Scan(kJobSpace, "", [&](std::string_view key, std::string_view value) {
    boost::system::error_code ec;
    json::value v = json::parse(value, ec);
    if (ec || !v.is_object()) {
      ++corrupt;
      return true;
    }
    auto& o = v.get_object();
    auto job = std::make_shared<Job>(timers_);
    job->id = std::string(key);
    job->type = Str(o, "type");
    job->query_text = Str(o, "queryCondition");
    auto cond = query::ParseHubCondition(job->query_text);
    if (cond) job->condition = std::move(*cond);
    if (auto* u = o.if_contains("updateTwin"); u && u->is_object())
      job->update_twin = u->get_object();
    if (auto* m = o.if_contains("cloudToDeviceMethod"); m && m->is_object())
      job->method = m->get_object();
    job->created_ms = Int(o, "createdMs", 0);
    job->start_ms = Int(o, "startMs", 0);
    job->end_ms = Int(o, "endMs", 0);
    job->max_execution_s = Int(o, "maxExecutionTimeInSeconds", options_.default_max_execution_s);
    job->order = static_cast<uint64_t>(Int(o, "order", 0));
    job->status = Str(o, "status");
    job->failure_reason = Str(o, "failureReason");
    job->status_message = Str(o, "statusMessage");
    if (auto* s = o.if_contains("deviceJobStatistics"); s && s->is_object()) {
      auto& st = s->get_object();
      job->device_count = static_cast<size_t>(Int(st, "deviceCount", 0));
      job->succeeded = static_cast<size_t>(Int(st, "succeededCount", 0));
      job->failed = static_cast<size_t>(Int(st, "failedCount", 0));
    }
    next_order_ = std::max(next_order_, job->order + 1);
    jobs_[job->id] = job;
    return true;
  }));
  ORRERY_TRY(store_->Scan(kResultSpace, "", [&](std::string_view key, std::string_view value) {
    auto nul = key.find('\0');
    if (nul == std::string_view::npos) return true;
    auto it = jobs_.find(key.substr(0, nul));
    boost::system::error_code ec;
    json::value v = json::parse(value, ec);
    if (it == jobs_.end() || ec || !v.is_object()) {
      ++corrupt;
      return true;
    }
    it->second->results[std::string(key.substr(nul + 1))] = std::move(v.get_object());
    return true;
  }));
  if (corrupt) Log()->error("jobs: skipped {} corrupt records", corrupt);
  return Ok();
}

void Jobs::Start() {
  std::vector<JobPtr> resume;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, job] : jobs_) {
      if (!Finished(job->status)) resume.push_back(job);
    }
  }
  for (auto& job : resume) {
    if (job->status == "running") {
      Log()->info("resuming job '{}' ({} of {} devices done)", job->id,
                  job->succeeded + job->failed, job->device_count);
      asio::post(timers_, [this, job] { Run(job); });
    } else {
      Schedule(job);
    }
  }
}

void Jobs::Shutdown() {
  std::vector<JobPtr> all;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, job] : jobs_)
      all.push_back(job);
  }
  asio::post(timers_, [all] {
    for (auto& job : all) {
      job->timer.cancel();
      job->deadline.cancel();
    }
  });
}

void Jobs::Persist(const Job& job) {
  json::object o = ToJson(job);
  o["createdMs"] = job.created_ms;
  o["startMs"] = job.start_ms;
  o["endMs"] = job.end_ms;
  o["order"] = job.order;
  store::WriteBatch b;
  b.Put(kJobSpace, job.id, json::serialize(o));
  store_->WriteAsync(std::move(b), [id = job.id](Status st) {
    if (!st) Log()->error("could not store job '{}': {}", id, st.error().message());
  });
}

json::object Jobs::ToJson(const Job& job) const {
  json::object o;
  o["jobId"] = job.id;
  o["queryCondition"] = job.query_text;
  o["createdTime"] = timeutil::FormatUtcMs(job.created_ms);
  o["startTime"] = timeutil::FormatUtcMs(job.start_ms);
  if (job.end_ms) o["endTime"] = timeutil::FormatUtcMs(job.end_ms);
  o["maxExecutionTimeInSeconds"] = job.max_execution_s;
  o["type"] = job.type;
  o["status"] = job.status;
  if (job.type == "scheduleUpdateTwin") o["updateTwin"] = job.update_twin;
  if (job.type == "scheduleDeviceMethod") o["cloudToDeviceMethod"] = job.method;
  if (!job.failure_reason.empty()) o["failureReason"] = job.failure_reason;
  if (!job.status_message.empty()) o["statusMessage"] = job.status_message;
  size_t running = job.in_flight;
  size_t pending = job.pending.size();
  if (job.status == "queued" || job.status == "scheduled") pending = 0;
  o["deviceJobStatistics"] = json::object{{"deviceCount", job.device_count},
                                          {"failedCount", job.failed},
                                          {"succeededCount", job.succeeded},
                                          {"runningCount", running},
                                          {"pendingCount", pending}};
  return o;
}

void Jobs::Create(std::string job_id, const json::object& request,
                  std::function<void(Result<json::object>)> done) {
  if (auto st = CheckId(job_id, "job id"); !st) return done(st.error());
  if (auto body_id = Str(request, "jobId"); !body_id.empty() && body_id != job_id) {
    return done(Invalid(
        fmt::format("jobId '{}' in the body does not match '{}' in the path", body_id, job_id)));
  }
  auto job = std::make_shared<Job>(timers_);
  job->id = job_id;
  job->type = Str(request, "type");
  if (job->type == "scheduleUpdateTwin") {
    auto* u = request.if_contains("updateTwin");
    if (!u || !u->is_object()) return done(Invalid("a scheduleUpdateTwin job needs updateTwin"));
    job->update_twin = u->get_object();
    job->update_twin.erase("etag");  // IoT Hub's jobs take the patch with "etag":"*"
  } else if (job->type == "scheduleDeviceMethod") {
    auto* m = request.if_contains("cloudToDeviceMethod");
    if (!m || !m->is_object() || Str(m->get_object(), "methodName").empty()) {
      return done(Invalid("a scheduleDeviceMethod job needs cloudToDeviceMethod.methodName"));
    }
    job->method = m->get_object();
  } else {
    return done(Invalid(
        fmt::format("job type '{}' is not scheduleUpdateTwin or scheduleDeviceMethod", job->type)));
  }
  job->query_text = Str(request, "queryCondition");
  if (job->query_text.empty()) return done(Invalid("a job needs a queryCondition"));
  auto cond = query::ParseHubCondition(job->query_text);
  if (!cond) {
    return done(Invalid(fmt::format("queryCondition: {}", cond.error().message())));
  }
  job->condition = std::move(*cond);
  int64_t now = Now();
  job->created_ms = now;
  job->start_ms = now;
  if (auto start = Str(request, "startTime"); !start.empty()) {
    auto ms = timeutil::ParseUtcMs(start);
    if (!ms) return done(Invalid(fmt::format("startTime '{}' is not an ISO 8601 time", start)));
    job->start_ms = std::max(now, *ms);
  }
  job->max_execution_s =
      Int(request, "maxExecutionTimeInSeconds", options_.default_max_execution_s);
  if (job->max_execution_s <= 0 || job->max_execution_s > 7 * 24 * 3600) {
    return done(Invalid("maxExecutionTimeInSeconds must be 1..604800"));
  }
  job->status = job->start_ms > now ? "scheduled" : "queued";
  json::object out;
  {
    std::lock_guard lock(mu_);
    if (jobs_.count(job_id)) {
      return done(Error(Errc::kJobAlreadyExists, fmt::format("job '{}' already exists", job_id)));
    }
    size_t active = 0;
    for (auto& [id, j] : jobs_) {
      if (!Finished(j->status)) ++active;
    }
    if (active >= options_.max_active_jobs) {
      return done(Error(Errc::kQuotaExceeded,
                        fmt::format("{} jobs are already active (the most allowed)", active)));
    }
    // Forget the oldest finished jobs beyond the retention count.
    while (jobs_.size() >= options_.max_stored_jobs) {
      JobPtr oldest;
      for (auto& [id, j] : jobs_) {
        if (Finished(j->status) && (!oldest || j->order < oldest->order)) oldest = j;
      }
      if (!oldest) break;
      store::WriteBatch b;
      b.Delete(kJobSpace, oldest->id);
      for (auto& [device, r] : oldest->results)
        b.Delete(kResultSpace, ResultKey(oldest->id, device));
      store_->WriteAsync(std::move(b), [](Status) {});
      jobs_.erase(oldest->id);
    }
    job->order = next_order_++;
    jobs_[job_id] = job;
    out = ToJson(*job);
    json::object stored = out;
    stored["createdMs"] = job->created_ms;
    stored["startMs"] = job->start_ms;
    stored["endMs"] = 0;
    stored["order"] = job->order;
    store::WriteBatch b;
    b.Put(kJobSpace, job_id, json::serialize(stored));
    store_->WriteAsync(std::move(b), [this, job, out, done = std::move(done)](Status st) mutable {
      if (!st) return done(Error(Errc::kUnavailable, st.error().message()));
      Schedule(job);
      done(std::move(out));
    });
  }
}

void Jobs::Schedule(const JobPtr& job) {
  asio::post(timers_, [this, job] {
    int64_t delay = job->start_ms - Now();
    if (delay <= 0) return Run(job);
    job->timer.expires_after(std::chrono::milliseconds(delay));
    job->timer.async_wait([this, job](const boost::system::error_code& ec) {
      if (!ec) Run(job);
    });
  });
}

void Jobs::Run(const JobPtr& job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || Finished(job->status)) return;
  }
  // The devices the condition selects now; a resumed job skips those with a final result.
  std::vector<std::string> devices;
  if (job->condition) {
    hub_->registry().VisitTwins(false, "", [&](const std::string& key, const json::object& twin) {
      if (job->condition->Matches(twin)) devices.push_back(key);
      return true;
    });
  }
  int64_t deadline_ms;
  {
    std::lock_guard lock(mu_);
    if (job->status != "running") {
      job->status = "running";
      job->start_ms = Now();
    }
    job->pending.clear();
    for (auto& d : devices) {
      auto r = job->results.find(d);
      bool final = r != job->results.end() && (Str(r->second, "status") == "completed" ||
                                               Str(r->second, "status") == "failed");
      if (!final) job->pending.push_back(d);
    }
    job->device_count = std::max(devices.size(), job->succeeded + job->failed);
    Persist(*job);
    deadline_ms = job->start_ms + job->max_execution_s * 1000;
  }
  job->deadline.expires_after(std::chrono::milliseconds(std::max<int64_t>(0, deadline_ms - Now())));
  job->deadline.async_wait([this, job](const boost::system::error_code& ec) {
    if (ec) return;
    Finish(job, "failed",
           fmt::format("the job did not finish within maxExecutionTimeInSeconds ({} s)",
                       job->max_execution_s));
  });
  Dispatch(job);
}

void Jobs::Dispatch(const JobPtr& job) {
  std::vector<std::string> start;
  bool done = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || job->status != "running") return;
    while (job->in_flight < options_.concurrency && !job->pending.empty()) {
      start.push_back(std::move(job->pending.front()));
      job->pending.pop_front();
      ++job->in_flight;
    }
    for (auto& d : start) {
      int64_t now = Now();
      job->results[d] = json::object{{"deviceId", d},
                                     {"jobId", job->id},
                                     {"jobType", job->type},
                                     {"status", "running"},
                                     {"startTimeUtc", timeutil::FormatUtcMs(now)},
                                     {"createdDateTimeUtc", timeutil::FormatUtcMs(job->created_ms)},
                                     {"lastUpdatedDateTimeUtc", timeutil::FormatUtcMs(now)}};
    }
    done = job->pending.empty() && job->in_flight == 0;
  }
  if (done) return Finish(job, "completed", "");
  for (auto& d : start) {
    if (device_ops_) device_ops_->Inc();
    if (job->type == "scheduleUpdateTwin") {
      hub_->UpdateTwin(d, job->update_twin, "*", [this, job, d](Result<TwinChange> r) {
        asio::post(timers_, [this, job, d, st = r ? Status(Ok()) : Status(r.error())] {
          Record(job, d, st, std::nullopt);
        });
      });
    } else {
      MethodRequest m;
      m.method_name = Str(job->method, "methodName");
      if (auto* p = job->method.if_contains("payload")) m.payload = json::serialize(*p);
      m.response_timeout_s = static_cast<int>(Int(job->method, "responseTimeoutInSeconds", 30));
      m.connect_timeout_s = static_cast<int>(Int(job->method, "connectTimeoutInSeconds", 0));
      hub_->InvokeMethod(d, std::move(m), [this, job, d](Result<MethodResponse> r) {
        std::optional<json::object> response;
        Status st = Ok();
        if (r) {
          boost::system::error_code ec;
          json::value payload = json::parse(r->payload, ec);
          response =
              json::object{{"status", r->status}, {"payload", ec ? json::value(nullptr) : payload}};
        } else {
          st = r.error();
        }
        asio::post(timers_, [this, job, d, st, response] { Record(job, d, st, response); });
      });
    }
  }
}

void Jobs::Record(const JobPtr& job, const std::string& device, Status outcome,
                  std::optional<json::object> response) {
  bool finished = false;
  std::string event;  // the device's job result, for DeviceJobLifecycleEvents routes
  {
    std::lock_guard lock(mu_);
    if (job->in_flight > 0) --job->in_flight;
    auto& r = job->results[device];
    int64_t now = Now();
    r["status"] = outcome ? "completed" : "failed";
    r["endTimeUtc"] = timeutil::FormatUtcMs(now);
    r["lastUpdatedDateTimeUtc"] = timeutil::FormatUtcMs(now);
    if (response) r["outcome"] = json::object{{"deviceMethodResponse", *response}};
    if (!outcome) {
      auto w = ToWireError(outcome.error());
      r["error"] = json::object{{"code", w.code}, {"description", outcome.error().message()}};
    }
    if (job->status == "running") {
      ++(outcome ? job->succeeded : job->failed);
      finished = job->pending.empty() && job->in_flight == 0;
    }
    store::WriteBatch b;
    event = json::serialize(r);
    b.Put(kResultSpace, ResultKey(job->id, device), event);
    store_->WriteAsync(std::move(b), [](Status) {});
    if (!finished && job->status == "running") {
      // Keep the stored counts roughly current for a resume (exact after every device).
      Persist(*job);
    }
  }
  hub_->EmitEvent(MessageSource::kDeviceJobLifecycleEvents, device, "",
                  outcome ? "deviceJobCompleted" : "deviceJobFailed", std::move(event));
  if (finished) return Finish(job, "completed", "");
  Dispatch(job);
}

void Jobs::Finish(const JobPtr& job, std::string status, std::string reason) {
  {
    std::lock_guard lock(mu_);
    if (Finished(job->status)) return;
    // Devices never reached count as failed.
    for (auto& d : job->pending) {
      auto& r = job->results[d];
      r = json::object{
          {"deviceId", d},
          {"jobId", job->id},
          {"jobType", job->type},
          {"status", "failed"},
          {"error", json::object{{"code", "JobNotCompleted"}, {"description", reason}}}};
      ++job->failed;
    }
    job->pending.clear();
    job->status = std::move(status);
    job->failure_reason = std::move(reason);
    job->end_ms = Now();
    Persist(*job);
    Log()->info("job '{}' {}: {} succeeded, {} failed of {} devices", job->id, job->status,
                job->succeeded, job->failed, job->device_count);
  }
  asio::post(timers_, [job] {
    job->timer.cancel();
    job->deadline.cancel();
  });
}

Result<json::object> Jobs::Get(std::string_view job_id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return Error(Errc::kJobNotFound, fmt::format("job '{}' does not exist", job_id));
  }
  return ToJson(*it->second);
}

void Jobs::Cancel(std::string_view job_id, std::function<void(Result<json::object>)> done) {
  JobPtr job;
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) {
      return done(Error(Errc::kJobNotFound, fmt::format("job '{}' does not exist", job_id)));
    }
    job = it->second;
    if (Finished(job->status)) {
      return done(Error(Errc::kJobCannotBeCancelled,
                        fmt::format("job '{}' is already {}", job_id, job->status)));
    }
  }
  Finish(job, "cancelled", "the job was cancelled");
  done(Get(job_id));
}

std::vector<json::object> Jobs::List(std::string_view type, std::string_view status) const {
  std::vector<std::pair<uint64_t, json::object>> out;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, job] : jobs_) {
      if (!type.empty() && job->type != type) continue;
      if (!status.empty() && job->status != status) continue;
      out.emplace_back(job->order, ToJson(*job));
    }
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<json::object> result;
  for (auto& [o, j] : out)
    result.push_back(std::move(j));
  return result;
}

void Jobs::VisitDeviceJobs(const std::function<bool(const json::object&)>& visit) const {
  std::lock_guard lock(mu_);
  for (auto& [id, job] : jobs_) {
    for (auto& [device, r] : job->results) {
      if (!visit(r)) return;
    }
  }
}

}  // namespace orrery::hub
