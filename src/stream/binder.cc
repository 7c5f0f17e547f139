// Binds parsed ASA statements into a plan: names to the event or to the row's extras
// (System.Timestamp(), GROUP BY values, aggregates), windows from GROUP BY, FROM to inputs or
// earlier WITH steps, INTO to sinks; and checks the rules of grouped queries.
#include <algorithm>

#include "base/strings.h"
#include "query/binder.h"
#include "query/query_error.h"
#include "stream/anomaly.h"
#include "stream/plan.h"

namespace orrery::stream::internal {

bool KnownType(std::string_view type);
bool KnownDatePart(std::string_view part);

namespace {

using query::BoundExpr;
using query::Errc;
using query::Expr;
using query::ExprKind;
using query::ExprPtr;
using query::QueryError;

[[noreturn]] void Fail(query::Position pos, Errc code, std::string message) {
  throw QueryError(code, pos, std::move(message));
}

// `e` without its children.
ExprPtr CopyNode(const Expr& e) {
  auto out = std::make_unique<Expr>();
  out->kind = e.kind;
  out->op = e.op;
  out->negated = e.negated;
  out->star = e.star;
  out->distinct = e.distinct;
  out->depth = e.depth;
  out->pos = e.pos;
  out->literal = e.literal;
  out->name = e.name;
  out->keys = e.keys;
  return out;
}

ExprPtr Extra(std::string name, query::Position pos) {
  auto e = std::make_unique<Expr>();
  e->kind = ExprKind::kName;
  e->name = std::move(name);
  e->pos = pos;
  return e;
}

std::optional<AggKind> FindAgg(std::string_view name) {
  static constexpr std::pair<std::string_view, AggKind> kAggs[] = {
      {"COUNT", AggKind::kCount},   {"SUM", AggKind::kSum}, {"AVG", AggKind::kAvg},
      {"MIN", AggKind::kMin},       {"MAX", AggKind::kMax}, {"STDEV", AggKind::kStdev},
      {"STDEVP", AggKind::kStdevp}, {"VAR", AggKind::kVar}, {"VARP", AggKind::kVarp}};
  for (auto [n, k] : kAggs) {
    if (strings::IEquals(name, n)) return k;
  }
  return std::nullopt;
}

bool NotYet(std::string_view name) {
  for (std::string_view n : {"UDF"}) {
    if (strings::IEquals(name, n)) return true;
  }
  return false;
}

bool IsWindowCall(const Expr& e) {
  if (e.kind != ExprKind::kCall) return false;
  for (std::string_view n :
       {"TUMBLINGWINDOW", "TUMBLING", "HOPPINGWINDOW", "HOPPING", "SLIDINGWINDOW", "SLIDING",
        "SESSIONWINDOW", "SESSION", "SNAPSHOTWINDOW", "SNAPSHOT", "SYSTEM.TIMESTAMP", "WINDOWS"}) {
    if (strings::IEquals(e.name, n)) return true;
  }
  return false;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  return out;
}

// TopOne, Collect, CollectTop and the percentiles: aggregates with their own syntax.
bool IsRankedAgg(std::string_view name) {
  for (std::string_view n :
       {"TOPONE", "COLLECT", "COLLECTTOP", "PERCENTILE_CONT", "PERCENTILE_DISC"}) {
    if (strings::IEquals(name, n)) return true;
  }
  return false;
}

bool IsAnomalyDetection(std::string_view name) {
  return strings::IEquals(name, "AnomalyDetection_SpikeAndDip") ||
         strings::IEquals(name, "AnomalyDetection_ChangePoint");
}

bool IsAnalytic(std::string_view name) {
  return strings::IEquals(name, "LAG") || strings::IEquals(name, "LAST") ||
         strings::IEquals(name, "ISFIRST") || IsAnomalyDetection(name);
}

bool IsTableValued(std::string_view name) {
  return strings::IEquals(name, "GetArrayElements") ||
         strings::IEquals(name, "GetRecordProperties");
}

// The name of what an aggregate, ranked aggregate, analytic function or OVER call computes
// ("LAG", "SUM"), or "" for anything else.
std::string AggregateOrAnalytic(const Expr& e) {
  if (e.kind != ExprKind::kCall) return "";
  if (e.name == "$OVER") return AggregateOrAnalytic(*e.children[0]);
  if (FindAgg(e.name) || IsRankedAgg(e.name) || IsAnalytic(e.name)) return Upper(e.name);
  return "";
}

// The stream function computing `e` with ASA's null arithmetic, or null when `e` is not an
// arithmetic operator (a negated literal stays a literal).
const char* NullArithmeticName(const Expr& e) {
  if (e.kind == ExprKind::kNegate) {
    return e.children[0]->kind == ExprKind::kLiteral ? nullptr : "$NEG";
  }
  if (e.kind != ExprKind::kBinary) return nullptr;
  switch (e.op) {
    case query::BinaryOp::kAdd:
      return "$ADD";
    case query::BinaryOp::kSub:
      return "$SUB";
    case query::BinaryOp::kMul:
      return "$MUL";
    case query::BinaryOp::kDiv:
      return "$DIV";
    case query::BinaryOp::kMod:
      return "$MOD";
    default:
      return nullptr;
  }
}

struct Ctx {
  const query::BindOptions* event = nullptr;
  const StreamLimits* limits = nullptr;
  bool grouped = false;
  bool allow_aggs = false;
  std::string_view clause;  // for messages: "in WHERE"
  std::vector<std::string> key_texts;
  std::vector<AggSpec>* aggs = nullptr;
  std::vector<AnalyticSpec>* analytics = nullptr;  // null: analytic functions are not allowed
  bool uses_ts = false;
  bool uses_window = false;  // System.Window()
};

// `what`: "window" (sizes of windows) or "duration" (LIMIT DURATION, ISFIRST's interval).
Micros SizeOf(const Expr& unit, const Expr& n, const StreamLimits& limits, bool allow_zero,
              std::string_view what = "window");
ExprPtr Rewrite(const Expr& e, Ctx& c);

// The clauses of an OVER: $OVER(call, $PARTITION_BY(…), $ORDER_BY(…), $LIMIT_DURATION(…),
// $WHEN(…)) as the expression parser desugars it; null members were not written.
struct Over {
  const Expr* partition = nullptr;
  const Expr* order = nullptr;
  const Expr* duration = nullptr;
  const Expr* when = nullptr;
};

Over ReadOver(const Expr& e) {
  Over o;
  for (size_t i = 1; i < e.children.size(); ++i) {
    const Expr& clause = *e.children[i];
    if (clause.name == "$PARTITION_BY") o.partition = &clause;
    if (clause.name == "$ORDER_BY") o.order = &clause;
    if (clause.name == "$LIMIT_DURATION") o.duration = &clause;
    if (clause.name == "$WHEN") o.when = &clause;
  }
  return o;
}

// A context for the arguments of an aggregate or analytic function: per event, no aggregates;
// analytic functions only where `analytics` is given.
Ctx ArgumentCtx(const Ctx& c, std::string_view clause, std::vector<AnalyticSpec>* analytics) {
  Ctx a;
  a.event = c.event;
  a.limits = c.limits;
  a.clause = clause;
  a.analytics = analytics;
  return a;
}

query::BoundExpr BindArg(const Expr& e, Ctx& a) {
  ExprPtr r = Rewrite(e, a);
  return query::BindOrThrow(*r, *a.event);
}

// An integer literal (a positive one: `what` names it in the error).
int64_t PositiveLiteral(const Expr& e, std::string_view what, int64_t max) {
  std::optional<int64_t> v;
  if (e.kind == ExprKind::kLiteral) v = query::ToInt64(e.literal);
  if (!v || *v < 1)
    Fail(e.pos, Errc::kInvalidQuery, std::string(what) + " must be an integer of 1 or more");
  if (*v > max) {
    Fail(e.pos, Errc::kLimitExceeded,
         std::string(what) + " is too large (the limit is " + std::to_string(max) + ")");
  }
  return *v;
}

// The aggregate `fn` (COUNT…VARP, TopOne, Collect, CollectTop, PERCENTILE_CONT/DISC), its ORDER
// BY from `over` (TopOne, CollectTop, the percentiles). Arguments are bound in `a`.
AggSpec BindAgg(const Expr& fn, const Over& over, Ctx& a) {
  AggSpec spec;
  std::string name = Upper(fn.name);
  std::string lname = strings::ToLower(fn.name);
  const auto& args = fn.children;
  bool ranked = IsRankedAgg(name);
  bool ordered = name == "TOPONE" || name == "COLLECTTOP" || name.rfind("PERCENTILE", 0) == 0;
  if (over.order && !ordered) {
    Fail(over.order->pos, Errc::kInvalidQuery,
         "ORDER BY applies to TopOne, CollectTop, PERCENTILE_CONT and PERCENTILE_DISC, not " +
             fn.name);
  }
  if (ordered && !over.order) {
    Fail(fn.pos, Errc::kInvalidQuery, fn.name + " needs OVER (ORDER BY …)");
  }
  if (fn.distinct && name != "COUNT") {
    Fail(fn.pos, Errc::kInvalidQuery, "DISTINCT is only allowed in COUNT(DISTINCT …)");
  }
  if (fn.star && name != "COUNT")
    Fail(fn.pos, Errc::kInvalidQuery, "'*' is only allowed in COUNT(*)");
  if (over.order) {
    const auto& keys = over.order->children;  // key, 'ASC' | 'DESC', …
    for (size_t i = 0; i + 1 < keys.size(); i += 2) {
      OrderKey k;
      k.expr = BindArg(*keys[i], a);
      k.desc = keys[i + 1]->literal.is_string() && keys[i + 1]->literal.get_string() == "DESC";
      spec.order.push_back(std::move(k));
    }
  }
  if (!ranked) {
    spec.kind = *FindAgg(name);
    if (fn.star || args.empty()) {
      if (spec.kind != AggKind::kCount)
        Fail(fn.pos, Errc::kInvalidQuery, lname + " needs one argument");
      spec.rows = true;
      return spec;
    }
    if (args.size() != 1) Fail(fn.pos, Errc::kInvalidQuery, lname + " takes one argument");
    spec.arg = BindArg(*args[0], a);
    if (fn.distinct) spec.kind = AggKind::kCountDistinct;
    return spec;
  }
  if (name == "TOPONE" || name == "COLLECT") {
    spec.kind = name == "TOPONE" ? AggKind::kTopOne : AggKind::kCollect;
    if (args.size() > 1) Fail(fn.pos, Errc::kInvalidQuery, fn.name + " takes at most one argument");
    spec.whole_event = args.empty();
    if (!args.empty()) spec.arg = BindArg(*args[0], a);
    return spec;
  }
  if (name == "COLLECTTOP") {
    spec.kind = AggKind::kCollectTop;
    if (args.empty() || args.size() > 2) {
      Fail(fn.pos, Errc::kInvalidQuery, "CollectTop takes a count and at most one value");
    }
    spec.top = static_cast<uint32_t>(PositiveLiteral(*args[0], "CollectTop's count",
                                                     static_cast<int64_t>(a.limits->max_collect)));
    spec.whole_event = args.size() == 1;
    if (args.size() == 2) spec.arg = BindArg(*args[1], a);
    return spec;
  }
  spec.kind = name == "PERCENTILE_CONT" ? AggKind::kPercentileCont : AggKind::kPercentileDisc;
  std::optional<double> p;
  if (args.size() == 1 && args[0]->kind == ExprKind::kLiteral && args[0]->literal.is_number()) {
    p = query::ToDouble(args[0]->literal);
  }
  if (!p || *p < 0 || *p > 1) {
    Fail(args.empty() ? fn.pos : args[0]->pos, Errc::kInvalidQuery,
         fn.name + " takes one number between 0 and 1 (the percentile)");
  }
  if (spec.order.size() != 1) {
    Fail(over.order->pos, Errc::kInvalidQuery, fn.name + " orders by exactly one expression");
  }
  spec.percentile = *p;
  spec.arg = spec.order[0].expr;
  return spec;
}

// AnomalyDetection_SpikeAndDip(x, confidence, historySize, mode),
// AnomalyDetection_ChangePoint(x, confidence, historySize): the arguments as ASA's pages give
// them (confidence a number from 1 to 100, historySize an integer, mode 'spikes', 'dips' or
// 'spikesanddips'; no `*`).
void BindAnomalyDetection(const Expr& fn, AnalyticSpec& spec, Ctx& a) {
  bool spikes = strings::IEquals(fn.name, "AnomalyDetection_SpikeAndDip");
  spec.kind = spikes ? AnalyticKind::kSpikeAndDip : AnalyticKind::kChangePoint;
  const auto& args = fn.children;
  if (fn.star) Fail(fn.pos, Errc::kInvalidQuery, fn.name + " does not take '*' (give a number)");
  size_t want = spikes ? 4 : 3;
  if (args.size() != want) {
    Fail(fn.pos, Errc::kInvalidQuery,
         spikes ? fn.name + " takes a value, a confidence, a history size and a mode: " + fn.name +
                      "(x, 95, 120, 'spikesanddips')"
                : fn.name + " takes a value, a confidence and a history size: " + fn.name +
                      "(x, 95, 120)");
  }
  spec.value = BindArg(*args[0], a);
  std::optional<double> confidence;
  if (args[1]->kind == ExprKind::kLiteral && args[1]->literal.is_number()) {
    confidence = query::ToDouble(args[1]->literal);
  }
  if (!confidence || !(*confidence >= 1 && *confidence <= 100)) {
    Fail(args[1]->pos, Errc::kInvalidQuery,
         fn.name + "'s confidence must be a number from 1 to 100");
  }
  spec.confidence = *confidence;
  spec.history = static_cast<uint32_t>(
      PositiveLiteral(*args[2], fn.name + "'s historySize", kMaxAnomalyHistory));
  if (spec.history < 2) {
    Fail(args[2]->pos, Errc::kInvalidQuery, fn.name + "'s historySize must be 2 or more");
  }
  if (spikes) {
    const Expr& mode = *args[3];
    static constexpr std::pair<std::string_view, AnomalySide> kModes[] = {
        {"spikes", AnomalySide::kSpikes},
        {"dips", AnomalySide::kDips},
        {"spikesanddips", AnomalySide::kBoth}};
    bool found = false;
    if (mode.kind == ExprKind::kLiteral && mode.literal.is_string()) {
      for (auto [n, side] : kModes) {
        if (strings::IEquals(mode.literal.get_string(), n)) {
          spec.side = static_cast<uint8_t>(side);
          found = true;
        }
      }
    }
    if (!found) {
      Fail(mode.pos, Errc::kInvalidQuery,
           fn.name + "'s mode must be 'spikes', 'dips' or 'spikesanddips'");
    }
  }
}

// LAG, LAST, ISFIRST, the anomaly detectors, or an aggregate OVER (… LIMIT DURATION …):
// computed per event; the expression becomes the extra AnalyticName(i).
ExprPtr BindAnalytic(const Expr& whole, const Expr& fn, const Over& over, Ctx& c) {
  std::string name = Upper(fn.name);
  if (!c.analytics) {
    Fail(fn.pos, Errc::kInvalidQuery,
         "analytic function " + name + " is not allowed " +
             std::string(c.clause.empty() ? "here" : c.clause));
  }
  if (c.grouped) {
    Fail(
        fn.pos, Errc::kInvalidQuery,
        name + " in a grouped SELECT must be inside an aggregate (it is computed for every event)");
  }
  Ctx a = ArgumentCtx(c, "inside an analytic function", nullptr);
  AnalyticSpec spec;
  spec.name = name;
  const auto& args = fn.children;
  if (name == "ISFIRST") {
    spec.kind = AnalyticKind::kIsFirst;
    if (over.duration || over.order) {
      Fail((over.duration ? over.duration : over.order)->pos, Errc::kInvalidQuery,
           "ISFIRST takes its interval as arguments: ISFIRST(unit, length) OVER ([PARTITION BY …] "
           "[WHEN …])");
    }
    if (args.size() != 2) {
      Fail(fn.pos, Errc::kInvalidQuery,
           "ISFIRST takes a time unit and a length: ISFIRST(minute, 10)");
    }
    spec.duration = SizeOf(*args[0], *args[1], *c.limits, false, "duration");
  } else {
    if (!over.duration) {
      Fail(fn.pos, Errc::kInvalidQuery,
           fn.name + " needs OVER ([PARTITION BY …] LIMIT DURATION(unit, length) [WHEN …])");
    }
    if (over.order && (name == "LAG" || name == "LAST" || IsAnomalyDetection(name))) {
      Fail(over.order->pos, Errc::kInvalidQuery,
           fn.name + " takes no ORDER BY (events come in time order)");
    }
    spec.duration = SizeOf(*over.duration->children[0], *over.duration->children[1], *c.limits,
                           false, "duration");
    if (IsAnomalyDetection(name)) {
      BindAnomalyDetection(fn, spec, a);
    } else if (name == "LAG" || name == "LAST") {
      spec.kind = name == "LAG" ? AnalyticKind::kLag : AnalyticKind::kLast;
      size_t max_args = name == "LAG" ? 3 : 2;
      if ((!fn.star && args.empty()) || args.size() > max_args) {
        Fail(fn.pos, Errc::kInvalidQuery,
             name == "LAG" ? "LAG takes a value (or *), an offset and a default"
                           : "LAST takes a value (or *) and a default");
      }
      if (!fn.star) spec.value = BindArg(*args[0], a);
      size_t next = 1;
      if (name == "LAG" && args.size() >= 2) {
        spec.offset = static_cast<uint32_t>(PositiveLiteral(
            *args[1], "LAG's offset", static_cast<int64_t>(c.limits->max_analytic_events)));
        next = 2;
      }
      if (args.size() > next) spec.fallback = BindArg(*args[next], a);
    } else {
      spec.kind = AnalyticKind::kAggregate;
      if (name.rfind("PERCENTILE", 0) == 0 || name.rfind("STDEV", 0) == 0 ||
          name.rfind("VAR", 0) == 0 || fn.distinct) {
        Fail(fn.pos, Errc::kInvalidQuery,
             std::string(fn.distinct ? "COUNT(DISTINCT …)" : fn.name) +
                 " OVER (… LIMIT DURATION …) is not an analytic aggregate (those are COUNT, SUM, "
                 "AVG, MIN, MAX, TopOne, Collect and CollectTop)");
      }
      spec.agg = BindAgg(fn, over, a);
    }
  }
  if (over.partition) {
    for (const auto& k : over.partition->children)
      spec.partition.push_back(BindArg(*k, a));
  }
  if (over.when) spec.when = BindArg(*over.when->children[0], a);
  c.uses_ts |= a.uses_ts;
  c.analytics->push_back(std::move(spec));
  return Extra(AnalyticName(c.analytics->size() - 1), whole.pos);
}

// An aggregate of a grouped SELECT: its value is the extra kAgg<i>.
ExprPtr BindWindowedAgg(const Expr& fn, const Over& over, Ctx& c) {
  std::string lname = strings::ToLower(fn.name);
  if (!c.allow_aggs) {
    if (!c.clause.empty()) {
      Fail(fn.pos, Errc::kInvalidQuery,
           "aggregate " + lname + " is not allowed " + std::string(c.clause));
    }
    Fail(fn.pos, Errc::kInvalidQuery, "aggregate " + lname + " needs a GROUP BY with a window");
  }
  if (over.partition || over.when) {
    Fail((over.partition ? over.partition : over.when)->pos, Errc::kInvalidQuery,
         "PARTITION BY and WHEN belong to the analytic form, with LIMIT DURATION");
  }
  // Arguments are per event: no aggregates inside, analytic functions allowed (they are computed
  // before the event is aggregated).
  Ctx a = ArgumentCtx(c, "inside another aggregate", c.analytics);
  c.aggs->push_back(BindAgg(fn, over, a));
  c.uses_ts |= a.uses_ts;
  return Extra(
      "\x01"
      "a" +
          std::to_string(c.aggs->size() - 1),
      fn.pos);
}

ExprPtr RewriteCall(const Expr& e, Ctx& c) {
  const Expr& fn = e.name == "$OVER" ? *e.children[0] : e;
  Over over = e.name == "$OVER" ? ReadOver(e) : Over{};
  std::string name = Upper(fn.name);
  if (IsAnalytic(name) || over.duration) {
    if (!IsAnalytic(name) && !FindAgg(name) && !IsRankedAgg(name)) {
      Fail(fn.pos, Errc::kInvalidQuery,
           "OVER (… LIMIT DURATION …) applies to LAG, LAST and aggregates, not " + fn.name);
    }
    return BindAnalytic(e, fn, over, c);
  }
  if (FindAgg(name) && e.name == "$OVER" && !over.order) {
    Fail(fn.pos, Errc::kInvalidQuery,
         fn.name + " OVER needs LIMIT DURATION(unit, length) (or use GROUP BY with a window)");
  }
  if (FindAgg(name) || IsRankedAgg(name)) return BindWindowedAgg(fn, over, c);
  Fail(fn.pos, Errc::kInvalidQuery,
       "OVER applies to analytic functions (LAG, LAST, ISFIRST) and aggregates, not " + fn.name);
}

void CheckCall(const Expr& e) {
  if (NotYet(e.name)) Fail(e.pos, Errc::kInvalidQuery, e.name + " is not supported yet");
  if (strings::IEquals(e.name, "System.Window")) {
    Fail(e.pos, Errc::kInvalidQuery,
         "System.Window() can only be used in the SELECT of a GROUP BY with a window");
  }
  if (strings::IEquals(e.name, "Window")) {
    Fail(e.pos, Errc::kInvalidQuery,
         "Window('id', …) names a window inside Windows(…) in GROUP BY");
  }
  if (IsTableValued(e.name)) {
    Fail(e.pos, Errc::kInvalidQuery,
         e.name + " returns rows: use it in FROM … CROSS APPLY or OUTER APPLY");
  }

  if ((e.name == "CAST" || e.name == "TRY_CAST") && e.children.size() == 2 &&
      e.children[1]->literal.is_string() && !KnownType(e.children[1]->literal.get_string())) {
    Fail(e.children[1]->pos, Errc::kInvalidQuery,
         "unknown type '" + std::string(e.children[1]->literal.get_string()) +
             "' (bigint, float, nvarchar(max), datetime, bit, record, array)");
  }
  if (e.distinct && !FindAgg(e.name)) {
    Fail(e.pos, Errc::kInvalidQuery, "DISTINCT is only allowed in COUNT(DISTINCT …)");
  }
}

void RejectAggs(const Expr& e, std::string_view where) {
  if (e.kind == ExprKind::kCall) {
    if (e.name == "$OVER" || IsAnalytic(e.name)) {
      Fail(e.name == "$OVER" ? e.children[0]->pos : e.pos, Errc::kInvalidQuery,
           "analytic function " + AggregateOrAnalytic(e) + " is not allowed " + std::string(where));
    }
    if (FindAgg(e.name) || IsRankedAgg(e.name)) {
      Fail(e.pos, Errc::kInvalidQuery,
           "aggregate " + strings::ToLower(e.name) + " is not allowed " + std::string(where));
    }
    CheckCall(e);
  }
  for (const auto& c : e.children)
    RejectAggs(*c, where);
}

ExprPtr Rewrite(const Expr& e, Ctx& c) {
  if (c.grouped) {
    std::string text = query::ToString(e);
    for (size_t i = 0; i < c.key_texts.size(); ++i) {
      if (text == c.key_texts[i]) return Extra("\x01k" + std::to_string(i), e.pos);
    }
  }
  if (e.kind == ExprKind::kCall) {
    if (strings::IEquals(e.name, "System.Timestamp")) {
      if (!e.children.empty())
        Fail(e.pos, Errc::kInvalidQuery, "System.Timestamp() takes no arguments");
      c.uses_ts = true;
      return Extra(std::string(kTsName), e.pos);
    }
    if (strings::IEquals(e.name, "System.Window")) {
      if (!e.children.empty())
        Fail(e.pos, Errc::kInvalidQuery, "System.Window() takes no arguments");
      if (!c.grouped) {
        Fail(e.pos, Errc::kInvalidQuery,
             "System.Window() can only be used in the SELECT of a GROUP BY with a window");
      }
      c.uses_window = true;
      return Extra(std::string(kWindowName), e.pos);
    }
    if (e.name == "$OVER" || FindAgg(e.name) || IsRankedAgg(e.name) || IsAnalytic(e.name)) {
      return RewriteCall(e, c);
    }
    if (IsWindowCall(e)) Fail(e.pos, Errc::kInvalidQuery, "a window may only appear in GROUP BY");
    CheckCall(e);
  }
  // Arithmetic: a null operand gives null (ASA), through the stream library's $ADD, $SUB, ….
  if (const char* fn = NullArithmeticName(e)) {
    auto call = std::make_unique<Expr>();
    call->kind = ExprKind::kCall;
    call->name = fn;
    call->pos = e.pos;
    call->depth = e.depth;
    for (const auto& child : e.children)
      call->children.push_back(Rewrite(*child, c));
    return call;
  }
  auto out = CopyNode(e);
  // The date functions' first argument is a date part keyword (DATEADD(minute, 5, t)), not a
  // column: it travels as a string.
  bool part_first = e.kind == ExprKind::kCall &&
                    (strings::IEquals(e.name, "DATEADD") || strings::IEquals(e.name, "DATEDIFF") ||
                     strings::IEquals(e.name, "DATEPART") || strings::IEquals(e.name, "DATENAME"));
  if (part_first) {
    if (e.children.empty() || e.children[0]->kind != ExprKind::kName ||
        !e.children[0]->children.empty()) {
      Fail(e.pos, Errc::kInvalidQuery,
           e.name +
               " takes a date part first (year, quarter, month, dayofyear, day, week, "
               "weekday, hour, minute, second, millisecond, microsecond)");
    }
    if (!KnownDatePart(strings::ToLower(e.children[0]->name))) {
      Fail(e.children[0]->pos, Errc::kInvalidQuery,
           "unknown date part '" + e.children[0]->name +
               "' (year, quarter, month, dayofyear, day, week, weekday, hour, minute, second, "
               "millisecond, microsecond, or their abbreviations)");
    }
  }
  for (size_t i = 0; i < e.children.size(); ++i) {
    if (part_first && i == 0) {
      auto lit = std::make_unique<Expr>();
      lit->kind = ExprKind::kLiteral;
      lit->pos = e.children[0]->pos;
      lit->literal = boost::json::string(strings::ToLower(e.children[0]->name));
      out->children.push_back(std::move(lit));
      continue;
    }
    out->children.push_back(Rewrite(*e.children[i], c));
  }
  return out;
}

// The first name of a path that is neither an extra nor inside an aggregate (grouped queries).
const Expr* UngroupedName(const Expr& e) {
  if (e.kind == ExprKind::kName && (e.name.empty() || e.name[0] != '\x01')) return &e;
  for (const auto& c : e.children) {
    if (const Expr* n = UngroupedName(*c)) return n;
  }
  return nullptr;
}

Micros UnitOf(const Expr& e) {
  if (e.kind == ExprKind::kName) {
    std::string u = strings::ToLower(e.name);
    if (u == "day" || u == "dd" || u == "d") return 86400 * kSecond;
    if (u == "hour" || u == "hh") return 3600 * kSecond;
    if (u == "minute" || u == "mi" || u == "n") return 60 * kSecond;
    if (u == "second" || u == "ss" || u == "s") return kSecond;
    if (u == "millisecond" || u == "ms") return 1000;
    if (u == "microsecond" || u == "mcs") return 1;
  }
  Fail(e.pos, Errc::kInvalidQuery,
       "expected a time unit (day, hour, minute, second, millisecond, microsecond), found " +
           (e.kind == ExprKind::kName ? "'" + e.name + "'" : std::string("an expression")));
}

Micros SizeOf(const Expr& unit, const Expr& n, const StreamLimits& limits, bool allow_zero,
              std::string_view what) {
  Micros u = UnitOf(unit);
  std::optional<int64_t> v;
  if (n.kind == ExprKind::kLiteral) v = query::ToInt64(n.literal);
  if (n.kind == ExprKind::kNegate && n.children[0]->kind == ExprKind::kLiteral) {
    if (auto x = query::ToInt64(n.children[0]->literal)) v = -*x;
  }
  if (!v || (*v <= 0 && !(allow_zero && *v == 0))) {
    Fail(n.pos, Errc::kInvalidQuery,
         "a " + std::string(what == "window" ? "window size" : what) +
             " must be a positive integer");
  }
  if (*v > limits.max_window / u) {
    Fail(n.pos, Errc::kLimitExceeded, std::string(what) + " is too large (the limit is 7 days)");
  }
  return *v * u;
}

// Duration(unit, n), Hop(unit, n), Offset(unit, n), Timeout(…), MaxDuration(…)
Micros NamedSize(const Expr& call, std::string_view name, const StreamLimits& limits) {
  if (call.kind != ExprKind::kCall || !strings::IEquals(call.name, name) ||
      call.children.size() != 2) {
    Fail(call.pos, Errc::kInvalidQuery, "expected " + std::string(name) + "(unit, size)");
  }
  return SizeOf(*call.children[0], *call.children[1], limits, strings::IEquals(name, "Offset"));
}

WindowSpec BindWindow(const Expr& e, const StreamLimits& limits) {
  WindowSpec w;
  std::string n = strings::ToLower(e.name);
  const auto& a = e.children;
  bool named = !a.empty() && a[0]->kind == ExprKind::kCall;
  auto arity = [&](size_t lo, size_t hi) {
    if (a.size() < lo || a.size() > hi) {
      Fail(e.pos, Errc::kInvalidQuery, "wrong number of arguments to " + e.name);
    }
  };
  if (n == "system.timestamp" || n == "snapshotwindow" || n == "snapshot") {
    arity(0, 0);
    w.kind = WindowKind::kSnapshot;
  } else if (n == "tumblingwindow" || n == "tumbling") {
    w.kind = WindowKind::kTumbling;
    if (named) {
      arity(1, 2);
      w.size = NamedSize(*a[0], "Duration", limits);
      if (a.size() == 2) w.offset = NamedSize(*a[1], "Offset", limits);
    } else {
      arity(2, 3);
      w.size = SizeOf(*a[0], *a[1], limits, false);
      if (a.size() == 3) w.offset = SizeOf(*a[0], *a[2], limits, true);
    }
    w.hop = w.size;
  } else if (n == "hoppingwindow" || n == "hopping") {
    w.kind = WindowKind::kHopping;
    if (named) {
      arity(2, 3);
      w.size = NamedSize(*a[0], "Duration", limits);
      w.hop = NamedSize(*a[1], "Hop", limits);
      if (a.size() == 3) w.offset = NamedSize(*a[2], "Offset", limits);
    } else {
      arity(3, 4);
      w.size = SizeOf(*a[0], *a[1], limits, false);
      w.hop = SizeOf(*a[0], *a[2], limits, false);
      if (a.size() == 4) w.offset = SizeOf(*a[0], *a[3], limits, true);
    }
    if (w.size / w.hop > limits.max_hops_per_event) {
      Fail(e.pos, Errc::kLimitExceeded,
           "hopping window overlaps too many windows (size / hop over " +
               std::to_string(limits.max_hops_per_event) + ")");
    }
  } else if (n == "slidingwindow" || n == "sliding") {
    w.kind = WindowKind::kSliding;
    if (named) {
      arity(1, 1);
      w.size = NamedSize(*a[0], "Duration", limits);
    } else {
      arity(2, 2);
      w.size = SizeOf(*a[0], *a[1], limits, false);
    }
  } else {
    w.kind = WindowKind::kSession;
    if (named) {
      arity(2, 2);
      w.size = NamedSize(*a[0], "Timeout", limits);
      w.max_duration = NamedSize(*a[1], "MaxDuration", limits);
    } else {
      arity(3, 3);
      w.size = SizeOf(*a[0], *a[1], limits, false);
      w.max_duration = SizeOf(*a[0], *a[2], limits, false);
    }
    if (w.max_duration < w.size) {
      Fail(e.pos, Errc::kInvalidQuery,
           "a session's maximum duration must not be shorter than its timeout");
    }
  }
  if (w.offset >= w.hop && w.hop > 0)
    Fail(e.pos, Errc::kInvalidQuery, "a window offset must be smaller than the hop");
  return w;
}

// The sources of a SELECT (FROM's, then one per JOIN) by their aliases (or names).
using Aliases = std::vector<std::string>;

int AliasIndex(const Aliases& aliases, std::string_view name) {
  for (size_t i = 0; i < aliases.size(); ++i) {
    if (strings::IEquals(aliases[i], name)) return static_cast<int>(i);
  }
  return -1;
}

bool PartFirst(const Expr& e) {
  return e.kind == ExprKind::kCall &&
         (strings::IEquals(e.name, "DATEADD") || strings::IEquals(e.name, "DATEDIFF") ||
          strings::IEquals(e.name, "DATEPART") || strings::IEquals(e.name, "DATENAME"));
}

// In a JOIN every path starts with a source's alias: events have no schema that could say
// which source a bare name belongs to.
void CheckQualified(const Expr& e, const Aliases& aliases) {
  if (e.kind == ExprKind::kName) {
    if (AliasIndex(aliases, e.name) < 0) {
      std::string examples;
      for (const auto& a : aliases)
        examples += (examples.empty() ? "" : ", ") + a + "." + e.name;
      Fail(e.pos, Errc::kInvalidQuery,
           "'" + e.name + "' must start with a source's alias in a JOIN (" + examples + ")");
    }
    return;
  }
  if (IsWindowCall(e)) return;
  bool part_first = PartFirst(e);
  for (size_t i = 0; i < e.children.size(); ++i) {
    if (!(part_first && i == 0)) CheckQualified(*e.children[i], aliases);
  }
}

// DATEDIFF(unit, a, b) whose a and b are sources' aliases: the special form of ON.
bool IsSourceDatediff(const Expr& e, const Aliases& aliases) {
  return e.kind == ExprKind::kCall && strings::IEquals(e.name, "DATEDIFF") &&
         e.children.size() == 3 && e.children[1]->kind == ExprKind::kName &&
         e.children[2]->kind == ExprKind::kName && AliasIndex(aliases, e.children[1]->name) >= 0 &&
         AliasIndex(aliases, e.children[2]->name) >= 0;
}

const Expr* FindSourceDatediff(const Expr& e, const Aliases& aliases) {
  if (IsSourceDatediff(e, aliases)) return &e;
  for (const auto& c : e.children) {
    if (const Expr* d = FindSourceDatediff(*c, aliases)) return d;
  }
  return nullptr;
}

void FlattenAnd(const Expr& e, std::vector<const Expr*>& out) {
  if (e.kind == ExprKind::kAnd) {
    for (const auto& c : e.children)
      FlattenAnd(*c, out);
  } else {
    out.push_back(&e);
  }
}

// The sources a bound expression reads (bit i: source i).
uint32_t SourcesOf(const BoundExpr& b) {
  uint32_t out = 0;
  if (b.op == query::BoundOp::kPath && b.args.empty() && b.root != 1) {
    out |= 1u << (b.root == 0 ? 0 : b.root - 1);
  }
  for (const auto& a : b.args)
    out |= SourcesOf(a);
  return out;
}

// A bound of a JOIN: t(b) - t(a) within [lo, hi] for DATEDIFF(unit, a, b).
struct TimeBound {
  int a = 0;
  int b = 0;
  std::optional<Micros> lo;
  std::optional<Micros> hi;
};

Micros BoundValue(const Expr& n, Micros unit, const StreamLimits& limits) {
  std::optional<int64_t> v;
  if (n.kind == ExprKind::kLiteral && n.literal.is_int64()) v = n.literal.get_int64();
  if (n.kind == ExprKind::kNegate && n.children[0]->kind == ExprKind::kLiteral &&
      n.children[0]->literal.is_int64()) {
    v = -n.children[0]->literal.get_int64();
  }
  if (!v) Fail(n.pos, Errc::kInvalidQuery, "a JOIN's time bound must be an integer");
  if (*v > limits.max_window / unit || *v < -limits.max_window / unit) {
    Fail(n.pos, Errc::kLimitExceeded, "a JOIN's time bound is too large (the limit is 7 days)");
  }
  return *v * unit;
}

// `DATEDIFF(u, a, b) BETWEEN x AND y`, `DATEDIFF(…) op n` or `n op DATEDIFF(…)`; nullopt when
// `e` is none of these.
std::optional<TimeBound> AsTimeBound(const Expr& e, const Aliases& aliases,
                                     const StreamLimits& limits) {
  auto bound_of = [&](const Expr& d) {
    TimeBound t;
    t.a = AliasIndex(aliases, d.children[1]->name);
    t.b = AliasIndex(aliases, d.children[2]->name);
    return t;
  };
  if (e.kind == ExprKind::kBetween && !e.negated && IsSourceDatediff(*e.children[0], aliases)) {
    const Expr& d = *e.children[0];
    Micros unit = UnitOf(*d.children[0]);
    TimeBound t = bound_of(d);
    t.lo = BoundValue(*e.children[1], unit, limits);
    t.hi = BoundValue(*e.children[2], unit, limits);
    return t;
  }
  if (e.kind != ExprKind::kBinary || !query::IsComparison(e.op)) return std::nullopt;
  bool left = IsSourceDatediff(*e.children[0], aliases);
  bool right = IsSourceDatediff(*e.children[1], aliases);
  if (left == right) return std::nullopt;
  const Expr& d = left ? *e.children[0] : *e.children[1];
  const Expr& n = left ? *e.children[1] : *e.children[0];
  query::BinaryOp op = e.op;
  if (!left) {  // n op d → d op' n
    op = op == query::BinaryOp::kLt   ? query::BinaryOp::kGt
         : op == query::BinaryOp::kLe ? query::BinaryOp::kGe
         : op == query::BinaryOp::kGt ? query::BinaryOp::kLt
         : op == query::BinaryOp::kGe ? query::BinaryOp::kLe
                                      : op;
  }
  Micros unit = UnitOf(*d.children[0]);
  Micros v = BoundValue(n, unit, limits);
  TimeBound t = bound_of(d);
  switch (op) {
    case query::BinaryOp::kEq:
      t.lo = t.hi = v;
      break;
    case query::BinaryOp::kLt:
      t.hi = v - 1;
      break;
    case query::BinaryOp::kLe:
      t.hi = v;
      break;
    case query::BinaryOp::kGt:
      t.lo = v + 1;
      break;
    case query::BinaryOp::kGe:
      t.lo = v;
      break;
    default:
      Fail(e.pos, Errc::kInvalidQuery, "a JOIN's DATEDIFF bound takes BETWEEN, =, <, <=, > or >=");
  }
  return t;
}

query::BoundExpr AndOf(std::vector<query::BoundExpr> terms) {
  if (terms.size() == 1) return std::move(terms[0]);
  query::BoundExpr b;
  b.op = query::BoundOp::kAnd;
  b.args = std::move(terms);
  return b;
}

// One window definition of Windows(…): the window call, a SessionWindow's PARTITION BY, and
// its id from Window('id', …).
struct WindowChoice {
  const Expr* window = nullptr;
  const Expr* partition = nullptr;
  std::optional<std::string> id;
};

bool IsWindowDefinition(const Expr& e) {
  return IsWindowCall(e) && !strings::IEquals(e.name, "Windows") &&
         !strings::IEquals(e.name, "System.Timestamp") &&
         !strings::IEquals(e.name, "SnapshotWindow") && !strings::IEquals(e.name, "Snapshot");
}

// Windows(def, …) or Windows(Window('id', def), …), def = a tumbling, hopping, sliding or
// session window (a session's OVER (PARTITION BY k) included). Ids are given to every
// definition or to none, and differ ignoring case.
std::vector<WindowChoice> ReadWindows(const Expr& e) {
  if (e.children.empty()) {
    Fail(e.pos, Errc::kInvalidQuery,
         "Windows() needs window definitions: Windows(TumblingWindow(…), Window('id', "
         "HoppingWindow(…)), …)");
  }
  std::vector<WindowChoice> out;
  std::optional<bool> with_ids;
  for (const auto& child : e.children) {
    WindowChoice c;
    const Expr* def = child.get();
    bool named = def->kind == ExprKind::kCall && strings::IEquals(def->name, "Window");
    if (named) {
      if (def->children.size() != 2) {
        Fail(def->pos, Errc::kInvalidQuery,
             "Window takes an id and a window definition: Window('id', TumblingWindow(…))");
      }
      const Expr& id = *def->children[0];
      if (id.kind != ExprKind::kLiteral || !id.literal.is_string()) {
        Fail(id.pos, Errc::kInvalidQuery, "a window's id must be a string: Window('id', …)");
      }
      c.id = std::string(id.literal.get_string());
      def = def->children[1].get();
    }
    if (with_ids && *with_ids != named) {
      Fail(child->pos, Errc::kInvalidQuery,
           "give every window of Windows() an id with Window('id', …), or none");
    }
    with_ids = named;
    if (def->kind == ExprKind::kCall && def->name == "$OVER" && !def->children.empty() &&
        IsWindowDefinition(*def->children[0])) {
      for (size_t i = 1; i < def->children.size(); ++i) {
        const Expr& clause = *def->children[i];
        if (clause.name != "$PARTITION_BY" || clause.children.size() != 1) {
          Fail(clause.pos, Errc::kInvalidQuery,
               "a window's OVER clause takes one PARTITION BY expression only");
        }
        c.partition = clause.children[0].get();
      }
      def = def->children[0].get();
    }
    if (def->kind == ExprKind::kCall && strings::IEquals(def->name, "Windows")) {
      Fail(def->pos, Errc::kInvalidQuery, "Windows() cannot be nested");
    }
    if (!IsWindowDefinition(*def)) {
      Fail(def->pos, Errc::kInvalidQuery,
           "Windows() takes TumblingWindow, HoppingWindow, SlidingWindow and SessionWindow "
           "definitions");
    }
    c.window = def;
    for (const auto& other : out) {
      if (c.id && other.id && strings::IEquals(*c.id, *other.id)) {
        Fail(child->pos, Errc::kInvalidQuery, "duplicate window id '" + *c.id + "'");
      }
    }
    out.push_back(c);
  }
  return out;
}

// ---- MATCH_RECOGNIZE ----

int SymbolIndex(const std::vector<std::string>& symbols, std::string_view name) {
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (strings::IEquals(symbols[i], name)) return static_cast<int>(i);
  }
  return -1;
}

void CollectSymbols(const PatternNode& n, std::vector<std::string>& out) {
  if (n.kind == PatternNode::Kind::kSymbol) {
    if (SymbolIndex(out, n.symbol) < 0) out.push_back(n.symbol);
    return;
  }
  for (const auto& c : n.children)
    CollectSymbols(c, out);
}

// Compiles PATTERN into MatchSpec::program (greedy: every split prefers one more repetition).
class PatternCompiler {
 public:
  PatternCompiler(MatchSpec& spec, size_t max_size) : spec_(spec), max_(max_size) {}

