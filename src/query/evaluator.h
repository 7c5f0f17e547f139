// Evaluates bound expressions against documents, with the Cosmos DB / IoT Hub semantics:
//
//   - Reading a missing property, or stepping into a value of the wrong kind (`a.b` where a
//     is a number, `a[3]` past the end), is undefined.
//   - = != < <= > >= are defined only between values of the same primitive kind (numbers by
//     value, strings ordinally, booleans, null with null); otherwise undefined.
//   - AND, OR and NOT are three-valued over true, false and undefined (any non-boolean
//     operand counts as undefined): false AND undefined = false, true OR undefined = true,
//     NOT undefined = undefined.
//   - x IN (…) is true when some item equals x, false when none does, undefined when x is;
//     NOT IN / NIN negate that. BETWEEN is x >= lo AND x <= hi.
//   - + - * / % are defined on numbers only. Integers stay exact int64 while they fit (an
//     overflow continues in double); / of integers that divide exactly is an integer; / and
//     % by zero are undefined, as are infinite or NaN results.
//
// Documents are passed as roots: a dialect binds names to root indexes (IoT Hub: one root,
// the twin; routing: the message body, the twin, the properties). Nothing is copied while
// reading paths: results borrow from the documents and the bound expression.
//
// Pure; thread-safe. Recursion is bounded by the expression depth (Limits::max_depth).
#pragma once

#include <span>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "query/bound_expr.h"
#include "query/value.h"

namespace orrery::query {

// A document the expression reads: a JSON object (the common case, no copy needed to pass
// it) or any JSON value.
struct Root {
  Root() = default;
  Root(const boost::json::object& o) : object(&o) {}  // NOLINT: implicit by design
  Root(const boost::json::value& v) : value(&v) {}    // NOLINT

  const boost::json::object* object = nullptr;
  const boost::json::value* value = nullptr;
};

// REQUIRES: `roots` and `e` outlive the result when it is borrowed.
Value Evaluate(const BoundExpr& e, std::span<const Root> roots);

// As Evaluate, and when `e` is a property path whose last step is a member name, sets
// `*last_key` to that member's name as the document spells it (which differs from the query's
// spelling when paths are case-insensitive). Projections name their output with it.
Value EvaluateNamed(const BoundExpr& e, std::span<const Root> roots, std::string_view* last_key);

// The member of `o` named `key`: the exact name when present, else (when case_insensitive)
// the first whose name equals `key` ignoring ASCII case. nullptr when there is none. `hint`,
// when given, is tried first and updated.
const boost::json::key_value_pair* FindMember(const boost::json::object& o, std::string_view key,
                                              bool case_insensitive,
                                              const MemberHint* hint = nullptr);

// `a op b` for one of = != < <= > >=, and for + - * / %; undefined per the rules above.
Value CompareValues(BinaryOp op, const Value& a, const Value& b);
Value Arithmetic(BinaryOp op, const Value& a, const Value& b);

}  // namespace orrery::query
