// The event-time engine for one partition.
//
// Design note. Each SELECT is a node. A node reading an input first assigns event time:
// TIMESTAMP BY (or the arrival time), then the late-arrival policy (an event older than
// arrival - late tolerance is adjusted to that, or dropped), then the out-of-order policy (an
// event older than the newest event time seen minus the out-of-order tolerance is adjusted
// to that, or dropped). The node's watermark W = max(newest - out-of-order tolerance,
// arrival - late tolerance) promises that every later event has time >= W. Events wait in a
// reorder buffer until W reaches them and are then released in time order (ties by arrival).
//
// Windows are (start, end]. A windowed node keeps, per open window and GROUP BY key, the
// aggregate states; a window is final once W > end (an event at exactly W could still
// belong to it), and then yields its rows with System.Timestamp() = end, in end order.
// A node forwards its rows to its sink: an output collects them; a WITH step passes them to
// the nodes reading it, and its watermark is the least of its producers' (UNION parts).
// Rows a node produces never have a time below the watermark it last forwarded, so every
// node downstream sees events in time order.
//
// Partitions and substreams. An input's partitions are merged before any node sees them, by
// (arrival, partition, order within the partition), releasing an event once no partition can
// still precede it: the order, and so the output, does not depend on how the partitions'
// calls interleave. A SELECT with TIMESTAMP BY … OVER or PARTITION BY is a parent node holding
// one node per key (its own policy state, buffer, watermark, windows, analytic histories);
// the parent's watermark is the global bound G = arrival - late tolerance, to which it
// advances every substream with something due before G (a heap of deadlines), and a WITH
// step fed by it reorders its rows up to its watermark.
//
// A SELECT with JOINs (stream/join.h) reads its sources' events joined into one row of
// several roots: a JOIN of two streams gets each side through a sink (a hidden pass-through
// SELECT per input side) and yields rows in time order with its own watermark; reference
// data is looked up per row.
//
// Window assignment: tumbling (offset + k*size - size, offset + k*size]; hopping: every
// (e - size, e] with e = offset + k*hop in [t, t + size); sliding: a row at each event time
// t over (t - size, t], and at t + size (when the event leaves) if the window still holds
// events; session: opens at its first event, extends while events come within the timeout,
// and ends at min(last + timeout, c) where c is the first multiple of the maximum duration
// with c - start >= maximum duration (ASA's checkpoints at 0, max, 2*max…); snapshot:
// the events of one timestamp.
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <memory>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <boost/json/serialize.hpp>

#include "base/strings.h"
#include "query/aggregates.h"
#include "query/evaluator.h"
#include "query/query_error.h"
#include "stream/aggregates.h"
#include "stream/join.h"
#include "stream/match_recognize.h"
#include "stream/plan.h"