  void Compile(const PatternNode& n) {
    Emit(n);
    Add(MatchInst::Op::kMatch, n.pos);
  }

 private:
  size_t Add(MatchInst::Op op, query::Position pos) {
    if (spec_.program.size() >= max_) {
      Fail(pos, Errc::kLimitExceeded,
           "PATTERN is too large (the limit is " + std::to_string(max_) +
               " steps; repetitions {n,m} count once per copy)");
    }
    MatchInst inst;
    inst.op = op;
    spec_.program.push_back(inst);
    return spec_.program.size() - 1;
  }
  int Here() const { return static_cast<int>(spec_.program.size()); }

  void Emit(const PatternNode& n) {
    using K = PatternNode::Kind;
    switch (n.kind) {
      case K::kSymbol: {
        size_t i = Add(MatchInst::Op::kSymbol, n.pos);
        spec_.program[i].symbol = SymbolIndex(spec_.symbols, n.symbol);
        return;
      }
      case K::kSeq:
        for (const auto& c : n.children)
          Emit(c);
        return;
      case K::kAlt: {
        std::vector<size_t> jumps;
        for (size_t k = 0; k + 1 < n.children.size(); ++k) {
          size_t split = Add(MatchInst::Op::kSplit, n.pos);
          spec_.program[split].x = Here();
          Emit(n.children[k]);
          jumps.push_back(Add(MatchInst::Op::kJump, n.pos));
          spec_.program[split].y = Here();
        }
        Emit(n.children.back());
        for (size_t j : jumps)
          spec_.program[j].x = Here();
        return;
      }
      case K::kRepeat: {
        const PatternNode& c = n.children[0];
        for (uint32_t k = 0; k < n.min; ++k)
          Emit(c);
        if (n.max == PatternNode::kUnbounded) {
          int loop = Here();
          size_t split = Add(MatchInst::Op::kSplit, n.pos);
          spec_.program[split].x = Here();
          Emit(c);
          size_t back = Add(MatchInst::Op::kJump, n.pos);
          spec_.program[back].x = loop;
          spec_.program[split].y = Here();
          return;
        }
        std::vector<size_t> splits;
        for (uint32_t k = n.min; k < n.max; ++k) {
          size_t split = Add(MatchInst::Op::kSplit, n.pos);
          spec_.program[split].x = Here();
          Emit(c);
          splits.push_back(split);
        }
        for (size_t s : splits)
          spec_.program[s].y = Here();
        return;
      }
    }
  }

