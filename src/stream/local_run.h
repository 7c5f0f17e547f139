// Local runs of a Stream Analytics query over files (`orrery asa run`), as ASA's local
// testing offers: events come from JSON or CSV files, outputs go to JSON Lines files.
//
//   ORRERY_ASSIGN_OR_RETURN(auto reader, stream::EventReader::Open("events.csv"));
//   while (true) { ORRERY_ASSIGN_OR_RETURN(bool more, reader->Next(event)); if (!more) break; … }
//
//   stream::LocalRunOptions o;  o.query_file = …;  o.inputs = {{"input", "events.json"}};
//   int exit_code = stream::RunLocalCommand(o, stdout, stderr);
//
// Input files (EventReader):
//   - *.csv: RFC 4180 CSV with a header row naming the columns; fields may be quoted ("a,b",
//     "say ""hi"""), quoted fields may span lines. As ASA's CSV deserializer converts
//     strings, an unquoted field that is an integer becomes a bigint (an int64; beyond its
//     range a float), a decimal or exponent number a float, true/false a bit, null and an
//     empty field null; anything else, and every quoted field, stays a string. A row with
//     more fields than the header is an error; missing trailing fields are left out.
//   - anything else: JSON, either one array of objects, or one object per line (JSON Lines;
//     blank lines are skipped).
// Errors name the file and the line (and, for JSON Lines, the column): "a.json:3:14: …".
//
// Feeding (RunLocal): events of one file keep their order. Files are merged by event time:
// the next event fed is the earliest head among the files, its time read with the query's
// TIMESTAMP BY for that input (an input without one, or read with several different ones,
// counts as always earliest). Arrival time is event order: an event arrives at its event time,
// but never before the previous event (so the late-arrival tolerance bounds disorder as in a
// live job whose clock follows the devices); an event without a time arrives one microsecond
// after the previous one, the first at `start` (default: the wall clock).
//
// Thread safety: none needed (a command); a reader belongs to one thread.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "base/error.h"
#include "stream/stream_query.h"

namespace orrery::stream {

// Reads the events of one input file, one at a time.
class EventReader {
 public:
  enum class Format { kJson, kCsv };

  // Opens `path`: CSV when its name ends in .csv (any case), JSON otherwise. Errors: the file
  // cannot be opened; a JSON array file is read whole, bounded by max_json_array_bytes.
  static Result<std::unique_ptr<EventReader>> Open(const std::filesystem::path& path);
  // Reads events from `in`; `name` names the source in error messages.
  static std::unique_ptr<EventReader> FromStream(std::unique_ptr<std::istream> in, std::string name,
                                                 Format format);
  static std::unique_ptr<EventReader> FromText(std::string_view text, std::string name,
                                               Format format);

  virtual ~EventReader() = default;
  // The next event into `out`: true, or false at the end. Errors (BaseErrc::kParse): "<name>:
  // <line>[:<column>]: <what is wrong>".
  virtual Result<bool> Next(boost::json::object& out) = 0;
  // The line where the last event read starts (1-based).
  virtual int line() const = 0;

  static constexpr size_t kMaxJsonArrayBytes = size_t{1} << 30;
};

struct LocalInput {
  std::string name;  // the query's input name
  std::filesystem::path path;
};

struct LocalRunOptions {
  std::filesystem::path query_file;
  std::vector<LocalInput> inputs;      // streams: the query's FROM names
  std::vector<LocalInput> references;  // reference data (JOIN … ON), loaded before any event
  // Where each output's rows go, as <dir>/<output>.json (JSON Lines). "-": stdout, each row on
  // a line, preceded by the output's name and a space when the query has several outputs.
  std::filesystem::path out_dir = "out";
  EventTimePolicy policy;               // ASA's defaults: late arrival 5 s, out of order 0, adjust
  std::optional<Micros> start;          // the arrival time of events without a time; default: now
  uint64_t progress_every = 1'000'000;  // a progress line on stderr every this many events
};

// "NAME=FILE", a flag's value. Errors: BaseErrc::kInvalidArgument.
Result<LocalInput> ParseNamedFile(std::string_view flag);
// A tolerance: "5s", "500ms", "2m", "1h", "1d" (at most 21 days); "none" (only when
// `allow_none`) is nullopt, no bound. Errors: BaseErrc::kInvalidArgument.
Result<std::optional<Micros>> ParseTolerance(std::string_view text, bool allow_none);

// What the run function needs besides the query: events, and where rows go.
struct LocalRunIo {
  // Events of each stream input, in file order (the names are the query's inputs).
  std::vector<std::pair<std::string, std::unique_ptr<EventReader>>> inputs;
  std::vector<std::pair<std::string, std::unique_ptr<EventReader>>> references;
  // Receives rows as the engine produces them (several calls per target).
  std::function<Status(const std::string& target, std::vector<OutputEvent>& rows)> write;
  // Called every `progress_every` events with the count fed so far.
  std::function<void(uint64_t events)> progress;
};

struct LocalRunSummary {
  uint64_t events = 0;
  std::map<std::string, uint64_t> rows;  // per output, every output of the query listed
  EngineStats stats;
};

// Feeds every input to an engine over `query` (merged and timed as above), flushes, and
// passes rows to io.write. Errors: an input the query does not read or one it reads that is
// missing (query::Errc::kInvalidQuery), a reader's error, a limit exceeded
// (query::Errc::kLimitExceeded), io.write's error.
Result<LocalRunSummary> RunLocal(const StreamQuery& query, LocalRunIo io,
                                 const LocalRunOptions& options);

// `orrery asa run`: reads options.query_file, opens the inputs, runs, writes the outputs,
// and prints a summary line to `err`. Exit status: 0 done; 2 the query or an input is wrong
// (one line on `err` naming the file, and the line and column where known); 1 the run failed
// (a limit exceeded, an output that cannot be written).
int RunLocalCommand(const LocalRunOptions& options, std::FILE* out, std::FILE* err);

}  // namespace orrery::stream
