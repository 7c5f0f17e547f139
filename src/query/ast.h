// The parsed expression tree shared by the dialects (the output of the parser, the input of
// the binder). It records what was written, resolved nothing yet: names are not tied to
// documents and calls are not tied to functions.
//
// AND and OR are n-ary (a chain `a AND b AND c` is one node with three children), so that a
// long list of conditions does not make the tree deep; every other operator is a node with
// one or two children. `depth` is the height of the subtree; the parser refuses trees higher
// than Limits::max_depth, which bounds every recursive walk over them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "query/lexer.h"

namespace orrery::query {

enum class ExprKind : uint8_t {
  kLiteral,    // literal: a number, string, true, false or null
  kUndefined,  // the `undefined` constant
  kName,       // name: a bare identifier, the start of a property path
  kMember,     // children[0] '.' name
  kIndex,      // children[0] '[' children[1] ']'
  kArray,      // '[' children… ']'
  kObject,     // '{' keys[i] ':' children[i] … '}'
  kNegate,     // '-' children[0]
  kPlus,       // '+' children[0]
  kNot,        // NOT children[0]
  kAnd,        // children[0] AND children[1] AND …
  kOr,
  kBinary,   // children[0] op children[1]
  kIn,       // children[0] [NOT] IN (children[1…]); `negated` for NOT IN / NIN
  kBetween,  // children[0] [NOT] BETWEEN children[1] AND children[2]
  kCall,     // name '(' children… ')'; `star` for f(*)
};

enum class BinaryOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kAdd, kSub, kMul, kDiv, kMod };
std::string_view BinaryOpText(BinaryOp op);  // "=", "!=", "<", …
inline bool IsComparison(BinaryOp op) {
  return op == BinaryOp::kEq || op == BinaryOp::kNe || op == BinaryOp::kLt || op == BinaryOp::kLe ||
         op == BinaryOp::kGt || op == BinaryOp::kGe;
}

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  BinaryOp op = BinaryOp::kEq;  // kBinary
  bool negated = false;         // kIn, kBetween
  bool star = false;            // kCall with a lone '*' argument: COUNT(*)
  bool distinct = false;        // kCall written f(DISTINCT …) (ExprOptions::sql_forms)
  uint16_t depth = 1;
  Position pos;  // where the expression starts (for kBinary and kMember: the operator)
  boost::json::value literal;     // kLiteral
  std::string name;               // kName, kMember, kCall (as written)
  std::vector<std::string> keys;  // kObject
  std::vector<ExprPtr> children;
};

// The expression as fully parenthesised text with canonical spelling, e.g.
// `((a.b = 1) AND (NOT (c IN (1, 'x'))))`: names as written (quoted with [[ ]] when they are
// not plain identifiers), keywords in upper case. Tests use it to check precedence.
std::string ToString(const Expr& e);

}  // namespace orrery::query