namespace orrery::stream {

namespace json = boost::json;
using internal::AggInput;
using internal::AggSpec;
using internal::AggState;
using internal::AppendKey;
using internal::LimitError;
using internal::SelectPlan;
using internal::WindowKind;
using query::Value;

namespace {

constexpr Micros kMinTime = std::numeric_limits<Micros>::min();
constexpr Micros kMaxTime = std::numeric_limits<Micros>::max();

Micros FloorDiv(Micros a, Micros b) {
  Micros q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
Micros CeilDiv(Micros a, Micros b) {
  return -FloorDiv(-a, b);
}

// A copy of `v` in the default memory resource: the engine keeps nothing in an event's own
// (which may be a buffer the caller reuses once Push returns).
json::value Own(const json::value& v) {
  return json::value(v, json::storage_ptr());
}

// An aggregate fed its argument alone (AggInput evaluates just `arg`): two with the same
// argument share one evaluation.
bool PlainArg(const AggSpec& a) {
  if (a.rows || a.whole_event) return false;
  switch (a.kind) {
    case internal::AggKind::kTopOne:
    case internal::AggKind::kCollect:
    case internal::AggKind::kCollectTop:
    case internal::AggKind::kPercentileCont:
    case internal::AggKind::kPercentileDisc:
      return false;
    default:
      return true;
  }
}

// See Node::direct; empty when some column is anything else.
std::vector<std::pair<char, size_t>> DirectColumns(const SelectPlan& p) {
  std::vector<std::pair<char, size_t>> out;
  if (p.window.kind == WindowKind::kNone || p.having) return out;
  for (const auto& item : p.items) {
    const query::BoundExpr& e = item.expr;
    if (item.star || item.star_of || item.name.empty() || e.op != query::BoundOp::kPath ||
        !e.args.empty() || e.root != 1 || e.steps.size() != 1 || e.steps[0].is_index) {
      return {};
    }
    const std::string& k = e.steps[0].key;
    if (k == internal::kTsName) {
      out.emplace_back('t', 0);
    } else if (k.size() > 2 && k[0] == '\x01' && (k[1] == 'k' || k[1] == 'a')) {
      out.emplace_back(k[1], std::stoul(k.substr(2)));
    } else {
      return {};
    }
  }
  return out;
}

// "\x01k<i>" (GROUP BY value i) or "\x01a<i>" (aggregate i): the row extras' names.
std::string_view ExtraName(char kind, size_t i) {
  static const auto names = [] {
    std::vector<std::string> out;
    for (char k : {'k', 'a'}) {
      for (size_t n = 0; n < 64; ++n)
        out.push_back(std::string("\x01") + k + std::to_string(n));
    }
    return out;
  }();
  if (i < 64) return names[(kind == 'a' ? 64 : 0) + i];
  thread_local std::string other;
  other = std::string("\x01") + kind + std::to_string(i);
  return other;
}

struct Group {
  std::vector<std::optional<json::value>> keys;
  std::vector<AggState> aggs;
};

using Groups = std::unordered_map<std::string, Group>;

struct Buffered {
  Micros ts;
  uint64_t seq;
  json::object event;
  uint32_t partition = 0;
  bool operator>(const Buffered& o) const { return ts != o.ts ? ts > o.ts : seq > o.seq; }
};

struct Session {
  Micros start = 0;
  Micros last = 0;
  Micros check = 0;
  Groups groups;
};

struct SlideGroup {
  std::vector<std::optional<json::value>> keys;
  std::deque<std::pair<Micros, std::vector<json::value>>> events;  // args; null = undefined
  std::vector<bool> defined_mask;
  std::set<Micros> triggers;
};

struct Row {
  Micros ts;
  json::object row;
};

// What a SELECT's bounds count, over all its substreams.
struct Counters {
  size_t open_groups = 0;
  size_t sliding_events = 0;  // held by sliding windows
  size_t remembered = 0;      // by the analytic functions
  size_t buffered = 0;        // in the reorder buffers
};

}  // namespace

namespace internal {

Fit Conform(const Schema& schema, const json::object& event, json::object& converted) {
  Fit fit = Fit::kFits;
  for (const auto& [name, type] : schema.columns) {
    const json::value* v = event.if_contains(name);
    if (!v) {  // the declared name ignoring case
      for (const auto& kv : event) {
        if (strings::IEquals(kv.key(), name)) v = &kv.value();
      }
    }
    if (!v || v->is_null()) continue;
    std::optional<json::value> to;  // a converted value
    switch (type) {
      case ColumnType::kBigint:
        if (!v->is_int64() && !(v->is_uint64() && v->get_uint64() <= INT64_MAX))
          return Fit::kDropped;
        if (v->is_uint64()) to = static_cast<int64_t>(v->get_uint64());
        break;
      case ColumnType::kFloat:
        if (!v->is_number()) return Fit::kDropped;
        if (!v->is_double()) to = v->to_number<double>();
        break;
      case ColumnType::kString:
        if (!v->is_string()) return Fit::kDropped;
        break;
      case ColumnType::kDatetime: {
        std::optional<Micros> t;
        if (v->is_string()) t = ParseDateTime(v->get_string());
        if (!t) return Fit::kDropped;
        std::string text = FormatDateTime(*t);
        if (text != v->get_string()) to = json::string(text);
        break;
      }
      case ColumnType::kBit:
        if (!v->is_bool()) return Fit::kDropped;
        break;
      case ColumnType::kRecord:
        if (!v->is_object()) return Fit::kDropped;
        break;
      case ColumnType::kArray:
        if (!v->is_array()) return Fit::kDropped;
        break;
    }
    if (to) {
      if (fit == Fit::kFits) converted = json::object(event, json::storage_ptr());
      fit = Fit::kConverted;
      for (auto& kv : converted) {
        if (strings::IEquals(kv.key(), name)) kv.value() = *to;
      }
    }
  }
  return fit;
}

}  // namespace internal

struct Engine::Impl {
  struct Node {
    const SelectPlan* p = nullptr;
    // source stage
    Micros newest = kMinTime;
    Micros watermark = kMinTime;
    uint64_t seq = 0;
    std::priority_queue<Buffered, std::vector<Buffered>, std::greater<>> buffer;
    // windows
    std::map<Micros, Groups> windows;
    Micros last_end = 0;            // the window events went to last …
    Groups* last_groups = nullptr;  // … (nullptr once windows close)
    std::vector<int> same_arg;      // per aggregate: an earlier one with the same argument, or -1
    // A windowed SELECT without HAVING whose every column is a GROUP BY value ('k', index),
    // an aggregate ('a', index) or System.Timestamp() ('t'): its rows are built directly.
    std::vector<std::pair<char, size_t>> direct;
    std::unordered_map<std::string, Session> sessions;
    std::unordered_map<std::string, SlideGroup> slides;
    // A SELECT with JOINs: the stream JOIN (joins[0], when of two streams) and the reference
    // data indexes (per JOIN; unused for the stream one).
    std::unique_ptr<internal::StreamJoin> stream_join;
    std::vector<internal::ReferenceIndex> references;
    // A hidden SELECT of MATCH_RECOGNIZE: its matcher.
    std::unique_ptr<internal::Matcher> matcher;
    // Scratch for Accept (never held across calls that could re-enter this node: a node's
    // rows go only to nodes after it).
    std::string key;
    std::vector<Value> key_values;
    std::vector<Value> args;
    // analytic functions
    std::vector<internal::AnalyticState> analytics;  // one per SelectPlan::analytics
    std::vector<std::string> analytic_names;         // their extras' names
    // The SELECT's bounds: its own counters, or its parent's for a substream's node.
    Counters own;
    Counters* counters = &own;
    // A SELECT with substreams (TIMESTAMP BY … OVER, PARTITION BY): its node holds one node
    // per key, each with its own clock, buffer, windows and analytic histories.
    size_t index = 0;  // into Plan::selects
    bool sub = false;  // a substream's node
    std::unordered_map<std::string, std::unique_ptr<Node>> subs;
    // The substreams to close as the global bound G moves: (deadline, key), closed once G >
    // deadline; entries whose node's deadline has changed since are skipped.
    std::priority_queue<std::pair<Micros, std::string>, std::vector<std::pair<Micros, std::string>>,
                        std::greater<>>
        deadlines;
    Micros deadline = kMaxTime;  // a substream's node: its entry in its parent's `deadlines`
    Micros bound = kMinTime;     // the parent: G, the least time any later event can have
  };

  std::shared_ptr<const internal::Plan> plan;
  EventTimePolicy policy;
  std::vector<Node> nodes;
  std::vector<std::vector<Micros>> sink_producer_wm;  // per sink, per producer
  std::vector<Micros> sink_wm;
  std::map<std::string, std::vector<OutputEvent>> outputs;
  std::vector<std::vector<json::object>> references;  // per Plan::references
  EngineStats stats;
  std::optional<Error> failed;
  const json::object empty;
  // Rows waiting in a WITH step fed by a SELECT with substreams (in no time order) until the
  // step's watermark passes them.
  std::vector<std::priority_queue<Buffered, std::vector<Buffered>, std::greater<>>> sink_pending;
  uint64_t sink_seq = 0;
  uint32_t partition = 0;  // the partition of the event being processed

  // An input's partitions, merged into one deterministic order: by arrival, then partition,
  // then the order within the partition. An event is processed once no partition can still
  // send one before it (each partition's arrivals never decrease).
  struct Merge {
    std::vector<Micros> last;  // per partition: its latest arrival (or heartbeat)
    std::vector<uint64_t> seq;
    struct Pending {
      Micros arrival;
      uint32_t partition;
      uint64_t seq;
      json::object event;
      bool operator>(const Pending& o) const {
        if (arrival != o.arrival) return arrival > o.arrival;
        if (partition != o.partition) return partition > o.partition;
        return seq > o.seq;
      }
    };
    std::priority_queue<Pending, std::vector<Pending>, std::greater<>> pending;
    Micros ticked = kMinTime;  // the least `last` that Tick has passed on
  };
  std::vector<Merge> merges;  // per input
  uint32_t partitions = 1;    // of every input

