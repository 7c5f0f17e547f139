// Orrery's durable partitioned event log: the built-in "Event Hubs-compatible endpoint".
// Every device telemetry message is appended here, and downstream consumers (routing, stream
// jobs, the warm store, external readers) read from it.
//
// Layout under the directory given to Open():
//   eventlog.meta          format version and partition count (fixed at creation)
//   LOCK                   flock()ed by the open EventLog
//   p<N>/<seq>.log, .idx   segments of partition N and their sparse indexes (format.h)
//   groups/<name>.ckpt     consumer-group checkpoints (consumer_groups.h)
//
// Appends. Append() encodes the message, queues it on its partition (chosen by a stable hash
// of the device id) and returns at once. A writer thread takes everything queued, assigns
// sequence numbers and enqueued times and writes each partition's records with one pwrite;
// a sync thread then fdatasyncs the touched partitions in parallel (group commit: one
// fdatasync per partition covers every append gathered since the last one), publishes the
// records to readers and runs the completion callbacks, while the writer already writes the
// next batch. A callback therefore means "durable".
//
// Backpressure. Queued-but-not-yet-durable bytes are bounded by max_pending_bytes. Append()
// refuses with Errc::kBackpressure when a record does not fit; the caller stops reading from
// its source and calls NotifyWhenWritable(), whose callback runs once the pending bytes fall
// to half the limit. Memory never grows without bound.
//
// Readers see durable records only, in sequence order, from any position (earliest, latest,
// a sequence number, an enqueued time). Read() blocks with a deadline; NotifyWhenReadable()
// registers a one-shot hook for event-loop integration (post to an executor from it).
// A reader opened with Visibility::kWritten sees records once written (in the page cache,
// which kill -9 keeps), before their fdatasync: for consumers whose output is re-made after a
// crash (stream jobs, their outputs) and who care about latency. Such a consumer must never
// store a position past Reader::durable_next(): a power loss can take the records after it,
// and the log then appends other records under the same sequence numbers.
//
// Retention deletes whole sealed segments older than retention_ms or beyond max_bytes, never
// the active one; readers positioned in deleted data move to the earliest remaining record
// and report how many sequence numbers they skipped.
//
// Recovery. Open() validates every segment, scans the active (last) segment of each partition
// from its start, truncates a torn or corrupt tail to the last valid record (reporting it in
// recovery() and a log line) and fdatasyncs what remains before anyone can read it.
//
// Threads. Append(), NotifyWhenWritable(), OpenReader() and the accessors are safe from any
// thread. Completion, writable and readable callbacks run on the log's sync thread (one per
// log, so never concurrently; while closing, on the thread calling Close()) — the readable
// hooks of kWritten readers on its writer thread: they must be short and must not block
// (post to your own executor); they may call Append() and NotifyWhenWritable(), but never
// Close() or the destructor.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/metrics.h"
#include "eventlog/consumer_groups.h"
#include "eventlog/errc.h"
#include "eventlog/message.h"

