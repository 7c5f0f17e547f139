#include "query/evaluator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "base/strings.h"

namespace orrery::query {

const boost::json::key_value_pair* FindMember(const boost::json::object& o, std::string_view key,
                                              bool case_insensitive, const MemberHint* hint) {
  if (hint != nullptr && hint->get() < o.size()) {
    const auto& kv = o.begin()[hint->get()];
    if (std::string_view(kv.key()) == key) return &kv;
    // The hinted member matches but for case: it is the answer unless an exact match exists.
    if (case_insensitive && strings::IEquals(kv.key(), key) && !o.contains(key)) return &kv;
  }
  auto it = o.find(key);
  if (it == o.end() && case_insensitive) {
    it = std::find_if(o.begin(), o.end(),
                      [&](const auto& kv) { return strings::IEquals(kv.key(), key); });
  }
  if (it == o.end()) return nullptr;
  if (hint != nullptr) hint->set(static_cast<uint32_t>(it - o.begin()));
  return &*it;
}

namespace {

const json::value* StepInto(const json::value& cur, const PathStep& step, bool case_insensitive,
                            std::string_view* last_key) {
  if (step.is_index) {
    if (!cur.is_array() || step.index >= cur.get_array().size()) return nullptr;
    return &cur.get_array()[step.index];
  }
  if (!cur.is_object()) return nullptr;
  const auto* kv = FindMember(cur.get_object(), step.key, case_insensitive, &step.hint);
  if (kv == nullptr) return nullptr;
  if (last_key != nullptr) *last_key = kv->key();
  return &kv->value();
}

// What `base` holds at `at` (a pointer into base's JSON): borrowed when base is, otherwise
// a copy, because an owned base dies with this evaluation step.
Value Within(const Value& base, const json::value* at) {
  if (at == nullptr) return {};
  if (base.borrowed()) return Value::Borrow(*at);
  return Value(json::value(*at));
}

Value EvalPath(const BoundExpr& e, std::span<const Root> roots, std::string_view* last_key) {
  const json::value* cur = nullptr;
  size_t first = 0;
  Value base;
  if (!e.args.empty()) {
    base = Evaluate(e.args[0], roots);
    if (!base.defined()) return {};
    cur = &base.get();
  } else {
    if (e.root >= roots.size()) return {};
    const Root& root = roots[e.root];
    if (root.object != nullptr) {
      if (e.steps.empty()) return Value(json::value(*root.object));
      if (e.steps[0].is_index) return {};
      const auto* kv =
          FindMember(*root.object, e.steps[0].key, e.case_insensitive, &e.steps[0].hint);
      if (kv == nullptr) return {};
      if (last_key != nullptr) *last_key = kv->key();
      cur = &kv->value();
      first = 1;
    } else if (root.value != nullptr) {
      cur = root.value;
    } else {
      return {};
    }
    base = Value::Borrow(*cur);
  }
  for (size_t i = first; i < e.steps.size() && cur != nullptr; ++i) {
    cur = StepInto(*cur, e.steps[i], e.case_insensitive, last_key);
  }
  return Within(base, cur);
}

Value EvalIndex(const BoundExpr& e, std::span<const Root> roots) {
  Value base = Evaluate(e.args[0], roots);
  Value index = Evaluate(e.args[1], roots);
  if (!base.defined() || !index.defined()) return {};
  PathStep step;
  if (index->is_string()) {
    step.key = index->get_string();
  } else if (auto i = ToInt64(index.get()); i && *i >= 0) {
    step.is_index = true;
    step.index = static_cast<uint64_t>(*i);
  } else {
    return {};
  }
  return Within(base, StepInto(base.get(), step, e.case_insensitive, nullptr));
}

// Three-valued logic over Values: nullopt is undefined.
std::optional<bool> Truth(const Value& v) {
  if (!v.defined() || !v->is_bool()) return std::nullopt;
  return v->get_bool();
}
Value FromTruth(std::optional<bool> t) {
  return t ? Value::Bool(*t) : Value();
}

Value EvalLogic(const BoundExpr& e, std::span<const Root> roots) {
  bool is_and = e.op == BoundOp::kAnd;
  bool unknown = false;
  for (const BoundExpr& arg : e.args) {
    auto t = Truth(Evaluate(arg, roots));
    if (!t) {
      unknown = true;
    } else if (*t != is_and) {
      return Value::Bool(!is_and);  // false decides an AND, true an OR
    }
  }
  return unknown ? Value() : Value::Bool(is_and);
}

bool InSetContains(const InSet& set, const json::value& v) {
  if (v.is_string()) return set.strings.count(std::string_view(v.get_string())) != 0;
  for (const json::value& item : set.others) {
    if (Equal(v, item).value_or(false)) return true;
  }
  return false;
}

Value EvalIn(const BoundExpr& e, std::span<const Root> roots) {
  Value needle = Evaluate(e.args[0], roots);
  if (!needle.defined()) return {};
  bool found = false;
  if (e.in_set) {
    found = InSetContains(*e.in_set, needle.get());
  } else {
    for (size_t i = 1; i < e.args.size() && !found; ++i) {
      Value item = Evaluate(e.args[i], roots);
      found = item.defined() && Equal(needle.get(), item.get()).value_or(false);
    }
  }
  return Value::Bool(found != e.negated);
}

Value EvalBetween(const BoundExpr& e, std::span<const Root> roots) {
  Value x = Evaluate(e.args[0], roots);
  Value lo = Evaluate(e.args[1], roots);
  Value hi = Evaluate(e.args[2], roots);
  auto ge = Truth(CompareValues(BinaryOp::kGe, x, lo));
  auto le = Truth(CompareValues(BinaryOp::kLe, x, hi));
  std::optional<bool> both;
  if ((ge && !*ge) || (le && !*le)) {
    both = false;
  } else if (ge && le) {
    both = true;
  }
  if (both && e.negated) both = !*both;
  return FromTruth(both);
}

Value EvalCall(const BoundExpr& e, std::span<const Root> roots) {
  constexpr size_t kInline = 4;
  std::array<Value, kInline> small;
  std::vector<Value> large;
  std::span<Value> args;
  if (e.args.size() <= kInline) {
    args = std::span<Value>(small.data(), e.args.size());
  } else {
    large.resize(e.args.size());
    args = large;
  }
  for (size_t i = 0; i < e.args.size(); ++i)
    args[i] = Evaluate(e.args[i], roots);
  return e.function->impl(args);
}

Value Negate(const Value& v) {
  if (!v.defined() || !v->is_number()) return {};
  if (v->is_int64() && v->get_int64() != INT64_MIN) return MakeNumber(-v->get_int64());
  return MakeNumber(-ToDouble(v.get()));
}

Value EvalArray(const BoundExpr& e, std::span<const Root> roots) {
  json::array out;
  out.reserve(e.args.size());
  for (const BoundExpr& arg : e.args) {
    Value v = Evaluate(arg, roots);
    if (v.defined()) out.push_back(std::move(v).ToJson());
  }
  return Value(json::value(std::move(out)));
}

Value EvalObject(const BoundExpr& e, std::span<const Root> roots) {
  json::object out;
  for (size_t i = 0; i < e.args.size(); ++i) {
    Value v = Evaluate(e.args[i], roots);
    if (v.defined()) out[e.keys[i]] = std::move(v).ToJson();
  }
  return Value(json::value(std::move(out)));
}

std::optional<int64_t> ExactInt(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

std::optional<Value> IntArithmetic(BinaryOp op, int64_t x, int64_t y) {
  int64_t r;
  switch (op) {
    case BinaryOp::kAdd:
      if (__builtin_add_overflow(x, y, &r)) return std::nullopt;
      return MakeNumber(r);
    case BinaryOp::kSub:
      if (__builtin_sub_overflow(x, y, &r)) return std::nullopt;
      return MakeNumber(r);
    case BinaryOp::kMul:
      if (__builtin_mul_overflow(x, y, &r)) return std::nullopt;
      return MakeNumber(r);
    case BinaryOp::kDiv:
      if (y == 0) return Value();
      if (y == -1 && x == INT64_MIN) return std::nullopt;
      if (x % y == 0) return MakeNumber(x / y);
      return std::nullopt;
    case BinaryOp::kMod:
      if (y == 0) return Value();
      if (y == -1) return MakeNumber(int64_t{0});
      return MakeNumber(x % y);
    default:
      return Value();
  }
}

}  // namespace

Value CompareValues(BinaryOp op, const Value& a, const Value& b) {
  if (!a.defined() || !b.defined()) return {};
  if (op == BinaryOp::kEq || op == BinaryOp::kNe) {
    auto eq = Equal(a.get(), b.get());
    if (!eq) return {};
    return Value::Bool(*eq == (op == BinaryOp::kEq));
  }
  auto c = Compare(a.get(), b.get());
  if (!c) return {};
  switch (op) {
    case BinaryOp::kLt:
      return Value::Bool(*c < 0);
    case BinaryOp::kLe:
      return Value::Bool(*c <= 0);
    case BinaryOp::kGt:
      return Value::Bool(*c > 0);
    case BinaryOp::kGe:
      return Value::Bool(*c >= 0);
    default:
      return {};
  }
}

Value Arithmetic(BinaryOp op, const Value& a, const Value& b) {
  if (!a.defined() || !b.defined() || !a->is_number() || !b->is_number()) return {};
  auto x = ExactInt(a.get());
  auto y = ExactInt(b.get());
  if (x && y) {
    if (auto r = IntArithmetic(op, *x, *y)) return std::move(*r);
  }
  double p = ToDouble(a.get()), q = ToDouble(b.get());
  switch (op) {
    case BinaryOp::kAdd:
      return MakeNumber(p + q);
    case BinaryOp::kSub:
      return MakeNumber(p - q);
    case BinaryOp::kMul:
      return MakeNumber(p * q);
    case BinaryOp::kDiv:
      if (q == 0) return {};
      return MakeNumber(p / q);
    case BinaryOp::kMod:
      if (q == 0) return {};
      return MakeNumber(std::fmod(p, q));
    default:
      return {};
  }
}

Value EvaluateNamed(const BoundExpr& e, std::span<const Root> roots, std::string_view* last_key) {
  if (e.op == BoundOp::kPath) return EvalPath(e, roots, last_key);
  return Evaluate(e, roots);
}

Value Evaluate(const BoundExpr& e, std::span<const Root> roots) {
  switch (e.op) {
    case BoundOp::kConst:
      return Value::Borrow(e.constant);
    case BoundOp::kUndefined:
      return {};
    case BoundOp::kPath:
      return EvalPath(e, roots, nullptr);
    case BoundOp::kIndex:
      return EvalIndex(e, roots);
    case BoundOp::kArray:
      return EvalArray(e, roots);
    case BoundOp::kObject:
      return EvalObject(e, roots);
    case BoundOp::kNegate:
      return Negate(Evaluate(e.args[0], roots));
    case BoundOp::kPlus: {
      Value v = Evaluate(e.args[0], roots);
      if (!v.defined() || !v->is_number()) return {};
      return v;
    }
    case BoundOp::kNot: {
      auto t = Truth(Evaluate(e.args[0], roots));
      if (!t) return {};
      return Value::Bool(!*t);
    }
    case BoundOp::kAnd:
    case BoundOp::kOr:
      return EvalLogic(e, roots);
    case BoundOp::kCompare:
      return CompareValues(e.binary, Evaluate(e.args[0], roots), Evaluate(e.args[1], roots));
    case BoundOp::kArith:
      return Arithmetic(e.binary, Evaluate(e.args[0], roots), Evaluate(e.args[1], roots));
    case BoundOp::kIn:
      return EvalIn(e, roots);
    case BoundOp::kBetween:
      return EvalBetween(e, roots);
    case BoundOp::kCall:
      return EvalCall(e, roots);
  }
  return {};
}

}  // namespace orrery::query
