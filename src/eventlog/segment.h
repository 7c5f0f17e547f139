// Segment files: one append-only file of records (see format.h), written by the log's writer
// thread with pwrite and read by any number of readers with pread. A Segment is shared
// (std::shared_ptr) so that a reader can finish with a file that retention has unlinked.
//
// Internal to the eventlog component.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "eventlog/format.h"

namespace orrery::eventlog::internal {

// What is known about the records of a segment. The writer thread keeps its own copy for the
// segment it writes; readers see the copy published under the partition's mutex.
struct SegmentState {
  uint64_t size = format::kSegmentHeaderSize;  // bytes of the file holding valid records
  uint64_t next_sequence = 0;                  // one past the last record's sequence number
  uint64_t records = 0;
  int64_t first_ms = 0;  // time of the first record (valid when records > 0)
  int64_t last_ms = 0;   // time of the last record (valid when records > 0)
  uint64_t last_position = 0;
  std::vector<format::IndexEntry> index;

  // Accounts for a record at `position`, indexing it when it is the first record or at least
  // `interval` bytes lie since the last index entry. Writer and recovery share this rule.
  void Add(uint64_t sequence, int64_t enqueued_ms, uint64_t position, uint64_t record_size,
           uint64_t interval);
};

class Segment {
 public:
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  // Creates <dir>/<base>.log holding only its header. With `sync`, the file and the directory
  // entry are durable on return.
  static Result<std::shared_ptr<Segment>> Create(const std::filesystem::path& dir,
                                                 const format::SegmentHeader& header, bool sync);
  // Opens an existing segment (read-write) and validates its header.
  static Result<std::shared_ptr<Segment>> Open(const std::filesystem::path& file);

  const std::filesystem::path& path() const { return path_; }
  const format::SegmentHeader& header() const { return header_; }
  uint64_t base_sequence() const { return header_.base_sequence; }
  // The offset (see format.h) of the byte at `position` in this file.
  uint64_t OffsetAt(uint64_t position) const {
    return header_.base_offset + (position - format::kSegmentHeaderSize);
  }

  // Reads up to `n` bytes at `position` into `out` (resized to what was read: short only at
  // the end of the file). Any thread.
  Status ReadAt(uint64_t position, size_t n, std::string* out) const;
  // Writer thread only.
  Status WriteAt(uint64_t position, const char* data, size_t n);
  Status Sync();
  Status Truncate(uint64_t size);
  Result<uint64_t> FileSize() const;

  // Published state; guarded by the owning partition's mutex.
  SegmentState published;

 private:
  Segment(std::filesystem::path path, int fd, format::SegmentHeader header)
      : path_(std::move(path)), fd_(fd), header_(header) {}

  std::filesystem::path path_;
  int fd_;
  format::SegmentHeader header_;
};

// Iterates over the records of one segment in [position, limit) with buffered preads. The
// header and body returned stay valid until the next call.
class RecordIterator {
 public:
  enum class Step { kRecord, kEnd, kTruncated, kBadLength, kBadCrc };

  RecordIterator(std::shared_ptr<Segment> segment, uint64_t position, uint64_t limit,
                 size_t chunk = 256 * 1024)
      : segment_(std::move(segment)), position_(position), limit_(limit), chunk_(chunk) {}

  // kRecord advances past the record returned; every other step leaves the position alone.
  Result<Step> Next(format::RecordHeader* header, std::string_view* body);

  const std::shared_ptr<Segment>& segment() const { return segment_; }
  uint64_t position() const { return position_; }
  uint64_t limit() const { return limit_; }
  void set_limit(uint64_t limit) { limit_ = limit; }

 private:
  Status Fill(uint64_t position, size_t at_least);

  std::shared_ptr<Segment> segment_;
  uint64_t position_;
  uint64_t limit_;
  size_t chunk_;
  std::string buffer_;
  uint64_t buffer_start_ = 0;  // file position of buffer_[0]
};

// The result of validating a whole segment file (recovery, index rebuilds).
struct ScanResult {
  SegmentState state;  // of the valid prefix
  uint64_t file_size = 0;
  std::string problem;  // empty when the file ends exactly after a valid record
};

// Reads `segment` from its first record, checking framing, CRCs, consecutive sequence numbers
// from the base sequence and non-decreasing times; stops at the first bad record.
Result<ScanResult> ScanSegment(const std::shared_ptr<Segment>& segment, uint64_t index_interval);

}  // namespace orrery::eventlog::internal
