#include "stream/aggregates.h"

#include <algorithm>
#include <cmath>

#include <boost/json/serialize.hpp>

#include "query/query_error.h"
#include "stream/anomaly.h"

namespace orrery::stream::internal {

using query::Value;

void LimitError(std::string message) {
  throw query::QueryError(query::Errc::kLimitExceeded, std::move(message));
}

void AppendKey(std::string& out, const Value& v) {
  if (!v.defined()) {
    out += "\x01u";
  } else if (v->is_string() && v->get_string().find('\x1f') == json::string::npos) {
    out += '\'';  // the common key: no escaping needed, the separator below ends it
    out += v->get_string();
  } else if (v->is_number()) {
    // 1 and 1.0 are one key.
    double d = query::ToDouble(*v);
    auto i = query::ToInt64(*v);
    out += i ? std::to_string(*i) : json::serialize(json::value(d));
  } else {
    out += json::serialize(*v);
  }
  out += '\x1f';
}

namespace {

json::value ToJsonOrNull(Value v) {
  return v.defined() ? std::move(v).ToJson() : json::value(nullptr);
}

// The order of ORDER BY values: null first, then booleans, numbers, strings (date-times by
// time), then anything else.
int OrderRank(const json::value& v) {
  if (v.is_null()) return 0;
  if (v.is_bool()) return 1;
  if (v.is_number()) return 2;
  if (v.is_string()) return 3;
  return 4;
}

int CompareOrderValues(const json::value& a, const json::value& b) {
  int ra = OrderRank(a), rb = OrderRank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 3) {
    auto ta = ParseDateTime(a.get_string());
    auto tb = ParseDateTime(b.get_string());
    if (ta && tb) return *ta < *tb ? -1 : *ta > *tb ? 1 : 0;
  }
  if (ra == 4) return 0;
  return query::Compare(a, b).value_or(0);
}

// MIN and MAX order primitive values by kind (null < booleans < numbers < strings) as the
// shared Accumulator does; -1 for the kinds they skip.
int ExtremeRank(const json::value& v) {
  if (v.is_null()) return 0;
  if (v.is_bool()) return 1;
  if (v.is_number()) return 2;
  if (v.is_string()) return 3;
  return -1;
}

int CompareExtremes(const json::value& a, const json::value& b) {
  int ra = ExtremeRank(a), rb = ExtremeRank(b);
  if (ra != rb) return ra - rb;
  return query::Compare(a, b).value_or(0);
}

// A percentile's value as a number: numbers, and (PERCENTILE_CONT, which takes nvarchar(max)
// that holds a number) numeric strings.
std::optional<double> PercentileValue(const json::value& v, bool strings) {
  if (v.is_number()) return query::ToDouble(v);
  if (strings && v.is_string()) {
    std::string s(v.get_string());
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == 0 && std::isfinite(d)) return d;
  }
  return std::nullopt;
}

}  // namespace

Value AggInput(const AggSpec& spec, std::span<const query::Root> roots, const json::object& event) {
  if (spec.rows) return Value::Bool(true);
  switch (spec.kind) {
    case AggKind::kTopOne:
    case AggKind::kCollectTop: {
      json::array packed;
      packed.reserve(1 + spec.order.size());
      packed.push_back(spec.whole_event ? json::value(event)
                                        : ToJsonOrNull(query::Evaluate(spec.arg, roots)));
      for (const auto& k : spec.order)
        packed.push_back(ToJsonOrNull(query::Evaluate(k.expr, roots)));
      return Value(json::value(std::move(packed)));
    }
    case AggKind::kCollect:
      if (spec.whole_event) return Value(json::value(event));
      return query::Evaluate(spec.arg, roots);
    default:
      return query::Evaluate(spec.arg, roots);
  }
}

int CompareRanked(const AggSpec& spec, const json::array& a, const json::array& b) {
  for (size_t i = 0; i < spec.order.size(); ++i) {
    int c = CompareOrderValues(a[i + 1], b[i + 1]);
    if (c != 0) return spec.order[i].desc ? -c : c;
  }
  return 0;
}

// ---- AggState

AggState::AggState(const AggSpec& spec) : spec_(&spec), acc_(Base(spec.kind)) {}

query::AggregateKind AggState::Base(AggKind k) {
  switch (k) {
    case AggKind::kSum:
      return query::AggregateKind::kSum;
    case AggKind::kAvg:
      return query::AggregateKind::kAvg;
    case AggKind::kMin:
      return query::AggregateKind::kMin;
    case AggKind::kMax:
      return query::AggregateKind::kMax;
    default:
      return query::AggregateKind::kCount;
  }
}