  MatchSpec& spec_;
  size_t max_;
};

// `A.f.g` with A a pattern symbol: `f.g` (on the event) and A's index; else null.
ExprPtr SymbolField(const Expr& e, const std::vector<std::string>& symbols, int* symbol) {
  if (e.kind != ExprKind::kMember) return nullptr;
  const Expr& c = *e.children[0];
  if (c.kind == ExprKind::kName) {
    int s = SymbolIndex(symbols, c.name);
    if (s < 0 || c.name == ".") return nullptr;
    *symbol = s;
    return Extra(e.name, e.pos);
  }
  ExprPtr inner = SymbolField(c, symbols, symbol);
  if (!inner) return nullptr;
  ExprPtr out = CopyNode(e);
  out->depth = static_cast<uint16_t>(inner->depth + 1);
  out->children.push_back(std::move(inner));
  return out;
}

// Rewrites DEFINE's and MEASURES' expressions onto the matcher's roots: First, Last, Min and
// Max of a symbol's field become slots; `S.field` is the current event's field in S's own
// DEFINE and Last(S.field) elsewhere; Classifier() (MEASURES only) is the list of symbols.
struct MatchRewriter {
  MatchSpec& spec;
  const query::BindOptions& opts;
  const std::vector<size_t>& define_order;  // per symbol: its DEFINE's position, or SIZE_MAX
  int current = -1;                         // the symbol being defined; -1: MEASURES
  std::vector<size_t> used;                 // the slots read

