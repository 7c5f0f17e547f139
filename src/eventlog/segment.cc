#include "eventlog/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/files.h"

namespace orrery::eventlog::internal {
namespace {

Error IoError(std::string_view what, const std::filesystem::path& path, int err) {
  return Error(Errc::kIo, fmt::format("{} {}: {}", what, path.string(), std::strerror(err)));
}

Status WriteAll(int fd, uint64_t position, const char* data, size_t n,
                const std::filesystem::path& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(position));
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write", path, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
    position += static_cast<uint64_t>(w);
  }
  return Ok();
}

}  // namespace

void SegmentState::Add(uint64_t sequence, int64_t enqueued_ms, uint64_t position,
                       uint64_t record_size, uint64_t interval) {
  if (records == 0 || position - index.back().position >= interval) {
    index.push_back({sequence, enqueued_ms, position});
  }
  if (records == 0) first_ms = enqueued_ms;
  last_ms = enqueued_ms;
  last_position = position;
  next_sequence = sequence + 1;
  size = position + record_size;
  ++records;
}

Segment::~Segment() {
  ::close(fd_);
}

Result<std::shared_ptr<Segment>> Segment::Create(const std::filesystem::path& dir,
                                                 const format::SegmentHeader& header, bool sync) {
  auto path = dir / format::SegmentFileName(header.base_sequence);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create", path, errno);
  std::shared_ptr<Segment> segment(new Segment(path, fd, header));
  std::string bytes = format::EncodeSegmentHeader(header);
  ORRERY_TRY(segment->WriteAt(0, bytes.data(), bytes.size()));
  if (sync) {
    ORRERY_TRY(segment->Sync());
    ORRERY_TRY(files::SyncDirectory(dir));
  }
  segment->published.next_sequence = header.base_sequence;
  return segment;
}

Result<std::shared_ptr<Segment>> Segment::Open(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open", file, errno);
  std::string bytes(format::kSegmentHeaderSize, '\0');
  ssize_t n;
  do {
    n = ::pread(fd, bytes.data(), bytes.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    ::close(fd);
    return IoError("cannot read", file, err);
  }
  bytes.resize(static_cast<size_t>(n));
  auto header = format::DecodeSegmentHeader(bytes);
  if (!header) {
    ::close(fd);
    return Error(Errc::kCorrupt, fmt::format("{}: {}", file.string(), header.error().message()));
  }
  std::shared_ptr<Segment> segment(new Segment(file, fd, *header));
  segment->published.next_sequence = header->base_sequence;
  return segment;
}

Status Segment::ReadAt(uint64_t position, size_t n, std::string* out) const {
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_, out->data() + done, n - done, static_cast<off_t>(position + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read", path_, errno);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  out->resize(done);
  return Ok();
}

Status Segment::WriteAt(uint64_t position, const char* data, size_t n) {
  return WriteAll(fd_, position, data, n, path_);
}

Status Segment::Sync() {
  if (::fdatasync(fd_) != 0) return IoError("cannot fdatasync", path_, errno);
  return Ok();
}

Status Segment::Truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    return IoError("cannot truncate", path_, errno);
  }
  return Ok();
}

Result<uint64_t> Segment::FileSize() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return IoError("cannot stat", path_, errno);
  return static_cast<uint64_t>(st.st_size);
}

Status RecordIterator::Fill(uint64_t position, size_t at_least) {
  size_t want = std::max(chunk_, at_least);
  want = static_cast<size_t>(std::min<uint64_t>(want, limit_ - position));
  ORRERY_TRY(segment_->ReadAt(position, want, &buffer_));
  buffer_start_ = position;
  return Ok();
}

Result<RecordIterator::Step> RecordIterator::Next(format::RecordHeader* header,
                                                  std::string_view* body) {
  if (position_ >= limit_) return Step::kEnd;
  auto available = [&] {
    if (position_ < buffer_start_ || position_ >= buffer_start_ + buffer_.size()) return size_t{0};
    return static_cast<size_t>(buffer_start_ + buffer_.size() - position_);
  };
  if (available() < format::kRecordHeaderSize) {
    ORRERY_TRY(Fill(position_, format::kRecordHeaderSize));
    if (available() < format::kRecordHeaderSize) return Step::kTruncated;
  }
  uint32_t length = format::RecordBodyLength(buffer_.data() + (position_ - buffer_start_));
  if (length == 0 || length > format::kMaxRecordBody) return Step::kBadLength;
  size_t need = format::kRecordHeaderSize + length;
  if (need > limit_ - position_) return Step::kTruncated;
  if (available() < need) {
    ORRERY_TRY(Fill(position_, need));
    if (available() < need) return Step::kTruncated;
  }
  std::string_view bytes(buffer_.data() + (position_ - buffer_start_), need);
  switch (format::CheckRecord(bytes, header, body)) {
    case format::RecordStatus::kOk:
      position_ += need;
      return Step::kRecord;
    case format::RecordStatus::kTruncated:
      return Step::kTruncated;
    case format::RecordStatus::kBadLength:
      return Step::kBadLength;
    case format::RecordStatus::kBadCrc:
      return Step::kBadCrc;
  }
  return Step::kBadCrc;
}

Result<ScanResult> ScanSegment(const std::shared_ptr<Segment>& segment, uint64_t index_interval) {
  ScanResult result;
  ORRERY_ASSIGN_OR_RETURN(result.file_size, segment->FileSize());
  result.state.next_sequence = segment->base_sequence();
  RecordIterator it(segment, format::kSegmentHeaderSize, result.file_size, 1 << 20);
  format::RecordHeader header;
  std::string_view body;
  while (true) {
    uint64_t position = it.position();
    ORRERY_ASSIGN_OR_RETURN(auto step, it.Next(&header, &body));
    if (step == RecordIterator::Step::kEnd) break;
    if (step != RecordIterator::Step::kRecord) {
      result.problem = step == RecordIterator::Step::kTruncated   ? "truncated record"
                       : step == RecordIterator::Step::kBadLength ? "invalid record length"
                                                                  : "record CRC mismatch";
      result.problem += fmt::format(" at position {}", position);
      break;
    }
    if (header.sequence != result.state.next_sequence) {
      result.problem = fmt::format("sequence {} where {} was expected at position {}",
                                   header.sequence, result.state.next_sequence, position);
      break;
    }
    if (result.state.records > 0 && header.enqueued_ms < result.state.last_ms) {
      result.problem = fmt::format("enqueued time goes backwards at position {}", position);
      break;
    }
    result.state.Add(header.sequence, header.enqueued_ms, position,
                     format::kRecordHeaderSize + header.length, index_interval);
  }
  return result;
}

}  // namespace orrery::eventlog::internal