void AggState::Add(const Value& v, const StreamLimits& limits) {
  if (spec_->rows) {
    ++n_;
    return;
  }
  auto collect_room = [&](std::string_view what) {
    if (!items_) items_ = std::make_unique<std::vector<json::value>>();
    if (items_->size() >= limits.max_collect) {
      LimitError(std::string(what) + " holds too many values (the limit is " +
                 std::to_string(limits.max_collect) + ")");
    }
  };
  switch (spec_->kind) {
    case AggKind::kCollect:
      if (!v.defined()) return;  // undefined is no value; null is collected
      collect_room("Collect");
      items_->push_back(v.get());
      return;
    case AggKind::kTopOne: {
      const json::array& packed = v->get_array();
      if (!best_ || CompareRanked(*spec_, packed, best_->get_array()) < 0) best_ = v.get();
      return;
    }
    case AggKind::kCollectTop: {
      // Kept ranked, at most `top`; among equals the earlier event ranks first.
      if (!items_) items_ = std::make_unique<std::vector<json::value>>();
      const json::array& packed = v->get_array();
      auto at = std::upper_bound(items_->begin(), items_->end(), packed,
                                 [&](const json::array& x, const json::value& item) {
                                   return CompareRanked(*spec_, x, item.get_array()) < 0;
                                 });
      if (static_cast<size_t>(at - items_->begin()) >= spec_->top) return;
      items_->insert(at, v.get());
      if (items_->size() > spec_->top) items_->pop_back();
      return;
    }
    case AggKind::kPercentileCont:
    case AggKind::kPercentileDisc: {
      if (!v.defined() || !PercentileValue(v.get(), spec_->kind == AggKind::kPercentileCont)) {
        return;
      }
      collect_room(spec_->kind == AggKind::kPercentileCont ? "PERCENTILE_CONT" : "PERCENTILE_DISC");
      items_->push_back(v.get());
      return;
    }
    default:
      break;
  }
  if (!v.defined() || v->is_null()) return;  // aggregates skip nulls
  switch (spec_->kind) {
    case AggKind::kCount:
      ++n_;
      break;
    case AggKind::kCountDistinct: {
      std::string k;
      AppendKey(k, v);
      if (!distinct_) distinct_ = std::make_unique<std::unordered_set<std::string>>();
      distinct_->insert(std::move(k));
      if (distinct_->size() > limits.max_distinct) {
        LimitError("COUNT(DISTINCT …) holds too many values (the limit is " +
                   std::to_string(limits.max_distinct) + ")");
      }
      break;
    }
    case AggKind::kStdev:
    case AggKind::kStdevp:
    case AggKind::kVar:
    case AggKind::kVarp: {
      if (!v->is_number()) {
        invalid_ = true;
        break;
      }
      double x = query::ToDouble(*v);
      ++n_;
      double d = x - mean_;
      mean_ += d / static_cast<double>(n_);
      m2_ += d * (x - mean_);
      break;
    }
    case AggKind::kSum:
      ++n_;
      acc_.Add(v);
      break;
    default:
      acc_.Add(v);
  }
}