namespace orrery::eventlog {

namespace internal {
class Partition;
class RecordIterator;
class SyncPool;
struct LogMetrics;
}  // namespace internal

enum class Durability {
  kFsync,  // acknowledge after fdatasync (default): survives kill -9 and power loss
  kOs,     // acknowledge after write(): survives kill -9, NOT power loss or a kernel crash
};
Result<Durability> ParseDurability(std::string_view text);  // "fsync" | "os"
std::string_view DurabilityName(Durability d);

struct Options {
  uint32_t partitions = 4;                    // 1..128, fixed at creation
  uint64_t segment_size = 64ull << 20;        // roll threshold, 4 KiB..1 GiB
  int64_t retention_ms = 24ll * 3600 * 1000;  // delete sealed segments older than this (> 0)
  uint64_t max_bytes = 0;                     // total size budget of the log (0: unlimited);
                                              // enforced per partition as max_bytes/partitions
  Durability durability = Durability::kFsync;
  uint64_t max_pending_bytes = 64ull << 20;      // bound on queued, not yet durable bytes
  uint64_t max_record_bytes = 1ull << 20;        // largest encoded message; <= max_pending/2
  uint64_t index_interval_bytes = 32 << 10;      // one sparse index entry per this many bytes
  int64_t retention_check_interval_ms = 10'000;  // how often the writer applies retention
  metrics::Registry* metrics = nullptr;          // nullable; must outlive the log
  // Wall clock in ms since epoch (default: system_clock); called on the opening and writer
  // threads, so an injected clock must be thread-safe.
  std::function<int64_t()> now_ms;
};

// Validates bounds (also done by Open()).
Status ValidateOptions(const Options& options);

// The partition of a device: XXH3_64bits(device_id) % partitions. Stable across versions,
// hosts and restarts (XXH3's output is frozen since xxHash 0.8.0).
uint32_t PartitionForDevice(std::string_view device_id, uint32_t partitions);

// What a reader sees: durable records (the default), or records once written (see above).
enum class Visibility { kDurable, kWritten };

// What a completion callback receives for a durable record.
struct Appended {
  uint32_t partition = 0;
  uint64_t sequence = 0;
  uint64_t offset = 0;
  int64_t enqueued_ms = 0;
};
// Called exactly once per accepted append, on the sync thread: the record on success, or
// kFailed (an I/O error; the record may or may not be on disk) / kClosed.
using AppendCallback = std::function<void(const Result<Appended>&)>;

// Where a reader starts.
struct Position {
  enum class Kind { kEarliest, kLatest, kSequence, kEnqueuedTime };
  Kind kind = Kind::kEarliest;
  int64_t value = 0;

  static Position Earliest() { return {Kind::kEarliest, 0}; }
  // Only records appended after the reader opened.
  static Position Latest() { return {Kind::kLatest, 0}; }
  // The record with this sequence number (inclusive); before the earliest → the earliest.
  static Position Sequence(uint64_t sequence) {
    return {Kind::kSequence, static_cast<int64_t>(sequence)};
  }
  // The first record enqueued at or after `ms`; none yet → the next one appended.
  static Position EnqueuedTime(int64_t ms) { return {Kind::kEnqueuedTime, ms}; }
};

struct Event {
  uint32_t partition = 0;
  uint64_t sequence = 0;
  uint64_t offset = 0;
  int64_t enqueued_ms = 0;
  Message message;  // message.system.enqueued_time_ms == enqueued_ms
};

struct ReadBatch {
  std::vector<Event> events;
  // Sequence numbers passed over because retention deleted them before this reader got
  // there (the reader moved on to the earliest remaining record). 0 normally.
  uint64_t skipped = 0;
};

// Event Hubs' partition properties.
struct PartitionProperties {
  uint32_t partition = 0;
  uint64_t beginning_sequence = 0;  // earliest retained record (== next when empty)
  uint64_t next_sequence = 0;       // one past the last durable record
  bool empty = true;
  uint64_t last_offset = 0;      // of the last durable record (when !empty)
  int64_t last_enqueued_ms = 0;  // of the last durable record (when !empty)
  uint64_t bytes_on_disk = 0;
  size_t segments = 0;
};

struct RecoveryReport {
  uint32_t partition = 0;
  size_t segments = 0;
  uint64_t records_scanned = 0;  // records validated in the active segment
  uint64_t truncated_bytes = 0;  // torn/corrupt tail cut from the active segment
  size_t removed_segments = 0;   // segments whose header never became durable
  size_t rebuilt_indexes = 0;    // sealed segments whose .idx was missing or invalid
  std::string problem;           // what was wrong at the truncation point, if anything
};

class EventLog;

// Reads one partition in sequence order. Not thread-safe: one thread at a time (hooks
// registered with NotifyWhenReadable run on the sync thread and must not touch the reader).
// May outlive the EventLog (it then reports kClosed).
class Reader {
 public:
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  uint32_t partition() const { return partition_id_; }
  // The sequence number of the next record Read() returns.
  uint64_t next_sequence() const { return next_sequence_; }
  // One past the partition's last durable record (the most a kWritten reader's consumer may
  // store as its position). Takes the partition's lock.
  uint64_t durable_next() const;

