// Jobs (IoT Hub jobs v2): a twin update or a direct method scheduled over every device that
// matches a query condition, with a start time and a maximum execution time, per-device
// progress counts and results, cancellation, and listing. Jobs and their per-device results
// are stored, so a restart resumes a running job where it stopped (devices without a stored
// result are done again: at-least-once, as IoT Hub's own jobs).
//
// Execution runs on the hub's timer executor: when a job starts it snapshots the matching
// devices, then keeps at most `concurrency` operations in flight through the hub (the same
// UpdateTwin / InvokeMethod the service API uses), recording each outcome as it completes.
//
// Thread safety: public methods are safe from any thread (one mutex; short sections). Their
// callbacks run on the store's writer thread or the timer executor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>

#include "base/error.h"
#include "base/metrics.h"
#include "store/kv_store.h"

namespace orrery::hub {

class Hub;

struct JobsOptions {
  size_t concurrency = 64;        // device operations in flight per job
  size_t max_active_jobs = 100;   // queued, scheduled or running at once
  size_t max_stored_jobs = 1000;  // the oldest finished jobs are forgotten beyond
  int64_t default_max_execution_s = 3600;
  metrics::Registry* metrics = nullptr;
};

class Jobs {
 public:
  // `hub` and `store` must outlive the jobs; `timers` runs the jobs.
  static Result<std::unique_ptr<Jobs>> Open(Hub* hub, store::KvStore* store, JobsOptions options,
                                            boost::asio::any_io_executor timers);
  ~Jobs();

  // Resumes stored jobs and schedules waiting ones. Once.
  void Start();
  // Stops dispatching (running jobs resume after a restart). Call before the executor stops.
  void Shutdown();

  // PUT /jobs/v2/{id}: `request` is IoT Hub's job request (jobId, type scheduleUpdateTwin |
  // scheduleDeviceMethod, queryCondition, updateTwin | cloudToDeviceMethod, startTime,
  // maxExecutionTimeInSeconds). Errors: kInvalidArgument, kJobAlreadyExists, kQuotaExceeded.
  // `done` gets the job's JSON once it is stored.
  void Create(std::string job_id, const boost::json::object& request,
              std::function<void(Result<boost::json::object>)> done);
  // GET /jobs/v2/{id}: kJobNotFound.
  Result<boost::json::object> Get(std::string_view job_id) const;
  // POST /jobs/v2/{id}/cancel: stops a job that has not finished (kJobCannotBeCancelled
  // otherwise); devices not yet reached are counted as failed with "cancelled".
  void Cancel(std::string_view job_id, std::function<void(Result<boost::json::object>)> done);
  // Jobs in creation order, optionally filtered by type and status (empty = any).
  std::vector<boost::json::object> List(std::string_view type, std::string_view status) const;
  // Per-device results, as `SELECT * FROM devices.jobs` sees them, job by job. Runs under the
  // jobs lock: `visit` must be quick and must not call Jobs.
  void VisitDeviceJobs(const std::function<bool(const boost::json::object&)>& visit) const;

 private:
  struct Job;
  using JobPtr = std::shared_ptr<Job>;
  Jobs(Hub* hub, store::KvStore* store, JobsOptions options, boost::asio::any_io_executor timers);
  Status Load();
  void Schedule(const JobPtr& job);
  void Run(const JobPtr& job);
  void Dispatch(const JobPtr& job);
  void Record(const JobPtr& job, const std::string& device, Status outcome,
              std::optional<boost::json::object> response);
  void Finish(const JobPtr& job, std::string status, std::string reason);
  void Persist(const Job& job);                      // REQUIRES: mu_ held
  boost::json::object ToJson(const Job& job) const;  // REQUIRES: mu_ held
  int64_t Now() const;

  Hub* hub_;
  store::KvStore* store_;
  JobsOptions options_;
  boost::asio::any_io_executor timers_;
  mutable std::mutex mu_;
  std::map<std::string, JobPtr, std::less<>> jobs_;  // guarded by mu_
  uint64_t next_order_ = 1;                          // guarded by mu_
  bool stopping_ = false;                            // guarded by mu_
  metrics::Counter* device_ops_ = nullptr;
};

}  // namespace orrery::hub