Value AggState::Result() const {
  switch (spec_->kind) {
    case AggKind::kCount:
      return query::MakeNumber(static_cast<int64_t>(n_));
    case AggKind::kCountDistinct:
      return query::MakeNumber(static_cast<int64_t>(distinct_ ? distinct_->size() : 0));
    case AggKind::kStdev:
    case AggKind::kStdevp:
    case AggKind::kVar:
    case AggKind::kVarp: {
      bool sample = spec_->kind == AggKind::kStdev || spec_->kind == AggKind::kVar;
      if (invalid_) return {};
      if (n_ < (sample ? 2u : 1u)) return Value(json::value(nullptr));
      double var = m2_ / static_cast<double>(sample ? n_ - 1 : n_);
      if (var < 0) var = 0;
      bool root = spec_->kind == AggKind::kStdev || spec_->kind == AggKind::kStdevp;
      return Value(json::value(root ? std::sqrt(var) : var));
    }
    case AggKind::kSum:
      if (n_ == 0) return Value(json::value(nullptr));  // SUM of no values is null (T-SQL)
      [[fallthrough]];
    case AggKind::kAvg:
    case AggKind::kMin:
    case AggKind::kMax: {
      Value r = acc_.Result();
      return r.defined() ? std::move(r) : Value(json::value(nullptr));
    }
    case AggKind::kTopOne:
      return Value(best_ ? best_->get_array()[0] : json::value(nullptr));
    case AggKind::kCollect: {
      json::array out;
      if (items_) out.insert(out.end(), items_->begin(), items_->end());
      return Value(json::value(std::move(out)));
    }
    case AggKind::kCollectTop: {
      json::array out;
      if (items_) {
        for (size_t i = 0; i < items_->size(); ++i) {
          out.push_back(json::object{{"rank", static_cast<int64_t>(i + 1)},
                                     {"value", (*items_)[i].get_array()[0]}});
        }
      }
      return Value(json::value(std::move(out)));
    }
    case AggKind::kPercentileCont:
    case AggKind::kPercentileDisc: {
      if (!items_ || items_->empty()) return Value(json::value(nullptr));
      bool cont = spec_->kind == AggKind::kPercentileCont;
      std::vector<std::pair<double, const json::value*>> sorted;
      sorted.reserve(items_->size());
      for (const auto& x : *items_)
        sorted.emplace_back(*PercentileValue(x, cont), &x);
      bool desc = spec_->order[0].desc;
      std::stable_sort(sorted.begin(), sorted.end(), [desc](const auto& a, const auto& b) {
        return desc ? a.first > b.first : a.first < b.first;
      });
      double p = spec_->percentile;
      size_t n = sorted.size();
      if (cont) {
        // T-SQL's interpolation: row number 1 + p * (n - 1), between its floor and ceiling.
        double rn = p * static_cast<double>(n - 1);
        size_t lo = static_cast<size_t>(std::floor(rn));
        size_t hi = static_cast<size_t>(std::ceil(rn));
        double v = sorted[lo].first +
                   (rn - static_cast<double>(lo)) * (sorted[hi].first - sorted[lo].first);
        return query::MakeNumber(v);
      }
      // The first value whose cumulative distribution (position / n) reaches p.
      double pos = std::ceil(p * static_cast<double>(n) - 1e-9);
      size_t at = pos <= 1 ? 0 : std::min(n - 1, static_cast<size_t>(pos) - 1);
      return Value(*sorted[at].second);
    }
  }
  return {};
}

// ---- analytic aggregates: Partial

namespace {

bool HasPartial(AggKind k) {
  return k == AggKind::kCount || k == AggKind::kSum || k == AggKind::kAvg || k == AggKind::kMin ||
         k == AggKind::kMax || k == AggKind::kTopOne;
}

Partial Lift(const AggSpec& spec, const json::value* v) {
  Partial p;
  if (spec.rows) {
    p.count = 1;
    return p;
  }
  if (spec.kind == AggKind::kTopOne) {
    p.best = *v;
    return p;
  }
  if (v == nullptr || v->is_null()) return p;  // aggregates skip nulls
  switch (spec.kind) {
    case AggKind::kCount:
      p.count = 1;
      break;
    case AggKind::kSum:
    case AggKind::kAvg:
      p.count = 1;
      if (!v->is_number()) {
        p.invalid = true;
      } else if (auto i = v->is_double() ? std::nullopt : query::ToInt64(*v)) {
        p.isum = *i;
      } else {
        p.exact = false;
        p.dsum = query::ToDouble(*v);
      }
      break;
    case AggKind::kMin:
    case AggKind::kMax:
      if (ExtremeRank(*v) >= 0) {
        p.count = 1;
        p.best = *v;
      }
      break;
    default:
      break;
  }
  return p;
}

double Total(const Partial& p) {
  return p.exact ? static_cast<double>(p.isum) : p.dsum;
}

// `older` came before `newer`: among equals TopOne keeps the older.
Partial Combine(const AggSpec& spec, const Partial& older, const Partial& newer) {
  Partial out;
  out.count = older.count + newer.count;
  out.invalid = older.invalid || newer.invalid;
  int64_t s;
  if (older.exact && newer.exact && !__builtin_add_overflow(older.isum, newer.isum, &s)) {
    out.isum = s;
  } else {
    out.exact = false;
    out.dsum = Total(older) + Total(newer);
  }
  if (!older.best) {
    out.best = newer.best;
  } else if (!newer.best) {
    out.best = older.best;
  } else {
    int c = spec.kind == AggKind::kTopOne
                ? CompareRanked(spec, newer.best->get_array(), older.best->get_array())
                : CompareExtremes(*newer.best, *older.best);
    bool take_newer = spec.kind == AggKind::kMax ? c > 0 : c < 0;
    out.best = take_newer ? newer.best : older.best;
  }
  return out;
}

json::value Finish(const AggSpec& spec, const Partial& p) {
  switch (spec.kind) {
    case AggKind::kCount:
      return json::value(static_cast<int64_t>(p.count));
    case AggKind::kSum:
      if (p.count == 0 || p.invalid) return nullptr;
      return p.exact ? json::value(p.isum) : ToJsonOrNull(query::MakeNumber(p.dsum));
    case AggKind::kAvg:
      if (p.count == 0 || p.invalid) return nullptr;
      return ToJsonOrNull(query::MakeNumber(Total(p) / static_cast<double>(p.count)));
    case AggKind::kTopOne:
      return p.best ? p.best->get_array()[0] : json::value(nullptr);
    default:
      return p.best ? *p.best : json::value(nullptr);
  }
}

}  // namespace

