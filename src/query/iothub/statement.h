// Internal to the IoT Hub dialect: the parsed statement (the parser's output, the binder's
// input) and the plan the binder makes of it (the executor's input).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "query/aggregates.h"
#include "query/ast.h"
#include "query/bound_expr.h"
#include "query/iothub/hub_query.h"
#include "query/parser.h"

namespace orrery::query {

struct HubSelectItem {
  ExprPtr expr;
  std::optional<std::string> alias;
  Position pos;
};

struct HubStatement {
  std::optional<uint64_t> top;
  bool star = false;  // SELECT *
  std::vector<HubSelectItem> items;
  HubCollection from = HubCollection::kDevices;
  ExprPtr where;  // may be null
  std::vector<ExprPtr> group_by;
};

// The dialect's expression options: reserved words, NIN, HubLimits().
const ExprOptions& HubExprOptions();

// Parses a statement / a bare condition from the cursor to the end. Throw QueryError.
HubStatement ParseHubStatement(TokenCursor& in, ExpressionParser& parser);
ExprPtr ParseHubConditionExpr(TokenCursor& in, ExpressionParser& parser);

namespace internal {

struct HubProjection {
  BoundExpr expr;  // for aggregates, the argument (none for COUNT())
  // The output name: the alias, "$N", or empty for "the last member name of the path, as
  // the matching document spells it".
  std::string name;
  std::optional<AggregateKind> aggregate;
  bool count_rows = false;  // COUNT() / COUNT(*)
  int group = -1;           // aggregate queries: the GROUP BY expression this item shows
};

struct HubPlan {
  HubCollection from = HubCollection::kDevices;
  std::optional<uint64_t> top;
  bool star = false;
  bool aggregate = false;
  std::optional<BoundExpr> where;  // for a HubCondition: the condition
  std::vector<HubProjection> items;
  std::vector<BoundExpr> group_by;
};

}  // namespace internal

// Binds a parsed statement / condition. Throw QueryError.
internal::HubPlan BindHubStatement(const HubStatement& st);
internal::HubPlan BindHubCondition(const Expr& condition, HubCollection from);

}  // namespace orrery::query
