#include "eventlog/format.h"

#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "eventlog/crc32c.h"

namespace orrery::eventlog::format {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the on-disk format is little-endian; add byte swaps for big-endian hosts");

constexpr char kSegmentMagic[8] = {'O', 'R', 'R', 'Y', 'S', 'E', 'G', '1'};
constexpr char kIndexMagic[8] = {'O', 'R', 'R', 'Y', 'I', 'D', 'X', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kIndexHeaderSize = 48;
constexpr size_t kIndexEntrySize = 24;

template <class T>
void Put(char* at, T v) {
  std::memcpy(at, &v, sizeof v);
}

template <class T>
T Get(const char* at) {
  T v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

Error Corrupt(std::string what) {
  return Error(Errc::kCorrupt, std::move(what));
}

}  // namespace

std::string EncodeSegmentHeader(const SegmentHeader& header) {
  std::string out(kSegmentHeaderSize, '\0');
  char* p = out.data();
  std::memcpy(p, kSegmentMagic, 8);
  Put<uint32_t>(p + 8, kVersion);
  Put<uint32_t>(p + 12, header.partition);
  Put<uint64_t>(p + 16, header.base_sequence);
  Put<uint64_t>(p + 24, header.base_offset);
  Put<int64_t>(p + 32, header.created_ms);
  Put<uint32_t>(p + 40, 0);
  Put<uint32_t>(p + 44, Crc32c(0, p, 44));
  return out;
}

Result<SegmentHeader> DecodeSegmentHeader(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderSize) return Corrupt("segment header is truncated");
  const char* p = bytes.data();
  if (std::memcmp(p, kSegmentMagic, 8) != 0) return Corrupt("not an event log segment");
  if (Get<uint32_t>(p + 44) != Crc32c(0, p, 44)) return Corrupt("segment header CRC mismatch");
  if (uint32_t v = Get<uint32_t>(p + 8); v != kVersion) {
    return Corrupt(fmt::format("unsupported segment version {}", v));
  }
  SegmentHeader h;
  h.partition = Get<uint32_t>(p + 12);
  h.base_sequence = Get<uint64_t>(p + 16);
  h.base_offset = Get<uint64_t>(p + 24);
  h.created_ms = Get<int64_t>(p + 32);
  return h;
}

void AppendRecordPrefix(std::string* out, uint32_t body_length) {
  char header[kRecordHeaderSize] = {};
  Put<uint32_t>(header + 4, body_length);
  out->append(header, kRecordHeaderSize);
}

uint32_t RecordBodyLength(const char* record) {
  return Get<uint32_t>(record + 4);
}

void ChecksumBody(char* record) {
  uint32_t length = Get<uint32_t>(record + 4);
  Put<uint32_t>(record, Crc32c(0, record + kRecordHeaderSize, length));
}

void SealRecord(char* record, uint64_t sequence, int64_t enqueued_ms) {
  Put<uint64_t>(record + 8, sequence);
  Put<int64_t>(record + 16, enqueued_ms);
  Put<uint32_t>(record, Crc32c(Get<uint32_t>(record), record + 4, kRecordHeaderSize - 4));
}

RecordStatus CheckRecord(std::string_view bytes, RecordHeader* header, std::string_view* body) {
  if (bytes.size() < kRecordHeaderSize) return RecordStatus::kTruncated;
  const char* p = bytes.data();
  header->crc = Get<uint32_t>(p);
  header->length = Get<uint32_t>(p + 4);
  header->sequence = Get<uint64_t>(p + 8);
  header->enqueued_ms = Get<int64_t>(p + 16);
  if (header->length == 0 || header->length > kMaxRecordBody) return RecordStatus::kBadLength;
  if (bytes.size() - kRecordHeaderSize < header->length) return RecordStatus::kTruncated;
  uint32_t body_crc = Crc32c(0, p + kRecordHeaderSize, header->length);
  if (Crc32c(body_crc, p + 4, kRecordHeaderSize - 4) != header->crc) {
    return RecordStatus::kBadCrc;
  }
  *body = bytes.substr(kRecordHeaderSize, header->length);
  return RecordStatus::kOk;
}

std::string EncodeIndex(const IndexFile& index) {
  std::string out(kIndexHeaderSize + index.entries.size() * kIndexEntrySize + 4, '\0');
  char* p = out.data();
  std::memcpy(p, kIndexMagic, 8);
  Put<uint32_t>(p + 8, kVersion);
  Put<uint32_t>(p + 12, static_cast<uint32_t>(index.entries.size()));
  Put<uint64_t>(p + 16, index.segment_size);
  Put<uint64_t>(p + 24, index.next_sequence);
  Put<int64_t>(p + 32, index.last_ms);
  Put<uint64_t>(p + 40, index.last_position);
  char* e = p + kIndexHeaderSize;
  for (const auto& entry : index.entries) {
    Put<uint64_t>(e, entry.sequence);
    Put<int64_t>(e + 8, entry.enqueued_ms);
    Put<uint64_t>(e + 16, entry.position);
    e += kIndexEntrySize;
  }
  Put<uint32_t>(e, Crc32c(0, p, out.size() - 4));
  return out;
}

Result<IndexFile> DecodeIndex(std::string_view bytes) {
  if (bytes.size() < kIndexHeaderSize + 4) return Corrupt("index file is truncated");
  const char* p = bytes.data();
  if (std::memcmp(p, kIndexMagic, 8) != 0) return Corrupt("not an event log index");
  if (Get<uint32_t>(p + 8) != kVersion) return Corrupt("unsupported index version");
  uint32_t count = Get<uint32_t>(p + 12);
  if ((bytes.size() - kIndexHeaderSize - 4) / kIndexEntrySize != count ||
      (bytes.size() - kIndexHeaderSize - 4) % kIndexEntrySize != 0) {
    return Corrupt("index file size does not match its entry count");
  }
  if (Get<uint32_t>(p + bytes.size() - 4) != Crc32c(0, p, bytes.size() - 4)) {
    return Corrupt("index CRC mismatch");
  }
  IndexFile index;
  index.segment_size = Get<uint64_t>(p + 16);
  index.next_sequence = Get<uint64_t>(p + 24);
  index.last_ms = Get<int64_t>(p + 32);
  index.last_position = Get<uint64_t>(p + 40);
  index.entries.reserve(count);
  const char* e = p + kIndexHeaderSize;
  for (uint32_t i = 0; i < count; ++i, e += kIndexEntrySize) {
    IndexEntry entry{Get<uint64_t>(e), Get<int64_t>(e + 8), Get<uint64_t>(e + 16)};
    if (!index.entries.empty()) {
      const auto& prev = index.entries.back();
      if (entry.sequence <= prev.sequence || entry.enqueued_ms < prev.enqueued_ms ||
          entry.position <= prev.position) {
        return Corrupt("index entries are not ordered");
      }
    }
    if (entry.position < kSegmentHeaderSize || entry.position >= index.segment_size ||
        entry.sequence >= index.next_sequence) {
      return Corrupt("index entry out of range");
    }
    index.entries.push_back(entry);
  }
  return index;
}

std::string SegmentFileName(uint64_t base_sequence) {
  return fmt::format("{:020}.log", base_sequence);
}

std::string IndexFileName(uint64_t base_sequence) {
  return fmt::format("{:020}.idx", base_sequence);
}

std::optional<uint64_t> ParseSegmentFileName(std::string_view name) {
  if (name.size() != 24 || name.substr(20) != ".log") return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

}  // namespace orrery::eventlog::format