  void CheckOrder(int symbol, query::Position pos) const {
    if (current < 0 || symbol == current) return;
    size_t mine = define_order[static_cast<size_t>(current)];
    size_t theirs = define_order[static_cast<size_t>(symbol)];
    if (theirs != SIZE_MAX && theirs > mine) {
      Fail(pos, Errc::kInvalidQuery,
           "the DEFINE of '" + spec.symbols[static_cast<size_t>(current)] + "' cannot read '" +
               spec.symbols[static_cast<size_t>(symbol)] +
               "', defined after it (a DEFINE reads the symbols defined before it)");
    }
  }

  size_t Slot(MatchSlot::Kind kind, int symbol, const Expr& field) {
    query::BoundExpr bound = query::BindOrThrow(field, opts);
    for (size_t i = 0; i < spec.slots.size(); ++i) {
      const MatchSlot& s = spec.slots[i];
      if (s.kind == kind && s.symbol == symbol && query::SameExpr(s.field, bound)) {
        if (std::find(used.begin(), used.end(), i) == used.end()) used.push_back(i);
        return i;
      }
    }
    MatchSlot s;
    s.kind = kind;
    s.symbol = symbol;
    s.field = std::move(bound);
    spec.slots.push_back(std::move(s));
    used.push_back(spec.slots.size() - 1);
    return spec.slots.size() - 1;
  }

