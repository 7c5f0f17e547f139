// Binds IoT Hub statements: collection prefixes on paths, output names, and the rules of
// aggregate queries (every non-aggregate item is a GROUP BY expression; aggregates appear
// only as SELECT items).
#include "query/binder.h"
#include "base/strings.h"
#include "query/iothub/statement.h"
#include "query/query_error.h"

namespace orrery::query {

namespace {

// `devices.x` reads `x`; in devices.modules (devices.jobs) so does `devices.modules.x`
// (`devices.jobs.x`).
RootResolver HubRoots(HubCollection from) {
  return [from](std::span<const std::string> names) -> std::optional<RootBinding> {
    RootBinding b;
    if (!names.empty() && strings::IEquals(names[0], "devices")) {
      b.skip = 1;
      if (names.size() >= 2 &&
          ((from == HubCollection::kModules && strings::IEquals(names[1], "modules")) ||
           (from == HubCollection::kJobs && strings::IEquals(names[1], "jobs")))) {
        b.skip = 2;
      }
    }
    return b;
  };
}

BindOptions HubBindOptions(HubCollection from) {
  BindOptions o;
  o.resolve_root = HubRoots(from);
  o.case_insensitive_keys = true;
  return o;
}

// Aggregates may only be SELECT items; anywhere else they are an error, said clearly
// rather than as an unknown function.
void RejectAggregates(const Expr& e, std::string_view where) {
  if (e.kind == ExprKind::kCall && FindAggregate(e.name)) {
    throw QueryError(Errc::kInvalidQuery, e.pos,
                     "aggregate " + std::string(AggregateName(*FindAggregate(e.name))) +
                         " is not allowed " + std::string(where));
  }
  for (const auto& c : e.children)
    RejectAggregates(*c, where);
}

// The name a path item gets from its last member, as written (duplicates are checked with
// it; the output uses the document's spelling).
std::optional<std::string> WrittenName(const BoundExpr& b) {
  if (b.op != BoundOp::kPath || b.steps.empty() || b.steps.back().is_index) return std::nullopt;
  return b.steps.back().key;
}

internal::HubProjection BindItem(const HubSelectItem& item, const BindOptions& options) {
  internal::HubProjection p;
  const Expr& e = *item.expr;
  if (e.kind == ExprKind::kCall && FindAggregate(e.name)) {
    p.aggregate = FindAggregate(e.name);
    for (const auto& c : e.children)
      RejectAggregates(*c, "inside another aggregate");
    if (*p.aggregate == AggregateKind::kCount && (e.star || e.children.empty())) {
      p.count_rows = true;
    } else if (e.star) {
      throw QueryError(Errc::kInvalidQuery, e.pos,
                       std::string(AggregateName(*p.aggregate)) + "(*) is not allowed; name " +
                           "what to aggregate, or use COUNT()");
    } else if (e.children.size() != 1) {
      throw QueryError(Errc::kInvalidQuery, e.pos,
                       std::string(AggregateName(*p.aggregate)) + " takes 1 argument, not " +
                           std::to_string(e.children.size()));
    } else {
      p.expr = BindOrThrow(*e.children[0], options);
    }
  } else {
    RejectAggregates(e, "inside an expression; aggregates are SELECT items of their own");
    p.expr = BindOrThrow(e, options);
  }
  if (item.alias) p.name = *item.alias;
  return p;
}

}  // namespace

internal::HubPlan BindHubStatement(const HubStatement& st) {
  internal::HubPlan plan;
  BindOptions options = HubBindOptions(st.from);
  plan.from = st.from;
  plan.top = st.top;
  plan.star = st.star;
  if (st.where) {
    RejectAggregates(*st.where, "in WHERE");
    plan.where = BindOrThrow(*st.where, options);
  }
  for (const auto& g : st.group_by) {
    RejectAggregates(*g, "in GROUP BY");
    plan.group_by.push_back(BindOrThrow(*g, options));
  }
  // Output names: aliases, last path members, then "$1", "$2"… for the rest, in order.
  std::vector<std::string> names;
  int unnamed = 0;
  for (size_t i = 0; i < st.items.size(); ++i) {
    internal::HubProjection p = BindItem(st.items[i], options);
    std::string shown;
    if (!p.name.empty()) {
      shown = p.name;
    } else if (auto written = p.aggregate ? std::nullopt : WrittenName(p.expr)) {
      shown = *written;  // p.name stays empty: the document's spelling is used
    } else {
      p.name = "$" + std::to_string(++unnamed);
      shown = p.name;
    }
    for (const std::string& n : names) {
      if (strings::IEquals(n, shown)) {
        throw QueryError(
            Errc::kInvalidQuery, st.items[i].pos,
            "duplicate output name '" + shown + "'; give one of them an alias " + "with AS");
      }
    }
    names.push_back(shown);
    if (p.aggregate) plan.aggregate = true;
    plan.items.push_back(std::move(p));
  }
  if (!plan.group_by.empty()) plan.aggregate = true;
  if (plan.aggregate && plan.star) {
    throw QueryError(Errc::kInvalidQuery,
                     "SELECT * cannot be used with GROUP BY; select the grouped expressions "
                     "and aggregates");
  }
  if (plan.aggregate) {
    for (size_t i = 0; i < plan.items.size(); ++i) {
      internal::HubProjection& p = plan.items[i];
      if (p.aggregate) continue;
      for (size_t g = 0; g < plan.group_by.size() && p.group < 0; ++g) {
        if (SameExpr(p.expr, plan.group_by[g])) p.group = static_cast<int>(g);
      }
      if (p.group < 0 && !p.expr.is_constant()) {
        throw QueryError(Errc::kInvalidQuery, st.items[i].pos,
                         "'" + ToString(*st.items[i].expr) +
                             "' must be a GROUP BY expression or inside an aggregate");
      }
    }
  }
  return plan;
}

internal::HubPlan BindHubCondition(const Expr& condition, HubCollection from) {
  internal::HubPlan plan;
  plan.from = from;
  RejectAggregates(condition, "in a condition");
  plan.where = BindOrThrow(condition, HubBindOptions(from));
  return plan;
}

}  // namespace orrery::query