// ---- AnalyticState

void AnalyticState::PopFront(const AnalyticSpec& spec, Partition& p, size_t& remembered) {
  p.entries.pop_front();
  --remembered;
  if (spec.kind != AnalyticKind::kAggregate || !HasPartial(spec.agg.kind)) return;
  if (p.front.empty()) {
    // Flip: the back stack becomes suffix totals, the oldest on top.
    Partial acc;
    for (size_t i = p.back.size(); i-- > 0;) {
      acc = Combine(spec.agg, p.back[i], acc);
      p.front.push_back(acc);
    }
    p.back.clear();
    p.back_total = Partial{};
  }
  p.front.pop_back();
}

void AnalyticState::Expire(const AnalyticSpec& spec, Micros now, size_t& remembered) {
  bool isfirst = spec.kind == AnalyticKind::kIsFirst;
  while (!lru_.empty()) {
    Parts::value_type* kv = lru_.front();
    Partition& p = kv->second;
    // ISFIRST's interval (end - duration, end] is over once now > end.
    bool stale = isfirst ? p.newest < now : p.newest <= now - spec.duration;
    if (!stale) break;
    remembered -= isfirst ? 1 : p.entries.size();
    lru_.pop_front();
    parts_.erase(parts_.find(kv->first));
  }
}

AnalyticState::Partition& AnalyticState::Touch(const std::string& key, Micros newest,
                                               size_t& remembered, const StreamLimits& limits) {
  auto [it, inserted] = parts_.try_emplace(key);
  Partition& p = it->second;
  if (inserted) {
    lru_.push_back(&*it);
    p.lru = std::prev(lru_.end());
  } else {
    lru_.splice(lru_.end(), lru_, p.lru);
  }
  p.newest = newest;
  if (++remembered > limits.max_analytic_events) {
    LimitError("analytic functions remember too many events (the limit is " +
               std::to_string(limits.max_analytic_events) + ")");
  }
  return p;
}

