// Design note: group commit.
//
// Producers never touch files. Append() encodes into a thread-local buffer and checksums the
// body there, reserves its bytes against max_pending_bytes with a CAS (so a refusal never
// inflates the counter even transiently), and appends the record to its partition's
// `pending` buffer under that partition's mutex, held for a memcpy and a vector push only.
//
// Two threads then form a two-stage pipeline over "rounds" (one group commit each):
//  - the writer thread swaps every partition's pending buffer with an empty one, assigns
//    sequence numbers and times, finishes the CRCs and writes each partition's records with
//    one pwrite (rolling segments as they fill), and hands the round to
//  - the sync thread, which fdatasyncs the touched partitions in parallel (SyncPool: one
//    fdatasync per partition per round), publishes the round to readers, runs its callbacks
//    and releases its pending bytes.
// While round N is being synced, the writer already writes round N+1 — and, while kWritten
// readers are open, everything that arrives before the sync of N ends is written into N+1 at
// once and shown to them, so that no record waits for a sync to be seen — and producers fill
// round N+2: disk writes, syncs and
// producers all overlap, and batch size adapts to the disk's latency by itself (the slower the
// sync, the more each one covers). At most one round is in flight, so rounds are published and
// completed in order. Every record is acknowledged only after an fdatasync that started after
// its pwrite returned.
//
// Waking the writer costs producers nothing while it is busy: they only take wake_mu_ when
// writer_idle_ is set. The writer sets writer_idle_ *before* re-checking the pending buffers
// under their mutexes, and producers read it *after* appending under the same mutex, so one
// of the two always sees the other (no lost wake-up).
#include "eventlog/event_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <xxhash.h>

#include "base/files.h"
#include "base/log.h"
#include "base/strings.h"
#include "eventlog/format.h"
#include "eventlog/partition.h"

namespace orrery::eventlog {
namespace internal {

// Runs fdatasync (or any short task) for several partitions at once on a few helper threads
// plus the calling thread.
class SyncPool {
 public:
  explicit SyncPool(size_t helpers) {
    for (size_t i = 0; i < helpers; ++i) {
      threads_.emplace_back([this] {
        ::pthread_setname_np(::pthread_self(), "eventlog-fsync");
        HelperLoop();
      });
    }
  }
  ~SyncPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      t.join();
  }

  // Runs fn(0) .. fn(n-1), returning when all are done.
  void Run(size_t n, const std::function<void(size_t)>& fn) {
    if (threads_.empty() || n <= 1) {
      for (size_t i = 0; i < n; ++i)
        fn(i);
      return;
    }
    {
      std::lock_guard lock(mu_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      remaining_ = n;
      ++generation_;
    }
    cv_.notify_all();
    Work(fn, n);
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return remaining_ == 0 && active_ == 0; });
    fn_ = nullptr;
  }

 private:
  void Work(const std::function<void(size_t)>& fn, size_t n) {
    for (size_t i; (i = next_.fetch_add(1)) < n;) {
      fn(i);
      std::lock_guard lock(mu_);
      if (--remaining_ == 0) done_cv_.notify_all();
    }
  }

  void HelperLoop() {
    uint64_t seen = 0;
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (fn_ == nullptr) continue;  // woke after that round had finished
      const auto* fn = fn_;
      size_t n = n_;
      ++active_;
      lock.unlock();
      Work(*fn, n);
      lock.lock();
      if (--active_ == 0) done_cv_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(size_t)>* fn_ = nullptr;  // guarded by mu_
  size_t n_ = 0;                                     // guarded by mu_
  size_t remaining_ = 0;                             // guarded by mu_
  size_t active_ = 0;                                // guarded by mu_
  uint64_t generation_ = 0;                          // guarded by mu_
  bool stop_ = false;                                // guarded by mu_
  std::atomic<size_t> next_{0};
};

struct LogMetrics {
  std::vector<metrics::Counter*> records;  // per partition
  std::vector<metrics::Counter*> bytes;    // per partition
  metrics::Histogram* latency = nullptr;
  metrics::Histogram* commit_records = nullptr;
  metrics::Histogram* commit_bytes = nullptr;
  metrics::Histogram* fsync_seconds = nullptr;
  metrics::Counter* backpressure = nullptr;
  metrics::Counter* retention_deleted = nullptr;
  metrics::Counter* recovery_truncated = nullptr;
};

}  // namespace internal

namespace {

using internal::Completion;
using internal::Partition;
using internal::RecordMeta;

constexpr std::string_view kMetaFile = "eventlog.meta";
constexpr std::string_view kMetaHeader = "orrery-eventlog 1";
// Buffers larger than this are given back to the allocator when the writer goes idle.
constexpr size_t kKeepBufferCapacity = 4 << 20;

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error Invalid(std::string message) {
  return Error(Errc::kInvalidArgument, std::move(message));
}

// 1, 2, 4, ... 65536 records per commit.
std::vector<double> CountBuckets() {
  std::vector<double> b;
  for (double v = 1; v <= 65536; v *= 2)
    b.push_back(v);
  return b;
}

}  // namespace

