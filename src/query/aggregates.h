// Aggregate functions over a group of rows: COUNT, SUM, AVG, MIN, MAX. Shared by the
// dialects that group (IoT Hub's GROUP BY today; Stream Analytics windows later).
//
// Semantics (Cosmos DB's): every aggregate skips undefined inputs. COUNT counts the rest
// (COUNT() and COUNT(*) count rows: the caller feeds them a defined value per row). SUM and
// AVG are undefined if any input is not a number, and AVG of no input is undefined; SUM of no
// input is 0. SUM stays an exact int64 while the inputs are integers and it fits. MIN and MAX
// order primitive values by kind first (null < booleans < numbers < strings), then by value;
// arrays and objects are skipped; of no input they are undefined.
//
// Not thread-safe: an Accumulator belongs to one aggregation.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/json/value.hpp>

#include "query/value.h"

namespace orrery::query {

enum class AggregateKind : uint8_t { kCount, kSum, kAvg, kMin, kMax };

// By name, ignoring case; nullopt when `name` is not an aggregate.
std::optional<AggregateKind> FindAggregate(std::string_view name);
std::string_view AggregateName(AggregateKind k);  // "COUNT", …

class Accumulator {
 public:
  explicit Accumulator(AggregateKind kind) : kind_(kind) {}

  void Add(const Value& v);
  // The aggregate of what was added (undefined per the rules above).
  Value Result() const;

 private:
  AggregateKind kind_;
  uint64_t count_ = 0;
  bool exact_ = true;     // SUM/AVG: every input so far was an integer and the sum fits
  bool invalid_ = false;  // SUM/AVG: a non-number was added
  int64_t int_sum_ = 0;
  double sum_ = 0;
  boost::json::value best_;  // MIN/MAX: the extreme so far (meaningful when count_ > 0)
};

}  // namespace orrery::query