json::value AnalyticState::Next(const AnalyticSpec& spec, std::span<const query::Root> roots,
                                Micros ts, size_t& remembered, const StreamLimits& limits) {
  Expire(spec, ts, remembered);
  key_.clear();
  for (const auto& k : spec.partition)
    AppendKey(key_, query::Evaluate(k, roots));
  bool matches = !spec.when || query::IsTrue(query::Evaluate(*spec.when, roots));
  auto fallback = [&] {
    return spec.fallback ? ToJsonOrNull(query::Evaluate(*spec.fallback, roots))
                         : json::value(nullptr);
  };

  if (spec.kind == AnalyticKind::kIsFirst) {
    if (!matches) return json::value(int64_t{0});
    Micros end = (ts >= 0 ? (ts + spec.duration - 1) / spec.duration : -((-ts) / spec.duration)) *
                 spec.duration;  // the tumbling interval (end - duration, end] holding ts
    auto it = parts_.find(key_);
    if (it != parts_.end() && it->second.newest == end) return json::value(int64_t{0});
    if (it != parts_.end()) --remembered;  // Touch counts the key again
    Touch(key_, end, remembered, limits);
    return json::value(int64_t{1});
  }

  Partition* p = nullptr;
  if (auto it = parts_.find(key_); it != parts_.end()) {
    p = &it->second;
    while (!p->entries.empty() && p->entries.front().ts <= ts - spec.duration)
      PopFront(spec, *p, remembered);
  }
  if (spec.kind == AnalyticKind::kSpikeAndDip || spec.kind == AnalyticKind::kChangePoint)
    return NextAnomaly(spec, roots, ts, matches, p, remembered, limits);
  json::value out;
  if (spec.kind == AnalyticKind::kLag) {
    // The current event is not its own LAG: answer first, then remember it.
    if (p && p->entries.size() >= spec.offset) {
      const Entry& e = p->entries[p->entries.size() - spec.offset];
      out = e.defined ? e.value : json::value(nullptr);
    } else {
      out = fallback();
    }
  }
  if (matches) {
    Entry e{ts, true, json::value()};
    const AggSpec& agg = spec.agg;
    bool partial = spec.kind == AnalyticKind::kAggregate && HasPartial(agg.kind);
    Value v;
    if (spec.kind == AnalyticKind::kAggregate) {
      json::object no_event;
      v = AggInput(agg, roots, roots[0].object ? *roots[0].object : no_event);
    } else if (spec.value) {
      v = query::Evaluate(*spec.value, roots);
    } else {
      v = Value(json::value(*roots[0].object));  // `*`: the whole event
    }
    e.defined = v.defined();
    if (e.defined && !partial) e.value = std::move(v).ToJson();
    // LAG(x, k) needs only the last k events, LAST only the last one: make room first, so that
    // the bound counts what is kept.
    size_t keep = spec.kind == AnalyticKind::kLag    ? spec.offset
                  : spec.kind == AnalyticKind::kLast ? 1
                                                     : SIZE_MAX;
    while (p && p->entries.size() >= keep)
      PopFront(spec, *p, remembered);
    p = &Touch(key_, ts, remembered, limits);
    if (partial) {
      Partial lifted = Lift(agg, v.if_defined());
      p->back_total = Combine(agg, p->back_total, lifted);
      p->back.push_back(std::move(lifted));
    }
    p->entries.push_back(std::move(e));
  }
  switch (spec.kind) {
    case AnalyticKind::kLag:
      return out;
    case AnalyticKind::kLast:
      if (p && !p->entries.empty()) {
        const Entry& e = p->entries.back();
        return e.defined ? e.value : json::value(nullptr);
      }
      return fallback();
    case AnalyticKind::kAggregate: {
      const AggSpec& agg = spec.agg;
      if (HasPartial(agg.kind)) {
        if (!p) return Finish(agg, Partial{});
        return Finish(
            agg, p->front.empty() ? p->back_total : Combine(agg, p->front.back(), p->back_total));
      }
      // Collect and CollectTop: from the remembered events.
      AggState state(agg);
      if (p) {
        for (const Entry& e : p->entries)
          state.Add(e.defined ? Value::Borrow(e.value) : Value(), limits);
      }
      return state.Result().ToJson();
    }
    case AnalyticKind::kIsFirst:
    case AnalyticKind::kSpikeAndDip:
    case AnalyticKind::kChangePoint:
      break;
  }
  return nullptr;
}

json::value AnalyticState::NextAnomaly(const AnalyticSpec& spec, std::span<const query::Root> roots,
                                       Micros ts, bool matches, Partition* p, size_t& remembered,
                                       const StreamLimits& limits) {
  // An event WHEN refuses, or whose value is not a number, is neither scored nor learnt.
  if (!matches) return nullptr;
  Value v = query::Evaluate(*spec.value, roots);
  const json::value* j = v.if_defined();
  if (!j || !(j->is_int64() || j->is_uint64() || j->is_double())) return nullptr;
  double x = j->to_number<double>();
  if (!std::isfinite(x)) return nullptr;
  // Entries: x (SpikeAndDip) or [x, its martingale step] (ChangePoint).
  bool change = spec.kind == AnalyticKind::kChangePoint;
  history_.clear();
  if (p) {
    for (const Entry& e : p->entries)
      history_.push_back(change ? e.value.get_array()[0].get_double() : e.value.get_double());
  }
  bool scored = history_.size() >= AnomalyWarmup(spec.history);
  AnomalyScore s{1, false};
  double step = 0;
  if (scored && !change) {
    s = ScoreSpike(history_, x, spec.confidence, static_cast<AnomalySide>(spec.side));
  } else if (scored) {
    step = ChangePointStep(history_, x);
  }
  // Make room first, so that the bound counts what is kept: historySize values, this one last.
  while (p && p->entries.size() >= spec.history)
    PopFront(spec, *p, remembered);
  p = &Touch(key_, ts, remembered, limits);
  p->entries.push_back(
      Entry{ts, true, change ? json::value(json::array{x, step}) : json::value(x)});
  if (scored && change) {
    steps_.clear();
    for (const Entry& e : p->entries)
      steps_.push_back(e.value.get_array()[1].get_double());
    s = ScoreChangePoint(steps_, spec.confidence);
  }
  return json::object{{"Score", s.score}, {"IsAnomaly", int64_t{s.anomaly ? 1 : 0}}};
}

}  // namespace orrery::stream::internal