// One partition's share of a group commit.
struct EventLog::Batch {
  std::string buffer;                   // records, swapped out of Partition::pending
  std::vector<Completion> completions;  // one per record
  std::vector<RecordMeta> metas;        // filled by Partition::Write
  uint64_t bytes = 0;                   // of every record collected (buffer holds the last lot)
  Status status;                        // why the batch failed, if it did
  bool written = false;                 // written without error; durable once synced
};

// A group commit: filled and written by the writer thread, then synced, published and
// completed by the sync thread while the writer fills the other one.
struct EventLog::Round {
  std::vector<Batch> batches;                  // per partition
  std::vector<internal::PublishPoint> points;  // per partition, where batches[i].written
};

Result<Durability> ParseDurability(std::string_view text) {
  if (text == "fsync") return Durability::kFsync;
  if (text == "os") return Durability::kOs;
  return Invalid(fmt::format("unknown durability '{}' (fsync, os)", text));
}

std::string_view DurabilityName(Durability d) {
  return d == Durability::kFsync ? "fsync" : "os";
}

Status ValidateOptions(const Options& o) {
  if (o.partitions < 1 || o.partitions > 128) {
    return Invalid(fmt::format("partitions must be in 1..128, got {}", o.partitions));
  }
  if (o.segment_size < 4096 || o.segment_size > (1ull << 30)) {
    return Invalid(fmt::format("segment_size must be in 4KiB..1GiB, got {}", o.segment_size));
  }
  if (o.retention_ms < 1) return Invalid("retention_ms must be positive");
  if (o.max_pending_bytes < 64 * 1024) {
    return Invalid(
        fmt::format("max_pending_bytes must be at least 64KiB, got {}", o.max_pending_bytes));
  }
  if (o.max_record_bytes < 64 || o.max_record_bytes > kMaxEncodedBytes) {
    return Invalid(fmt::format("max_record_bytes must be in 64..{}, got {}", kMaxEncodedBytes,
                               o.max_record_bytes));
  }
  if (o.max_record_bytes + format::kRecordHeaderSize + sizeof(internal::Completion) >
      o.max_pending_bytes / 2) {
    return Invalid(fmt::format("max_record_bytes ({}) must fit in half of max_pending_bytes ({})",
                               o.max_record_bytes, o.max_pending_bytes));
  }
  if (o.index_interval_bytes < 1) return Invalid("index_interval_bytes must be positive");
  if (o.retention_check_interval_ms < 1) {
    return Invalid("retention_check_interval_ms must be positive");
  }
  return Ok();
}

uint32_t PartitionForDevice(std::string_view device_id, uint32_t partitions) {
  return static_cast<uint32_t>(XXH3_64bits(device_id.data(), device_id.size()) % partitions);
}

