// MATCH_RECOGNIZE's matcher (the design note is in match_recognize.h).
#include "stream/match_recognize.h"

#include <algorithm>

#include "query/evaluator.h"
#include "stream/aggregates.h"

namespace orrery::stream::internal {

namespace json = boost::json;
using query::Value;

namespace {

double Number(const json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  return static_cast<double>(v.get_uint64());
}

// Adds `event`'s value of the slot's field to `state`.
void Combine(const MatchSlot& slot, std::optional<json::value>& state, const json::object& event) {
  const json::object empty;
  query::Root roots[2] = {query::Root(event), query::Root(empty)};
  Value x = query::Evaluate(slot.field, roots);
  if (!x.defined()) return;
  const json::value& v = x.get();
  switch (slot.kind) {
    case MatchSlot::Kind::kFirst:
      if (!state) state = v;
      return;
    case MatchSlot::Kind::kLast:
      state = v;
      return;
    case MatchSlot::Kind::kMin:
    case MatchSlot::Kind::kMax:
      if (!v.is_number()) return;  // "the minimum number aggregated so far"
      if (!state || (slot.kind == MatchSlot::Kind::kMin ? Number(v) < Number(*state)
                                                        : Number(v) > Number(*state))) {
        state = v;
      }
      return;
  }
}

}  // namespace

Matcher::Matcher(const MatchSpec& spec, const StreamLimits& limits)
    : spec_(spec), limits_(limits), visited_(spec.program.size(), 0) {
  for (size_t i = 0; i < spec_.slots.size(); ++i)
    slot_names_.push_back(MatchSlotName(i));
}

bool Matcher::Holds(int symbol, const Thread& t, const json::object& event) {
  const auto& condition = spec_.define[static_cast<size_t>(symbol)];
  if (!condition) return true;  // '.', or a symbol DEFINE leaves out: any event
  json::object extras;
  for (size_t i : spec_.define_slots[static_cast<size_t>(symbol)]) {
    const MatchSlot& s = spec_.slots[i];
    std::optional<json::value> v = t.slots[i];
    if (s.symbol == symbol || s.symbol < 0) Combine(s, v, event);  // the event, tentatively
    if (v) extras[slot_names_[i]] = std::move(*v);
  }
  query::Root roots[2] = {query::Root(event), query::Root(extras)};
  return query::IsTrue(query::Evaluate(*condition, roots));
}

void Matcher::Fold(Thread& t, int symbol, const json::object& event) const {
  for (size_t i = 0; i < spec_.slots.size(); ++i) {
    const MatchSlot& s = spec_.slots[i];
    if (s.symbol == symbol || s.symbol < 0) Combine(s, t.slots[i], event);
  }
}

json::object Matcher::Row(const Thread& t, const Key& key, const json::object& last) {
  json::object extras;
  for (size_t i = 0; i < t.slots.size(); ++i) {
    if (t.slots[i]) extras[slot_names_[i]] = *t.slots[i];
  }
  if (spec_.classifier) {
    json::array classes;
    for (uint16_t c : t.classes)
      classes.push_back(json::string(spec_.symbols[c]));
    extras[kClassifierName] = std::move(classes);
  }
  query::Root roots[2] = {query::Root(last), query::Root(extras)};
  json::object row;
  for (size_t k = 0; k < spec_.partition_names.size(); ++k)
    row[spec_.partition_names[k]] = key.values[k];
  for (size_t m = 0; m < spec_.measures.size(); ++m) {
    Value v = query::Evaluate(spec_.measures[m], roots);
    json::value& slot = row[spec_.measure_names[m]];
    if (v.defined()) {
      slot = v.get();
    } else {
      slot = nullptr;
    }
  }
  return row;
}

bool Matcher::Follow(Attempt& a, const Thread& t, int pc, std::vector<Thread>& out, Key& key,
                     const json::object& event, Micros ts, uint64_t seq) {
  if (visited_[static_cast<size_t>(pc)] == pass_) return false;  // a loop that matched nothing
  visited_[static_cast<size_t>(pc)] = pass_;
  const MatchInst& inst = spec_.program[static_cast<size_t>(pc)];
  switch (inst.op) {
    case MatchInst::Op::kJump:
      return Follow(a, t, inst.x, out, key, event, ts, seq);
    case MatchInst::Op::kSplit:
      if (Follow(a, t, inst.x, out, key, event, ts, seq)) return true;
      return Follow(a, t, inst.y, out, key, event, ts, seq);
    case MatchInst::Op::kSymbol:
      for (const Thread& o : out) {
        if (o.pc == pc && o.slots == t.slots) return false;  // a twin of higher priority
      }
      out.push_back(t);
      out.back().pc = pc;
      return false;
    case MatchInst::Op::kMatch:
      if (t.length == 0) return false;  // an empty match is none
      a.found = Found{ts, seq, Row(t, key, event)};
      return true;
  }
  return false;
}

void Matcher::Step(Attempt& a, Key& key, const json::object& event, Micros ts, uint64_t seq) {
  std::vector<Thread> next;
  size_t before = a.threads.size();
  for (Thread& t : a.threads) {
    int pc = t.pc;
    int symbol = spec_.program[static_cast<size_t>(pc)].symbol;
    if (!Holds(symbol, t, event)) continue;
    Thread moved = std::move(t);
    Fold(moved, symbol, event);
    if (spec_.classifier) moved.classes.push_back(static_cast<uint16_t>(symbol));
    ++moved.length;
    if (++pass_ == 0) {
      std::fill(visited_.begin(), visited_.end(), 0);
      pass_ = 1;
    }
    if (Follow(a, moved, pc + 1, next, key, event, ts, seq)) break;  // cuts the rest
  }
  key.threads = key.threads - before + next.size();
  a.threads = std::move(next);
  if (a.threads.empty()) a.done = true;
}

void Matcher::Push(const json::object& event, Micros ts) {
  const json::object empty;
  query::Root roots[2] = {query::Root(event), query::Root(empty)};
  std::string name;
  std::vector<Value> values;
  for (const auto& k : spec_.partition) {
    values.push_back(query::Evaluate(k, roots));
    AppendKey(name, values.back());
  }
  auto [it, inserted] = keys_.try_emplace(name);
  Key& key = it->second;
  if (inserted) {
    if (keys_.size() > limits_.max_match_keys) {
      keys_.erase(it);
      LimitError("MATCH_RECOGNIZE holds too many PARTITION BY keys (the limit is " +
                 std::to_string(limits_.max_match_keys) + ")");
    }
    for (const Value& v : values)
      key.values.push_back(v.defined() ? v.get() : json::value(nullptr));
  }
  uint64_t seq = key.seq++;
  for (Attempt& a : key.attempts) {
    if (a.done) continue;
    if (spec_.duration > 0 && ts - a.start >= spec_.duration) {  // LIMIT DURATION is over
      key.threads -= a.threads.size();
      a.threads.clear();
      a.done = true;
      continue;
    }
    Step(a, key, event, ts, seq);
  }
  // The attempt starting at this event.
  Attempt a;
  a.start = ts;
  a.first = seq;
  Thread start;
  start.slots.resize(spec_.slots.size());
  if (++pass_ == 0) {
    std::fill(visited_.begin(), visited_.end(), 0);
    pass_ = 1;
  }
  Follow(a, start, 0, a.threads, key, event, ts, seq);
  key.threads += a.threads.size();
  Step(a, key, event, ts, seq);
  if (!a.done || a.found) key.attempts.push_back(std::move(a));
  if (key.threads > limits_.max_match_partials) {
    LimitError(
        "MATCH_RECOGNIZE holds too many partial matches for one PARTITION BY key (the "
        "limit is " +
        std::to_string(limits_.max_match_partials) +
        "; a LIMIT DURATION, or a pattern with fewer alternatives, bounds them)");
  }
  if (!Settle(key, name)) keys_.erase(it);
}

bool Matcher::Settle(Key& key, const std::string& name) {
  while (!key.attempts.empty() && key.attempts.front().done) {
    Attempt a = std::move(key.attempts.front());
    key.attempts.pop_front();
    if (!a.found) continue;
    uint64_t end = a.found->end;
    ready_.push(Ready{a.found->ts, ready_seq_++, std::move(a.found->row)});
    if (spec_.skip_past_last) {  // the next match starts after this one's last event
      while (!key.attempts.empty() && key.attempts.front().first <= end) {
        key.threads -= key.attempts.front().threads.size();
        key.attempts.pop_front();
      }
    }
  }
  std::optional<Micros> floor;
  Micros deadline = kMaxTimeValue;
  for (const Attempt& a : key.attempts) {
    if (a.found) floor = floor ? std::min(*floor, a.found->ts) : a.found->ts;
    if (!a.done && spec_.duration > 0) {
      Micros end =
          a.start > kMaxTimeValue - spec_.duration ? kMaxTimeValue : a.start + spec_.duration;
      deadline = std::min(deadline, end);
    }
  }
  if (key.floor) {
    floors_.erase(*key.floor);
    key.floor.reset();
  }
  if (floor) key.floor = floors_.insert(*floor);
  if (deadline != key.deadline) {
    key.deadline = deadline;
    if (deadline != kMaxTimeValue) deadlines_.emplace(deadline, name);
  }
  return !key.attempts.empty();
}

void Matcher::Advance(Micros w) {
  if (w == kMaxTimeValue) {
    for (auto it = keys_.begin(); it != keys_.end();) {
      Key& key = it->second;
      for (Attempt& a : key.attempts) {
        a.threads.clear();
        a.done = true;
      }
      key.threads = 0;
      Settle(key, it->first);
      it = keys_.erase(it);
    }
    deadlines_ = {};
    return;
  }
  while (!deadlines_.empty() && deadlines_.top().first <= w) {
    std::pair<Micros, std::string> top = deadlines_.top();
    deadlines_.pop();
    auto it = keys_.find(top.second);
    if (it == keys_.end() || it->second.deadline != top.first) continue;
    Key& key = it->second;
    key.deadline = kMaxTimeValue;
    for (Attempt& a : key.attempts) {
      if (!a.done && a.start <= w - spec_.duration) {
        key.threads -= a.threads.size();
        a.threads.clear();
        a.done = true;
      }
    }
    if (!Settle(key, top.second)) keys_.erase(it);
  }
}

Micros Matcher::Hold(Micros w) const {
  return floors_.empty() ? w : std::min(w, *floors_.begin());
}

void Matcher::TakeReady(Micros up_to, const std::function<void(json::object, Micros)>& emit) {
  while (!ready_.empty() && ready_.top().ts <= up_to) {
    Ready r = std::move(const_cast<Ready&>(ready_.top()));
    ready_.pop();
    emit(std::move(r.row), r.ts);
  }
}

}  // namespace orrery::stream::internal
