// The input file of Azure Digital Twins' Import Jobs API: newline-delimited JSON (NDJSON) in
// sections —
//
//   {"Section": "Header"}
//   {"fileVersion": "1.0.0", "author": "…", "organization": "…"}
//   {"Section": "Models"}
//   {"@id": "dtmi:ex:Room;1", "@type": "Interface", …}          one DTDL Interface a line
//   {"Section": "Twins"}
//   {"$dtId": "room1", "$metadata": {"$model": "dtmi:ex:Room;1"}, properties…}
//   {"Section": "Relationships"}
//   {"$dtId": "room1", "$relationshipId": "r1", "$targetId": "floor1",
//    "$relationshipName": "isPartOf", properties…}
//
// The header comes first; Models, Twins and Relationships are optional but come in that order
// (a section's marker may repeat, as some exporters write it before every line; a section may
// not come back after a later one). Blank lines are skipped, a UTF-8 byte order mark and CRLF
// line ends are accepted.
//
// ImportReader reads a stream line by line — bounded: a line is at most max_line_bytes, and a
// section at most its entity limit — and checks the structure and each entity's shape; it does
// not validate against models (the import job does, through ModelStore and TwinGraph).
// Problems are per line: a line that is not JSON or not an entity of its section is reported
// and skipped; a broken structure (no header, an unknown or out-of-order section, a limit) is
// fatal and ends the reading.
//
// Thread safety: an ImportReader is used by one thread at a time.
#pragma once

#include <cstddef>
#include <istream>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

namespace orrery::twins {

enum class ImportSection { kNone, kHeader, kModels, kTwins, kRelationships };
// "Header", "Models", "Twins", "Relationships" ("" for kNone).
std::string_view SectionName(ImportSection s);

struct ImportFileLimits {
  size_t max_line_bytes = 2 << 20;  // a model may be 1 MB; its line a little more
  size_t max_models = 10'000;       // ADT's limits for one import job
  size_t max_twins = 2'000'000;
  size_t max_relationships = 10'000'000;
  size_t max_problems = 1000;  // problems kept (all are counted)
};

struct ImportEntity {
  ImportSection section = ImportSection::kNone;
  size_t line = 0;  // 1-based
  boost::json::object value;
  // The model's @id, the twin's $dtId, or the relationship's "<$dtId>/<$relationshipId>".
  std::string id;
};

struct ImportProblem {
  size_t line = 0;  // 1-based; 0 for the file as a whole (e.g. a read error)
  ImportSection section = ImportSection::kNone;
  std::string message;
  bool fatal = false;
};

class ImportReader {
 public:
  explicit ImportReader(std::istream& in, ImportFileLimits limits = {});

  // The next entity (model, twin or relationship); nullopt at the end of the file or after a
  // fatal problem. Lines that are not entities are checked (markers, the header) or reported.
  std::optional<ImportEntity> Next();

  // The first limits.max_problems problems, in line order; problem_count() counts them all.
  const std::vector<ImportProblem>& problems() const { return problems_; }
  size_t problem_count() const { return problem_count_; }
  bool fatal() const { return fatal_; }
  // Lines read so far, the current section, and the header object (empty until read).
  size_t line() const { return line_; }
  ImportSection section() const { return section_; }
  const boost::json::object& header() const { return header_; }
  // Entities returned so far in `s`.
  size_t count(ImportSection s) const;

 private:
  enum class Read { kLine, kTooLong, kEnd, kError };
  Read ReadLine(std::string& out);
  void Problem(std::string message, bool fatal = false);
  // A {"Section": "…"} marker: false when `o` is none; else applies it (or reports).
  bool Marker(const boost::json::object& o);
  std::optional<ImportEntity> Entity(boost::json::object o);

  std::istream& in_;
  ImportFileLimits limits_;
  size_t line_ = 0;
  ImportSection section_ = ImportSection::kNone;
  bool header_line_seen_ = false;
  bool fatal_ = false;
  bool ended_ = false;
  boost::json::object header_;
  std::vector<ImportProblem> problems_;
  size_t problem_count_ = 0;
  size_t counts_[5] = {};
  std::set<std::string, std::less<>> model_ids_;  // duplicates are reported
  std::string buffer_;                            // read ahead, not yet split into lines
  size_t buffer_pos_ = 0;
};

}  // namespace orrery::twins