EventLog::EventLog(std::filesystem::path dir, Options options)
    : dir_(std::move(dir)), options_(std::move(options)) {}

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::filesystem::path& dir,
                                                 Options options) {
  ORRERY_TRY(ValidateOptions(options));
  if (!options.now_ms) options.now_ms = SystemNowMs;
  std::unique_ptr<EventLog> log(new EventLog(dir, std::move(options)));
  const Options& o = log->options_;
  ORRERY_TRY(files::EnsureDirectory(dir));

  auto lock_path = dir / "LOCK";
  log->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (log->lock_fd_ < 0) {
    return Error(Errc::kIo,
                 fmt::format("cannot open {}: {}", lock_path.string(), std::strerror(errno)));
  }
  if (::flock(log->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Error(Errc::kLocked, fmt::format("{} is in use by another event log (flock: {})",
                                            dir.string(), std::strerror(errno)));
  }

  // The partition count is fixed at creation: a device's partition depends on it.
  auto meta_path = dir / kMetaFile;
  if (std::filesystem::exists(meta_path)) {
    ORRERY_ASSIGN_OR_RETURN(std::string text, files::ReadFile(meta_path, 4096));
    auto lines = strings::Split(text, '\n');
    uint32_t stored = 0;
    bool ok = lines.size() >= 2 && lines[0] == kMetaHeader &&
              strings::StartsWith(lines[1], "partitions ");
    if (ok) {
      auto digits = lines[1].substr(11);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), stored);
      ok = ec == std::errc() && end == digits.data() + digits.size() && stored >= 1;
    }
    if (!ok) {
      return Error(Errc::kCorrupt,
                   fmt::format("{}: malformed event log metadata", meta_path.string()));
    }
    if (stored != o.partitions) {
      return Error(Errc::kPartitionMismatch,
                   fmt::format("the event log in {} has {} partitions but {} are configured; the "
                               "count is fixed when the log is created",
                               dir.string(), stored, o.partitions));
    }
  } else {
    if (std::filesystem::exists(dir / "p0")) {
      return Error(Errc::kCorrupt,
                   fmt::format("{} holds partitions but no {}", dir.string(), kMetaFile));
    }
    ORRERY_TRY(files::WriteFileAtomic(
        meta_path, fmt::format("{}\npartitions {}\n", kMetaHeader, o.partitions)));
  }

  metrics::Registry* registry = o.metrics;
  if (!registry) {
    log->own_registry_ = std::make_unique<metrics::Registry>();
    registry = log->own_registry_.get();
  }
  auto m = std::make_unique<internal::LogMetrics>();
  for (uint32_t p = 0; p < o.partitions; ++p) {
    metrics::Labels labels{{"partition", std::to_string(p)}};
    m->records.push_back(&registry->GetCounter("orrery_eventlog_appended_records_total",
                                               "Records made durable in the event log", labels));
    m->bytes.push_back(&registry->GetCounter("orrery_eventlog_appended_bytes_total",
                                             "Record bytes (headers included) made durable",
                                             labels));
  }
  m->latency = &registry->GetHistogram("orrery_eventlog_append_latency_seconds",
                                       "From Append() to the durable completion callback",
                                       metrics::LatencyBuckets());
  m->commit_records = &registry->GetHistogram(
      "orrery_eventlog_commit_records", "Records made durable per group commit", CountBuckets());
  m->commit_bytes =
      &registry->GetHistogram("orrery_eventlog_commit_bytes", "Bytes made durable per group commit",
                              metrics::SizeBuckets());
  m->fsync_seconds = &registry->GetHistogram("orrery_eventlog_fsync_seconds",
                                             "Duration of a group commit's (parallel) fdatasyncs",
                                             metrics::LatencyBuckets());
  m->backpressure =
      &registry->GetCounter("orrery_eventlog_backpressure_total",
                            "Appends refused because pending bytes were at the limit");
  m->retention_deleted = &registry->GetCounter("orrery_eventlog_retention_deleted_segments_total",
                                               "Segments deleted by retention");
  m->recovery_truncated =
      &registry->GetCounter("orrery_eventlog_recovery_truncated_bytes_total",
                            "Bytes of torn or corrupt tail cut off by recovery");
  log->metrics_ = std::move(m);

  bool sync = o.durability == Durability::kFsync;
  int64_t now = o.now_ms();
  for (uint32_t p = 0; p < o.partitions; ++p) {
    internal::PartitionConfig config{p, dir / fmt::format("p{}", p), o.segment_size,
                                     o.index_interval_bytes, sync};
    auto partition = std::make_shared<Partition>(std::move(config));
    ORRERY_ASSIGN_OR_RETURN(RecoveryReport report, partition->Recover(now));
    log->metrics_->recovery_truncated->Inc(report.truncated_bytes);
    log->recovery_.push_back(std::move(report));
    log->partitions_.push_back(std::move(partition));
  }
  if (sync) ORRERY_TRY(files::SyncDirectory(dir));
  ORRERY_ASSIGN_OR_RETURN(log->groups_, ConsumerGroups::Open(dir / "groups", o.partitions));

  EventLog* self = log.get();
  log->collector_ = metrics::ScopedCollector(
      *registry, [self](metrics::Sink& sink) { self->CollectMetrics(sink); });
  ORRERY_TRY(log->Start());
  return log;
}

Status EventLog::Start() {
  rounds_ = std::make_unique<Round[]>(2);
  for (size_t r = 0; r < 2; ++r) {
    rounds_[r].batches.resize(options_.partitions);
    rounds_[r].points.resize(options_.partitions);
  }
  extra_.resize(options_.partitions);
  size_t helpers =
      options_.durability == Durability::kFsync ? std::min<size_t>(options_.partitions, 4) - 1 : 0;
  sync_pool_ = std::make_unique<internal::SyncPool>(helpers);
  // Retention once now, on this thread (the writer does not run yet), then every
  // retention_check_interval_ms of the (possibly injected) clock.
  last_retention_ms_ = options_.now_ms();
  ApplyRetention(last_retention_ms_);
  if (failed_.load()) {
    std::lock_guard lock(failure_mu_);
    return failure_;
  }
  syncer_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "eventlog-sync");
    SyncerLoop();
  });
  writer_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "eventlog-write");
    WriterLoop();
  });
  return Ok();
}