  ExprPtr Rewrite(const Expr& e) {
    if (e.kind == ExprKind::kCall) {
      std::string name = Upper(e.name);
      if (name == "CLASSIFIER") {
        if (current >= 0) {
          Fail(e.pos, Errc::kInvalidQuery, "Classifier() belongs in MEASURES, not in DEFINE");
        }
        if (!e.children.empty()) Fail(e.pos, Errc::kInvalidQuery, "Classifier() takes no argument");
        spec.classifier = true;
        return Extra(std::string(kClassifierName), e.pos);
      }
      std::optional<MatchSlot::Kind> kind;
      if (name == "FIRST") kind = MatchSlot::Kind::kFirst;
      if (name == "LAST") kind = MatchSlot::Kind::kLast;
      if (name == "MIN") kind = MatchSlot::Kind::kMin;
      if (name == "MAX") kind = MatchSlot::Kind::kMax;
      if (kind) {
        int symbol = -1;
        ExprPtr field;
        if (e.children.size() == 1 && !e.star && !e.distinct)
          field = SymbolField(*e.children[0], spec.symbols, &symbol);
        if (!field) {
          Fail(e.pos, Errc::kInvalidQuery,
               name + " in MATCH_RECOGNIZE takes one field of a pattern symbol (" + name +
                   "(A.value)): Stream Analytics aggregates only field values");
        }
        CheckOrder(symbol, e.pos);
        return Extra(MatchSlotName(Slot(*kind, symbol, *field)), e.pos);
      }
      if (e.name == "$OVER" || FindAgg(e.name) || IsRankedAgg(e.name) || IsAnalytic(e.name)) {
        Fail(e.pos, Errc::kInvalidQuery,
             "MATCH_RECOGNIZE's aggregates are First, Last, Min and Max of a symbol's field "
             "(Max(A.value)); " +
                 AggregateOrAnalytic(e) + " is not one");
      }
    }
    if (e.kind == ExprKind::kMember) {
      int symbol = -1;
      if (ExprPtr field = SymbolField(e, spec.symbols, &symbol)) {
        if (symbol == current) return field;
        CheckOrder(symbol, e.pos);
        return Extra(MatchSlotName(Slot(MatchSlot::Kind::kLast, symbol, *field)), e.pos);
      }
    }
    if (e.kind == ExprKind::kName && SymbolIndex(spec.symbols, e.name) >= 0) {
      Fail(e.pos, Errc::kInvalidQuery,
           "'" + e.name + "' is a pattern symbol: name a field of its events (" + e.name +
               ".field)");
    }
    ExprPtr out = CopyNode(e);
    bool part_first = PartFirst(e);
    for (size_t i = 0; i < e.children.size(); ++i) {
      out->children.push_back(part_first && i == 0 ? CopyTree(*e.children[i])
                                                   : Rewrite(*e.children[i]));
    }
    return out;
  }

  static ExprPtr CopyTree(const Expr& e) {
    ExprPtr out = CopyNode(e);
    for (const auto& c : e.children)
      out->children.push_back(CopyTree(*c));
    return out;
  }
};

// The output column of a PARTITION BY key: its last name (`a.b.deviceId`: deviceId).
std::string KeyColumnName(const Expr& e) {
  if (e.kind == ExprKind::kName || e.kind == ExprKind::kMember) return e.name;
  Fail(e.pos, Errc::kInvalidQuery,
       "MATCH_RECOGNIZE's PARTITION BY takes columns (PARTITION BY deviceId), not expressions");
}

struct Binder {
  const ParsedQuery& q;
  const StreamLimits& limits;
  const std::vector<std::string>& reference_inputs;
  Plan plan;
  std::vector<std::string> step_names;

  // What FROM or JOIN names: a WITH step, an input, or reference data.
  struct Source {
    int step = -1;
    int input = -1;
    int reference = -1;
    bool stream() const { return reference < 0; }
  };

  Source Resolve(const std::string& name, query::Position pos) {
    Source src;
    src.step = FindStep(name);
    if (src.step >= 0) return src;
    for (const auto& later : q.steps) {
      if (strings::IEquals(later.name, name)) {
        Fail(pos, Errc::kInvalidQuery,
             "'" + name + "' is a later WITH step (a step reads inputs and earlier steps)");
      }
    }
    for (const auto& r : reference_inputs) {
      if (!strings::IEquals(r, name)) continue;
      for (size_t i = 0; i < plan.references.size(); ++i) {
        if (strings::IEquals(plan.references[i], name)) src.reference = static_cast<int>(i);
      }
      if (src.reference < 0) {
        plan.references.push_back(name);
        src.reference = static_cast<int>(plan.references.size() - 1);
      }
      return src;
    }
    for (size_t i = 0; i < plan.inputs.size(); ++i) {
      if (strings::IEquals(plan.inputs[i], name)) src.input = static_cast<int>(i);
    }
    if (src.input < 0) {
      plan.inputs.push_back(name);
      src.input = static_cast<int>(plan.inputs.size() - 1);
    }
    return src;
  }