  // Returns up to max_events visible records (durable ones unless opened kWritten), waiting until
  // at least one is available or the deadline passes (then an empty batch). kClosed once the log is
  // closed and everything durable has been read; kCorrupt if stored bytes fail their CRC.
  Result<ReadBatch> Read(size_t max_events, std::chrono::steady_clock::time_point deadline);
  // Read() without waiting.
  Result<ReadBatch> TryRead(size_t max_events) {
    return Read(max_events, std::chrono::steady_clock::time_point::min());
  }

  // One-shot readiness hook for event loops. Returns false, without keeping `hook`, when
  // Read() would return something now (or the log is closed); otherwise keeps it and runs it
  // once when new visible records arrive (on the sync thread; a kWritten reader's on the
  // writer thread) or the log closes. The hook
  // may run after this Reader is destroyed: capture what it needs by value or weakly.
  bool NotifyWhenReadable(std::function<void()> hook);

 private:
  friend class EventLog;
  Reader(std::shared_ptr<internal::Partition> partition, uint64_t next_sequence,
         Visibility visibility);
  // Positions iterator_ at next_sequence_ (or reports skipped records). REQUIRES: lock held.
  bool Locate(uint64_t* skipped);

  std::shared_ptr<internal::Partition> partition_;
  uint32_t partition_id_;
  uint64_t next_sequence_;
  Visibility visibility_;
  uint64_t end_ = 0;  // the partition's end for this reader when last located
  std::unique_ptr<internal::RecordIterator> iterator_;
};

class EventLog {
 public:
  // Opens (creating if needed) the log in `dir` and recovers every partition.
  static Result<std::unique_ptr<EventLog>> Open(const std::filesystem::path& dir, Options options);
  // Close()s.
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Stops accepting appends, makes everything already accepted durable (running its
  // callbacks), stops its threads and wakes readers and hooks. Idempotent. The directory
  // stays locked until destruction.
  // REQUIRES: not called from a callback of this log.
  void Close();

  // Appends to the partition of message.system.connection_device_id. On OK, `done` runs
  // exactly once, on the sync thread, after the record is durable (or failed). Errors
  // (nothing queued, `done` not called): kBackpressure, kTooLarge, kClosed, kFailed.
  Status Append(const Message& message, AppendCallback done);
  // Appends to an explicit partition. REQUIRES: partition < partition_count().
  Status AppendToPartition(uint32_t partition, const Message& message, AppendCallback done);

  // One-shot: returns false, without keeping `callback`, when pending bytes are already at
  // or below half of max_pending_bytes (retry the append now) or the log is closed/failed;
  // otherwise runs `callback` once on the sync thread when they drop to half the limit
  // (or the log closes).
  bool NotifyWhenWritable(std::function<void()> callback);

  // Opens a reader on `partition` (kInvalidArgument when out of range). Latest() means after
  // the last record the reader's visibility shows.
  Result<std::unique_ptr<Reader>> OpenReader(uint32_t partition, Position position,
                                             Visibility visibility = Visibility::kDurable);
  // Opens a reader at the group's checkpoint for `partition`, or at `fallback` when the group
  // has not checkpointed it.
  Result<std::unique_ptr<Reader>> OpenReaderAtCheckpoint(
      std::string_view group, uint32_t partition, Position fallback,
      Visibility visibility = Visibility::kDurable);

  ConsumerGroups& consumer_groups() { return *groups_; }

  uint32_t partition_count() const { return options_.partitions; }
  uint32_t PartitionFor(std::string_view device_id) const {
    return PartitionForDevice(device_id, options_.partitions);
  }
  Result<PartitionProperties> GetPartitionProperties(uint32_t partition) const;
  uint64_t pending_bytes() const { return pending_bytes_.load(std::memory_order_relaxed); }
  const Options& options() const { return options_; }

  // What Open() found and repaired, one entry per partition.
  const std::vector<RecoveryReport>& recovery() const { return recovery_; }

  // Applies retention now (on the writer thread) and waits for it; the writer also applies
  // it every retention_check_interval_ms. Returns the number of segments deleted.
  // REQUIRES: not called from a callback of this log.
  Result<size_t> EnforceRetention();

  // Group-commit statistics since Open() (benchmarks and tests).
  struct CommitStats {
    uint64_t commits = 0;  // writer rounds that made records durable
    uint64_t records = 0;
    uint64_t bytes = 0;  // record bytes written (headers included)
    uint64_t fsyncs = 0;
  };
  CommitStats commit_stats() const;

 private:
  struct Batch;
  struct Round;
  EventLog(std::filesystem::path dir, Options options);
  Status Start();
  // Writer thread.
  void WriterLoop();
  bool CollectRound(Round& round);
  bool AnyPending();
  void WriteRound(Round& round, int64_t now_ms);
  bool AnyWrittenReader() const;
  bool SyncerFree();
  // Sleeps until something is pending or the syncer finished a round; true: something is.
  bool WaitForWorkOrSyncer();
  // Writes what producers appended since `round` was written into it (not yet handed off).
  void WriteMore(Round& round, int64_t now_ms);
  void HandOff(Round* round);
  void WaitForSyncer();
  size_t ApplyRetention(int64_t now_ms);
  void SleepUntilWork(Round& idle_round);
  // Sync thread.
  void SyncerLoop();
  void CompleteRound(Round& round);
  void ReleasePending(uint64_t bytes);
  void SetFailed(const Error& error);
  void CollectMetrics(metrics::Sink& sink) const;

  const std::filesystem::path dir_;
  Options options_;
  int lock_fd_ = -1;
  std::vector<std::shared_ptr<internal::Partition>> partitions_;
  std::unique_ptr<ConsumerGroups> groups_;
  std::vector<RecoveryReport> recovery_;
  std::unique_ptr<internal::LogMetrics> metrics_;
  std::unique_ptr<metrics::Registry> own_registry_;  // when options_.metrics is null
  metrics::ScopedCollector collector_;

  // Producer → writer handshake (see WriterLoop).
  std::atomic<bool> writer_idle_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool wake_ = false;                // guarded by wake_mu_
  bool stopping_ = false;            // guarded by wake_mu_
  uint64_t retention_requests_ = 0;  // guarded by wake_mu_
  uint64_t retention_done_ = 0;      // guarded by wake_mu_
  size_t retention_deleted_ = 0;     // guarded by wake_mu_: result of the last requested run
  std::condition_variable retention_cv_;
  std::mutex close_mu_;  // serialises Close()
  bool closed_ = false;  // guarded by close_mu_
  std::atomic<bool> closing_{false};

  std::atomic<uint64_t> pending_bytes_{0};
  std::mutex space_mu_;
  std::vector<std::function<void()>> writable_waiters_;  // guarded by space_mu_

  std::atomic<bool> failed_{false};
  std::mutex failure_mu_;
  Error failure_;  // guarded by failure_mu_

  // Writer → sync thread hand-off: at most one round in flight.
  std::mutex pipe_mu_;
  std::condition_variable pipe_cv_;
  Round* in_flight_ = nullptr;  // guarded by pipe_mu_
  bool syncer_stop_ = false;    // guarded by pipe_mu_

  std::unique_ptr<Round[]> rounds_;                // two, used alternately
  std::vector<Batch> extra_;                       // writer: WriteMore's per-partition lots
  std::unique_ptr<internal::SyncPool> sync_pool_;  // sync thread
  int64_t last_retention_ms_ = 0;                  // writer thread
  std::thread syncer_;
  std::thread writer_;

  std::atomic<uint64_t> stat_commits_{0}, stat_records_{0}, stat_bytes_{0}, stat_fsyncs_{0};
};

}  // namespace orrery::eventlog