EventLog::~EventLog() {
  Close();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void EventLog::Close() {
  {
    std::lock_guard lock(close_mu_);
    if (closed_) return;
    closed_ = true;
  }
  closing_.store(true);
  for (auto& p : partitions_) {
    std::lock_guard lock(p->append_mu);
    p->accepting = false;
  }
  {
    std::lock_guard lock(wake_mu_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  retention_cv_.notify_all();
  if (writer_.joinable()) writer_.join();  // drains the syncer and tells it to stop
  if (syncer_.joinable()) syncer_.join();

  std::vector<std::function<void()>> hooks;
  for (auto& p : partitions_)
    p->Close(&hooks);
  {
    std::lock_guard lock(space_mu_);
    for (auto& w : writable_waiters_)
      hooks.push_back(std::move(w));
    writable_waiters_.clear();
  }
  for (auto& hook : hooks)
    hook();
  collector_.Reset();
  sync_pool_.reset();
}

Status EventLog::Append(const Message& message, AppendCallback done) {
  return AppendToPartition(PartitionFor(message.system.connection_device_id), message,
                           std::move(done));
}

Status EventLog::AppendToPartition(uint32_t partition, const Message& message,
                                   AppendCallback done) {
  if (partition >= partitions_.size()) {
    return PartitionOutOfRange(partition, options_.partitions);
  }
  if (failed_.load(std::memory_order_relaxed)) {
    std::lock_guard lock(failure_mu_);
    return failure_;
  }
  size_t body = EncodedSize(message);
  if (body > options_.max_record_bytes) {
    return Error(Errc::kTooLarge, fmt::format("message of {} bytes exceeds the {}-byte limit", body,
                                              options_.max_record_bytes));
  }
  ORRERY_TRY(CheckMessageLimits(message, body));
  thread_local std::string scratch;
  scratch.clear();
  format::AppendRecordPrefix(&scratch, static_cast<uint32_t>(body));
  Encode(message, &scratch);
  format::ChecksumBody(scratch.data());  // here, in parallel, rather than on the writer

  const uint64_t cost = scratch.size() + sizeof(Completion);
  uint64_t current = pending_bytes_.load(std::memory_order_relaxed);
  do {
    if (current + cost > options_.max_pending_bytes) {
      metrics_->backpressure->Inc();
      return Error(Errc::kBackpressure);  // no formatting: callers may hit this in a loop
    }
  } while (!pending_bytes_.compare_exchange_weak(current, current + cost));

  Partition& p = *partitions_[partition];
  bool accepted;
  {
    std::lock_guard lock(p.append_mu);
    accepted = p.accepting;
    if (accepted) {
      p.pending.append(scratch);
      p.completions.push_back({std::move(done), SteadyNs()});
    }
  }
  if (!accepted) {
    ReleasePending(cost);  // outside append_mu: it may run callbacks that append
    return Error(Errc::kClosed, "event log is closed");
  }
  if (writer_idle_.load()) {
    std::lock_guard lock(wake_mu_);
    wake_ = true;
    wake_cv_.notify_one();
  }
  return Ok();
}

bool EventLog::NotifyWhenWritable(std::function<void()> callback) {
  std::lock_guard lock(space_mu_);
  if (closing_.load() || failed_.load() ||
      pending_bytes_.load() <= options_.max_pending_bytes / 2) {
    return false;
  }
  writable_waiters_.push_back(std::move(callback));
  return true;
}

void EventLog::ReleasePending(uint64_t bytes) {
  uint64_t now = pending_bytes_.fetch_sub(bytes) - bytes;
  if (now > options_.max_pending_bytes / 2) return;
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(space_mu_);
    ready.swap(writable_waiters_);
  }
  for (auto& callback : ready)
    callback();
}

void EventLog::SetFailed(const Error& error) {
  std::lock_guard lock(failure_mu_);
  if (failed_.load()) return;
  log::Get("eventlog")
      ->error("event log in {} failed; refusing appends until restarted: {}", dir_.string(),
              error.ToString());
  failure_ = Error(Errc::kFailed, fmt::format("event log failed: {}", error.message()));
  failed_.store(true);
}

bool EventLog::CollectRound(Round& round) {
  bool any = false;
  for (size_t i = 0; i < partitions_.size(); ++i) {
    Partition& p = *partitions_[i];
    Batch& b = round.batches[i];
    std::lock_guard lock(p.append_mu);
    if (p.pending.empty()) continue;
    b.buffer.swap(p.pending);
    b.completions.swap(p.completions);
    b.bytes = b.buffer.size();
    any = true;
  }
  return any;
}

bool EventLog::AnyPending() {
  for (auto& p : partitions_) {
    std::lock_guard lock(p->append_mu);
    if (!p->pending.empty()) return true;
  }
  return false;
}

void EventLog::WriterLoop() {
  size_t current = 0;  // the round being filled; the other may be in flight on the syncer
  while (true) {
    bool stop;
    {
      std::lock_guard lock(wake_mu_);
      stop = stopping_;
    }
    // `stopping_` is set only after every partition stopped accepting, so when it was seen
    // before collecting, an empty collection means everything accepted is done.
    Round& round = rounds_[current];
    if (CollectRound(round)) {
      WriteRound(round, options_.now_ms());
      // kWritten readers want records as they arrive: while the previous round is still
      // syncing, write what arrives into this one. Without them one write per round is
      // cheaper (fewer wake-ups and syscalls under load).
      if (AnyWrittenReader()) {
        while (!SyncerFree()) {
          if (WaitForWorkOrSyncer()) WriteMore(round, options_.now_ms());
        }
      }
      HandOff(&round);
      current ^= 1;
    } else if (stop) {
      break;
    } else {
      SleepUntilWork(round);
    }

    uint64_t requested;
    {
      std::lock_guard lock(wake_mu_);
      requested = retention_requests_;
    }
    int64_t now = options_.now_ms();
    bool due = now - last_retention_ms_ >= options_.retention_check_interval_ms;
    bool asked = requested != retention_done_;
    if (due || asked) {
      WaitForSyncer();  // retention publishes directly: nothing may be in flight
      size_t deleted = ApplyRetention(now);
      last_retention_ms_ = now;
      if (asked) {
        {
          std::lock_guard lock(wake_mu_);
          retention_done_ = requested;
          retention_deleted_ = deleted;
        }
        retention_cv_.notify_all();
      }
    }
  }
  WaitForSyncer();
  {
    std::lock_guard lock(pipe_mu_);
    syncer_stop_ = true;
  }
  pipe_cv_.notify_all();
}

void EventLog::SleepUntilWork(Round& idle_round) {
  writer_idle_.store(true);
  if (AnyPending()) {
    writer_idle_.store(false);
    return;
  }
  // Idle: give large buffers back (a burst must not pin its peak memory forever).
  for (size_t i = 0; i < partitions_.size(); ++i) {
    auto& buffer = idle_round.batches[i].buffer;
    if (buffer.capacity() > kKeepBufferCapacity) buffer = std::string();
    std::lock_guard lock(partitions_[i]->append_mu);
    auto& pending = partitions_[i]->pending;
    if (pending.empty() && pending.capacity() > kKeepBufferCapacity) pending = std::string();
  }
  {
    std::unique_lock lock(wake_mu_);
    wake_cv_.wait_for(lock, std::chrono::milliseconds(options_.retention_check_interval_ms),
                      [&] { return wake_ || stopping_ || retention_requests_ != retention_done_; });
    wake_ = false;
  }
  writer_idle_.store(false);
}

void EventLog::WriteRound(Round& round, int64_t now_ms) {
  std::vector<std::function<void()>> written_hooks;
  for (size_t i = 0; i < partitions_.size(); ++i) {
    Batch& b = round.batches[i];
    b.written = false;
    if (b.completions.empty()) continue;
    if (failed_.load()) {
      std::lock_guard lock(failure_mu_);
      b.status = failure_;
      continue;
    }
    b.metas.reserve(b.completions.size());
    if (Status st = partitions_[i]->Write(&b.buffer, now_ms, &b.metas); !st) {
      SetFailed(st.error());
      b.status = st.error();
      continue;
    }
    round.points[i] = partitions_[i]->TakePublishPoint();
    b.written = true;
    // kWritten readers see the batch now, before its fdatasync.
    partitions_[i]->PublishWritten(round.points[i], &written_hooks);
  }
  for (auto& hook : written_hooks)
    hook();
  written_hooks.clear();
}

bool EventLog::AnyWrittenReader() const {
  for (const auto& p : partitions_) {
    if (p->written_readers.load(std::memory_order_relaxed) > 0) return true;
  }
  return false;
}

bool EventLog::SyncerFree() {
  std::lock_guard lock(pipe_mu_);
  return in_flight_ == nullptr;
}

bool EventLog::WaitForWorkOrSyncer() {
  writer_idle_.store(true);
  if (AnyPending()) {
    writer_idle_.store(false);
    return true;
  }
  {
    std::unique_lock lock(wake_mu_);
    // The syncer sets wake_ when it finishes a round; the timeout is only a safety net.
    wake_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return wake_; });
    wake_ = false;
  }
  writer_idle_.store(false);
  return AnyPending();
}

