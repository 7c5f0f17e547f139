#include "query/binder.h"

#include <algorithm>

#include "query/evaluator.h"
#include "query/query_error.h"

namespace orrery::query {

namespace {

std::string Plural(size_t n, std::string_view what) {
  return std::to_string(n) + " " + std::string(what) + (n == 1 ? "" : "s");
}

// The operators that bind as their operands do, one to one.
BoundOp SimpleOp(ExprKind k) {
  switch (k) {
    case ExprKind::kArray:
      return BoundOp::kArray;
    case ExprKind::kObject:
      return BoundOp::kObject;
    case ExprKind::kNegate:
      return BoundOp::kNegate;
    case ExprKind::kPlus:
      return BoundOp::kPlus;
    case ExprKind::kNot:
      return BoundOp::kNot;
    case ExprKind::kAnd:
      return BoundOp::kAnd;
    default:
      return BoundOp::kOr;
  }
}

class Binder {
 public:
  explicit Binder(const BindOptions& options) : options_(options) {}

  BoundExpr Bind(const Expr& e) {
    BoundExpr b;
    b.pos = e.pos;
    switch (e.kind) {
      case ExprKind::kLiteral:
        b.op = BoundOp::kConst;
        b.constant = e.literal;
        return b;
      case ExprKind::kUndefined:
        b.op = BoundOp::kUndefined;
        return b;
      case ExprKind::kName:
      case ExprKind::kMember:
      case ExprKind::kIndex:
        b = BindPath(e);
        break;
      case ExprKind::kObject:
        b.keys = e.keys;
        [[fallthrough]];
      case ExprKind::kArray:
      case ExprKind::kNegate:
      case ExprKind::kPlus:
      case ExprKind::kNot:
      case ExprKind::kAnd:
      case ExprKind::kOr:
        b.op = SimpleOp(e.kind);
        BindChildren(e, b);
        break;
      case ExprKind::kBinary:
        b.op = IsComparison(e.op) ? BoundOp::kCompare : BoundOp::kArith;
        b.binary = e.op;
        BindChildren(e, b);
        break;
      case ExprKind::kIn:
        b.op = BoundOp::kIn;
        b.negated = e.negated;
        BindChildren(e, b);
        MakeInSet(b);
        break;
      case ExprKind::kBetween:
        b.op = BoundOp::kBetween;
        b.negated = e.negated;
        BindChildren(e, b);
        break;
      case ExprKind::kCall:
        BindCall(e, b);
        break;
    }
    Fold(b);
    return b;
  }

 private:
  void BindChildren(const Expr& e, BoundExpr& b) {
    b.args.reserve(e.children.size());
    for (const auto& c : e.children)
      b.args.push_back(Bind(*c));
  }

  void BindCall(const Expr& e, BoundExpr& b) {
    const Function* f = options_.functions->Find(e.name);
    if (f == nullptr) {
      throw QueryError(Errc::kUnknownFunction, e.pos, "unknown function '" + e.name + "'");
    }
    if (e.star) {
      throw QueryError(Errc::kInvalidQuery, e.pos, "'*' is only allowed in COUNT(*)");
    }
    size_t n = e.children.size();
    if (n < f->min_args || (f->max_args != FunctionRegistry::kVariadic && n > f->max_args)) {
      std::string takes;
      if (f->max_args == FunctionRegistry::kVariadic) {
        takes = "at least " + Plural(f->min_args, "argument");
      } else if (f->min_args == f->max_args) {
        takes = Plural(f->min_args, "argument");
      } else {
        takes = std::to_string(f->min_args) + " to " + Plural(f->max_args, "argument");
      }
      throw QueryError(Errc::kInvalidQuery, e.pos,
                       f->name + " takes " + takes + ", not " + std::to_string(n));
    }
    b.op = BoundOp::kCall;
    b.function = f;
    BindChildren(e, b);
  }

  // A constant index usable as a path step: a string, or a non-negative integer.
  static std::optional<PathStep> ConstantStep(const Expr& index) {
    if (index.kind != ExprKind::kLiteral) return std::nullopt;
    PathStep step;
    if (index.literal.is_string()) {
      step.key = index.literal.get_string();
      return step;
    }
    auto i = ToInt64(index.literal);
    if (!i || *i < 0) return std::nullopt;
    step.is_index = true;
    step.index = static_cast<uint64_t>(*i);
    return step;
  }

