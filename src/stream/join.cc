#include "stream/join.h"

#include <boost/json/serialize.hpp>

#include "query/evaluator.h"
#include "query/query_error.h"

namespace orrery::stream::internal {

namespace json = boost::json;
using query::Value;

namespace {

constexpr Micros kMinTime = std::numeric_limits<Micros>::min();
constexpr Micros kMaxTime = std::numeric_limits<Micros>::max();

// a + b, saturated at the ends of the range (watermarks are kMinTime and kMaxTime at the ends).
Micros SatAdd(Micros a, Micros b) {
  Micros r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? kMaxTime : kMinTime;
  return r;
}

const json::object& NoExtras() {
  static const json::object empty;
  return empty;
}

// The key of `keys` over `roots`: false when a value is null or missing (SQL's NULL matches
// nothing).
bool KeyText(const std::vector<query::BoundExpr>& keys, std::span<const query::Root> roots,
             std::string& out) {
  out.clear();
  for (const auto& k : keys) {
    Value v = query::Evaluate(k, roots);
    if (!v.defined() || v->is_null()) return false;
    AppendKey(out, v);
  }
  return true;
}

}  // namespace

const json::object& AbsentSource() {
  static const json::object absent;
  return absent;
}

JoinRoots::JoinRoots(const JoinedRow& row, size_t count, const json::object* extras) {
  roots[0] = query::Root(*row.sources[0]);
  roots[1] = query::Root(extras ? *extras : NoExtras());
  for (size_t i = 1; i < count; ++i) {
    roots[SourceRoot(i)] = query::Root(row.sources[i] ? *row.sources[i] : AbsentSource());
  }
  size = count <= 1 ? 2 : SourceRoot(count - 1) + 1;
}

// ---- StreamJoin ----

StreamJoin::StreamJoin(const JoinSpec& spec, size_t max_events, Out out)
    : spec_(spec), max_events_(max_events), out_(std::move(out)) {}

bool StreamJoin::KeyOf(int side, const json::object& event, std::string& key) const {
  std::array<query::Root, 3> roots{};
  roots[side == 0 ? 0 : SourceRoot(1)] = query::Root(event);
  return KeyText(side == 0 ? spec_.left_keys : spec_.right_keys, roots, key);
}

bool StreamJoin::Residual(const json::object& left, const json::object& right) const {
  if (!spec_.residual) return true;
  std::array<query::Root, 3> roots = {query::Root(left), query::Root(NoExtras()),
                                      query::Root(right)};
  return query::IsTrue(query::Evaluate(*spec_.residual, roots));
}

void StreamJoin::Push(int side, const json::object& event, Micros ts) {
  if (++held_ > max_events_) {
    throw query::QueryError(query::Errc::kLimitExceeded,
                            "a JOIN holds too many events (the limit is " +
                                std::to_string(max_events_) +
                                "): its time bound is too wide for the event rate, or one "
                                "side's time does not advance");
  }
  // A copy in the default memory resource (the caller's may be a reused buffer).
  sides_[side].pending.push(Pending{ts, seq_++, json::object(event, json::storage_ptr())});
  Drain();
}

Micros StreamJoin::Advance(int side, Micros w) {
  Side& s = sides_[side];
  if (w > s.watermark) s.watermark = w;
  Micros f = std::min(sides_[0].watermark, sides_[1].watermark);
  if (f > frontier_) {
    frontier_ = f;
    Drain();
    Expire(frontier_);
  }
  return frontier_;
}

void StreamJoin::Drain() {
  while (true) {
    int pick = -1;
    for (int i = 0; i < 2; ++i) {
      const auto& q = sides_[i].pending;
      if (q.empty() || q.top().ts > frontier_) continue;
      if (pick < 0 || sides_[pick].pending.top() > q.top()) pick = i;
    }
    if (pick < 0) return;
    auto& q = sides_[pick].pending;
    Pending p = std::move(const_cast<Pending&>(q.top()));
    q.pop();
    Process(pick, std::move(p));
  }
}

void StreamJoin::PopFront(Side& s) {
  Entry& e = s.entries.front();
  auto it = s.by_key.find(e.key);
  it->second.first = e.next;  // e is its key's oldest
  if (e.next == nullptr) s.by_key.erase(it);
  s.entries.pop_front();
  --held_;
}

void StreamJoin::Append(Side& s, Entry&& entry) {
  Entry& e = s.entries.emplace_back(std::move(entry));
  KeyList& list = s.by_key[e.key];
  if (list.last) {
    list.last->next = &e;
  } else {
    list.first = &e;
  }
  list.last = &e;
}

void StreamJoin::Expire(Micros now) {
  // Left events no later right event can match: t + hi < now. Unmatched, LEFT OUTER: their
  // row (right missing) at t + hi, when hi >= 0 (earlier ones were decided when processed).
  Side& left = sides_[0];
  while (!left.entries.empty() && SatAdd(left.entries.front().ts, spec_.hi) < now) {
    Entry& e = left.entries.front();
    if (spec_.left_outer && !e.matched) out_(e.event, nullptr, SatAdd(e.ts, spec_.hi));
    PopFront(left);
  }
  // Right events no later left event can match: t - lo < now.
  Side& right = sides_[1];
  while (!right.entries.empty() && SatAdd(right.entries.front().ts, -spec_.lo) < now)
    PopFront(right);
}

void StreamJoin::Process(int side, Pending p) {
  Expire(p.ts);
  std::string key;
  bool keyed = KeyOf(side, p.event, key);
  Micros t = p.ts;
  if (side == 0) {
    bool matched = false;
    if (keyed) {
      if (auto it = sides_[1].by_key.find(key); it != sides_[1].by_key.end()) {
        for (Entry* r = it->second.first; r; r = r->next) {  // t + lo <= t(r) <= t
          if (r->ts - t > spec_.hi || r->ts - t < spec_.lo) continue;
          if (!Residual(p.event, r->event)) continue;
          matched = true;
          out_(p.event, &r->event, t);
        }
      }
    }
    // No match can come later when hi < 0 (every right event it could match is older), nor
    // without a key.
    if (spec_.hi < 0 || !keyed) {
      if (spec_.left_outer && !matched) out_(p.event, nullptr, t);
      --held_;
      return;
    }
    Append(sides_[0], Entry{t, std::move(p.event), std::move(key), matched});
    return;
  }
  if (!keyed) {  // matches nothing
    --held_;
    return;
  }
  if (auto it = sides_[0].by_key.find(key); it != sides_[0].by_key.end()) {
    for (Entry* l = it->second.first; l; l = l->next) {  // t - hi <= t(l) <= t
      if (t - l->ts > spec_.hi || t - l->ts < spec_.lo) continue;
      if (!Residual(l->event, p.event)) continue;
      l->matched = true;
      out_(l->event, &p.event, t);
    }
  }
  Append(sides_[1], Entry{t, std::move(p.event), std::move(key), false});
}

// ---- ReferenceIndex ----

void ReferenceIndex::Build(const JoinSpec& spec, size_t source,
                           const std::vector<json::object>& rows) {
  rows_ = &rows;
  by_key_.clear();
  if (spec.right_keys.empty()) return;
  std::array<query::Root, kMaxJoinSources + 1> roots{};
  std::string key;
  for (size_t i = 0; i < rows.size(); ++i) {
    roots[SourceRoot(source)] = query::Root(rows[i]);
    std::span<const query::Root> span(roots.data(), SourceRoot(source) + 1);
    if (KeyText(spec.right_keys, span, key)) by_key_[key].push_back(static_cast<uint32_t>(i));
  }
}

void ReferenceIndex::Match(const JoinSpec& spec, size_t source, JoinedRow& row,
                           const std::function<void(const json::object&)>& f) const {
  if (rows_ == nullptr) return;
  auto consider = [&](const json::object& candidate) {
    if (spec.residual) {
      row.sources[source] = &candidate;
      JoinRoots r(row, source + 1, nullptr);
      bool ok = query::IsTrue(query::Evaluate(*spec.residual, {r.roots.data(), r.size}));
      row.sources[source] = nullptr;
      if (!ok) return;
    }
    f(candidate);
  };
  if (spec.left_keys.empty()) {
    for (const auto& candidate : *rows_)
      consider(candidate);
    return;
  }
  JoinRoots r(row, source, nullptr);
  std::string key;
  if (!KeyText(spec.left_keys, {r.roots.data(), r.size}, key)) return;
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  for (uint32_t i : it->second)
    consider((*rows_)[i]);
}

}  // namespace orrery::stream::internal