void EventLog::WriteMore(Round& round, int64_t now_ms) {
  std::vector<std::function<void()>> written_hooks;
  for (size_t i = 0; i < partitions_.size(); ++i) {
    Partition& part = *partitions_[i];
    Batch& extra = extra_[i];
    {
      std::lock_guard lock(part.append_mu);
      if (part.pending.empty()) continue;
      extra.buffer.swap(part.pending);
      extra.completions.swap(part.completions);
    }
    Batch& b = round.batches[i];
    b.bytes += extra.buffer.size();
    bool first = b.completions.empty();
    b.completions.insert(b.completions.end(), std::make_move_iterator(extra.completions.begin()),
                         std::make_move_iterator(extra.completions.end()));
    extra.completions.clear();
    if (failed_.load() || (!first && !b.written)) {
      // The log failed (CompleteRound fails the whole round) or this batch did before.
      if (b.status) {
        std::lock_guard lock(failure_mu_);
        b.status = failed_.load() ? failure_ : Error(Errc::kFailed, "event log failed");
      }
      b.written = false;
      extra.buffer.clear();
      continue;
    }
    Status st = part.Write(&extra.buffer, now_ms, &b.metas);
    extra.buffer.clear();
    if (!st) {
      SetFailed(st.error());
      b.status = st.error();
      b.written = false;
      continue;
    }
    internal::PublishPoint later = part.TakePublishPoint();
    part.PublishWritten(later, &written_hooks);
    if (first) {  // (a batch that failed before was skipped above)
      round.points[i] = std::move(later);
    } else {
      internal::MergePoint(round.points[i], std::move(later));
    }
    b.written = true;
  }
  for (auto& hook : written_hooks)
    hook();
}