  // Binds `e` as read from one source's events alone (TIMESTAMP BY): root 0, `alias.` optional.
  static BoundExpr BindOnSource(const Expr& e, const std::string& alias) {
    query::BindOptions o;
    o.functions = &StreamFunctions();
    o.case_insensitive_keys = true;
    o.resolve_root =
        [alias](std::span<const std::string> names) -> std::optional<query::RootBinding> {
      query::RootBinding b;
      if (names.size() > 1 && strings::IEquals(names[0], alias)) b.skip = 1;
      return b;
    };
    return query::BindOrThrow(e, o);
  }

  // MATCH_RECOGNIZE's clauses, bound on the events of FROM (alias `from_alias`).
  std::shared_ptr<const MatchSpec> BindMatch(const MatchClause& m, const std::string& from_alias) {
    auto spec = std::make_shared<MatchSpec>();
    if (m.duration_unit) {
      spec->duration = SizeOf(*m.duration_unit, *m.duration_n, limits, false, "duration");
    }
    spec->skip_past_last = m.skip_past_last;
    CollectSymbols(m.pattern, spec->symbols);
    size_t n = spec->symbols.size();
    spec->define.resize(n);
    spec->define_slots.resize(n);
    query::BindOptions opts;
    opts.functions = &StreamFunctions();
    opts.case_insensitive_keys = true;
    opts.resolve_root =
        [from_alias](std::span<const std::string> names) -> std::optional<query::RootBinding> {
      query::RootBinding b;
      if (!names[0].empty() && names[0][0] == '\x01') {
        b.root = 1;
      } else if (names.size() > 1 && strings::IEquals(names[0], from_alias)) {
        b.skip = 1;
      }
      return b;
    };
    std::vector<size_t> order(n, SIZE_MAX);
    for (size_t i = 0; i < m.defines.size(); ++i) {
      const MatchDefine& d = m.defines[i];
      int symbol = SymbolIndex(spec->symbols, d.symbol);
      if (symbol < 0) {
        Fail(d.pos, Errc::kInvalidQuery,
             "DEFINE names '" + d.symbol + "', a symbol PATTERN does not use");
      }
      if (order[static_cast<size_t>(symbol)] != SIZE_MAX) {
        Fail(d.pos, Errc::kInvalidQuery, "'" + d.symbol + "' is defined twice");
      }
      order[static_cast<size_t>(symbol)] = i;
    }
    auto bind = [&](const Expr& e, MatchRewriter& rw) {
      ExprPtr r = rw.Rewrite(e);
      Ctx c;
      c.event = &opts;
      c.limits = &limits;
      c.clause = "in MATCH_RECOGNIZE";
      ExprPtr w = Rewrite(*r, c);
      if (c.uses_ts) {
        Fail(e.pos, Errc::kInvalidQuery,
             "System.Timestamp() is not available inside MATCH_RECOGNIZE (select it outside: "
             "it is the time of the match's last event)");
      }
      return query::BindOrThrow(*w, opts);
    };
    for (const MatchDefine& d : m.defines) {
      int symbol = SymbolIndex(spec->symbols, d.symbol);
      MatchRewriter rw{*spec, opts, order, symbol, {}};
      spec->define[static_cast<size_t>(symbol)] = bind(*d.condition, rw);
      spec->define_slots[static_cast<size_t>(symbol)] = std::move(rw.used);
    }
    std::vector<std::string> names;
    auto add_name = [&](const std::string& name, query::Position pos) {
      std::string key = strings::ToLower(name);
      if (std::find(names.begin(), names.end(), key) != names.end())
        Fail(pos, Errc::kInvalidQuery, "duplicate output name '" + name + "'");
      names.push_back(key);
    };
    for (const auto& k : m.partition_by) {
      RejectAggs(*k, "in PARTITION BY");
      spec->partition_names.push_back(KeyColumnName(*k));
      add_name(spec->partition_names.back(), k->pos);
      spec->partition.push_back(BindOnSource(*k, from_alias));
    }
    for (const MatchMeasure& measure : m.measures) {
      MatchRewriter rw{*spec, opts, order, -1, {}};
      spec->measures.push_back(bind(*measure.expr, rw));
      spec->measure_names.push_back(measure.alias);
      add_name(measure.alias, measure.pos);
    }
    PatternCompiler(*spec, 4096).Compile(m.pattern);
    return spec;
  }

  // The hidden SELECT running `s`'s MATCH_RECOGNIZE over its FROM into a hidden step; returns
  // that step's sink.
  int MatchSource(const SelectStmt& s, const Source& from, const std::string& from_alias) {
    const MatchClause& m = *s.match;
    auto refuse = [&](query::Position pos, std::string_view what) {
      Fail(pos, Errc::kInvalidQuery,
           std::string(what) +
               " cannot be combined with MATCH_RECOGNIZE in one SELECT (use a WITH step)");
    };
    if (!s.joins.empty()) refuse(s.joins[0].pos, "JOIN");
    if (!s.applies.empty()) refuse(s.applies[0].pos, "APPLY");
    if (s.partition_by) refuse(s.partition_by->pos, "FROM … PARTITION BY (partition inside it)");
    if (!s.timestamp_over.empty()) refuse(s.timestamp_over[0]->pos, "TIMESTAMP BY … OVER");
    if (!from.stream()) {
      Fail(s.from_pos, Errc::kInvalidQuery,
           "reference data '" + s.from + "' has no time: MATCH_RECOGNIZE reads a stream");
    }
    Sink sink;
    sink.name =
        "\x01"
        "match";
    sink.step = static_cast<int>(plan.sinks.size());
    plan.sinks.push_back(std::move(sink));
    int index = static_cast<int>(plan.sinks.size() - 1);
    SelectPlan h;
    h.input = from.input;
    h.source_step = from.step;
    if (s.timestamp_by) {
      if (from.step >= 0) {
        Fail(s.from_pos, Errc::kInvalidQuery,
             "TIMESTAMP BY applies to inputs, and '" + s.from + "' is a WITH step");
      }
      RejectAggs(*s.timestamp_by, "in TIMESTAMP BY");
      h.timestamp_by = BindOnSource(*s.timestamp_by, from_alias);
    }
    h.match = BindMatch(m, from_alias);
    h.sink = index;
    int self = static_cast<int>(plan.selects.size());
    plan.sinks[index].producers.push_back(self);
    if (from.step >= 0) plan.sinks[from.step].consumers.push_back(self);
    plan.selects.push_back(std::move(h));
    return index;
  }

  // A hidden pass-through SELECT reading `input` (with its TIMESTAMP BY) into a hidden step;
  // returns that step's sink.
  int HiddenSource(int input, const Expr* timestamp_by, const std::string& alias) {
    Sink sink;
    sink.name = "\x01" + alias;
    sink.step = static_cast<int>(plan.sinks.size());
    plan.sinks.push_back(std::move(sink));
    int index = static_cast<int>(plan.sinks.size() - 1);
    SelectPlan h;
    h.input = input;
    if (timestamp_by) h.timestamp_by = BindOnSource(*timestamp_by, alias);
    Projection star;
    star.star = true;
    h.items.push_back(std::move(star));
    h.pass_through = true;
    h.sink = index;
    plan.sinks[index].producers.push_back(static_cast<int>(plan.selects.size()));
    plan.selects.push_back(std::move(h));
    return index;
  }

  // The JOINs of `s` into p.joins (and, for a JOIN of two streams, the hidden sources).
  // `aliases`: the sources' aliases; `sources`: what they name.
  void BindJoins(const SelectStmt& s, SelectPlan& p, const Aliases& aliases,
                 const std::vector<Source>& sources, const query::BindOptions& opts) {
    if (!sources[0].stream()) {
      Fail(s.from_pos, Errc::kInvalidQuery,
           "reference data '" + s.from + "' must be on the right of a JOIN");
    }
    for (size_t i = 1; i < sources.size(); ++i) {
      const JoinClause& j = s.joins[i - 1];
      JoinSpec spec;
      spec.left_outer = j.left_outer;
      spec.reference = sources[i].reference;
      bool stream = sources[i].stream();
      if (stream && i > 1) {
        Fail(j.from_pos, Errc::kInvalidQuery,
             "a JOIN of two streams must be a SELECT's first JOIN, and only one is supported "
             "yet (join further streams in another step; is '" +
                 j.from + "' reference data?)");
      }
      if (!stream && j.timestamp_by) {
        Fail(j.timestamp_by->pos, Errc::kInvalidQuery,
             "reference data has no time: TIMESTAMP BY does not apply to '" + j.from + "'");
      }
      if (stream && j.timestamp_by && sources[i].step >= 0) {
        Fail(j.from_pos, Errc::kInvalidQuery,
             "TIMESTAMP BY applies to inputs, and '" + j.from + "' is a WITH step");
      }
      std::vector<const Expr*> terms;
      FlattenAnd(*j.on, terms);
      std::optional<Micros> lo, hi;
      std::vector<BoundExpr> residual;
      for (const Expr* t : terms) {
        if (auto tb = AsTimeBound(*t, aliases, limits)) {
          if (!stream) {
            Fail(t->pos, Errc::kInvalidQuery,
                 "reference data has no time: a JOIN of '" + j.from + "' takes no DATEDIFF");
          }
          if (!((tb->a == 0 && tb->b == 1) || (tb->a == 1 && tb->b == 0))) {
            Fail(t->pos, Errc::kInvalidQuery,
                 "DATEDIFF in ON compares the two joined streams ('" + aliases[0] + "' and '" +
                     aliases[1] + "')");
          }
          std::optional<Micros> tlo = tb->lo, thi = tb->hi;
          if (tb->a == 1) {  // t0 - t1 in [lo, hi]  ⇔  t1 - t0 in [-hi, -lo]
            tlo = tb->hi ? std::optional<Micros>(-*tb->hi) : std::nullopt;
            thi = tb->lo ? std::optional<Micros>(-*tb->lo) : std::nullopt;
          }
          if (tlo) lo = lo ? std::max(*lo, *tlo) : *tlo;
          if (thi) hi = hi ? std::min(*hi, *thi) : *thi;
          continue;
        }
        if (const Expr* d = FindSourceDatediff(*t, aliases)) {
          Fail(d->pos, Errc::kInvalidQuery,
               "DATEDIFF over sources must be a term of ON's top-level AND (DATEDIFF(unit, a, "
               "b) BETWEEN x AND y)");
        }
        RejectAggs(*t, "in ON");
        CheckQualified(*t, aliases);
        BoundExpr b = query::BindOrThrow(*t, opts);
        uint32_t reads = SourcesOf(b);
        if (reads >> (i + 1)) {
          Fail(t->pos, Errc::kInvalidQuery,
               "the ON of '" + aliases[i] + "' reads a source joined after it");
        }
        uint32_t mine = 1u << i, earlier = mine - 1;
        if (t->kind == ExprKind::kBinary && t->op == query::BinaryOp::kEq) {
          BoundExpr l = query::BindOrThrow(*t->children[0], opts);
          BoundExpr r = query::BindOrThrow(*t->children[1], opts);
          uint32_t lr = SourcesOf(l), rr = SourcesOf(r);
          if (lr == mine && rr != 0 && (rr & ~earlier) == 0) std::swap(l, r), std::swap(lr, rr);
          if (rr == mine && lr != 0 && (lr & ~earlier) == 0) {
            spec.left_keys.push_back(std::move(l));
            spec.right_keys.push_back(std::move(r));
            continue;
          }
        }
        residual.push_back(std::move(b));
      }
      if (stream) {
        if (!lo || !hi) {
          Fail(j.on_pos, Errc::kInvalidQuery,
               "a JOIN of two streams needs a time bound on both sides in ON: DATEDIFF(unit, " +
                   aliases[0] + ", " + aliases[i] +
                   ") BETWEEN x AND y (reference data needs "
                   "none: is '" +
                   j.from + "' reference data?)");
        }
        if (*lo > *hi) {
          Fail(j.on_pos, Errc::kInvalidQuery, "the JOIN's time bounds leave no room");
        }
        spec.lo = *lo;
        spec.hi = *hi;
      }
      if (!residual.empty()) spec.residual = AndOf(std::move(residual));
      p.joins.push_back(std::move(spec));
    }
    if (!p.stream_join()) return;
    // Each side of the stream JOIN comes through a sink.
    auto side_sink = [&](size_t i, const Expr* timestamp_by) {
      if (sources[i].step >= 0) return sources[i].step;
      return HiddenSource(sources[i].input, timestamp_by, aliases[i]);
    };
    p.left_sink = side_sink(0, s.timestamp_by.get());
    p.joins[0].sink = side_sink(1, s.joins[0].timestamp_by.get());
    p.input = -1;
    p.source_step = -1;
    p.timestamp_by.reset();
  }

