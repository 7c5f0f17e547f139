// Binds routing conditions: which root each name reads, and the rules of IoT Hub's route
// queries that the foundation's binder does not know.
//
// Design note. The foundation binds paths to roots with precomputed steps; the routing engine
// evaluates against these roots:
//   - root 0, the body, for `$body.…` (members match exactly: edgeHub reads bodies with
//     JSON.NET's case-sensitive SelectTokens);
//   - root 1, the twin, for `$twin.…` (members match ignoring case: "the query isn't
//     case-sensitive");
//   - root 2 + i for property slot i: a message property, passed as a JSON string. A path's
//     leading names joined by dots are one property name (`a.b` is the property "a.b"), a
//     `$name` reads the system property before the application property "$name", and each
//     distinct name (ignoring case) gets one slot, so a message property is looked up once
//     per evaluation however often the condition names it. A step after a property name (a
//     string) is undefined, and folded to undefined here.
// Paths into the body and the twin yield primitives only (edgeHub's BodyQuery answers
// undefined for objects and arrays; the routing doc's `$body[0]` is undefined and its
// is_defined() works "when the value is a primitive type"). Where the difference can show
// (function arguments, IN, constructors, the condition's own value) the path is wrapped in a
// call that turns objects and arrays into undefined; comparisons, arithmetic and logic treat
// objects like undefined already and read the path directly.
#include <unordered_map>

#include "base/strings.h"
#include "query/binder.h"
#include "query/iothub/hub_query.h"  // HubLimits
#include "query/routing/plan.h"

namespace orrery::query {

// Azure documents no bound of its own for route conditions: those of its queries.
Limits RouteLimits() {
  return HubLimits();
}

const ExprOptions& RouteExprOptions() {
  static const ExprOptions options = [] {
    ExprOptions o;
    o.limits = RouteLimits();
    o.lex.hyphens_in_names = true;
    o.lex.quoted_names_anywhere = true;
    return o;
  }();
  return options;
}

namespace internal {
namespace {

Value PrimitiveOnly(std::span<Value> a) {
  if (a[0].defined() && (a[0]->is_object() || a[0]->is_array())) return {};
  return std::move(a[0]);
}
const Function kPrimitiveOnly{"PRIMITIVE", 1, 1, PrimitiveOnly};

// How a subexpression's value is used by its parent.
enum class Use {
  kValue,    // as it is: a function argument, an IN operand, the condition itself
  kOperand,  // by a comparison, arithmetic or logic, which treat objects as undefined
  kBase,     // as the base of a path step or an index
};

class RouteBinder {
 public:
  RoutePlan Bind(const Expr& condition) {
    BindOptions options;
    options.resolve_root = [this](std::span<const std::string> names) { return Resolve(names); };
    plan_.condition = BindOrThrow(condition, options);
    Finish(plan_.condition, Use::kValue);
    return std::move(plan_);
  }

 private:
  std::optional<RootBinding> Resolve(std::span<const std::string> names) {
    if (strings::IEquals(names[0], "$body")) return RootBinding{kBodyRoot, 1};
    if (strings::IEquals(names[0], "$twin")) return RootBinding{kTwinRoot, 1};
    std::string name = names[0];
    for (size_t i = 1; i < names.size(); ++i)
      (name += '.') += names[i];
    auto [it, inserted] = candidates_.try_emplace(strings::ToLower(name), candidates_.size());
    if (inserted) {
      RouteSlot slot;
      if (name.starts_with('$')) slot.system = FindSystemProperty(std::string_view(name).substr(1));
      slot.app = std::move(name);
      candidate_slots_.push_back(std::move(slot));
      final_index_.push_back(-1);
    }
    return RootBinding{kFirstSlotRoot + static_cast<uint32_t>(it->second), names.size()};
  }

  static void MakeUndefined(BoundExpr& e) {
    BoundExpr u;
    u.op = BoundOp::kUndefined;
    u.pos = e.pos;
    e = std::move(u);
  }

  static void Wrap(BoundExpr& e) {
    BoundExpr call;
    call.op = BoundOp::kCall;
    call.function = &kPrimitiveOnly;
    call.pos = e.pos;
    call.args.push_back(std::move(e));
    e = std::move(call);
  }

  // Whether `base` (a path base or an indexed value) reads the twin.
  static bool ReadsTwin(const BoundExpr* base) {
    while ((base->op == BoundOp::kPath && !base->args.empty()) || base->op == BoundOp::kIndex) {
      base = &base->args[0];
    }
    return base->op == BoundOp::kPath && base->root == kTwinRoot;
  }

  // A path from a root (no computed base). Returns false when it became a constant.
  bool FinishRooted(BoundExpr& e, Use use) {
    if (e.root == kBodyRoot) {
      // `$body` and `$body[0]` are not body queries.
      if (e.steps.empty() || e.steps[0].is_index) {
        MakeUndefined(e);
        return false;
      }
      e.case_insensitive = false;
      plan_.uses_body = true;
      return true;
    }
    if (e.root == kTwinRoot) {
      if (e.steps.empty() && use != Use::kBase) {  // the twin itself is an object
        MakeUndefined(e);
        return false;
      }
      e.case_insensitive = true;
      plan_.uses_twin = true;
      return true;
    }
    if (!e.steps.empty()) {  // into a string
      MakeUndefined(e);
      return false;
    }
    int& index = final_index_[e.root - kFirstSlotRoot];
    if (index < 0) {
      index = static_cast<int>(plan_.slots.size());
      plan_.slots.push_back(std::move(candidate_slots_[e.root - kFirstSlotRoot]));
    }
    e.root = kFirstSlotRoot + static_cast<uint32_t>(index);
    return false;  // a string: nothing to wrap
  }

  void Finish(BoundExpr& e, Use use) {
    switch (e.op) {
      case BoundOp::kPath:
        if (e.args.empty()) {
          if (!FinishRooted(e, use)) return;
        } else {
          Finish(e.args[0], Use::kBase);
          e.case_insensitive = ReadsTwin(&e.args[0]);
        }
        break;
      case BoundOp::kIndex:
        Finish(e.args[0], Use::kBase);
        Finish(e.args[1], Use::kValue);
        e.case_insensitive = ReadsTwin(&e.args[0]);
        break;
      case BoundOp::kCompare:
      case BoundOp::kArith:
      case BoundOp::kAnd:
      case BoundOp::kOr:
      case BoundOp::kNot:
      case BoundOp::kNegate:
      case BoundOp::kPlus:
      case BoundOp::kBetween:
        for (BoundExpr& a : e.args)
          Finish(a, Use::kOperand);
        return;
      default:  // calls, IN, constructors, constants
        for (BoundExpr& a : e.args)
          Finish(a, Use::kValue);
        return;
    }
    if (use == Use::kValue) Wrap(e);
  }

  RoutePlan plan_;
  // Every property name the binder resolved (lower case → candidate), and where each landed
  // in plan_.slots once a path kept it (-1: none did, e.g. `a[0]`, folded to undefined).
  std::unordered_map<std::string, size_t> candidates_;
  std::vector<RouteSlot> candidate_slots_;
  std::vector<int> final_index_;
};

}  // namespace

RoutePlan BindRouteCondition(const Expr& condition) {
  return RouteBinder().Bind(condition);
}

}  // namespace internal
}  // namespace orrery::query