  explicit Impl(const StreamQuery& q, EventTimePolicy pol, uint32_t partition_count)
      : plan(q.plan()), policy(pol) {
    nodes.resize(plan->selects.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      Node& n = nodes[i];
      InitNode(n, i);
      if (n.p->stream_join()) {
        n.stream_join = std::make_unique<internal::StreamJoin>(
            n.p->joins[0], limits().max_buffered_events,
            [this, i](const json::object& left, const json::object* right, Micros ts) {
              internal::JoinedRow row;
              row.sources[0] = &left;
              row.sources[1] = right ? right : &internal::AbsentSource();
              Lookups(nodes[i], row, 2, ts);
            });
      }
    }
    references.resize(plan->references.size());
    sink_producer_wm.resize(plan->sinks.size());
    sink_wm.assign(plan->sinks.size(), kMinTime);
    sink_pending.resize(plan->sinks.size());
    for (size_t s = 0; s < plan->sinks.size(); ++s)
      sink_producer_wm[s].assign(plan->sinks[s].producers.size(), kMinTime);
    partitions = std::max<uint32_t>(partition_count, 1);
    merges.resize(plan->inputs.size());
    for (auto& m : merges)
      m.last.assign(partitions, kMinTime);
  }

  // The per-SELECT state of node `n` (a SELECT's node or one of its substreams').
  void InitNode(Node& n, size_t i) {
    n.p = &plan->selects[i];
    n.index = i;
    n.references.resize(n.p->joins.size());
    n.analytics.resize(n.p->analytics.size());
    for (size_t k = 0; k < n.p->analytics.size(); ++k)
      n.analytic_names.push_back(internal::AnalyticName(k));
    for (size_t a = 0; a < n.p->aggs.size(); ++a) {
      int same = -1;
      for (size_t b = 0; b < a && same < 0; ++b) {
        if (PlainArg(n.p->aggs[a]) && PlainArg(n.p->aggs[b]) &&
            query::SameExpr(n.p->aggs[a].arg, n.p->aggs[b].arg)) {
          same = static_cast<int>(b);
        }
      }
      n.same_arg.push_back(same);
    }
    n.direct = DirectColumns(*n.p);
    if (n.p->match) n.matcher = std::make_unique<internal::Matcher>(*n.p->match, limits());
  }

  const StreamLimits& limits() const { return plan->limits; }

  // ---- producing rows ----

  void Emit(Node& n, json::object row, Micros ts) {
    int sink_index = n.p->sink;
    const internal::Sink& sink = plan->sinks[sink_index];
    if (sink.step < 0) {
      outputs[sink.name].push_back(OutputEvent{ts, std::move(row)});
      return;
    }
    if (!n.p->substream.empty()) {
      sink_pending[sink_index].push(Buffered{ts, sink_seq++, std::move(row)});
      return;
    }
    for (int c : sink.consumers)
      Deliver(static_cast<size_t>(c), sink_index, row, ts);
  }

  // A row of step `sink` for node `c`: to its SELECT, or to a side of its stream JOIN.
  void Deliver(size_t c, int sink, const json::object& row, Micros ts) {
    Node& n = nodes[c];
    if (!n.stream_join) {
      Accept(n, row, ts);
      return;
    }
    if (n.p->left_sink == sink) n.stream_join->Push(0, row, ts);
    if (n.p->joins[0].sink == sink) n.stream_join->Push(1, row, ts);
  }

  // Step `sink`'s watermark moved to `w`, for node `c`.
  void AdvanceFrom(size_t c, int sink, Micros w) {
    Node& n = nodes[c];
    if (!n.stream_join) {
      Advance(n, w);
      return;
    }
    Micros f = n.watermark;
    if (n.p->left_sink == sink) f = n.stream_join->Advance(0, w);
    if (n.p->joins[0].sink == sink) f = n.stream_join->Advance(1, w);
    if (f > n.watermark) {
      n.watermark = f;
      Advance(n, f);
    }
  }

  // Joins source `next` (a reference input) and those after it to `row`, then accepts each
  // joined row.
  void Lookups(Node& n, internal::JoinedRow& row, size_t next, Micros ts) {
    if (next > n.p->joins.size()) {
      Accept(n, *row.sources[0], ts, &row);
      return;
    }
    const internal::JoinSpec& j = n.p->joins[next - 1];
    bool any = false;
    n.references[next - 1].Match(j, next, row, [&](const json::object& match) {
      any = true;
      row.sources[next] = &match;
      Lookups(n, row, next + 1, ts);
    });
    if (!any && j.left_outer) {
      row.sources[next] = &internal::AbsentSource();
      Lookups(n, row, next + 1, ts);
    }
    row.sources[next] = nullptr;
  }

  void EmitSorted(Node& n, std::vector<Row>& rows) {
    auto by_time = [](const Row& a, const Row& b) { return a.ts < b.ts; };
    if (!std::is_sorted(rows.begin(), rows.end(), by_time))
      std::stable_sort(rows.begin(), rows.end(), by_time);
    for (auto& r : rows)
      Emit(n, std::move(r.row), r.ts);
    rows.clear();
  }

  void Forward(size_t node, Micros w) {
    int sink_index = nodes[node].p->sink;
    const internal::Sink& sink = plan->sinks[sink_index];
    auto& wms = sink_producer_wm[sink_index];
    for (size_t k = 0; k < sink.producers.size(); ++k) {
      if (static_cast<size_t>(sink.producers[k]) == node) wms[k] = std::max(wms[k], w);
    }
    Micros m = *std::min_element(wms.begin(), wms.end());
    if (m <= sink_wm[sink_index]) return;
    sink_wm[sink_index] = m;
    auto& pending = sink_pending[sink_index];
    while (!pending.empty() && pending.top().ts <= m) {
      Buffered b = std::move(const_cast<Buffered&>(pending.top()));
      pending.pop();
      for (int c : sink.consumers)
        Deliver(static_cast<size_t>(c), sink_index, b.event, b.ts);
    }
    for (int c : sink.consumers)
      AdvanceFrom(static_cast<size_t>(c), sink_index, m);
  }