  int FindStep(std::string_view name) const {
    for (size_t i = 0; i < step_names.size(); ++i) {
      if (strings::IEquals(step_names[i], name)) return static_cast<int>(i);
    }
    return -1;
  }

  int OutputSink(const std::string& name) {
    for (size_t i = 0; i < plan.sinks.size(); ++i) {
      if (plan.sinks[i].step < 0 && strings::IEquals(plan.sinks[i].name, name))
        return static_cast<int>(i);
    }
    Sink s;
    s.name = name;
    plan.sinks.push_back(std::move(s));
    plan.outputs.push_back(name);
    return static_cast<int>(plan.sinks.size() - 1);
  }

  // A SELECT grouping by Windows(w1, w2, …) is bound once per window: the union of their
  // rows, each copy's rows telling their window by System.Window().Id.
  void BindSelect(const SelectStmt& s, int sink) {
    const GroupItem* windows = nullptr;
    for (const auto& g : s.group_by) {
      if (g.expr->kind == ExprKind::kCall && strings::IEquals(g.expr->name, "Windows")) {
        if (windows) Fail(g.expr->pos, Errc::kInvalidQuery, "GROUP BY may hold only one window");
        windows = &g;
      }
    }
    if (!windows) {
      BindSelectFor(s, sink, nullptr);
      return;
    }
    std::vector<WindowChoice> choices = ReadWindows(*windows->expr);
    if (choices.size() > limits.max_statements) {
      Fail(windows->expr->pos, Errc::kLimitExceeded,
           "Windows() holds too many windows (the limit is " +
               std::to_string(limits.max_statements) + ")");
    }
    for (const auto& choice : choices)
      BindSelectFor(s, sink, &choice);
  }

  // `choice`: the window of Windows(…) this copy of the SELECT computes (null without one).
  void BindSelectFor(const SelectStmt& s, int sink, const WindowChoice* choice) {
    SelectPlan p;
    p.sink = sink;
    // Without AS, the input's or step's own name qualifies its members (`input.TollId`).
    std::string alias = s.alias.value_or(s.from);
    bool joined = !s.joins.empty();
    if (joined && !s.applies.empty()) {
      Fail(s.applies[0].pos, Errc::kInvalidQuery,
           "APPLY cannot be combined with JOIN in one SELECT yet (APPLY in a WITH step, then JOIN "
           "the step)");
    }
    Aliases aliases = {alias};
    std::vector<Source> sources = {Resolve(s.from, s.from_pos)};
    if (s.match) {  // this SELECT reads the matches, from a hidden step
      sources[0] = Source{};
      sources[0].step = MatchSource(s, Resolve(s.from, s.from_pos), alias);
      alias = s.match->alias.value_or(s.from);
      aliases[0] = alias;
    }
    for (const auto& j : s.joins) {
      std::string a = j.alias.value_or(j.from);
      if (AliasIndex(aliases, a) >= 0) {
        Fail(j.from_pos, Errc::kInvalidQuery,
             "'" + a + "' names two sources of this SELECT (give one an alias)");
      }
      aliases.push_back(std::move(a));
      sources.push_back(Resolve(j.from, j.from_pos));
    }
    if (!joined && !sources[0].stream()) {
      Fail(s.from_pos, Errc::kInvalidQuery,
           "reference data '" + s.from + "' can only be joined (FROM a stream JOIN " + s.from +
               " ON …)");
    }
    p.source_step = sources[0].step;
    p.input = sources[0].input;
    // Names: the extras (root 1), an APPLY's alias (root 2 + its position), the FROM alias, and
    // otherwise a member of the event. `visible` APPLYs can be named (an APPLY's argument sees
    // the ones before it).
    std::vector<std::string> apply_aliases;
    for (const auto& a : s.applies) {
      bool taken = strings::IEquals(a.alias, alias);
      for (const auto& other : apply_aliases)
        taken |= strings::IEquals(a.alias, other);
      if (taken) Fail(a.pos, Errc::kInvalidQuery, "duplicate alias '" + a.alias + "'");
      apply_aliases.push_back(a.alias);
    }
    auto options = [&](size_t visible) {
      query::BindOptions o;
      o.functions = &StreamFunctions();
      o.case_insensitive_keys = true;
      // PartitionId, of a SELECT reading an input, is the partition its event came on (an
      // extra the engine sets).
      bool* partition = p.input >= 0 ? &p.uses_partition : nullptr;
      o.resolve_root =
          [alias, partition,
           applies =
               std::vector<std::string>(apply_aliases.begin(), apply_aliases.begin() + visible)](
              std::span<const std::string> names) -> std::optional<query::RootBinding> {
        query::RootBinding b;
        if (!names[0].empty() && names[0][0] == '\x01') {
          b.root = 1;
          return b;
        }
        size_t own = !alias.empty() && names.size() == 2 && strings::IEquals(names[0], alias);
        if (partition && names.size() == own + 1 && strings::IEquals(names[own], "PartitionId")) {
          *partition = true;
          b.root = 1;
          b.skip = static_cast<uint32_t>(own);
          return b;
        }
        for (size_t i = 0; i < applies.size(); ++i) {
          if (strings::IEquals(names[0], applies[i])) {
            b.root = static_cast<uint32_t>(2 + i);
            b.skip = 1;
            return b;
          }
        }
        if (!alias.empty() && names.size() > 1 && strings::IEquals(names[0], alias)) b.skip = 1;
        return b;
      };
      return o;
    };
    query::BindOptions opts;
    if (!joined) {
      opts = options(apply_aliases.size());
    } else {
      opts.functions = &StreamFunctions();
      opts.case_insensitive_keys = true;
      opts.resolve_root =
          [aliases](std::span<const std::string> names) -> std::optional<query::RootBinding> {
        query::RootBinding b;
        if (!names[0].empty() && names[0][0] == '\x01') {
          b.root = 1;
        } else if (int i = AliasIndex(aliases, names[0]); i >= 0) {
          b.root = SourceRoot(static_cast<size_t>(i));
          b.skip = 1;
        }
        return b;
      };
    }
    // In a JOIN, every name must start with an alias (checked on the parsed expressions).
    auto qualified = [&](const query::ExprPtr& e) {
      if (joined && e) CheckQualified(*e, aliases);
    };
    qualified(s.where);
    qualified(s.having);
    for (const auto& g : s.group_by) {
      qualified(g.expr);
      qualified(g.partition_by);
    }
    for (const auto& item : s.items) {
      qualified(item.expr);
      qualified(item.star_of);
      if (joined && item.star) {
        Fail(item.pos, Errc::kInvalidQuery,
             "SELECT * cannot be used with JOIN (select " + aliases[0] + ".*, or columns)");
      }
    }

    if (s.timestamp_by && !s.match) {
      if (p.source_step >= 0) {
        Fail(s.from_pos, Errc::kInvalidQuery,
             "TIMESTAMP BY applies to inputs, and '" + s.from + "' is a WITH step");
      }
      RejectAggs(*s.timestamp_by, "in TIMESTAMP BY");
      p.timestamp_by = joined ? BindOnSource(*s.timestamp_by, aliases[0])
                              : query::BindOrThrow(*s.timestamp_by, options(0));
    }
    // Substreams: TIMESTAMP BY … OVER keys and PARTITION BY, on the input's events.
    if (!s.timestamp_over.empty() || s.partition_by) {
      query::Position pos = s.partition_by ? s.partition_by->pos : s.timestamp_over[0]->pos;
      if (p.input < 0) {
        Fail(pos, Errc::kInvalidQuery,
             "PARTITION BY and TIMESTAMP BY … OVER apply to a SELECT reading an input, and '" +
                 s.from + "' is a WITH step (its rows keep their columns: GROUP BY them)");
      }
      if (joined) {
        Fail(pos, Errc::kInvalidQuery,
             "PARTITION BY and TIMESTAMP BY … OVER are not supported with JOIN yet (partition "
             "in a WITH step, then JOIN the step)");
      }
      for (const auto& k : s.timestamp_over) {
        RejectAggs(*k, "in TIMESTAMP BY … OVER");
        p.substream.push_back(query::BindOrThrow(*k, options(0)));
      }
      if (s.partition_by) {
        RejectAggs(*s.partition_by, "in PARTITION BY");
        p.substream.push_back(query::BindOrThrow(*s.partition_by, options(0)));
      }
    }

    for (size_t i = 0; i < s.applies.size(); ++i) {
      const ApplyItem& a = s.applies[i];
      ApplySpec spec;
      spec.outer = a.outer;
      spec.alias = a.alias;
      if (strings::IEquals(a.function, "GetRecordProperties")) {
        spec.properties = true;
      } else if (!strings::IEquals(a.function, "GetArrayElements")) {
        Fail(a.pos, Errc::kInvalidQuery,
             "APPLY takes GetArrayElements(…) or GetRecordProperties(…), not " + a.function);
      }
      RejectAggs(*a.arg, "in APPLY");
      query::BindOptions visible = options(i);
      Ctx ac;
      ac.event = &visible;
      ac.limits = &limits;
      ac.clause = "in APPLY";
      ExprPtr r = Rewrite(*a.arg, ac);
      spec.arg = query::BindOrThrow(*r, visible);
      p.uses_timestamp |= ac.uses_ts;
      p.applies.push_back(std::move(spec));
    }
    for (const auto& j : s.joins) {
      if (j.timestamp_by) RejectAggs(*j.timestamp_by, "in TIMESTAMP BY");
    }
    if (joined) BindJoins(s, p, aliases, sources, opts);

    // GROUP BY: one window and the keys.
    Ctx c;
    c.event = &opts;
    c.limits = &limits;
    c.analytics = &p.analytics;
    for (const auto& g : s.group_by) {
      if (IsWindowCall(*g.expr)) {
        if (p.window.kind != WindowKind::kNone) {
          Fail(g.expr->pos, Errc::kInvalidQuery, "GROUP BY may hold only one window");
        }
        const Expr* window = g.expr.get();
        const Expr* partition = g.partition_by.get();
        if (strings::IEquals(window->name, "Windows")) {
          if (partition) {
            Fail(partition->pos, Errc::kInvalidQuery,
                 "OVER (PARTITION BY …) belongs to a SessionWindow inside Windows(…)");
          }
          window = choice->window;
          partition = choice->partition;
        }
        p.window = BindWindow(*window, limits);
        if (choice) p.window.id = choice->id;
        if (partition) {
          if (p.window.kind != WindowKind::kSession) {
            Fail(partition->pos, Errc::kInvalidQuery,
                 "OVER (PARTITION BY …) is supported for SessionWindow only");
          }
          RejectAggs(*partition, "in PARTITION BY");
          p.window.partition = query::BindOrThrow(*partition, opts);
        }
        continue;
      }
      if (g.partition_by)
        Fail(g.partition_by->pos, Errc::kInvalidQuery, "OVER applies to a window");
      RejectAggs(*g.expr, "in GROUP BY");
      p.keys.push_back(query::BindOrThrow(*g.expr, opts));
      c.key_texts.push_back(query::ToString(*g.expr));
    }
    bool grouped = !s.group_by.empty();
    if (grouped && p.window.kind == WindowKind::kNone) {
      Fail(s.group_by[0].expr->pos, Errc::kInvalidQuery,
           "GROUP BY over a stream needs a window (TumblingWindow, HoppingWindow, SlidingWindow, "
           "SessionWindow or SnapshotWindow)");
    }

    if (s.where) {
      Ctx wc;
      wc.event = &opts;
      wc.limits = &limits;
      wc.analytics = &p.analytics;
      wc.clause = "in WHERE";
      ExprPtr w = Rewrite(*s.where, wc);
      p.where = query::BindOrThrow(*w, opts);
      p.uses_timestamp |= wc.uses_ts;
    }

    c.grouped = grouped;
    c.allow_aggs = grouped;
    c.aggs = &p.aggs;
    std::vector<std::string> names;
    for (const auto& item : s.items) {
      Projection proj;
      if (item.star || item.star_of) {
        if (grouped) Fail(item.pos, Errc::kInvalidQuery, "SELECT * cannot be used with GROUP BY");
        if (item.star_of && item.star_of->kind == ExprKind::kName && !alias.empty() && !joined &&
            strings::IEquals(item.star_of->name, alias)) {
          proj.star = true;  // alias.*
        } else if (item.star_of) {
          proj.star_of = true;
          proj.expr = query::BindOrThrow(*item.star_of, opts);
        } else {
          proj.star = true;
          proj.star_applies = true;
        }
        p.items.push_back(std::move(proj));
        continue;
      }
      const Expr& e = *item.expr;
      ExprPtr r = Rewrite(e, c);
      if (grouped) {
        if (const Expr* n = UngroupedName(*r)) {
          Fail(n->pos, Errc::kInvalidQuery,
               "'" + n->name + "' must be a GROUP BY expression or inside an aggregate");
        }
      }
      proj.expr = query::BindOrThrow(*r, opts);
      if (joined && proj.expr.op == query::BoundOp::kPath && proj.expr.args.empty() &&
          proj.expr.root >= 2 && p.joins[proj.expr.root - 2].left_outer) {
        proj.outer_root = static_cast<int>(proj.expr.root);
      }
      if (item.alias) {
        proj.name = *item.alias;
      } else if (e.kind == ExprKind::kName || e.kind == ExprKind::kMember) {
        // A GROUP BY value or a computed row: named as written; otherwise the document's spelling.
        if (r->kind == ExprKind::kName && r->name[0] == '\x01') proj.name = e.name;
      } else {
        proj.name = "$" + std::to_string(p.items.size() + 1);
      }
      std::string key = strings::ToLower(proj.name.empty() ? e.name : proj.name);
      if (std::find(names.begin(), names.end(), key) != names.end()) {
        Fail(item.pos, Errc::kInvalidQuery,
             "duplicate output name '" + (proj.name.empty() ? e.name : proj.name) + "'");
      }
      names.push_back(key);
      p.items.push_back(std::move(proj));
    }
    p.uses_timestamp |= c.uses_ts;
    p.uses_window |= c.uses_window;

    if (s.having) {
      if (!grouped) Fail(s.having->pos, Errc::kInvalidQuery, "HAVING needs a GROUP BY");
      Ctx hc = c;
      hc.uses_ts = false;
      ExprPtr h = Rewrite(*s.having, hc);
      if (const Expr* n = UngroupedName(*h)) {
        Fail(n->pos, Errc::kInvalidQuery,
             "'" + n->name + "' must be a GROUP BY expression or inside an aggregate");
      }
      p.having = query::BindOrThrow(*h, opts);
      p.uses_window |= hc.uses_window;
    }
    int index = static_cast<int>(plan.selects.size());
    plan.sinks[sink].producers.push_back(index);
    if (p.source_step >= 0) plan.sinks[p.source_step].consumers.push_back(index);
    if (p.stream_join()) {
      plan.sinks[p.left_sink].consumers.push_back(index);
      if (p.joins[0].sink != p.left_sink) plan.sinks[p.joins[0].sink].consumers.push_back(index);
    }
    plan.selects.push_back(std::move(p));
  }