void EventLog::HandOff(Round* round) {
  std::unique_lock lock(pipe_mu_);
  pipe_cv_.wait(lock, [&] { return in_flight_ == nullptr; });
  in_flight_ = round;
  pipe_cv_.notify_all();
}

void EventLog::WaitForSyncer() {
  std::unique_lock lock(pipe_mu_);
  pipe_cv_.wait(lock, [&] { return in_flight_ == nullptr; });
}

void EventLog::SyncerLoop() {
  while (true) {
    Round* round;
    {
      std::unique_lock lock(pipe_mu_);
      pipe_cv_.wait(lock, [&] { return in_flight_ != nullptr || syncer_stop_; });
      if (in_flight_ == nullptr) return;
      round = in_flight_;
    }
    CompleteRound(*round);
    {
      std::lock_guard lock(pipe_mu_);
      in_flight_ = nullptr;
    }
    pipe_cv_.notify_all();
    {
      // The writer may be gathering the next round until this one is done (WriterLoop).
      std::lock_guard lock(wake_mu_);
      wake_ = true;
    }
    wake_cv_.notify_all();
  }
}

void EventLog::CompleteRound(Round& round) {
  const size_t n = partitions_.size();
  // A failure noticed while this round was being written taints it: its fdatasync can no
  // longer be trusted to cover it (and the log refuses everything from now on).
  if (failed_.load()) {
    std::lock_guard lock(failure_mu_);
    for (auto& b : round.batches) {
      if (b.written) b.status = failure_;
      b.written = false;
    }
  }
  std::vector<size_t> to_sync;
  for (size_t i = 0; i < n; ++i) {
    if (round.batches[i].written && round.points[i].needs_sync) to_sync.push_back(i);
  }
  if (!to_sync.empty()) {
    int64_t start = SteadyNs();
    std::vector<Status> results(to_sync.size());
    sync_pool_->Run(to_sync.size(), [&](size_t k) {
      results[k] = partitions_[to_sync[k]]->Sync(round.points[to_sync[k]]);
    });
    metrics_->fsync_seconds->Observe(static_cast<double>(SteadyNs() - start) / 1e9);
    stat_fsyncs_.fetch_add(to_sync.size(), std::memory_order_relaxed);
    for (size_t k = 0; k < to_sync.size(); ++k) {
      if (!results[k]) {
        SetFailed(results[k].error());
        round.batches[to_sync[k]].status = results[k].error();
        round.batches[to_sync[k]].written = false;
      }
    }
  }

  std::vector<std::function<void()>> hooks;
  for (size_t i = 0; i < n; ++i) {
    if (round.batches[i].written) partitions_[i]->PublishDurable(round.points[i], &hooks);
  }
  for (auto& hook : hooks)
    hook();

  // Statistics first, so that whoever a callback wakes sees them.
  uint64_t durable_records = 0, durable_bytes = 0, cost = 0;
  for (size_t i = 0; i < n; ++i) {
    const Batch& b = round.batches[i];
    cost += b.bytes + b.completions.size() * sizeof(Completion);
    if (b.completions.empty() || !b.written) continue;
    metrics_->records[i]->Inc(b.completions.size());
    metrics_->bytes[i]->Inc(b.bytes);
    durable_records += b.completions.size();
    durable_bytes += b.bytes;
  }
  if (durable_records > 0) {
    metrics_->commit_records->Observe(static_cast<double>(durable_records));
    metrics_->commit_bytes->Observe(static_cast<double>(durable_bytes));
    stat_commits_.fetch_add(1, std::memory_order_relaxed);
    stat_records_.fetch_add(durable_records, std::memory_order_relaxed);
    stat_bytes_.fetch_add(durable_bytes, std::memory_order_relaxed);
  }

  int64_t done_ns = SteadyNs();
  for (size_t i = 0; i < n; ++i) {
    Batch& b = round.batches[i];
    if (b.completions.empty()) continue;
    if (b.written) {
      for (size_t k = 0; k < b.completions.size(); ++k) {
        const RecordMeta& meta = b.metas[k];
        Result<Appended> r(
            Appended{static_cast<uint32_t>(i), meta.sequence, meta.offset, meta.enqueued_ms});
        metrics_->latency->Observe(static_cast<double>(done_ns - b.completions[k].enqueue_ns) /
                                   1e9);
        if (b.completions[k].callback) b.completions[k].callback(r);
      }
    } else {
      Result<Appended> r(b.status ? Error(Errc::kFailed, "event log failed") : b.status.error());
      for (auto& c : b.completions) {
        if (c.callback) c.callback(r);
      }
    }
    b.buffer.clear();
    b.bytes = 0;
    b.completions.clear();
    b.metas.clear();
    b.status = Ok();
    b.written = false;
  }
  ReleasePending(cost);
}