  // Builds a row from the projections; roots[0] is the event (or an empty object).
  json::object Project(const SelectPlan& p, std::span<const query::Root> roots,
                       const json::object& event) {
    json::object row;
    row.reserve(p.items.size());
    for (size_t i = 0; i < p.items.size(); ++i) {
      const internal::Projection& item = p.items[i];
      if (item.star) {
        for (const auto& kv : event) {
          if (kv.key() != kMetadataMember) row[kv.key()] = kv.value();
        }
        if (item.star_applies) {
          for (size_t k = 0; k < p.applies.size(); ++k)
            row[p.applies[k].alias] = *roots[2 + k].object;
        }
        continue;
      }
      if (item.star_of) {
        Value v = query::Evaluate(item.expr, roots);
        if (v.defined() && v->is_object()) {
          for (const auto& kv : v->get_object())
            row[kv.key()] = kv.value();
        }
        continue;
      }
      std::string_view last;
      Value v = query::EvaluateNamed(item.expr, roots, &last);
      if (!v.defined()) {
        // LEFT OUTER JOIN without a match: that source's columns are null.
        if (item.outer_root < 0 ||
            roots[static_cast<size_t>(item.outer_root)].object != &internal::AbsentSource()) {
          continue;
        }
        v = Value(json::value(nullptr));
        if (!item.expr.steps.empty() && !item.expr.steps.back().is_index) {
          last = item.expr.steps.back().key;
        }
      }
      json::value& slot = !item.name.empty() ? row[item.name]
                          : !last.empty()    ? row[last]
                                             : row["$" + std::to_string(i + 1)];
      if (v.borrowed()) {
        slot = v.get();  // one copy, into the row's memory
      } else {
        slot = std::move(v).ToJson();
      }
    }
    return row;
  }

  // ---- the SELECT over time-ordered events ----

  // `joined`: the sources of a SELECT with JOINs (`ev` is source 0's); without it, such a
  // SELECT first looks its reference data up.
  void Accept(Node& n, const json::object& ev, Micros ts,
              const internal::JoinedRow* joined = nullptr) {
    if (n.matcher) {
      n.matcher->Push(ev, ts);
      return;
    }
    const SelectPlan& p = *n.p;
    if (!p.joins.empty() && joined == nullptr) {
      internal::JoinedRow row;
      row.sources[0] = &ev;
      Lookups(n, row, 1, ts);
      return;
    }
    json::object extras;
    if (p.uses_timestamp) extras[internal::kTsName] = FormatDateTime(ts);
    if (p.uses_partition) extras["PartitionId"] = static_cast<int64_t>(partition);
    if (joined) {  // (the binder allows no APPLY with JOINs)
      internal::JoinRoots join_roots(*joined, 1 + p.joins.size(), &extras);
      AcceptRow(n, std::span<const query::Root>(join_roots.roots.data(), join_roots.size), ev,
                extras, ts);
      return;
    }
    if (p.applies.empty()) {
      query::Root roots[2] = {query::Root(ev), query::Root(extras)};
      AcceptRow(n, roots, ev, extras, ts);
      return;
    }
    // APPLY: one row per element (the records are roots 2, 3, …), all at the event's time.
    std::vector<json::object> records(p.applies.size());
    std::vector<query::Root> roots(2 + p.applies.size());
    roots[0] = query::Root(ev);
    roots[1] = query::Root(extras);
    size_t rows = 0;
    Expand(n, ev, ts, extras, roots, records, 0, rows);
  }

  void Expand(Node& n, const json::object& ev, Micros ts, json::object& extras,
              std::vector<query::Root>& roots, std::vector<json::object>& records, size_t k,
              size_t& rows) {
    const SelectPlan& p = *n.p;
    if (k == p.applies.size()) {
      AcceptRow(n, roots, ev, extras, ts);
      return;
    }
    const internal::ApplySpec& a = p.applies[k];
    auto row = [&](json::object record) {
      if (++rows > limits().max_apply_rows) {
        LimitError("APPLY makes too many rows of one event (the limit is " +
                   std::to_string(limits().max_apply_rows) + ")");
      }
      records[k] = std::move(record);
      roots[2 + k] = query::Root(records[k]);
      Expand(n, ev, ts, extras, roots, records, k + 1, rows);
    };
    // The argument reads the event and earlier APPLYs only, which the rows below leave alone.
    Value v = query::Evaluate(a.arg, std::span<const query::Root>(roots.data(), 2 + k));
    bool any = false;
    if (v.defined() && !a.properties && v->is_array()) {
      const json::array& items = v->get_array();
      for (size_t i = 0; i < items.size(); ++i) {
        any = true;
        row(json::object{{"ArrayIndex", static_cast<int64_t>(i)}, {"ArrayValue", items[i]}});
      }
    } else if (v.defined() && a.properties && v->is_object()) {
      for (const auto& kv : v->get_object()) {
        any = true;
        row(json::object{{"PropertyName", kv.key()}, {"PropertyValue", kv.value()}});
      }
    }
    if (!any && a.outer) {
      row(a.properties ? json::object{{"PropertyName", nullptr}, {"PropertyValue", nullptr}}
                       : json::object{{"ArrayIndex", nullptr}, {"ArrayValue", nullptr}});
    }
  }