  void BindStatement(const Statement& st, int sink_or_minus1, bool step) {
    std::optional<std::string> into;
    for (const auto& part : st.parts) {
      if (part.into) {
        if (step) Fail(part.into_pos, Errc::kInvalidQuery, "a WITH step cannot have INTO");
        if (into && !strings::IEquals(*into, *part.into)) {
          Fail(part.into_pos, Errc::kInvalidQuery, "the parts of a UNION must go INTO one output");
        }
        into = part.into;
      }
    }
    int sink = step ? sink_or_minus1 : OutputSink(into.value_or("default"));
    for (const auto& part : st.parts)
      BindSelect(part, sink);
  }

  void Run() {
    plan.limits = limits;
    // Sinks 0..steps-1 are the steps.
    for (size_t i = 0; i < q.steps.size(); ++i) {
      const Step& s = q.steps[i];
      for (size_t j = 0; j < i; ++j) {
        if (strings::IEquals(q.steps[j].name, s.name)) {
          Fail(s.pos, Errc::kInvalidQuery, "duplicate step name '" + s.name + "'");
        }
      }
      Sink sink;
      sink.name = s.name;
      sink.step = static_cast<int>(plan.sinks.size());
      plan.sinks.push_back(std::move(sink));
      step_names.push_back("\x02");  // not yet visible: a step reads earlier steps only
    }
    for (size_t i = 0; i < q.steps.size(); ++i) {
      BindStatement(q.steps[i].body, static_cast<int>(i), true);
      step_names[i] = q.steps[i].name;
    }
    for (const auto& st : q.statements)
      BindStatement(st, -1, false);
    BindTables();
  }

  // CREATE TABLE: the schema of an input (or reference data) the query reads.
  void BindTables() {
    plan.input_schemas.resize(plan.inputs.size());
    plan.reference_schemas.resize(plan.references.size());
    for (size_t i = 0; i < q.tables.size(); ++i) {
      const TableDef& t = q.tables[i];
      for (size_t j = 0; j < i; ++j) {
        if (strings::IEquals(q.tables[j].name, t.name))
          Fail(t.pos, Errc::kInvalidQuery, "a second CREATE TABLE for '" + t.name + "'");
      }
      std::optional<Schema>* slot = nullptr;
      for (size_t k = 0; k < plan.inputs.size(); ++k) {
        if (strings::IEquals(plan.inputs[k], t.name)) slot = &plan.input_schemas[k];
      }
      for (size_t k = 0; k < plan.references.size(); ++k) {
        if (strings::IEquals(plan.references[k], t.name)) slot = &plan.reference_schemas[k];
      }
      if (!slot) {
        Fail(t.pos, Errc::kInvalidQuery,
             "CREATE TABLE '" + t.name +
                 "' names no input the query reads (it declares the columns of an input)");
      }
      Schema schema;
      for (const auto& c : t.columns) {
        for (const auto& [name, type] : schema.columns) {
          if (strings::IEquals(name, c.name))
            Fail(c.pos, Errc::kInvalidQuery, "duplicate column '" + c.name + "'");
        }
        static constexpr std::pair<std::string_view, ColumnType> kTypes[] = {
            {"bigint", ColumnType::kBigint},        {"float", ColumnType::kFloat},
            {"nvarchar(max)", ColumnType::kString}, {"nvarchar", ColumnType::kString},
            {"datetime", ColumnType::kDatetime},    {"bit", ColumnType::kBit},
            {"record", ColumnType::kRecord},        {"array", ColumnType::kArray}};
        std::optional<ColumnType> type;
        for (auto [n, k] : kTypes) {
          if (c.type == n) type = k;
        }
        if (!type) {
          Fail(c.type_pos, Errc::kInvalidQuery,
               "unknown type '" + c.type +
                   "' (bigint, float, nvarchar(max), datetime, bit, record, array)");
        }
        schema.columns.emplace_back(c.name, *type);
      }
      *slot = std::move(schema);
    }
  }
};

}  // namespace

Plan BindQuery(const ParsedQuery& q, const StreamLimits& limits,
               const std::vector<std::string>& reference_inputs) {
  Binder b{q, limits, reference_inputs, {}, {}};
  b.Run();
  return std::move(b.plan);
}

}  // namespace orrery::stream::internal
