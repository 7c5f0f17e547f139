#include "query/aggregates.h"

#include "base/strings.h"

namespace orrery::query {

std::optional<AggregateKind> FindAggregate(std::string_view name) {
  for (auto k : {AggregateKind::kCount, AggregateKind::kSum, AggregateKind::kAvg,
                 AggregateKind::kMin, AggregateKind::kMax}) {
    if (strings::IEquals(name, AggregateName(k))) return k;
  }
  return std::nullopt;
}

std::string_view AggregateName(AggregateKind k) {
  switch (k) {
    case AggregateKind::kCount:
      return "COUNT";
    case AggregateKind::kSum:
      return "SUM";
    case AggregateKind::kAvg:
      return "AVG";
    case AggregateKind::kMin:
      return "MIN";
    case AggregateKind::kMax:
      return "MAX";
  }
  return "?";
}

namespace {

// MIN/MAX order kinds first; -1 for kinds they skip.
int KindRank(Kind k) {
  switch (k) {
    case Kind::kNull:
      return 0;
    case Kind::kBool:
      return 1;
    case Kind::kNumber:
      return 2;
    case Kind::kString:
      return 3;
    default:
      return -1;
  }
}

}  // namespace

void Accumulator::Add(const Value& v) {
  if (!v.defined()) return;
  const json::value& x = v.get();
  switch (kind_) {
    case AggregateKind::kCount:
      ++count_;
      return;
    case AggregateKind::kSum:
    case AggregateKind::kAvg: {
      ++count_;
      if (!x.is_number()) {
        invalid_ = true;
        return;
      }
      auto i = x.is_double() ? std::nullopt : ToInt64(x);
      int64_t next;
      if (exact_ && i && !__builtin_add_overflow(int_sum_, *i, &next)) {
        int_sum_ = next;
        return;
      }
      if (exact_) {
        sum_ = static_cast<double>(int_sum_);
        exact_ = false;
      }
      sum_ += ToDouble(x);
      return;
    }
    case AggregateKind::kMin:
    case AggregateKind::kMax: {
      int rank = KindRank(KindOf(x));
      if (rank < 0) return;
      if (count_++ == 0) {
        best_ = x;
        return;
      }
      int best_rank = KindRank(KindOf(best_));
      int c = rank != best_rank ? rank - best_rank : Compare(x, best_).value_or(0);
      if (kind_ == AggregateKind::kMin ? c < 0 : c > 0) best_ = x;
      return;
    }
  }
}

Value Accumulator::Result() const {
  switch (kind_) {
    case AggregateKind::kCount:
      return MakeNumber(static_cast<int64_t>(count_));
    case AggregateKind::kSum:
      if (invalid_) return {};
      return exact_ ? MakeNumber(int_sum_) : MakeNumber(sum_);
    case AggregateKind::kAvg:
      if (invalid_ || count_ == 0) return {};
      return MakeNumber((exact_ ? static_cast<double>(int_sum_) : sum_) /
                        static_cast<double>(count_));
    case AggregateKind::kMin:
    case AggregateKind::kMax:
      if (count_ == 0) return {};
      return Value(best_);
  }
  return {};
}

}  // namespace orrery::query