  // One row the FROM yields: analytic functions, WHERE, then the projection or the windows.
  void AcceptRow(Node& n, std::span<const query::Root> roots, const json::object& ev,
                 json::object& extras, Micros ts) {
    const SelectPlan& p = *n.p;
    for (size_t i = 0; i < p.analytics.size(); ++i) {
      extras[n.analytic_names[i]] =
          n.analytics[i].Next(p.analytics[i], roots, ts, n.counters->remembered, limits());
    }
    if (p.where && !query::IsTrue(query::Evaluate(*p.where, roots))) return;
    if (p.window.kind == WindowKind::kNone) {
      if (p.pass_through) {  // no copy: the JOIN reading it keeps its own
        for (int c : plan->sinks[p.sink].consumers)
          Deliver(static_cast<size_t>(c), p.sink, ev, ts);
        return;
      }
      Emit(n, Project(p, roots, ev), ts);
      return;
    }
    // The group: key values and their text (scratch buffers of the node, reused).
    std::string& key = n.key;
    std::vector<Value>& key_values = n.key_values;
    std::vector<Value>& args = n.args;
    key.clear();
    key_values.clear();
    args.clear();
    for (const auto& k : p.keys) {
      key_values.push_back(query::Evaluate(k, roots));
      AppendKey(key, key_values.back());
    }
    for (size_t i = 0; i < p.aggs.size(); ++i) {
      const AggSpec& a = p.aggs[i];
      if (int same = n.same_arg[i]; same >= 0) {
        Value v = args[static_cast<size_t>(same)];  // AVG(x), MAX(x): x evaluated once
        args.push_back(std::move(v));
      } else {
        args.push_back(AggInput(a, roots, ev));
      }
    }
    auto groups_at = [&](Micros end) -> Groups& {
      if (n.last_groups == nullptr || n.last_end != end) {
        n.last_groups = &n.windows[end];
        n.last_end = end;
      }
      return *n.last_groups;
    };

    auto add_to = [&](Groups& groups) {
      auto [it, inserted] = groups.try_emplace(key);
      Group& g = it->second;
      if (inserted) {
        if (++n.counters->open_groups > limits().max_open_groups) {
          LimitError("too many open windows and groups (the limit is " +
                     std::to_string(limits().max_open_groups) + ")");
        }
        for (const auto& v : key_values)
          g.keys.push_back(v.defined() ? std::optional<json::value>(Own(v.get())) : std::nullopt);
        g.aggs.reserve(p.aggs.size());
        for (const auto& a : p.aggs)
          g.aggs.emplace_back(a);
      }
      for (size_t i = 0; i < args.size(); ++i)
        g.aggs[i].Add(args[i], limits());
    };

    const internal::WindowSpec& w = p.window;
    switch (w.kind) {
      case WindowKind::kTumbling:
      case WindowKind::kHopping: {
        Micros end = w.offset + CeilDiv(ts - w.offset, w.hop) * w.hop;
        for (; end - w.size < ts; end += w.hop)
          add_to(groups_at(end));
        break;
      }
      case WindowKind::kSnapshot:
        add_to(groups_at(ts));
        break;
      case WindowKind::kSession: {
        std::string pk;
        if (w.partition) AppendKey(pk, query::Evaluate(*w.partition, roots));
        auto it = n.sessions.find(pk);
        if (it != n.sessions.end()) {
          Micros close_at = std::min(it->second.last + w.size, it->second.check);
          if (ts > close_at) {
            std::vector<Row> rows;
            CloseGroups(n, it->second.groups, close_at, rows);
            n.sessions.erase(it);
            EmitSorted(n, rows);
            it = n.sessions.end();
          }
        }
        if (it == n.sessions.end()) {
          Session s;
          s.start = s.last = ts;
          s.check = CeilDiv(ts + w.max_duration, w.max_duration) * w.max_duration;
          it = n.sessions.emplace(pk, std::move(s)).first;
        }
        it->second.last = std::max(it->second.last, ts);
        add_to(it->second.groups);
        break;
      }
      case WindowKind::kSliding: {
        auto [it, inserted] = n.slides.try_emplace(key);
        SlideGroup& g = it->second;
        if (inserted) {
          if (++n.counters->open_groups > limits().max_open_groups) {
            LimitError("too many open windows and groups (the limit is " +
                       std::to_string(limits().max_open_groups) + ")");
          }
          for (const auto& v : key_values)
            g.keys.push_back(v.defined() ? std::optional<json::value>(Own(v.get())) : std::nullopt);
        }
        if (++n.counters->sliding_events > limits().max_buffered_events) {
          LimitError("a sliding window holds too many events (the limit is " +
                     std::to_string(limits().max_buffered_events) + ")");
        }
        std::vector<json::value> vals;
        vals.reserve(args.size());
        for (auto& a : args) {
          // Undefined is kept as a marker object the aggregates never see (skipped below).
          vals.push_back(a.defined() ? Own(a.get()) : json::value(json::object{{"\x01u", true}}));
        }
        g.events.emplace_back(ts, std::move(vals));
        g.triggers.insert(ts);
        g.triggers.insert(ts + w.size);
        break;
      }
      case WindowKind::kNone:
        break;
    }
  }

  // `ts_text`: FormatDateTime(ts), when the caller closes several groups at once.
  void CloseGroup(const SelectPlan& p, const Group& g, Micros ts, std::vector<Row>& rows,
                  const json::string* ts_text = nullptr) {
    const Node& n = nodes[static_cast<size_t>(&p - plan->selects.data())];
    if (!n.direct.empty()) {
      // Every column is a GROUP BY value, an aggregate or System.Timestamp(): no extras row.
      json::object row;
      row.reserve(n.direct.size());
      for (size_t i = 0; i < n.direct.size(); ++i) {
        auto [kind, at] = n.direct[i];
        const std::string& name = p.items[i].name;
        if (kind == 't') {
          if (ts_text) {
            row.emplace(name, *ts_text);
          } else {
            row.emplace(name, FormatDateTime(ts));
          }
        } else if (kind == 'k') {
          if (g.keys[at]) row.emplace(name, *g.keys[at]);
        } else if (Value r = g.aggs[at].Result(); r.defined()) {
          row.emplace(name, std::move(r).ToJson());
        }
      }
      rows.push_back(Row{ts, std::move(row)});
      return;
    }
    json::object extras;
    extras.reserve(1 + g.keys.size() + g.aggs.size());
    if (ts_text) {
      extras.emplace(internal::kTsName, *ts_text);
    } else {
      extras.emplace(internal::kTsName, FormatDateTime(ts));
    }
    for (size_t i = 0; i < g.keys.size(); ++i) {
      if (g.keys[i]) extras.emplace(ExtraName('k', i), *g.keys[i]);
    }
    for (size_t i = 0; i < g.aggs.size(); ++i) {
      Value r = g.aggs[i].Result();
      if (r.defined()) extras.emplace(ExtraName('a', i), std::move(r).ToJson());
    }
    if (p.uses_window) {
      json::value id = nullptr;
      if (p.window.id) id = json::string(*p.window.id);
      extras.emplace(internal::kWindowName, json::object{{"Id", std::move(id)}});
    }
    query::Root roots[2] = {query::Root(empty), query::Root(extras)};
    if (p.having && !query::IsTrue(query::Evaluate(*p.having, roots))) return;
    rows.push_back(Row{ts, Project(p, roots, empty)});
  }

  void CloseGroups(Node& n, Groups& groups, Micros ts, std::vector<Row>& rows) {
    json::string ts_text(FormatDateTime(ts));
    for (auto& [k, g] : groups)
      CloseGroup(*n.p, g, ts, rows, &ts_text);
    n.counters->open_groups -= groups.size();
    groups.clear();
  }

  // Closes what W = `w` makes final and, for a node without substreams (or a substream's
  // parent), forwards the watermark to its sink.
  void Advance(Node& n, Micros w) {
    if (n.matcher) {  // matches come out in time order, held back while one could precede them
      n.matcher->Advance(w);
      Micros hold = n.matcher->Hold(w);
      n.matcher->TakeReady(hold, [&](json::object row, Micros ts) { Emit(n, std::move(row), ts); });
      Forward(n.index, hold);
      return;
    }
    Close(n, w);
    if (!n.sub) Forward(n.index, w);
  }

