// Internal to the stream component: the parsed statements (parser.cc's output) and the bound
// plan (binder.cc's output, engine.cc's input).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "query/ast.h"
#include "query/bound_expr.h"
#include "query/functions.h"
#include "query/parser.h"
#include "stream/stream_query.h"

namespace orrery::stream::internal {

// A SELECT reads up to this many sources: FROM's and one per JOIN.
inline constexpr size_t kMaxJoinSources = 8;

// ---- parsed ----

struct SelectItem {
  query::ExprPtr expr;     // null for `*` and `path.*`
  query::ExprPtr star_of;  // `path.*`: the path
  bool star = false;       // `*`
  std::optional<std::string> alias;
  query::Position pos;
};

struct GroupItem {
  query::ExprPtr expr;
  query::ExprPtr partition_by;  // SessionWindow(…) OVER (PARTITION BY x)
};

// FROM … {CROSS | OUTER} APPLY GetArrayElements(expr) AS alias (or GetRecordProperties)
struct ApplyItem {
  bool outer = false;
  std::string function;  // as written
  query::ExprPtr arg;
  std::string alias;
  query::Position pos;
};

// [INNER | LEFT [OUTER]] JOIN name [[AS] alias] [TIMESTAMP BY expr] ON expr
struct JoinClause {
  query::Position pos;
  bool left_outer = false;
  std::string from;
  query::Position from_pos;
  std::optional<std::string> alias;
  query::ExprPtr timestamp_by;
  query::Position on_pos;  // of ON
  query::ExprPtr on;
};

// MATCH_RECOGNIZE's PATTERN: a regular expression over symbols.
struct PatternNode {
  enum class Kind : uint8_t { kSymbol, kSeq, kAlt, kRepeat };
  static constexpr uint32_t kUnbounded = UINT32_MAX;
  Kind kind = Kind::kSymbol;
  std::string symbol;  // kSymbol: the name as written, or "." (any event)
  query::Position pos;
  std::vector<PatternNode> children;  // kSeq, kAlt: the parts; kRepeat: the one repeated
  uint32_t min = 1;                   // kRepeat: * {0,∞}, + {1,∞}, ? {0,1}, {n,m}
  uint32_t max = 1;
};

struct MatchMeasure {
  query::ExprPtr expr;
  std::string alias;
  query::Position pos;
};

struct MatchDefine {
  std::string symbol;
  query::Position pos;
  query::ExprPtr condition;
};

// FROM name [TIMESTAMP BY …] MATCH_RECOGNIZE ( … ) [AS] alias
struct MatchClause {
  query::Position pos;
  query::ExprPtr duration_unit;  // LIMIT DURATION (unit, n): null without
  query::ExprPtr duration_n;
  std::vector<query::ExprPtr> partition_by;
  std::vector<MatchMeasure> measures;
  bool skip_past_last = false;  // AFTER MATCH SKIP PAST LAST ROW (else TO NEXT ROW)
  PatternNode pattern;
  std::vector<MatchDefine> defines;
  std::optional<std::string> alias;
};

struct SelectStmt {
  query::Position pos;
  std::vector<SelectItem> items;
  std::optional<std::string> into;
  query::Position into_pos;
  std::string from;
  query::Position from_pos;
  std::optional<std::string> alias;
  query::ExprPtr timestamp_by;
  std::vector<query::ExprPtr> timestamp_over;  // TIMESTAMP BY … OVER k, …
  query::ExprPtr partition_by;                 // FROM … PARTITION BY k
  std::vector<ApplyItem> applies;
  std::vector<JoinClause> joins;
  query::ExprPtr where;
  std::vector<GroupItem> group_by;
  query::ExprPtr having;
  std::unique_ptr<MatchClause> match;  // FROM … MATCH_RECOGNIZE (…)
};

// SELECT … [UNION SELECT …]…
struct Statement {
  std::vector<SelectStmt> parts;
};

struct Step {
  std::string name;
  query::Position pos;
  Statement body;
};

// CREATE TABLE name (column type, …): the schema of an input's events.
struct TableColumn {
  std::string name;
  std::string type;  // lower case, as KnownType spells it: "bigint", "nvarchar(max)", …
  query::Position pos;
  query::Position type_pos;
};

struct TableDef {
  std::string name;
  query::Position pos;
  std::vector<TableColumn> columns;
};

struct ParsedQuery {
  std::vector<TableDef> tables;
  std::vector<Step> steps;
  std::vector<Statement> statements;
};

const query::ExprOptions& StreamExprOptions(const StreamLimits& limits);
const query::FunctionRegistry& StreamFunctions();
// `[any text]` where an operand may start (not after one: `a[0]` indexes) becomes one quoted
// name, so a column may be written `[my field]` as in FROM and INTO (ASA has no array
// literals; `[1]`, `['x']` and lists with commas stay arrays).
void QuoteBracketedNames(std::vector<query::Token>& tokens);
// Throws QueryError.
ParsedQuery ParseStatements(query::TokenCursor& in, query::ExpressionParser& parser,
                            const StreamLimits& limits);

// ---- bound ----

enum class AggKind : uint8_t {
  kCount,
  kCountDistinct,
  kSum,
  kAvg,
  kMin,
  kMax,
  kStdev,
  kStdevp,
  kVar,
  kVarp,
  // The ranked and collecting aggregates. Their argument, as the engine feeds it:
  kTopOne,          // [value, order key…]: the first by `order`
  kCollect,         // the value
  kCollectTop,      // [value, order key…]: the first `top` by `order`, as [{rank, value}]
  kPercentileCont,  // the ORDER BY value; `order[0].desc` gives the direction
  kPercentileDisc,
};

struct OrderKey {
  query::BoundExpr expr;
  bool desc = false;
};

struct AggSpec {
  AggKind kind = AggKind::kCount;
  bool rows = false;            // COUNT(*) / COUNT()
  bool whole_event = false;     // TopOne(), Collect(), CollectTop(n): the event is the value
  query::BoundExpr arg;         // the value (not for rows, whole_event or the percentiles)
  std::vector<OrderKey> order;  // TopOne, CollectTop; the percentiles: their one key
  uint32_t top = 0;             // CollectTop(n)
  double percentile = 0;        // PERCENTILE_CONT(p), PERCENTILE_DISC(p): p in [0, 1]
};

// An analytic function: computed for every event the FROM yields (after APPLY), in time order,
// before WHERE, over the earlier events of its partition within `duration`.
enum class AnalyticKind : uint8_t {
  kLag,        // the value `offset` matching events back
  kLast,       // the value of the newest matching event, this one included
  kIsFirst,    // 1 when this is the first matching event of its tumbling interval, else 0
  kAggregate,  // `agg` over the matching events within `duration`, this one included
  // AnomalyDetection_SpikeAndDip, AnomalyDetection_ChangePoint: {Score, IsAnomaly} of `value`
  // against the last `history` numeric matching values within `duration` (anomaly.h).
  kSpikeAndDip,
  kChangePoint,
};

struct AnalyticSpec {
  AnalyticKind kind = AnalyticKind::kLag;
  std::string name;                          // LAG, LAST, ISFIRST or the aggregate, for messages
  std::optional<query::BoundExpr> value;     // LAG, LAST: nullopt for `*` (the whole event)
  std::optional<query::BoundExpr> fallback;  // LAG, LAST: the default, on the current event
  uint32_t offset = 1;                       // LAG
  AggSpec agg;                               // kAggregate
  std::vector<query::BoundExpr> partition;
  std::optional<query::BoundExpr> when;
  Micros duration = 0;  // LIMIT DURATION; ISFIRST: the interval
  // The anomaly detectors: confidence in [1, 100], historySize, SpikeAndDip's mode (0 spikes,
  // 1 dips, 2 spikes and dips: AnomalySide).
  double confidence = 0;
  uint32_t history = 0;
  uint8_t side = 0;
};

// {CROSS | OUTER} APPLY: every element of `arg` (an array: {ArrayIndex, ArrayValue}; a record
// with properties: {PropertyName, PropertyValue}) is a row; OUTER keeps an event without any,
// with nulls. The records are roots 2, 3, … in the order of the APPLYs.
struct ApplySpec {
  bool outer = false;
  bool properties = false;  // GetRecordProperties (else GetArrayElements)
  query::BoundExpr arg;
  std::string alias;
};

enum class WindowKind : uint8_t { kNone, kTumbling, kHopping, kSliding, kSession, kSnapshot };

struct WindowSpec {
  WindowKind kind = WindowKind::kNone;
  Micros size = 0;                            // tumbling, hopping, sliding; session: the timeout
  Micros hop = 0;                             // hopping
  Micros offset = 0;                          // tumbling, hopping
  Micros max_duration = 0;                    // session
  std::optional<query::BoundExpr> partition;  // session OVER (PARTITION BY …)
  // One of Windows(…): its id from Window('id', …) (System.Window().Id; null without one).
  std::optional<std::string> id;
};

struct Projection {
  query::BoundExpr expr;
  std::string name;           // empty: the last member name of the path as the event spells it
  bool star = false;          // `*`, `alias.*`: every member of the event
  bool star_applies = false;  // `*`: and every APPLY's record, under its alias
  bool star_of = false;       // `path.*`: every member of expr's object
  // A path into the source of a LEFT OUTER JOIN (its root): null, not left out, when that
  // source has no match. -1: none.
  int outer_root = -1;
};

// Source i of a SELECT with JOINs (0: FROM's, i: the i-th JOIN's) is read through root
// SourceRoot(i): root 1 stays the row's extras.
constexpr uint32_t SourceRoot(size_t source) {
  return source == 0 ? 0 : static_cast<uint32_t>(source + 1);
}

// The JOIN that brings source `index + 1` (SelectPlan::joins[index]).
struct JoinSpec {
  bool left_outer = false;
  int reference = -1;  // reference data: an index into Plan::references
  int sink = -1;       // a stream: the sink its rows come from (a WITH step or a hidden one)
  // ON's equality terms: left_keys[i] (reading earlier sources) = right_keys[i] (this one).
  std::vector<query::BoundExpr> left_keys;
  std::vector<query::BoundExpr> right_keys;
  std::optional<query::BoundExpr> residual;  // ON's other terms
  // A stream: the time of this source's event minus source 0's is within [lo, hi].
  Micros lo = 0;
  Micros hi = 0;
};

// MATCH_RECOGNIZE, bound (stream/match_recognize.h runs it). The pattern is a program for a
// backtracking-free NFA simulation in priority order (a Pike VM): kSplit prefers `x` to `y`.
// DEFINE and MEASURES read root 0 (DEFINE: the event being matched; MEASURES: the match's last
// event) and root 1, where "\x01m<i>" is slot i's value and "\x01c" Classifier()'s list.
struct MatchInst {
  enum class Op : uint8_t { kSymbol, kSplit, kJump, kMatch };
  Op op = Op::kMatch;
  int symbol = -1;  // kSymbol
  int x = 0;        // kSplit (preferred), kJump: the target
  int y = 0;        // kSplit: the other
};

// An aggregate over the events a match has mapped to `symbol` so far (-1: all of its events).
struct MatchSlot {
  enum class Kind : uint8_t { kFirst, kLast, kMin, kMax };
  Kind kind = Kind::kLast;
  int symbol = -1;
  query::BoundExpr field;  // on root 0, the event
};

struct MatchSpec {
  std::vector<MatchInst> program;                       // starts at 0
  std::vector<std::string> symbols;                     // as first written in PATTERN
  std::vector<std::optional<query::BoundExpr>> define;  // per symbol; nullopt: any event
  std::vector<std::vector<size_t>> define_slots;        // per symbol: the slots DEFINE reads
  std::vector<MatchSlot> slots;
  std::vector<query::BoundExpr> partition;
  std::vector<std::string> partition_names;  // the output columns of the partition key
  std::vector<query::BoundExpr> measures;
  std::vector<std::string> measure_names;
  bool classifier = false;  // MEASURES call Classifier()
  Micros duration = 0;      // LIMIT DURATION: a match's events lie within [first, first + it)
  bool skip_past_last = false;
};

inline std::string MatchSlotName(size_t i) {
  return "\x01m" + std::to_string(i);
}
inline constexpr std::string_view kClassifierName =
    "\x01"
    "c";

// One SELECT. Roots: 0 the event (windowed rows: an empty object), 1 the row's extras
// (kTs: System.Timestamp(); kKey<i>: the GROUP BY values; kAgg<i>: the aggregates; kAnalytic<i>:
// the analytic functions' values), 2… the APPLY records or, with JOINs (not both in one
// SELECT), the sources joined after FROM's (SourceRoot).
//
// A SELECT whose first JOIN is of two streams reads neither an input nor a step directly:
// each side comes through a sink (`left_sink`, joins[0].sink); a side that is an input is
// read by a hidden pass-through SELECT (its TIMESTAMP BY, its event-time policy) writing a
// hidden step.
struct SelectPlan {
  int source_step = -1;  // reads a WITH step …
  int input = -1;        // … or an input
  std::optional<query::BoundExpr> timestamp_by;
  // Substreams: TIMESTAMP BY … OVER's keys, then PARTITION BY's. Each key has its own clock
  // (out-of-order policy, reorder buffer, watermark), windows and analytic histories.
  std::vector<query::BoundExpr> substream;
  bool uses_partition = false;  // reads PartitionId (the partition the event came on)
  std::optional<query::BoundExpr> where;
  std::vector<Projection> items;
  std::vector<query::BoundExpr> keys;  // GROUP BY expressions other than the window
  std::vector<AggSpec> aggs;
  std::vector<AnalyticSpec> analytics;
  std::vector<ApplySpec> applies;
  WindowSpec window;
  std::optional<query::BoundExpr> having;
  bool uses_timestamp = false;  // the projections read System.Timestamp() (non-windowed)
  bool uses_window = false;     // the projections or HAVING read System.Window()
  int sink = 0;                 // index into Plan::sinks
  std::vector<JoinSpec> joins;  // in order; only joins[0] may be of a stream
  int left_sink = -1;           // a stream JOIN: the sink source 0's rows come from
  bool pass_through = false;    // a hidden SELECT * of a JOIN's side: events go on as they are
  // A hidden SELECT of MATCH_RECOGNIZE: its events go to the matcher, which yields one row per
  // match (the partition key and the measures) at the time of the match's last event.
  std::shared_ptr<const MatchSpec> match;
  bool stream_join() const { return !joins.empty() && joins[0].reference < 0; }
};

// An input's CREATE TABLE: its events' declared columns. An event fits when every declared
// column it has is null or of its type (a float column also takes integers, converted; a
// datetime column strings that are date-times, written as ASA writes them); one that does not
// is dropped (ASA: "in case of conversion errors, CREATE TABLE will drop the rows").
enum class ColumnType : uint8_t { kBigint, kFloat, kString, kDatetime, kBit, kRecord, kArray };

struct Schema {
  std::vector<std::pair<std::string, ColumnType>> columns;  // names matched ignoring case
};

enum class Fit : uint8_t { kFits, kConverted, kDropped };
// Checks `event` against `schema`; kConverted: `converted` holds the event with its values
// converted.
Fit Conform(const Schema& schema, const boost::json::object& event, boost::json::object& converted);

struct Sink {
  std::string name;
  int step = -1;               // a WITH step (feeds selects) or, when -1, an output
  std::vector<int> producers;  // selects writing here
  std::vector<int> consumers;  // selects reading it
};

struct Plan {
  StreamLimits limits;
  std::vector<SelectPlan> selects;  // in an order where producers come before consumers
  std::vector<Sink> sinks;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<std::string> references;                   // reference data inputs the query joins
  std::vector<std::optional<Schema>> input_schemas;      // per input: its CREATE TABLE
  std::vector<std::optional<Schema>> reference_schemas;  // per reference input
};

inline constexpr std::string_view kTsName = "\x01ts";
inline constexpr std::string_view kWindowName = "\x01win";  // System.Window(): {"Id": …}
// The extras' names of the analytic functions' values: "\x01n0", "\x01n1", …
inline std::string AnalyticName(size_t i) {
  return "\x01n" + std::to_string(i);
}

// `reference_inputs`: the inputs that are reference data. Throws QueryError.
Plan BindQuery(const ParsedQuery& q, const StreamLimits& limits,
               const std::vector<std::string>& reference_inputs);

}  // namespace orrery::stream::internal
