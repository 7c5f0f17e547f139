// Runs bound IoT Hub plans over documents: filter, project, group and aggregate.
//
// Design note. Apply evaluates WHERE with paths that borrow from the document, so a document
// that does not match costs a few hash lookups and no allocation; only matching rows are
// built. Groups are found by an encoding of their key values that is equal exactly when the
// values are (numbers by value, so 1 and 1.0 share a group; undefined is a group of its own;
// arrays and objects, which never compare equal, by their serialised text), and are kept in
// first-seen order so that results page stably.
#include <charconv>
#include <cmath>
#include <cstring>

#include <boost/json/serialize.hpp>

#include "query/evaluator.h"
#include "query/iothub/statement.h"
#include "query/query_error.h"

namespace orrery::query {

namespace {

void EncodeKey(std::string& out, const Value& v) {
  if (!v.defined()) {
    out += 'u';
    return;
  }
  const json::value& x = v.get();
  switch (KindOf(x)) {
    case Kind::kNull:
      out += 'z';
      return;
    case Kind::kBool:
      out += x.get_bool() ? "t" : "f";
      return;
    case Kind::kNumber: {
      constexpr double kTwo64 = 18446744073709551616.0;
      if (auto i = ToInt64(x)) {
        out += 'i';
        out += std::to_string(*i);
      } else if (x.is_uint64()) {
        out += 'i';
        out += std::to_string(x.get_uint64());
      } else if (double d = x.get_double(); d == std::trunc(d) && d > 0 && d < kTwo64) {
        out += 'i';  // an integral double beyond int64, spelled as the uint64 it equals
        out += std::to_string(static_cast<uint64_t>(d));
      } else {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, x.get_double());
        out += 'd';
        out.append(buf, r.ptr);
      }
      out += ';';
      return;
    }
    case Kind::kString: {
      std::string_view s = x.get_string();
      out += 's';
      out += std::to_string(s.size());
      out += ':';
      out += s;
      return;
    }
    default: {
      std::string j = json::serialize(x);
      out += 'j';
      out += std::to_string(j.size());
      out += ':';
      out += j;
      return;
    }
  }
}

bool Where(const internal::HubPlan& plan, std::span<const Root> roots) {
  return !plan.where || IsTrue(Evaluate(*plan.where, roots));
}

// Keeps a Value past its document: borrowed values are copied.
Value Keep(Value v) {
  if (!v.borrowed()) return v;
  return Value(v.get());
}

}  // namespace

HubCollection HubQuery::from() const {
  return plan_->from;
}
bool HubQuery::aggregate() const {
  return plan_->aggregate;
}
std::optional<uint64_t> HubQuery::top() const {
  return plan_->top;
}
bool HubQuery::select_all() const {
  return plan_->star;
}

bool HubQuery::Matches(const json::object& doc) const {
  const Root root(doc);
  return Where(*plan_, {&root, 1});
}

std::optional<json::value> HubQuery::Apply(const json::object& doc) const {
  const Root root(doc);
  std::span<const Root> roots(&root, 1);
  if (plan_->aggregate || !Where(*plan_, roots)) return std::nullopt;
  if (plan_->star) return json::value(doc);
  json::object row;
  for (const internal::HubProjection& p : plan_->items) {
    std::string_view key;
    Value v = EvaluateNamed(p.expr, roots, &key);
    if (!v.defined()) continue;
    row[p.name.empty() ? key : std::string_view(p.name)] = std::move(v).ToJson();
  }
  return json::value(std::move(row));
}

HubQuery::Aggregation HubQuery::StartAggregation() const {
  return Aggregation(plan_);
}

HubQuery::Aggregation::Aggregation(std::shared_ptr<const internal::HubPlan> plan)
    : plan_(std::move(plan)) {}

HubQuery::Aggregation::Group HubQuery::Aggregation::NewGroup() const {
  Group group;
  // One accumulator per item, so that item i uses accumulators[i] (unused for non-aggregates).
  for (const internal::HubProjection& p : plan_->items) {
    group.accumulators.emplace_back(p.aggregate.value_or(AggregateKind::kCount));
  }
  return group;
}