  void Close(Node& n, Micros w) {
    const SelectPlan& p = *n.p;
    std::vector<Row> rows;
    switch (p.window.kind) {
      case WindowKind::kTumbling:
      case WindowKind::kHopping:
      case WindowKind::kSnapshot:
        while (!n.windows.empty() && n.windows.begin()->first < w) {
          n.last_groups = nullptr;
          auto node = n.windows.extract(n.windows.begin());
          CloseGroups(n, node.mapped(), node.key(), rows);
        }
        break;
      case WindowKind::kSession:
        for (auto it = n.sessions.begin(); it != n.sessions.end();) {
          Micros close_at = std::min(it->second.last + p.window.size, it->second.check);
          if (close_at < w) {
            CloseGroups(n, it->second.groups, close_at, rows);
            it = n.sessions.erase(it);
          } else {
            ++it;
          }
        }
        break;
      case WindowKind::kSliding:
        for (auto it = n.slides.begin(); it != n.slides.end();) {
          SlideSteps(n, it->second, w, rows);
          if (it->second.events.empty() && it->second.triggers.empty()) {
            --n.counters->open_groups;
            it = n.slides.erase(it);
          } else {
            ++it;
          }
        }
        break;
      case WindowKind::kNone:
        break;
    }
    EmitSorted(n, rows);
  }

  void SlideSteps(Node& n, SlideGroup& g, Micros w, std::vector<Row>& rows) {
    const SelectPlan& p = *n.p;
    Micros size = p.window.size;
    while (!g.triggers.empty() && *g.triggers.begin() < w) {
      Micros e = *g.triggers.begin();
      g.triggers.erase(g.triggers.begin());
      Group tmp;
      tmp.keys = g.keys;
      for (const auto& a : p.aggs)
        tmp.aggs.emplace_back(a);
      size_t count = 0;
      for (const auto& [ts, vals] : g.events) {
        if (ts > e) break;
        if (ts <= e - size) continue;
        ++count;
        for (size_t i = 0; i < vals.size(); ++i) {
          bool undef = vals[i].is_object() && vals[i].get_object().contains("\x01u");
          tmp.aggs[i].Add(undef ? Value() : Value::Borrow(vals[i]), limits());
        }
      }
      if (count > 0) CloseGroup(p, tmp, e, rows);
      // Later windows end at a pending trigger or, for events still to come, at >= w.
      Micros next = g.triggers.empty() ? w : std::min(w, *g.triggers.begin());
      Micros keep_after = next == kMaxTime ? kMaxTime : next - size;
      while (!g.events.empty() && g.events.front().first <= keep_after) {
        g.events.pop_front();
        --n.counters->sliding_events;
      }
    }
  }

  // ---- the source stage ----

  void Release(Node& n, Micros up_to) {
    while (!n.buffer.empty() && n.buffer.top().ts <= up_to) {
      Buffered b = std::move(const_cast<Buffered&>(n.buffer.top()));
      n.buffer.pop();
      --n.counters->buffered;
      partition = b.partition;
      Accept(n, b.event, b.ts);
    }
  }

  // The roots TIMESTAMP BY and the substream keys read: the event and {PartitionId}.
  json::object PartitionExtras(const SelectPlan& p) const {
    json::object extras;
    if (p.uses_partition) extras.emplace("PartitionId", static_cast<int64_t>(partition));
    return extras;
  }

  // The global bound G of a node's input: every later event's time (after the late-arrival
  // policy) is at least this. Without TIMESTAMP BY: the arrival; without a late-arrival
  // tolerance: none.
  Micros GlobalBound(const SelectPlan& p, Micros arrival) const {
    if (!p.timestamp_by) return arrival;
    if (!policy.late_arrival_tolerance) return kMinTime;
    return arrival - *policy.late_arrival_tolerance;
  }

  // One event of input `input`, from `from_partition`, to every SELECT reading it.
  void Dispatch(int input, const json::object& event, Micros arrival, uint32_t from_partition) {
    for (auto& n : nodes) {
      if (n.p->input == input) {
        partition = from_partition;
        PushTo(n, event, arrival);
      }
    }
  }

  // Processes the merged events of `input` that no partition can precede any more (`all`:
  // every one, at the end of input).
  void ReleaseMerged(int input, bool all) {
    Merge& m = merges[static_cast<size_t>(input)];
    while (!m.pending.empty()) {
      const Merge::Pending& top = m.pending.top();
      if (!all) {
        for (uint32_t q = 0; q < m.last.size(); ++q) {
          // q may still send an event at top.arrival, which comes first when q < partition.
          if (q != top.partition &&
              (m.last[q] < top.arrival || (m.last[q] == top.arrival && q < top.partition))) {
            return;
          }
        }
      }
      Merge::Pending e = std::move(const_cast<Merge::Pending&>(top));
      m.pending.pop();
      Dispatch(input, e.event, e.arrival, e.partition);
    }
  }

  // Every partition of `input` has sent or heartbeaten up to the least of their `last`: the
  // time bound of the SELECTs reading it moves even when no event comes (ASA's watermark
  // follows the arrival clock), so windows close on an idle input.
  void Tick(int input) {
    Merge& m = merges[static_cast<size_t>(input)];
    Micros f = *std::min_element(m.last.begin(), m.last.end());
    if (f <= m.ticked) return;
    m.ticked = f;
    for (auto& n : nodes) {
      if (n.p->input != input) continue;
      Micros g = GlobalBound(*n.p, f);
      if (g == kMinTime) continue;
      if (!n.p->substream.empty() && !n.sub) {
        if (g > n.bound) {
          n.bound = g;
          Sweep(n, g);
          Forward(n.index, g);
        }
        continue;
      }
      if (g > n.watermark) {
        Release(n, g);
        n.watermark = g;
        Advance(n, g);
      }
    }
  }

  // ---- substreams (TIMESTAMP BY … OVER, PARTITION BY) ----
  //
  // The parent node routes each event to its key's node, which runs the SELECT with its own
  // clock: the out-of-order policy against its own newest event, the late-arrival policy
  // against the arrival (global, as ASA applies it). As G = arrival - late tolerance moves,
  // every substream's watermark is at least G: a substream with something to close before G
  // (a buffered event, a window's end) is closed from the parent's `deadlines`; one left
  // with nothing is dropped once its newest event no longer bounds later ones. The parent
  // forwards G: rows of different keys come in no time order, and a WITH step fed by them
  // puts them back in order (Emit).

