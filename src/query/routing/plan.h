// Internal to the routing dialect: the expression options its conditions are parsed with, and
// the plan the binder makes of a parsed condition (the executor's input).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "query/ast.h"
#include "query/bound_expr.h"
#include "query/parser.h"
#include "query/routing/route_condition.h"

namespace orrery::query {

// No clause keywords (only the foundation's operator words are reserved), no NIN, hyphens in
// names, [[quoted names]] anywhere, RouteLimits().
const ExprOptions& RouteExprOptions();

namespace internal {

// The roots a bound condition reads (Evaluate's `roots`): the body, the twin, then one string
// per property slot.
inline constexpr uint32_t kBodyRoot = 0;
inline constexpr uint32_t kTwinRoot = 1;
inline constexpr uint32_t kFirstSlotRoot = 2;

// A message property a condition reads: the system property, if the name is one, else (or
// when the message lacks it) the application property `app`.
struct RouteSlot {
  std::optional<SystemProperty> system;
  std::string app;
};

struct RoutePlan {
  std::string text;
  BoundExpr condition;
  std::vector<RouteSlot> slots;  // slot i is root kFirstSlotRoot + i; each name once
  bool uses_body = false;
  bool uses_twin = false;
};

// Binds a parsed condition. Throws QueryError.
RoutePlan BindRouteCondition(const Expr& condition);

}  // namespace internal
}  // namespace orrery::query
