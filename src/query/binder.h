// Binds parsed expressions (ast.h) into evaluable ones (bound_expr.h): resolves property
// paths to a root and a list of steps, calls to functions of the dialect's registry (checking
// arity), and folds constant subtrees.
//
// A property path is a name followed by member and constant-index steps: `tags.location`,
// `a['odd key']`, `b[0].c`, `devices.modules.moduleId`. The dialect's RootResolver sees the
// leading member names and says which root the path reads and how many of those names only
// select it (IoT Hub: `devices.tags.x` and `tags.x` both read `tags.x` of the twin).
//
// Errors (Result): kUnknownFunction, kInvalidQuery (arity, `*` outside COUNT(*), a name the
// resolver rejects), each with the position of the offending expression.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "base/error.h"
#include "query/ast.h"
#include "query/bound_expr.h"
#include "query/functions.h"

namespace orrery::query {

struct RootBinding {
  uint32_t root = 0;  // index into the roots passed to Evaluate
  size_t skip = 0;    // leading names that only select the root
};

// `names`: the path's leading member names (at least one). nullopt: not a known name.
using RootResolver = std::function<std::optional<RootBinding>(std::span<const std::string> names)>;

struct BindOptions {
  const FunctionRegistry* functions = &FunctionRegistry::Builtins();
  RootResolver resolve_root;  // empty: every path reads root 0 from its first name on
  // Member names match exactly, or failing that ignoring ASCII case (IoT Hub's queries are
  // not case-sensitive). The exact match always wins.
  bool case_insensitive_keys = false;
};

// REQUIRES: `options.functions` outlives the result.
Result<BoundExpr> Bind(const Expr& e, const BindOptions& options);
// As Bind, for the dialects' statement binders, which run inside Catching(): throws
// QueryError (query_error.h) instead of returning it.
BoundExpr BindOrThrow(const Expr& e, const BindOptions& options);

}  // namespace orrery::query
