// One partition of the event log: its segments, the writer's view of the active segment,
// the view published to readers, recovery and retention. Internal to the eventlog component;
// EventLog drives it.
//
// Design note (who touches what):
//  - Producers append encoded records to `pending` under `append_mu` (any thread).
//  - The writer thread alone writes files: Write() assigns sequence numbers and times,
//    finishes CRCs, pwrites and rolls segments; TakePublishPoint() then captures what it
//    wrote as a PublishPoint and hands it to the sync thread.
//  - The writer then PublishWritten()s the point: copies it into the segments' `published`
//    state under `mu` and advances `written_next`, the end readers opened with
//    Visibility::kWritten look at. The sync thread fdatasyncs the point (Sync()) and
//    PublishDurable()s it: advances `durable_next`, the end every other reader looks at.
//    Points are published in the order they were taken. Meanwhile the writer already writes
//    the next batch, so writing and syncing overlap. A durable reader never sees an
//    un-durable record, and neither thread waits for readers (they hold `mu` only to look up
//    positions; they read files with pread outside it).
//  - Rolling seals the active segment (fdatasync, then its .idx) before creating the next one
//    (header, fdatasync, directory fsync), so every segment but the last is complete on disk.
//    Recovery relies on that: only the last segment can have a torn tail.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/error.h"
#include "eventlog/event_log.h"
#include "eventlog/segment.h"

namespace orrery::eventlog::internal {

// An accepted append waiting for durability.
struct Completion {
  AppendCallback callback;
  int64_t enqueue_ns = 0;  // steady clock, for the latency histogram
};

struct RecordMeta {
  uint64_t sequence = 0;
  int64_t enqueued_ms = 0;
  uint64_t offset = 0;
};

// A segment sealed by a roll, with its final state.
struct Sealed {
  std::shared_ptr<Segment> segment;
  SegmentState state;
};

// What the writer has written up to a moment: visible to kWritten readers by
// PublishWritten(), made durable by Sync(), visible to every reader by PublishDurable().
struct PublishPoint {
  std::shared_ptr<Segment> active;
  SegmentState state;          // the active segment's; `index` holds only the new entries
  std::vector<Sealed> sealed;  // segments rolled since the previous point, oldest first
  uint64_t next_sequence = 0;
  bool needs_sync = false;  // the active segment was written since the previous point
};

// Folds `later` (taken after `into`, neither synced yet) into `into`: one Sync() and one
// PublishDurable() of the result cover both. Index entries are not kept (PublishWritten has
// published each point's own).
void MergePoint(PublishPoint& into, PublishPoint&& later);

struct PartitionConfig {
  uint32_t id = 0;
  std::filesystem::path dir;
  uint64_t segment_size = 0;
  uint64_t index_interval = 0;
  bool sync = true;  // fdatasync (Durability::kFsync)
};

class Partition {
 public:
  explicit Partition(PartitionConfig config) : config_(std::move(config)) {}
  uint32_t id() const { return config_.id; }

  // Opens or creates the partition directory and recovers it. Before the writer starts.
  Result<RecoveryReport> Recover(int64_t now_ms);

  // ---- Append side (any thread) ----
  std::mutex append_mu;
  std::string pending;  // records (format::AppendRecordPrefix + body) awaiting the writer
  std::vector<Completion> completions;  // one per record in `pending`, in order
  bool accepting = true;

  // ---- Writer thread only ----
  // Writes the records in `batch` (prepared by producers: format::AppendRecordPrefix, body,
  // format::ChecksumBody), all with time max(now_ms, last time), rolling segments as they
  // fill, and appends one RecordMeta per record to `metas`.
  Status Write(std::string* batch, int64_t now_ms, std::vector<RecordMeta>* metas);
  // Captures everything written since the previous point.
  PublishPoint TakePublishPoint();
  // Makes the point visible to kWritten readers; moves their due hooks to `hooks`.
  void PublishWritten(const PublishPoint& point, std::vector<std::function<void()>>* hooks);
  // Deletes sealed segments whose newest record is older than now_ms - retention_ms, then the
  // oldest sealed ones while the partition holds more than max_bytes (0: no size limit).
  // An active segment whose newest record has expired is rolled first so it can go too.
  // REQUIRES: every point taken has been published (no write in flight).
  Result<size_t> Retain(int64_t now_ms, int64_t retention_ms, uint64_t max_bytes);

  // ---- Sync thread (or the writer thread when nothing is in flight) ----
  // fdatasyncs the point's active segment if needed (and sync is on).
  Status Sync(const PublishPoint& point);
  // Makes the point (published written before) visible to every reader; moves due readable
  // hooks to `hooks`.
  void PublishDurable(const PublishPoint& point, std::vector<std::function<void()>>* hooks);
  // Marks the partition closed and moves every readable hook to `hooks`.
  void Close(std::vector<std::function<void()>>* hooks);

  // ---- Readers (any thread) ----
  std::atomic<int> written_readers{0};  // open Visibility::kWritten readers
  mutable std::mutex mu;
  std::condition_variable cv;  // notified on PublishWritten(), PublishDurable() and Close()
  // Guarded by mu:
  std::deque<std::shared_ptr<Segment>> segments;  // oldest first; never empty after Recover
  uint64_t durable_next = 0;                      // one past the last durable record
  uint64_t written_next = 0;                      // one past the last written record
  // The last durable record (GetPartitionProperties), when there is one.
  bool durable_any = false;
  uint64_t durable_last_offset = 0;
  int64_t durable_last_ms = 0;
  bool closed = false;
  std::vector<std::function<void()>> readable_hooks;  // of kDurable readers
  std::vector<std::function<void()>> written_hooks;   // of kWritten readers

  // One past the last record a reader of `visibility` may see. REQUIRES: mu held.
  uint64_t end(Visibility visibility) const {
    return visibility == Visibility::kWritten ? written_next : durable_next;
  }

  // REQUIRES: mu held.
  uint64_t earliest() const { return segments.front()->base_sequence(); }
  uint64_t DiskBytes() const;
  // The segment holding `sequence` and the position of the last indexed record at or before
  // it. REQUIRES: mu held, earliest() <= sequence < written_next.
  std::pair<std::shared_ptr<Segment>, uint64_t> Find(uint64_t sequence) const;

  // The sequence number of the first written record enqueued at or after `ms`, or
  // written_next when there is none yet (a durable reader placed there waits for it to become
  // durable). Takes mu itself.
  Result<uint64_t> SequenceForTime(int64_t ms) const;

 private:
  Status Roll(int64_t now_ms);
  void WriteIndexFile(const Segment& segment, const SegmentState& state) const;
  Result<std::shared_ptr<Segment>> CreateSegment(uint64_t base_sequence, uint64_t base_offset,
                                                 int64_t now_ms);

  const PartitionConfig config_;
  // Writer state.
  std::shared_ptr<Segment> active_;
  SegmentState active_state_;
  size_t handed_index_ = 0;  // entries of active_state_.index already in a PublishPoint
  std::vector<Sealed> sealed_unpublished_;
  uint64_t next_sequence_ = 0;
  int64_t last_ms_ = 0;
  bool dirty_ = false;  // written since the last PublishPoint
};

}  // namespace orrery::eventlog::internal