size_t EventLog::ApplyRetention(int64_t now_ms) {
  if (failed_.load()) return 0;
  size_t deleted = 0;
  uint64_t budget = options_.max_bytes / options_.partitions;
  if (options_.max_bytes > 0 && budget == 0) budget = 1;
  std::vector<std::function<void()>> hooks;
  for (auto& p : partitions_) {
    auto r = p->Retain(now_ms, options_.retention_ms, budget);
    if (!r) {
      SetFailed(r.error());
      break;
    }
    deleted += *r;
  }
  metrics_->retention_deleted->Inc(deleted);
  return deleted;
}

Result<size_t> EventLog::EnforceRetention() {
  std::unique_lock lock(wake_mu_);
  if (stopping_) return Error(Errc::kClosed, "event log is closed");
  uint64_t ticket = ++retention_requests_;
  wake_cv_.notify_all();
  retention_cv_.wait(lock, [&] { return retention_done_ >= ticket || stopping_; });
  if (retention_done_ < ticket) return Error(Errc::kClosed, "event log is closed");
  if (failed_.load()) {
    std::lock_guard failure_lock(failure_mu_);
    return failure_;
  }
  return retention_deleted_;
}

EventLog::CommitStats EventLog::commit_stats() const {
  return {stat_commits_.load(), stat_records_.load(), stat_bytes_.load(), stat_fsyncs_.load()};
}

Result<PartitionProperties> EventLog::GetPartitionProperties(uint32_t partition) const {
  if (partition >= partitions_.size()) {
    return PartitionOutOfRange(partition, options_.partitions);
  }
  const Partition& p = *partitions_[partition];
  std::lock_guard lock(p.mu);
  PartitionProperties props;
  props.partition = partition;
  props.beginning_sequence = p.earliest();
  props.next_sequence = p.durable_next;
  props.empty = props.beginning_sequence == props.next_sequence;
  props.bytes_on_disk = p.DiskBytes();
  props.segments = p.segments.size();
  if (p.durable_any && !props.empty) {
    props.last_offset = p.durable_last_offset;
    props.last_enqueued_ms = p.durable_last_ms;
  }
  return props;
}

Result<std::unique_ptr<Reader>> EventLog::OpenReader(uint32_t partition, Position position,
                                                     Visibility visibility) {
  if (partition >= partitions_.size()) {
    return PartitionOutOfRange(partition, options_.partitions);
  }
  auto& p = partitions_[partition];
  uint64_t sequence = 0;
  switch (position.kind) {
    case Position::Kind::kEarliest: {
      std::lock_guard lock(p->mu);
      sequence = p->earliest();
      break;
    }
    case Position::Kind::kLatest: {
      std::lock_guard lock(p->mu);
      sequence = p->end(visibility);
      break;
    }
    case Position::Kind::kSequence:
      if (position.value < 0) return Invalid("negative sequence number");
      sequence = static_cast<uint64_t>(position.value);
      break;
    case Position::Kind::kEnqueuedTime: {
      ORRERY_ASSIGN_OR_RETURN(sequence, p->SequenceForTime(position.value));
      break;
    }
  }
  return std::unique_ptr<Reader>(new Reader(p, sequence, visibility));
}

Result<std::unique_ptr<Reader>> EventLog::OpenReaderAtCheckpoint(std::string_view group,
                                                                 uint32_t partition,
                                                                 Position fallback,
                                                                 Visibility visibility) {
  ORRERY_ASSIGN_OR_RETURN(auto checkpoint, groups_->GetCheckpoint(group, partition));
  return OpenReader(partition, checkpoint ? Position::Sequence(*checkpoint) : fallback, visibility);
}

