// A bound expression: the parsed tree with its names resolved for evaluation. Property paths
// are precomputed step lists tied to a root (so evaluating `tags.location.region` is three
// hash lookups and no allocation), calls point at their Function, constant subtrees are
// folded into one constant, and an IN over constants holds a ready lookup set.
//
// Immutable after binding; evaluated concurrently from any number of threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <boost/json/value.hpp>

#include "query/ast.h"
#include "query/functions.h"

namespace orrery::query {

// Where a member was found last time: documents of one collection usually share their member
// order (the hub writes twins in one shape), so the first probe of a lookup tries that
// position before searching (boost::json searches small objects linearly). Shared by every
// evaluating thread; relaxed atomics, because a stale hint is only a slower lookup.
class MemberHint {
 public:
  MemberHint() = default;
  MemberHint(const MemberHint& other) : at_(other.get()) {}
  MemberHint& operator=(const MemberHint& other) {
    set(other.get());
    return *this;
  }
  uint32_t get() const { return at_.load(std::memory_order_relaxed); }
  void set(uint32_t at) const { at_.store(at, std::memory_order_relaxed); }

 private:
  mutable std::atomic<uint32_t> at_{0};
};

struct PathStep {
  std::string key;     // a member name, unless is_index
  uint64_t index = 0;  // an array position, when is_index
  bool is_index = false;
  MemberHint hint;  // key steps: see MemberHint

  bool operator==(const PathStep& o) const {
    return key == o.key && index == o.index && is_index == o.is_index;
  }
};

enum class BoundOp : uint8_t {
  kConst,      // constant
  kUndefined,  // the undefined constant
  kPath,       // steps from roots[root], or from args[0] when args is not empty
  kIndex,      // args[0][args[1]] with a computed index (a number or a member name)
  kArray,      // [args…]; undefined items are left out
  kObject,     // {keys[i]: args[i]…}; undefined members are left out
  kNegate,
  kPlus,
  kNot,
  kAnd,  // n-ary, three-valued
  kOr,
  kCompare,  // args[0] binary args[1], binary one of = != < <= > >=
  kArith,    // args[0] binary args[1], binary one of + - * / %
  kIn,       // args[0] [NOT] IN (args[1…]), or in `in_set` when the list was constant
  kBetween,  // args[0] [NOT] BETWEEN args[1] AND args[2]
  kCall,     // function(args…)
};

// The constant list of an IN, for membership tests without re-comparing every item.
// Not copyable: `strings` views `storage`.
struct InSet {
  InSet() = default;
  InSet(const InSet&) = delete;
  InSet& operator=(const InSet&) = delete;

  std::vector<std::string> storage;
  std::unordered_set<std::string_view> strings;
  std::vector<boost::json::value> others;  // numbers, booleans, null (compared by Equal)
};

struct BoundExpr {
  BoundOp op = BoundOp::kUndefined;
  BinaryOp binary = BinaryOp::kEq;
  bool negated = false;
  bool case_insensitive = false;  // kPath and kIndex: see BindOptions
  uint32_t root = 0;              // kPath without a base
  boost::json::value constant;    // kConst
  std::vector<PathStep> steps;    // kPath
  std::vector<std::string> keys;  // kObject
  const Function* function = nullptr;
  std::vector<BoundExpr> args;
  std::shared_ptr<const InSet> in_set;
  Position pos;

  bool is_constant() const { return op == BoundOp::kConst || op == BoundOp::kUndefined; }
};

// Structural equality (positions aside): GROUP BY matches projections with it.
bool SameExpr(const BoundExpr& a, const BoundExpr& b);

}  // namespace orrery::query