  BoundExpr BindPath(const Expr& e) {
    std::vector<PathStep> steps;  // innermost last, reversed below
    const Expr* cur = &e;
    while (true) {
      if (cur->kind == ExprKind::kMember) {
        steps.push_back(PathStep{cur->name});
      } else if (cur->kind == ExprKind::kIndex) {
        auto step = ConstantStep(*cur->children[1]);
        if (!step) break;
        steps.push_back(std::move(*step));
      } else {
        break;
      }
      cur = cur->children[0].get();
    }
    BoundExpr b;
    b.pos = e.pos;
    b.case_insensitive = options_.case_insensitive_keys;
    if (cur == &e && e.kind == ExprKind::kIndex) {  // a computed index: a[b]
      b.op = BoundOp::kIndex;
      BindChildren(e, b);
      return b;
    }
    b.op = BoundOp::kPath;
    if (cur->kind == ExprKind::kName) steps.push_back(PathStep{cur->name});
    std::reverse(steps.begin(), steps.end());
    if (cur->kind != ExprKind::kName) {
      b.args.push_back(Bind(*cur));
      b.steps = std::move(steps);
      return b;
    }
    if (options_.resolve_root) {
      size_t leading = 0;
      while (leading < steps.size() && !steps[leading].is_index)
        ++leading;
      std::vector<std::string> names;
      names.reserve(leading);
      for (size_t i = 0; i < leading; ++i)
        names.push_back(steps[i].key);
      auto binding = options_.resolve_root(names);
      if (!binding) {
        throw QueryError(Errc::kInvalidQuery, cur->pos, "unknown name '" + cur->name + "'");
      }
      b.root = binding->root;
      steps.erase(steps.begin(),
                  steps.begin() + static_cast<ptrdiff_t>(std::min(binding->skip, leading)));
    }
    b.steps = std::move(steps);
    return b;
  }

  static void MakeInSet(BoundExpr& b) {
    bool constant = std::all_of(b.args.begin() + 1, b.args.end(),
                                [](const BoundExpr& a) { return a.is_constant(); });
    if (!constant) return;
    auto set = std::make_shared<InSet>();
    for (size_t i = 1; i < b.args.size(); ++i) {
      if (b.args[i].op == BoundOp::kConst && b.args[i].constant.is_string()) {
        set->storage.emplace_back(b.args[i].constant.get_string());
      } else if (b.args[i].op == BoundOp::kConst) {
        set->others.push_back(b.args[i].constant);  // undefined items never match: dropped
      }
    }
    for (const std::string& s : set->storage)
      set->strings.insert(s);
    b.args.resize(1);
    b.in_set = std::move(set);
  }

  // Replaces a subtree whose inputs are all constants by its value. Functions are pure, and
  // nothing but a rooted path reads the documents.
  static void Fold(BoundExpr& b) {
    if (b.is_constant() || (b.op == BoundOp::kPath && b.args.empty())) return;
    if (!std::all_of(b.args.begin(), b.args.end(),
                     [](const BoundExpr& a) { return a.is_constant(); })) {
      return;
    }
    Value v = Evaluate(b, {});
    BoundExpr folded;
    folded.pos = b.pos;
    if (v.defined()) {
      folded.op = BoundOp::kConst;
      folded.constant = std::move(v).ToJson();  // a copy when v borrows from `b`
    } else {
      folded.op = BoundOp::kUndefined;
    }
    b = std::move(folded);
  }

  const BindOptions& options_;
};

}  // namespace

BoundExpr BindOrThrow(const Expr& e, const BindOptions& options) {
  return Binder(options).Bind(e);
}

Result<BoundExpr> Bind(const Expr& e, const BindOptions& options) {
  return Catching([&] { return BindOrThrow(e, options); });
}

bool SameExpr(const BoundExpr& a, const BoundExpr& b) {
  if (a.op != b.op || a.binary != b.binary || a.negated != b.negated || a.root != b.root ||
      a.steps != b.steps || a.keys != b.keys || a.function != b.function ||
      a.args.size() != b.args.size() || a.constant != b.constant ||
      (a.in_set == nullptr) != (b.in_set == nullptr)) {
    return false;
  }
  if (a.in_set &&
      (a.in_set->strings != b.in_set->strings || a.in_set->others != b.in_set->others)) {
    return false;
  }
  for (size_t i = 0; i < a.args.size(); ++i) {
    if (!SameExpr(a.args[i], b.args[i])) return false;
  }
  return true;
}

}  // namespace orrery::query