  // Nothing held: no buffered event, window, session or analytic history.
  static bool Idle(const Node& n) {
    return n.buffer.empty() && n.windows.empty() && n.sessions.empty() && n.slides.empty() &&
           n.p->analytics.empty();
  }

  // The time after which G closes something of substream `s` (or drops it), or kMaxTime.
  Micros Deadline(const Node& s) const {
    Micros d = kMaxTime;
    if (!s.buffer.empty()) d = std::min(d, s.buffer.top().ts - 1);
    if (!s.windows.empty()) d = std::min(d, s.windows.begin()->first);
    for (const auto& [k, session] : s.sessions)
      d = std::min(d, std::min(session.last + s.p->window.size, session.check));
    for (const auto& [k, g] : s.slides) {
      if (!g.triggers.empty()) d = std::min(d, *g.triggers.begin());
    }
    if (Idle(s)) {  // forgettable once its newest event no longer bounds later ones
      Micros ooo = s.p->timestamp_by ? policy.out_of_order_tolerance : 0;
      d = std::min(d, s.newest == kMinTime ? kMinTime : s.newest - ooo);
    }
    return d;
  }

  void Schedule(Node& parent, const std::string& key, Node& s) {
    Micros d = Deadline(s);
    if (d == s.deadline || d == kMaxTime) return;
    s.deadline = d;
    parent.deadlines.emplace(d, key);
  }

  // G moved to `g`: every substream's watermark becomes at least g.
  void Sweep(Node& parent, Micros g) {
    while (!parent.deadlines.empty() && parent.deadlines.top().first < g) {
      std::pair<Micros, std::string> top = parent.deadlines.top();
      parent.deadlines.pop();
      auto it = parent.subs.find(top.second);
      if (it == parent.subs.end() || it->second->deadline != top.first) continue;
      Node& s = *it->second;
      s.deadline = kMaxTime;
      if (g > s.watermark) {
        s.watermark = g;
        Release(s, g);
        Close(s, g);
      }
      if (Idle(s) && Deadline(s) < g) {
        parent.subs.erase(it);
        continue;
      }
      Schedule(parent, top.second, s);
    }
  }

  void PushSubstream(Node& parent, const json::object& ev, Micros arrival) {
    const SelectPlan& p = *parent.p;
    Micros g = GlobalBound(p, arrival);
    if (g > parent.bound) {
      uint32_t mine = partition;  // the sweep's released events set their own
      parent.bound = g;
      Sweep(parent, g);
      Forward(parent.index, g);
      partition = mine;
    }
    json::object extras = PartitionExtras(p);
    query::Root roots[2] = {query::Root(ev), query::Root(extras)};
    std::string key;
    for (const auto& k : p.substream)
      AppendKey(key, query::Evaluate(k, roots));
    auto [it, inserted] = parent.subs.try_emplace(key);
    if (inserted) {
      if (parent.subs.size() > limits().max_substreams) {
        LimitError("too many substreams (the limit is " + std::to_string(limits().max_substreams) +
                   ")");
      }
      it->second = std::make_unique<Node>();
      InitNode(*it->second, parent.index);
      it->second->sub = true;
      it->second->counters = &parent.own;
    }
    Node& s = *it->second;
    PushTo(s, ev, arrival);
    Schedule(parent, key, s);
  }