void HubQuery::Aggregation::Add(const json::object& doc) {
  const Root root(doc);
  std::span<const Root> roots(&root, 1);
  if (!Where(*plan_, roots)) return;
  std::vector<Value> keys;
  std::vector<std::string_view> names(plan_->group_by.size());
  std::string encoded;
  keys.reserve(plan_->group_by.size());
  for (size_t g = 0; g < plan_->group_by.size(); ++g) {
    keys.push_back(EvaluateNamed(plan_->group_by[g], roots, &names[g]));
    EncodeKey(encoded, keys.back());
  }
  auto [it, inserted] = index_.try_emplace(std::move(encoded), groups_.size());
  if (inserted) {
    Group group = NewGroup();
    for (size_t g = 0; g < keys.size(); ++g) {
      group.keys.push_back(Keep(std::move(keys[g])));
      group.key_names.emplace_back(names[g]);
    }
    groups_.push_back(std::move(group));
  }
  Group& group = groups_[it->second];
  for (size_t i = 0; i < plan_->items.size(); ++i) {
    const internal::HubProjection& p = plan_->items[i];
    if (!p.aggregate) continue;
    if (p.count_rows) {
      group.accumulators[i].Add(Value::Bool(true));
    } else {
      group.accumulators[i].Add(Evaluate(p.expr, roots));
    }
  }
}

std::vector<json::value> HubQuery::Aggregation::Finish() {
  if (groups_.empty() && plan_->group_by.empty()) groups_.push_back(NewGroup());
  std::vector<json::value> rows;
  size_t limit = groups_.size();
  if (plan_->top && *plan_->top < limit) limit = static_cast<size_t>(*plan_->top);
  rows.reserve(limit);
  for (size_t r = 0; r < limit; ++r) {
    Group& group = groups_[r];
    json::object row;
    for (size_t i = 0; i < plan_->items.size(); ++i) {
      const internal::HubProjection& p = plan_->items[i];
      Value v;
      std::string_view name = p.name;
      if (p.aggregate) {
        v = group.accumulators[i].Result();
      } else if (p.group >= 0) {
        const Value& key = group.keys[static_cast<size_t>(p.group)];
        if (key.defined()) v = Value::Borrow(key.get());
        if (name.empty()) name = group.key_names[static_cast<size_t>(p.group)];
      } else {
        v = Evaluate(p.expr, {});  // a constant item
      }
      if (v.defined()) row[name] = std::move(v).ToJson();
    }
    rows.emplace_back(std::move(row));
  }
  groups_.clear();
  index_.clear();
  return rows;
}

bool HubCondition::Matches(const json::object& doc) const {
  return IsTrue(Evaluate(doc));
}

Value HubCondition::Evaluate(const json::object& doc) const {
  const Root root(doc);
  return query::Evaluate(*plan_->where, {&root, 1});
}

Result<HubQuery> ParseHubQuery(std::string_view text) {
  ORRERY_ASSIGN_OR_RETURN(auto tokens, Lex(text, HubExprOptions().limits));
  return Catching([&] {
    TokenCursor in(std::move(tokens));
    ExpressionParser parser(in, HubExprOptions());
    HubStatement st = ParseHubStatement(in, parser);
    return HubQuery(std::make_shared<const internal::HubPlan>(BindHubStatement(st)));
  });
}

Result<HubCondition> ParseHubCondition(std::string_view text, HubCollection from) {
  ORRERY_ASSIGN_OR_RETURN(auto tokens, Lex(text, HubExprOptions().limits));
  return Catching([&] {
    TokenCursor in(std::move(tokens));
    ExpressionParser parser(in, HubExprOptions());
    ExprPtr e = ParseHubConditionExpr(in, parser);
    return HubCondition(std::make_shared<const internal::HubPlan>(BindHubCondition(*e, from)));
  });
}

}  // namespace orrery::query