void EventLog::CollectMetrics(metrics::Sink& sink) const {
  std::vector<std::pair<uint64_t, uint64_t>> bounds;  // (earliest, next) per partition
  for (const auto& p : partitions_) {
    std::lock_guard lock(p->mu);
    metrics::Labels labels{{"partition", std::to_string(p->id())}};
    sink.Gauge("orrery_eventlog_disk_bytes", "Bytes of segment files per partition", labels,
               static_cast<double>(p->DiskBytes()));
    sink.Gauge("orrery_eventlog_segments", "Segment files per partition", labels,
               static_cast<double>(p->segments.size()));
    bounds.emplace_back(p->earliest(), p->durable_next);
  }
  sink.Gauge("orrery_eventlog_pending_bytes", "Bytes accepted but not yet durable", {},
             static_cast<double>(pending_bytes()));
  for (const auto& [group, checkpoints] : groups_->Snapshot()) {
    for (size_t p = 0; p < checkpoints.size() && p < bounds.size(); ++p) {
      auto [earliest, next] = bounds[p];
      uint64_t from = std::max(checkpoints[p].value_or(earliest), earliest);
      sink.Gauge("orrery_eventlog_consumer_lag",
                 "Durable records after the consumer group's checkpoint (all retained records "
                 "when it has none)",
                 {{"group", group}, {"partition", std::to_string(p)}},
                 static_cast<double>(next > from ? next - from : 0));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Reader

Reader::Reader(std::shared_ptr<internal::Partition> partition, uint64_t next_sequence,
               Visibility visibility)
    : partition_(std::move(partition)),
      partition_id_(partition_->id()),
      next_sequence_(next_sequence),
      visibility_(visibility) {
  if (visibility_ == Visibility::kWritten) partition_->written_readers.fetch_add(1);
}

Reader::~Reader() {
  if (visibility_ == Visibility::kWritten) partition_->written_readers.fetch_sub(1);
}

uint64_t Reader::durable_next() const {
  std::lock_guard lock(partition_->mu);
  return partition_->durable_next;
}

bool Reader::Locate(uint64_t* skipped) {
  auto& p = *partition_;
  uint64_t earliest = p.earliest();
  if (next_sequence_ < earliest) {
    *skipped += earliest - next_sequence_;
    next_sequence_ = earliest;
    iterator_.reset();
  }
  end_ = p.end(visibility_);
  if (next_sequence_ >= end_) return false;
  if (iterator_) {
    const auto& segment = *iterator_->segment();
    if (next_sequence_ >= segment.base_sequence() &&
        next_sequence_ < segment.published.next_sequence) {
      iterator_->set_limit(segment.published.size);
      return true;
    }
  }
  auto [segment, position] = p.Find(next_sequence_);
  uint64_t limit = segment->published.size;
  iterator_ = std::make_unique<internal::RecordIterator>(std::move(segment), position, limit);
  return true;
}

Result<ReadBatch> Reader::Read(size_t max_events, std::chrono::steady_clock::time_point deadline) {
  ReadBatch batch;
  auto& p = *partition_;
  {
    std::unique_lock lock(p.mu);
    auto ready = [&] {
      return p.closed || next_sequence_ < p.end(visibility_) || next_sequence_ < p.earliest();
    };
    if (!ready() && deadline > std::chrono::steady_clock::now()) {
      if (deadline == std::chrono::steady_clock::time_point::max()) {
        p.cv.wait(lock, ready);
      } else {
        p.cv.wait_until(lock, deadline, ready);
      }
    }
    if (!Locate(&batch.skipped)) {
      if (p.closed && batch.skipped == 0) return Error(Errc::kClosed, "event log is closed");
      return batch;
    }
  }
  format::RecordHeader header;
  std::string_view body;
  while (batch.events.size() < max_events) {
    // Segment sizes are published when written: a durable reader stops at its end, not the
    // file's.
    if (next_sequence_ >= end_) {
      std::lock_guard lock(p.mu);
      if (!Locate(&batch.skipped)) break;
    }
    uint64_t position = iterator_->position();
    ORRERY_ASSIGN_OR_RETURN(auto step, iterator_->Next(&header, &body));
    if (step == internal::RecordIterator::Step::kEnd) {
      std::lock_guard lock(p.mu);
      if (!Locate(&batch.skipped)) break;
      continue;
    }
    const auto& segment = *iterator_->segment();
    if (step != internal::RecordIterator::Step::kRecord) {
      return Error(Errc::kCorrupt,
                   fmt::format("{}: bad record at position {}", segment.path().string(), position));
    }
    if (header.sequence < next_sequence_) continue;  // before the target: from a sparse index
    if (header.sequence != next_sequence_) {
      return Error(Errc::kCorrupt,
                   fmt::format("{}: sequence {} at position {}, expected {}",
                               segment.path().string(), header.sequence, position, next_sequence_));
    }
    auto message = Decode(body);
    if (!message) {
      return Error(Errc::kCorrupt, fmt::format("{}: record {}: {}", segment.path().string(),
                                               header.sequence, message.error().message()));
    }
    Event& e = batch.events.emplace_back();
    e.partition = partition_id_;
    e.sequence = header.sequence;
    e.offset = segment.OffsetAt(position);
    e.enqueued_ms = header.enqueued_ms;
    e.message = std::move(*message);
    e.message.system.enqueued_time_ms = header.enqueued_ms;
    ++next_sequence_;
  }
  return batch;
}

bool Reader::NotifyWhenReadable(std::function<void()> hook) {
  auto& p = *partition_;
  std::lock_guard lock(p.mu);
  if (p.closed || next_sequence_ < p.end(visibility_) || next_sequence_ < p.earliest()) {
    return false;
  }
  (visibility_ == Visibility::kWritten ? p.written_hooks : p.readable_hooks)
      .push_back(std::move(hook));
  return true;
}

}  // namespace orrery::eventlog