  void PushTo(Node& n, const json::object& ev, Micros arrival) {
    const SelectPlan& p = *n.p;
    if (!p.substream.empty() && !n.sub) {
      PushSubstream(n, ev, arrival);
      return;
    }
    Micros ts = arrival;
    Micros w;
    if (p.timestamp_by) {
      json::object extras = PartitionExtras(p);
      query::Root roots[2] = {query::Root(ev), query::Root(extras)};
      Value v = query::Evaluate(*p.timestamp_by, roots);
      std::optional<Micros> t;
      if (v.defined() && v->is_string()) t = ParseDateTime(v->get_string());
      if (!t) {
        ++stats.dropped_bad_timestamp;
        return;
      }
      ts = *t;
      bool drop = policy.action == EventTimePolicy::Action::kDrop;
      if (policy.late_arrival_tolerance && ts < arrival - *policy.late_arrival_tolerance) {
        if (drop) {
          ++stats.dropped_late;
          return;
        }
        ++stats.adjusted;
        ts = arrival - *policy.late_arrival_tolerance;
      }
      if (n.newest != kMinTime && ts < n.newest - policy.out_of_order_tolerance) {
        if (drop) {
          ++stats.dropped_late;
          return;
        }
        ++stats.adjusted;
        ts = n.newest - policy.out_of_order_tolerance;
      }
      n.newest = std::max(n.newest, ts);
      w = n.newest - policy.out_of_order_tolerance;
      if (policy.late_arrival_tolerance) w = std::max(w, arrival - *policy.late_arrival_tolerance);
    } else {
      n.newest = std::max(n.newest, ts);
      w = n.newest;
    }
    w = std::max(w, n.watermark);
    if (n.buffer.empty() && ts <= w) {
      Accept(n, ev, ts);
    } else {
      if (n.counters->buffered >= limits().max_buffered_events) {
        LimitError("the reorder buffer holds too many events (the limit is " +
                   std::to_string(limits().max_buffered_events) + ")");
      }
      ++n.counters->buffered;
      n.buffer.push(Buffered{ts, n.seq++, json::object(ev, json::storage_ptr()), partition});
      Release(n, w);
    }
    if (w > n.watermark) {
      n.watermark = w;
      Advance(n, w);
    }
  }
};

Engine::Engine(const StreamQuery& query, EventTimePolicy policy, uint32_t partitions)
    : impl_(std::make_unique<Impl>(query, policy, partitions)) {}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

namespace {

int FindInput(const std::vector<std::string>& inputs, std::string_view input) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (strings::IEquals(inputs[i], input)) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

Result<void> Engine::Push(std::string_view input, const json::object& event, Micros arrival) {
  return Push(input, 0, event, arrival);
}

// The index of `input` and of its merge, checking `partition`.
static Result<int> FindPartition(const internal::Plan& plan, std::string_view input,
                                 uint32_t partition, size_t partitions) {
  int idx = FindInput(plan.inputs, input);
  if (idx < 0) {
    return Error(query::Errc::kInvalidQuery,
                 "the query reads no input named '" + std::string(input) + "'");
  }
  if (partition >= partitions) {
    return Error(query::Errc::kInvalidQuery, "input '" + std::string(input) +
                                                 "' has no partition " + std::to_string(partition) +
                                                 " (it has " + std::to_string(partitions) + ")");
  }
  return idx;
}

Result<void> Engine::Push(std::string_view input, uint32_t partition, const json::object& event,
                          Micros arrival) {
  if (impl_->failed) return *impl_->failed;
  ORRERY_ASSIGN_OR_RETURN(int idx,
                          FindPartition(*impl_->plan, input, partition, impl_->partitions));
  Impl::Merge& m = impl_->merges[static_cast<size_t>(idx)];
  ++impl_->stats.events_in;
  json::object converted;
  if (const auto& schema = impl_->plan->input_schemas[static_cast<size_t>(idx)]) {
    internal::Fit fit = internal::Conform(*schema, event, converted);
    if (fit == internal::Fit::kDropped) {
      ++impl_->stats.dropped_schema;
      return {};
    }
  }
  const json::object& ev = converted.empty() ? event : converted;
  auto r = query::Catching([&] {
    if (m.last.size() == 1) {  // one partition: nothing to merge
      impl_->Dispatch(idx, ev, arrival, 0);
      return;
    }
    if (m.pending.size() >= impl_->limits().max_buffered_events) {
      LimitError("the merge of the partitions of '" + std::string(input) +
                 "' holds too many events (the limit is " +
                 std::to_string(impl_->limits().max_buffered_events) +
                 "; a partition that sends nothing holds the others: Heartbeat it)");
    }
    if (m.seq.empty()) m.seq.assign(m.last.size(), 0);
    m.last[partition] = std::max(m.last[partition], arrival);
    m.pending.push(Impl::Merge::Pending{arrival, partition, m.seq[partition]++,
                                        json::object(ev, json::storage_ptr())});
    impl_->ReleaseMerged(idx, false);
    impl_->Tick(idx);
  });
  if (!r) impl_->failed = r.error();
  return r;
}

Result<void> Engine::Heartbeat(std::string_view input, uint32_t partition, Micros arrival) {
  if (impl_->failed) return *impl_->failed;
  ORRERY_ASSIGN_OR_RETURN(int idx,
                          FindPartition(*impl_->plan, input, partition, impl_->partitions));
  Impl::Merge& m = impl_->merges[static_cast<size_t>(idx)];
  auto r = query::Catching([&] {
    m.last[partition] = std::max(m.last[partition], arrival);
    impl_->ReleaseMerged(idx, false);
    impl_->Tick(idx);
  });
  if (!r) impl_->failed = r.error();
  return r;
}

Result<void> Engine::Flush() {
  if (impl_->failed) return *impl_->failed;
  auto r = query::Catching([&] {
    for (size_t i = 0; i < impl_->merges.size(); ++i)
      impl_->ReleaseMerged(static_cast<int>(i), true);
    for (auto& n : impl_->nodes) {
      if (n.p->input < 0) continue;
      for (auto& [key, s] : n.subs) {
        impl_->Release(*s, kMaxTime);
        s->watermark = kMaxTime;
        impl_->Close(*s, kMaxTime);
      }
      impl_->Release(n, kMaxTime);
      n.watermark = kMaxTime;
      impl_->Advance(n, kMaxTime);
    }
  });
  if (!r) impl_->failed = r.error();
  return r;
}

Result<void> Engine::SetReference(std::string_view input, std::vector<json::object> rows) {
  if (impl_->failed) return *impl_->failed;
  const auto& refs = impl_->plan->references;
  size_t idx = refs.size();
  for (size_t i = 0; i < refs.size(); ++i) {
    if (strings::IEquals(refs[i], input)) idx = i;
  }
  if (idx == refs.size()) {
    return Error(query::Errc::kInvalidQuery,
                 "the query joins no reference data named '" + std::string(input) + "'");
  }
  if (rows.size() > impl_->limits().max_reference_rows) {
    return Error(query::Errc::kLimitExceeded,
                 "reference data '" + std::string(input) + "' has too many rows (the limit is " +
                     std::to_string(impl_->limits().max_reference_rows) + ")");
  }
  if (const auto& schema = impl_->plan->reference_schemas[idx]) {
    std::vector<json::object> kept;
    kept.reserve(rows.size());
    for (auto& row : rows) {
      json::object converted;
      internal::Fit fit = internal::Conform(*schema, row, converted);
      if (fit == internal::Fit::kDropped) {
        ++impl_->stats.dropped_schema;
      } else {
        kept.push_back(fit == internal::Fit::kConverted ? std::move(converted) : std::move(row));
      }
    }
    rows = std::move(kept);
  }
  impl_->references[idx] = std::move(rows);
  for (auto& n : impl_->nodes) {
    for (size_t k = 0; k < n.p->joins.size(); ++k) {
      if (n.p->joins[k].reference == static_cast<int>(idx))
        n.references[k].Build(n.p->joins[k], k + 1, impl_->references[idx]);
    }
  }
  return {};
}

std::map<std::string, std::vector<OutputEvent>> Engine::TakeOutputs() {
  return std::exchange(impl_->outputs, {});
}

const EngineStats& Engine::stats() const {
  return impl_->stats;
}

// ---- StreamQuery ----

Result<StreamQuery> StreamQuery::Parse(std::string_view text, const StreamLimits& limits) {
  return Parse(text, limits, {});
}

Result<StreamQuery> StreamQuery::Parse(std::string_view text, const StreamLimits& limits,
                                       const std::vector<std::string>& reference_inputs) {
  const query::ExprOptions& options = internal::StreamExprOptions(limits);
  ORRERY_ASSIGN_OR_RETURN(auto tokens, query::Lex(text, limits.text, options.lex));
  internal::QuoteBracketedNames(tokens);
  ORRERY_ASSIGN_OR_RETURN(auto plan, query::Catching([&] {
                            query::TokenCursor in(std::move(tokens));
                            query::ExpressionParser parser(in, options);
                            internal::ParsedQuery parsed =
                                internal::ParseStatements(in, parser, limits);
                            return std::make_shared<const internal::Plan>(
                                internal::BindQuery(parsed, limits, reference_inputs));
                          }));
  StreamQuery q;
  q.plan_ = std::move(plan);
  return q;
}

const std::vector<std::string>& StreamQuery::inputs() const {
  return plan_->inputs;
}
const std::vector<std::string>& StreamQuery::outputs() const {
  return plan_->outputs;
}
const std::vector<std::string>& StreamQuery::references() const {
  return plan_->references;
}

}  // namespace orrery::stream
