#include "eventlog/partition.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/files.h"
#include "base/log.h"

namespace orrery::eventlog::internal {
namespace {

// Writes a cache file (an index) without fsync: write a temporary, rename it into place. A
// crash can leave it torn or empty; its CRC and size check then make recovery rebuild it.
void WriteCacheFile(const std::filesystem::path& path, std::string_view data) {
  auto tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  bool ok = true;
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

// Moves every hook of `from` to the end of `to`.
void TakeHooks(std::vector<std::function<void()>>& from, std::vector<std::function<void()>>* to) {
  for (auto& hook : from)
    to->push_back(std::move(hook));
  from.clear();
}

void RemoveFile(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace

Result<std::shared_ptr<Segment>> Partition::CreateSegment(uint64_t base_sequence,
                                                          uint64_t base_offset, int64_t now_ms) {
  format::SegmentHeader header{config_.id, base_sequence, base_offset, now_ms};
  return Segment::Create(config_.dir, header, config_.sync);
}

Result<RecoveryReport> Partition::Recover(int64_t now_ms) {
  auto logger = log::Get("eventlog");
  RecoveryReport report;
  report.partition = config_.id;
  ORRERY_TRY(files::EnsureDirectory(config_.dir));

  std::vector<std::pair<uint64_t, std::filesystem::path>> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(config_.dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.ends_with(".tmp")) {
      RemoveFile(entry.path());  // an index write cut short
    } else if (auto base = format::ParseSegmentFileName(name)) {
      files.emplace_back(*base, entry.path());
    }
  }
  if (ec) {
    return Error(Errc::kIo, fmt::format("cannot list {}: {}", config_.dir.string(), ec.message()));
  }
  std::sort(files.begin(), files.end());

  std::deque<std::shared_ptr<Segment>> loaded;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& [base, path] = files[i];
    bool last = i + 1 == files.size();
    auto opened = Segment::Open(path);
    if (!opened) {
      // The newest segment's header is written and fsynced before any record goes into it,
      // so a bad header there means its creation was cut short: nothing in it was ever
      // acknowledged. Anywhere else it is damage we must not paper over.
      if (last && opened.error().Is(Errc::kCorrupt)) {
        logger->warn("eventlog p{}: removing {} whose creation was interrupted ({})", config_.id,
                     path.string(), opened.error().message());
        RemoveFile(path);
        RemoveFile(config_.dir / format::IndexFileName(base));
        ++report.removed_segments;
        break;
      }
      return opened.error();
    }
    std::shared_ptr<Segment> segment = *opened;
    const auto& h = segment->header();
    if (h.partition != config_.id || h.base_sequence != base) {
      return Error(Errc::kCorrupt,
                   fmt::format("{}: header names partition {} base {}, expected partition {} "
                               "base {}",
                               path.string(), h.partition, h.base_sequence, config_.id, base));
    }
    if (!loaded.empty()) {
      const auto& prev = loaded.back();
      uint64_t expected_offset = prev->OffsetAt(prev->published.size);
      if (h.base_sequence != prev->published.next_sequence || h.base_offset != expected_offset) {
        return Error(Errc::kCorrupt,
                     fmt::format("{}: starts at sequence {} offset {} but the previous segment "
                                 "ends at sequence {} offset {}",
                                 path.string(), h.base_sequence, h.base_offset,
                                 prev->published.next_sequence, expected_offset));
      }
    }
    if (!last) {
      // Sealed: trust a matching index, else rebuild it by scanning (which also validates).
      ORRERY_ASSIGN_OR_RETURN(uint64_t file_size, segment->FileSize());
      auto index_path = config_.dir / format::IndexFileName(base);
      bool loaded_index = false;
      if (auto bytes = files::ReadFile(index_path, 64 << 20)) {
        auto index = format::DecodeIndex(*bytes);
        if (index && index->segment_size == file_size && !index->entries.empty() &&
            index->entries.front().sequence == base &&
            index->entries.front().position == format::kSegmentHeaderSize) {
          auto& s = segment->published;
          s.size = file_size;
          s.next_sequence = index->next_sequence;
          s.records = index->next_sequence - base;
          s.first_ms = index->entries.front().enqueued_ms;
          s.last_ms = index->last_ms;
          s.last_position = index->last_position;
          s.index = std::move(index->entries);
          loaded_index = true;
        }
      }
      if (!loaded_index) {
        ORRERY_ASSIGN_OR_RETURN(ScanResult scan, ScanSegment(segment, config_.index_interval));
        if (!scan.problem.empty() || scan.state.records == 0) {
          return Error(
              Errc::kCorrupt,
              fmt::format("{}: sealed segment is damaged ({}); sealed segments are "
                          "fsynced before the next one is created, so this is disk "
                          "corruption: move this file and the later ones away to "
                          "start without them",
                          path.string(), scan.problem.empty() ? "no records" : scan.problem));
        }
        segment->published = std::move(scan.state);
        WriteIndexFile(*segment, segment->published);
        ++report.rebuilt_indexes;
      }
    } else {
      ORRERY_ASSIGN_OR_RETURN(ScanResult scan, ScanSegment(segment, config_.index_interval));
      report.records_scanned = scan.state.records;
      if (!scan.problem.empty()) {
        report.truncated_bytes = scan.file_size - scan.state.size;
        report.problem = scan.problem;
        logger->warn("eventlog p{}: {}: {}; truncating {} bytes after the last valid record",
                     config_.id, path.string(), scan.problem, report.truncated_bytes);
        ORRERY_TRY(segment->Truncate(scan.state.size));
      }
      // Records that reached the page cache before a crash were never acknowledged but are
      // valid; make them durable before any reader can see them.
      ORRERY_TRY(segment->Sync());
      segment->published = std::move(scan.state);
      RemoveFile(config_.dir / format::IndexFileName(base));  // the active one has none
    }
    loaded.push_back(std::move(segment));
  }

  // Remove index files whose segment is gone (retention interrupted between the two).
  for (const auto& entry : std::filesystem::directory_iterator(config_.dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() == 24 && name.ends_with(".idx")) {
      std::string log_name = name.substr(0, 20) + ".log";
      if (!std::filesystem::exists(config_.dir / log_name)) RemoveFile(entry.path());
    }
  }

  if (loaded.empty() || report.removed_segments > 0) {
    uint64_t base = 0, offset = 0;
    if (!loaded.empty()) {
      base = loaded.back()->published.next_sequence;
      offset = loaded.back()->OffsetAt(loaded.back()->published.size);
    }
    ORRERY_ASSIGN_OR_RETURN(auto fresh, CreateSegment(base, offset, now_ms));
    loaded.push_back(std::move(fresh));
  }
  if (config_.sync) {
    ORRERY_TRY(files::SyncDirectory(config_.dir));
  }

  active_ = loaded.back();
  active_state_ = active_->published;
  handed_index_ = active_state_.index.size();
  next_sequence_ = active_state_.next_sequence;
  for (const auto& s : loaded) {
    if (s->published.records > 0) last_ms_ = s->published.last_ms;
  }
  report.segments = loaded.size();
  std::lock_guard lock(mu);
  segments = std::move(loaded);
  durable_next = written_next = next_sequence_;
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    const auto& st = (*it)->published;
    if (st.records == 0) continue;
    durable_any = true;
    durable_last_offset = (*it)->OffsetAt(st.last_position);
    durable_last_ms = st.last_ms;
    break;
  }
  return report;
}

void Partition::WriteIndexFile(const Segment& segment, const SegmentState& state) const {
  format::IndexFile index;
  index.segment_size = state.size;
  index.next_sequence = state.next_sequence;
  index.last_ms = state.last_ms;
  index.last_position = state.last_position;
  index.entries = state.index;
  WriteCacheFile(config_.dir / format::IndexFileName(segment.base_sequence()),
                 format::EncodeIndex(index));
}

Status Partition::Roll(int64_t now_ms) {
  // Sealed segments are complete on disk before the next one exists (recovery relies on it).
  // The sync thread may be syncing this file for an earlier point at the same time; both
  // calls return once everything written so far is durable.
  if (config_.sync) ORRERY_TRY(active_->Sync());
  dirty_ = false;
  WriteIndexFile(*active_, active_state_);
  ORRERY_ASSIGN_OR_RETURN(
      auto next, CreateSegment(next_sequence_, active_->OffsetAt(active_state_.size), now_ms));
  sealed_unpublished_.push_back({active_, std::move(active_state_)});
  active_ = next;
  active_state_ = SegmentState{};
  active_state_.next_sequence = next_sequence_;
  handed_index_ = 0;
  // Readers may see the new, empty segment at once: they never read past their end.
  std::lock_guard lock(mu);
  segments.push_back(std::move(next));
  return Ok();
}

Status Partition::Write(std::string* batch, int64_t now_ms, std::vector<RecordMeta>* metas) {
  int64_t t = std::max(now_ms, last_ms_);
  char* data = batch->data();
  size_t size = batch->size();
  size_t chunk_start = 0;  // first byte of `batch` not yet written
  size_t pos = 0;
  while (pos < size) {
    char* record = data + pos;
    uint64_t record_size = format::kRecordHeaderSize + format::RecordBodyLength(record);
    uint64_t file_pos = active_state_.size + (pos - chunk_start);
    bool segment_has_records = active_state_.records > 0 || pos > chunk_start;
    if (segment_has_records && file_pos + record_size > config_.segment_size) {
      if (pos > chunk_start) {
        ORRERY_TRY(active_->WriteAt(active_state_.size, data + chunk_start, pos - chunk_start));
        active_state_.size += pos - chunk_start;
        dirty_ = true;
      }
      ORRERY_TRY(Roll(t));
      chunk_start = pos;
      file_pos = active_state_.size;
    }
    format::SealRecord(record, next_sequence_, t);
    metas->push_back({next_sequence_, t, active_->OffsetAt(file_pos)});
    // SegmentState::Add advances size as if written; restore it below when writing the chunk.
    uint64_t written_size = active_state_.size;
    active_state_.Add(next_sequence_, t, file_pos, record_size, config_.index_interval);
    active_state_.size = written_size;
    ++next_sequence_;
    pos += record_size;
  }
  if (pos > chunk_start) {
    ORRERY_TRY(active_->WriteAt(active_state_.size, data + chunk_start, pos - chunk_start));
    active_state_.size += pos - chunk_start;
    dirty_ = true;
  }
  last_ms_ = t;
  return Ok();
}

PublishPoint Partition::TakePublishPoint() {
  PublishPoint point;
  point.active = active_;
  const SegmentState& a = active_state_;
  point.state.size = a.size;
  point.state.next_sequence = a.next_sequence;
  point.state.records = a.records;
  point.state.first_ms = a.first_ms;
  point.state.last_ms = a.last_ms;
  point.state.last_position = a.last_position;
  point.state.index.assign(a.index.begin() + static_cast<ptrdiff_t>(handed_index_), a.index.end());
  handed_index_ = a.index.size();
  point.sealed = std::move(sealed_unpublished_);
  sealed_unpublished_.clear();
  point.next_sequence = next_sequence_;
  point.needs_sync = dirty_ && config_.sync;
  dirty_ = false;
  return point;
}

void MergePoint(PublishPoint& into, PublishPoint&& later) {
  for (auto& sealed : later.sealed)
    into.sealed.push_back(std::move(sealed));
  if (later.active != into.active) {
    // A roll between the two synced `into.active` (now among the sealed).
    into.needs_sync = later.needs_sync;
  } else {
    into.needs_sync = into.needs_sync || later.needs_sync;
  }
  into.active = std::move(later.active);
  into.state = std::move(later.state);
  into.state.index.clear();
  into.next_sequence = later.next_sequence;
}

Status Partition::Sync(const PublishPoint& point) {
  if (point.needs_sync) ORRERY_TRY(point.active->Sync());
  return Ok();
}

void Partition::PublishWritten(const PublishPoint& point,
                               std::vector<std::function<void()>>* hooks) {
  {
    std::lock_guard lock(mu);
    for (const auto& sealed : point.sealed) {
      sealed.segment->published = sealed.state;
    }
    auto& p = point.active->published;
    const auto& s = point.state;
    p.size = s.size;
    p.next_sequence = s.next_sequence;
    p.records = s.records;
    p.first_ms = s.first_ms;
    p.last_ms = s.last_ms;
    p.last_position = s.last_position;
    p.index.insert(p.index.end(), s.index.begin(), s.index.end());
    bool advanced = written_next != point.next_sequence;
    written_next = point.next_sequence;
    if (advanced) TakeHooks(written_hooks, hooks);
  }
  cv.notify_all();
}

void Partition::PublishDurable(const PublishPoint& point,
                               std::vector<std::function<void()>>* hooks) {
  {
    std::lock_guard lock(mu);
    if (point.state.records > 0) {
      durable_any = true;
      durable_last_offset = point.active->OffsetAt(point.state.last_position);
      durable_last_ms = point.state.last_ms;
    } else {
      for (auto it = point.sealed.rbegin(); it != point.sealed.rend(); ++it) {
        if (it->state.records == 0) continue;
        durable_any = true;
        durable_last_offset = it->segment->OffsetAt(it->state.last_position);
        durable_last_ms = it->state.last_ms;
        break;
      }
    }
    bool advanced = durable_next != point.next_sequence;
    durable_next = point.next_sequence;
    if (advanced) TakeHooks(readable_hooks, hooks);
  }
  cv.notify_all();
}

Result<size_t> Partition::Retain(int64_t now_ms, int64_t retention_ms, uint64_t max_bytes) {
  int64_t cutoff = now_ms - retention_ms;
  if (active_state_.records > 0 && active_state_.last_ms < cutoff) {
    ORRERY_TRY(Roll(now_ms));  // syncs the old segment; the new one holds only its header
    std::vector<std::function<void()>> none;
    PublishPoint point = TakePublishPoint();
    PublishWritten(point, &none);
    PublishDurable(point, &none);
  }
  std::vector<std::shared_ptr<Segment>> victims;
  {
    std::lock_guard lock(mu);
    uint64_t bytes = DiskBytes();
    while (segments.size() > 1) {
      const auto& front = segments.front();
      bool expired = front->published.records == 0 || front->published.last_ms < cutoff;
      bool over_budget = max_bytes > 0 && bytes > max_bytes;
      if (!expired && !over_budget) break;
      bytes -= front->published.size;
      victims.push_back(front);
      segments.pop_front();
    }
  }
  if (victims.empty()) return size_t{0};
  auto logger = log::Get("eventlog");
  for (const auto& segment : victims) {
    // Index first: a crash in between leaves a segment without an index (rebuilt), never
    // an index without a segment that recovery would have to second-guess.
    RemoveFile(config_.dir / format::IndexFileName(segment->base_sequence()));
    if (::unlink(segment->path().c_str()) != 0 && errno != ENOENT) {
      logger->error("eventlog p{}: cannot delete {}: {}", config_.id, segment->path().string(),
                    std::strerror(errno));
    }
  }
  logger->info("eventlog p{}: retention deleted {} segment(s) up to sequence {}", config_.id,
               victims.size(), victims.back()->published.next_sequence);
  if (config_.sync) ORRERY_TRY(files::SyncDirectory(config_.dir));
  cv.notify_all();  // readers in deleted segments move on
  return victims.size();
}

void Partition::Close(std::vector<std::function<void()>>* hooks) {
  {
    std::lock_guard lock(mu);
    closed = true;
    TakeHooks(readable_hooks, hooks);
    TakeHooks(written_hooks, hooks);
  }
  cv.notify_all();
}

uint64_t Partition::DiskBytes() const {
  uint64_t bytes = 0;
  for (const auto& s : segments)
    bytes += s->published.size;
  return bytes;
}

std::pair<std::shared_ptr<Segment>, uint64_t> Partition::Find(uint64_t sequence) const {
  // The last segment whose base is <= sequence.
  auto it = std::upper_bound(
      segments.begin(), segments.end(), sequence,
      [](uint64_t seq, const std::shared_ptr<Segment>& s) { return seq < s->base_sequence(); });
  const auto& segment = *std::prev(it);
  const auto& index = segment->published.index;
  auto entry =
      std::upper_bound(index.begin(), index.end(), sequence,
                       [](uint64_t seq, const format::IndexEntry& e) { return seq < e.sequence; });
  uint64_t position =
      entry == index.begin() ? format::kSegmentHeaderSize : std::prev(entry)->position;
  return {segment, position};
}

Result<uint64_t> Partition::SequenceForTime(int64_t ms) const {
  std::shared_ptr<Segment> segment;
  uint64_t position = format::kSegmentHeaderSize, limit = 0, fallback = 0;
  {
    std::lock_guard lock(mu);
    fallback = written_next;
    for (const auto& s : segments) {
      const auto& p = s->published;
      if (p.records > 0 && p.last_ms >= ms) {
        segment = s;
        limit = p.size;
        if (p.first_ms >= ms) return s->base_sequence();
        // The last index entry strictly before `ms`: the first record at or after `ms` lies
        // after it (times are non-decreasing within a partition).
        auto entry = std::lower_bound(
            p.index.begin(), p.index.end(), ms,
            [](const format::IndexEntry& e, int64_t t) { return e.enqueued_ms < t; });
        if (entry != p.index.begin()) position = std::prev(entry)->position;
        break;
      }
    }
  }
  if (!segment) return fallback;
  RecordIterator it(segment, position, limit, 64 * 1024);
  format::RecordHeader header;
  std::string_view body;
  while (true) {
    ORRERY_ASSIGN_OR_RETURN(auto step, it.Next(&header, &body));
    if (step != RecordIterator::Step::kRecord) break;
    if (header.enqueued_ms >= ms) return header.sequence;
  }
  return Error(Errc::kCorrupt, fmt::format("{}: index promises a record at or after {} ms that "
                                           "the file does not hold",
                                           segment->path().string(), ms));
}

}  // namespace orrery::eventlog::internal
