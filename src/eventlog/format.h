// The event log's on-disk format: segment headers, record framing and sparse index files.
// Pure functions over bytes (no I/O); docs/adr/0006-eventlog-format.md explains the choices.
//
// A partition directory holds segments named by the sequence number of their first record,
// "<20 digits>.log", each with an optional "<20 digits>.idx" (a rebuildable cache).
//
// Segment file:  header (48 bytes), then records back to back.
//   header:  0 magic "ORRYSEG1" | 8 u32 version (1) | 12 u32 partition | 16 u64 base sequence
//            24 u64 base offset | 32 i64 created (ms since epoch) | 40 u32 reserved (0)
//            44 u32 CRC32C of bytes [0, 44)
// Record:    0 u32 CRC32C | 4 u32 length of the body | 8 u64 sequence number
//            16 i64 enqueued time (ms since epoch) | 24 body (an encoded eventlog::Message)
//            The CRC covers the body followed by header bytes [4, 24): producers checksum
//            the body on their own threads, and the writer thread, which assigns sequence
//            and time, only extends it over 20 bytes.
//
// A record's offset is its byte position in the partition's record stream, headers excluded:
// segment base offset + (position in the file - 48). The next segment's base offset is the
// previous one's plus its record bytes, so offsets are unique and increasing for the life of
// the partition, and also survive retention.
//
// All integers are little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "eventlog/errc.h"

namespace orrery::eventlog::format {

inline constexpr size_t kSegmentHeaderSize = 48;
inline constexpr size_t kRecordHeaderSize = 24;
// Upper bound for a record body on disk: a length beyond it marks corruption.
inline constexpr uint32_t kMaxRecordBody = 16 << 20;

struct SegmentHeader {
  uint32_t partition = 0;
  uint64_t base_sequence = 0;
  uint64_t base_offset = 0;
  int64_t created_ms = 0;
  bool operator==(const SegmentHeader&) const = default;
};

std::string EncodeSegmentHeader(const SegmentHeader& header);
// kCorrupt on a short buffer, wrong magic or version, or a CRC mismatch.
Result<SegmentHeader> DecodeSegmentHeader(std::string_view bytes);

struct RecordHeader {
  uint32_t crc = 0;
  uint32_t length = 0;
  uint64_t sequence = 0;
  int64_t enqueued_ms = 0;
};

// Appends a record header with the body length set and the CRC, sequence number and time
// left zero. The caller appends the body, then calls ChecksumBody() (producer thread); the
// writer thread later fills sequence and time with SealRecord().
void AppendRecordPrefix(std::string* out, uint32_t body_length);
// Stores the CRC32C of the body in the CRC field. REQUIRES: the body follows the header.
void ChecksumBody(char* record);
// Reads the body length written by AppendRecordPrefix. REQUIRES: kRecordHeaderSize bytes.
uint32_t RecordBodyLength(const char* record);
// Fills sequence and time and extends the body's CRC over them. REQUIRES: ChecksumBody().
void SealRecord(char* record, uint64_t sequence, int64_t enqueued_ms);

enum class RecordStatus {
  kOk,
  kTruncated,  // fewer bytes than the header or the body needs
  kBadLength,  // length of zero or beyond kMaxRecordBody
  kBadCrc,
};

// Validates the record at the start of `bytes`. On kOk, *header and *body are set; on
// kTruncated with a readable header, header->length tells how many bytes the record needs.
RecordStatus CheckRecord(std::string_view bytes, RecordHeader* header, std::string_view* body);

// Sparse index: one entry per `index interval` bytes of a segment, always including the
// first record. Entries are ordered by sequence, time and position alike.
struct IndexEntry {
  uint64_t sequence = 0;
  int64_t enqueued_ms = 0;
  uint64_t position = 0;  // byte position of the record in its segment file
  bool operator==(const IndexEntry&) const = default;
};

// Index file (".idx") of a sealed segment:
//   0 magic "ORRYIDX1" | 8 u32 version (1) | 12 u32 entry count | 16 u64 segment file size
//   24 u64 next sequence | 32 i64 last record's time | 40 u64 last record's position
//   48 entries (24 bytes each: sequence, time, position) | u32 CRC32C of everything before
struct IndexFile {
  uint64_t segment_size = 0;
  uint64_t next_sequence = 0;
  int64_t last_ms = 0;
  uint64_t last_position = 0;
  std::vector<IndexEntry> entries;
  bool operator==(const IndexFile&) const = default;
};

std::string EncodeIndex(const IndexFile& index);
// kCorrupt on any inconsistency (size, CRC, count, unordered entries).
Result<IndexFile> DecodeIndex(std::string_view bytes);

// "00000000000000000042.log" / ".idx" for base sequence 42.
std::string SegmentFileName(uint64_t base_sequence);
std::string IndexFileName(uint64_t base_sequence);
// The base sequence of a segment file name; nullopt if `name` is not one.
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);

}  // namespace orrery::eventlog::format
