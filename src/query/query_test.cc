// Unit tests of the query foundation's programming interface: what the data-driven cases
// (testdata_test.cc) cannot show — ownership of values, custom function registries and
// roots, constant folding, the HubQuery object model, threads, and hostile input.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "query/binder.h"
#include "query/errc.h"
#include "query/evaluator.h"
#include "query/functions.h"
#include "query/iothub/hub_query.h"
#include "query/parser.h"
#include "query/value.h"

namespace orrery::query {
namespace {

using ::testing::HasSubstr;

json::object Obj(std::string_view text) {
  return json::parse(text).as_object();
}

// ---- Value ----

TEST(ValueTest, UndefinedBorrowedAndOwned) {
  Value undefined;
  EXPECT_FALSE(undefined.defined());
  EXPECT_EQ(undefined.if_defined(), nullptr);
  EXPECT_EQ(KindOf(undefined), Kind::kUndefined);
  EXPECT_FALSE(IsTrue(undefined));

  json::value doc = json::parse(R"({"a":[1,2]})");
  Value borrowed = Value::Borrow(doc);
  EXPECT_TRUE(borrowed.borrowed());
  EXPECT_EQ(&borrowed.get(), &doc);  // no copy
  Value copy = borrowed;
  EXPECT_EQ(&copy.get(), &doc);

  Value owned(json::value("text"));
  EXPECT_FALSE(owned.borrowed());
  json::value out = std::move(owned).ToJson();
  EXPECT_EQ(out, json::value("text"));
  EXPECT_EQ(borrowed.ToJson(), doc);  // a copy of a borrowed value
}

TEST(ValueTest, BooleansBorrowConstants) {
  EXPECT_TRUE(Value::Bool(true).borrowed());  // nothing to build or free
  EXPECT_EQ(&Value::Bool(false).get(), &Value::Bool(false).get());
  EXPECT_EQ(Value::Bool(false).ToJson(), json::value(false));
}

TEST(ValueTest, OnlyTheBooleanTrueIsTrue) {
  EXPECT_TRUE(IsTrue(Value::Bool(true)));
  EXPECT_FALSE(IsTrue(Value::Bool(false)));
  EXPECT_FALSE(IsTrue(Value(json::value(1))));
  EXPECT_FALSE(IsTrue(Value::String("true")));
  EXPECT_FALSE(IsTrue(Value(json::value(nullptr))));
}

TEST(ValueTest, MakeNumberNormalisesIntegralDoubles) {
  EXPECT_TRUE(MakeNumber(2.0)->is_int64());
  EXPECT_EQ(MakeNumber(-3.0)->get_int64(), -3);
  EXPECT_TRUE(MakeNumber(0.5)->is_double());
  EXPECT_TRUE(MakeNumber(9007199254740992.0)->is_int64());    // 2^53
  EXPECT_TRUE(MakeNumber(18014398509481984.0)->is_double());  // 2^54: not exact as int
  EXPECT_FALSE(MakeNumber(std::numeric_limits<double>::infinity()).defined());
  EXPECT_FALSE(MakeNumber(std::nan("")).defined());
}

TEST(ValueTest, NumbersCompareExactlyAcrossRepresentations) {
  json::value i(int64_t{9007199254740993});  // 2^53 + 1: no double equals it
  json::value d(9007199254740992.0);
  EXPECT_EQ(Compare(i, d), 1);
  EXPECT_EQ(Equal(i, d), false);
  // Within ±2^53 integers and doubles compare as doubles (the fast path), exactly too.
  EXPECT_EQ(Compare(json::value(30), json::value(35.5)), -1);
  EXPECT_EQ(Compare(json::value(-2.5), json::value(int64_t{-3})), 1);
  EXPECT_EQ(Compare(json::value(int64_t{9007199254740992}), d), 0);
  EXPECT_EQ(Compare(json::value(0.0), json::value(-0.0)), 0);
  EXPECT_EQ(Compare(json::value(uint64_t{18446744073709551615u}), json::value(int64_t{-1})), 1);
  EXPECT_EQ(Equal(json::value(1), json::value(1.0)), true);
  EXPECT_EQ(Equal(json::value("1"), json::value(1)), std::nullopt);
  EXPECT_EQ(Compare(json::parse("[1]"), json::parse("[1]")), std::nullopt);
  EXPECT_EQ(ToInt64(json::value(3.0)), 3);
  EXPECT_EQ(ToInt64(json::value(3.5)), std::nullopt);
  EXPECT_EQ(ToInt64(json::value(1e300)), std::nullopt);
}

// ---- functions ----

TEST(FunctionRegistryTest, BuiltinsAreCaseInsensitiveWithAliases) {
  const auto& builtins = FunctionRegistry::Builtins();
  ASSERT_NE(builtins.Find("is_defined"), nullptr);
  EXPECT_EQ(builtins.Find("Is_Defined"), builtins.Find("IS_DEFINED"));
  ASSERT_NE(builtins.Find("starts_with"), nullptr);
  EXPECT_EQ(builtins.Find("starts_with")->impl, builtins.Find("STARTSWITH")->impl);
  EXPECT_EQ(builtins.Find("nope"), nullptr);
  auto names = builtins.Names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* documented :
       {"IS_DEFINED",  "IS_NULL",      "IS_BOOL",   "IS_NUMBER", "IS_STRING", "IS_OBJECT",
        "IS_ARRAY",    "IS_PRIMITIVE", "AS_NUMBER", "ABS",       "CEILING",   "FLOOR",
        "SIGN",        "SQUARE",       "SQRT",      "POWER",     "EXP",       "CONCAT",
        "LENGTH",      "LOWER",        "UPPER",     "SUBSTRING", "INDEX_OF",  "STARTSWITH",
        "STARTS_WITH", "ENDSWITH",     "ENDS_WITH", "CONTAINS"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), documented), names.end()) << documented;
  }
}

Value Twice(std::span<Value> a) {
  if (!a[0].defined() || !a[0]->is_number()) return {};
  return MakeNumber(ToDouble(a[0].get()) * 2);
}

TEST(FunctionRegistryTest, DialectsExtendAndTrimACopy) {
  FunctionRegistry mine = FunctionRegistry::Builtins();
  mine.Add("twice", 1, 1, Twice);
  mine.AddAlias("double_it", "TWICE");
  mine.Remove("UPPER");
  BindOptions options;
  options.functions = &mine;

  auto e = ParseExpression("double_it(x) + TWICE(1)", {});
  ASSERT_TRUE(e);
  auto b = Bind(**e, options);
  ASSERT_TRUE(b) << b.error().message();
  json::object doc = Obj(R"({"x": 5})");
  Root root(doc);
  EXPECT_EQ(Evaluate(*b, {&root, 1}).get(), json::value(12));

  auto upper = ParseExpression("UPPER('a')", {});
  auto unbound = Bind(**upper, options);
  ASSERT_FALSE(unbound);
  EXPECT_TRUE(unbound.error().Is(Errc::kUnknownFunction));
  EXPECT_NE(FunctionRegistry::Builtins().Find("UPPER"), nullptr);  // the builtins are untouched
}

// ---- binder and evaluator ----

// A routing-style resolver: $body and $twin select roots 1 and 2, `$x` is unknown, and
// anything else reads root 0 (the message properties).
BindOptions RoutingLike() {
  BindOptions o;
  o.resolve_root = [](std::span<const std::string> names) -> std::optional<RootBinding> {
    if (names[0] == "$body") return RootBinding{1, 1};
    if (names[0] == "$twin") return RootBinding{2, 1};
    if (names[0] == "$x") return std::nullopt;
    return RootBinding{0, 0};
  };
  return o;
}

// ExprOptions::sql_forms (the Stream Analytics dialect): T-SQL forms desugared into calls.
TEST(ParserTest, SqlFormsBecomeCalls) {
  ExprOptions o;
  o.sql_forms = true;
  auto show = [&](std::string_view text) {
    auto e = ParseExpression(text, o);
    return e ? ToString(**e) : "error: " + e.error().message();
  };
  EXPECT_EQ(show("CASE WHEN a THEN 1 ELSE 2 END"), "$CASE(a, 1, 2)");
  EXPECT_EQ(show("case x when 1 then 'a' end"), "$CASE_VALUE(x, 1, 'a', null)");
  EXPECT_EQ(show("CAST(a AS NVARCHAR(MAX))"), "CAST(a, 'nvarchar(max)')");
  EXPECT_EQ(show("try_cast(a as bigint)"), "TRY_CAST(a, 'bigint')");
  EXPECT_EQ(show("a NOT LIKE 'x%' AND b IS NOT NULL"),
            "((NOT $LIKE(a, 'x%')) AND (NOT $IS_NULL(b)))");
  EXPECT_EQ(show("System.Timestamp()"), "System.Timestamp()");
  auto d = ParseExpression("COUNT(DISTINCT x)", o);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE((*d)->distinct);
  EXPECT_EQ(show("CASE WHEN a THEN 1"),
            "error: line 1, column 19: expected WHEN, ELSE or END, found end of input");
  // Without the option these stay what they were: names and errors.
  EXPECT_FALSE(ParseExpression("CAST(a AS bigint)", {}).has_value());
  EXPECT_FALSE(ParseExpression("a LIKE 'x'", {}).has_value());
}

// f(…) OVER (…) under sql_forms: the clauses become calls, in the order written.
TEST(ParserTest, OverClausesBecomeCalls) {
  ExprOptions o;
  o.sql_forms = true;
  auto show = [&](std::string_view text) {
    auto e = ParseExpression(text, o);
    return e ? ToString(**e) : "error: " + e.error().message();
  };
  EXPECT_EQ(show("LAG(x, 2) OVER (PARTITION BY a, b.c LIMIT DURATION(hour, 1) WHEN x > 0)"),
            "$OVER(LAG(x, 2), $PARTITION_BY(a, b.c), $LIMIT_DURATION(hour, 1), "
            "$WHEN((x > 0)))");
  EXPECT_EQ(show("TopOne() OVER (ORDER BY t DESC, v)"),
            "$OVER(TopOne(), $ORDER_BY(t, 'DESC', v, 'ASC'))");
  EXPECT_EQ(show("COUNT(*) over (limit duration(second, 5)) + 1"),
            "($OVER(COUNT(*), $LIMIT_DURATION(second, 5)) + 1)");
  EXPECT_EQ(show("f(x) OVER ()"), "$OVER(f(x))");
  EXPECT_EQ(show("LAG(x) OVER (WHEN a WHEN b)"),
            "error: line 1, column 21: OVER has two WHEN clauses");
  EXPECT_EQ(show("LAG(x) OVER (ROWS 1)"),
            "error: line 1, column 14: expected PARTITION BY, ORDER BY, LIMIT DURATION, WHEN or "
            "')', found 'ROWS'");
  // OVER without '(' is not a clause (the statement parser decides), nor after a name.
  EXPECT_EQ(show("a"), "a");
  EXPECT_FALSE(ParseExpression("f(x) OVER y", o).has_value());
  // Without the option OVER ends the expression.
  EXPECT_FALSE(ParseExpression("f(x) OVER (PARTITION BY a)", {}).has_value());
}

// The bitwise operators need the lexer's tokens and sql_forms; & | ^ bind as + and -.
TEST(ParserTest, BitwiseOperatorsBecomeCalls) {
  ExprOptions o;
  o.sql_forms = true;
  o.lex.bitwise_operators = true;
  auto show = [&](std::string_view text) {
    auto e = ParseExpression(text, o);
    return e ? ToString(**e) : "error: " + e.error().message();
  };
  EXPECT_EQ(show("a & 4 = 4"), "($BITAND(a, 4) = 4)");
  EXPECT_EQ(show("a | b ^ c + 1"), "($BITXOR($BITOR(a, b), c) + 1)");
  EXPECT_EQ(show("~a * 2"), "($BITNOT(a) * 2)");
  EXPECT_EQ(show("a & b * c"), "$BITAND(a, (b * c))");
  // Without the lexer option the characters stay unexpected.
  auto plain = ParseExpression("a & b", {});
  ASSERT_FALSE(plain.has_value());
  EXPECT_EQ(plain.error().message(), "line 1, column 3: unexpected character '&'");
}

TEST(BinderTest, RootsChosenByTheDialect) {
  json::object props = Obj(R"({"level": "hot"})");
  json::value body = json::parse(R"({"Weather": {"Temperature": 50, "H": [20, 30]}})");
  json::object twin = Obj(R"({"tags": {"floor": 1}})");
  std::vector<Root> roots = {Root(props), Root(body), Root(twin)};

  auto e = ParseExpression(
      "level = 'hot' AND $body.Weather.Temperature = 50 AND $body.Weather.H[1] = 30 AND "
      "$twin.tags.floor = 1",
      {});
  ASSERT_TRUE(e);
  auto b = Bind(**e, RoutingLike());
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_TRUE(IsTrue(Evaluate(*b, roots)));
  // A root that is a whole JSON value, read by a path with no steps left.
  auto whole = Bind(**ParseExpression("$body", {}), RoutingLike());
  ASSERT_TRUE(whole);
  EXPECT_EQ(&Evaluate(*whole, roots).get(), &body);
  // Fewer roots than the expression reads: undefined, not a crash.
  EXPECT_FALSE(Evaluate(*b, {roots.data(), 1}).defined());

  auto unknown = Bind(**ParseExpression("a = 1 OR $x.y = 2", {}), RoutingLike());
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(unknown.error().Is(Errc::kInvalidQuery));
  EXPECT_EQ(unknown.error().message(), "line 1, column 10: unknown name '$x'");
}

TEST(BinderTest, FoldsConstantsAndPrecomputesPaths) {
  auto folded = Bind(**ParseExpression("1 + 2 * 3 = LENGTH(CONCAT('ab', 'cde')) + 2", {}), {});
  ASSERT_TRUE(folded);
  EXPECT_EQ(folded->op, BoundOp::kConst);
  EXPECT_EQ(folded->constant, json::value(true));

  auto path = Bind(**ParseExpression("a.b[2]['c d']", {}), {});
  ASSERT_TRUE(path);
  ASSERT_EQ(path->op, BoundOp::kPath);
  ASSERT_EQ(path->steps.size(), 4u);
  EXPECT_EQ(path->steps[0].key, "a");
  EXPECT_TRUE(path->steps[2].is_index);
  EXPECT_EQ(path->steps[2].index, 2u);
  EXPECT_EQ(path->steps[3].key, "c d");

  auto in = Bind(**ParseExpression("x IN ('a', 'b', 1, undefined)", {}), {});
  ASSERT_TRUE(in);
  ASSERT_NE(in->in_set, nullptr);
  EXPECT_EQ(in->args.size(), 1u);
  EXPECT_EQ(in->in_set->strings.size(), 2u);
  EXPECT_EQ(in->in_set->others.size(), 1u);

  auto a = Bind(**ParseExpression("tags.x + 1", {}), {});
  auto b = Bind(**ParseExpression("(tags.x) + 1", {}), {});
  auto c = Bind(**ParseExpression("tags.y + 1", {}), {});
  EXPECT_TRUE(SameExpr(*a, *b));
  EXPECT_FALSE(SameExpr(*a, *c));
}

TEST(EvaluatorTest, PathsBorrowFromTheDocumentAndReportItsSpelling) {
  json::object doc = Obj(R"({"Props": {"Temp": 21}})");
  BindOptions o;
  o.case_insensitive_keys = true;
  auto b = Bind(**ParseExpression("props.temp", {}), o);
  ASSERT_TRUE(b);
  Root root(doc);
  std::string_view key;
  Value v = EvaluateNamed(*b, {&root, 1}, &key);
  ASSERT_TRUE(v.borrowed());
  EXPECT_EQ(&v.get(), &doc.at("Props").at("Temp"));
  EXPECT_EQ(key, "Temp");

  BindOptions exact;
  auto strict = Bind(**ParseExpression("props.temp", {}), exact);
  EXPECT_FALSE(Evaluate(*strict, {&root, 1}).defined());
}

TEST(EvaluatorTest, ValuesBuiltFromOwnedPartsAreCopiesNotDanglingViews) {
  auto b = Bind(**ParseExpression("{'a': CONCAT(x, 'y')}.a", {}), {});
  ASSERT_TRUE(b);
  json::object doc = Obj(R"({"x": "x"})");
  Root root(doc);
  Value v = Evaluate(*b, {&root, 1});
  ASSERT_TRUE(v.defined());
  EXPECT_FALSE(v.borrowed());
  EXPECT_EQ(v.get(), json::value("xy"));
}

// ---- the IoT Hub dialect's object model ----

std::vector<json::object> Fleet(int n) {
  std::vector<json::object> docs;
  for (int i = 0; i < n; ++i) {
    docs.push_back(Obj(R"({"deviceId": "dev)" + std::to_string(i) + R"(", "tags": {"n": )" +
                       std::to_string(i % 10) + R"(}, "properties": {"reported": {"t": )" +
                       std::to_string(i) + "}}}"));
  }
  return docs;
}

TEST(HubQueryTest, Accessors) {
  auto q = ParseHubQuery("select top 5 * from devices.modules where moduleId = 'm'");
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(q->from(), HubCollection::kModules);
  EXPECT_EQ(q->top(), 5u);
  EXPECT_TRUE(q->select_all());
  EXPECT_FALSE(q->aggregate());
  EXPECT_TRUE(q->Matches(Obj(R"({"moduleId": "m"})")));
  EXPECT_FALSE(q->Matches(Obj(R"({"moduleId": "n"})")));
  EXPECT_FALSE(q->Apply(Obj(R"({"moduleId": "n"})")));

  auto g = ParseHubQuery("SELECT COUNT() FROM devices.jobs");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->from(), HubCollection::kJobs);
  EXPECT_TRUE(g->aggregate());
  EXPECT_FALSE(g->select_all());
  EXPECT_EQ(g->top(), std::nullopt);
  EXPECT_EQ(HubCollectionName(HubCollection::kModules), "devices.modules");
}

TEST(HubQueryTest, AggregationOutlivesItsQueryAndEmptiesOnFinish) {
  std::optional<HubQuery::Aggregation> agg;
  {
    auto q = ParseHubQuery("SELECT tags.n AS n, COUNT() AS c FROM devices GROUP BY tags.n");
    ASSERT_TRUE(q);
    agg.emplace(q->StartAggregation());
  }
  for (const auto& d : Fleet(25))
    agg->Add(d);
  auto rows = agg->Finish();
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_EQ(rows[0], json::parse(R"({"n": 0, "c": 3})"));
  EXPECT_EQ(rows[9], json::parse(R"({"n": 9, "c": 2})"));
  EXPECT_TRUE(agg->Finish().empty());  // GROUP BY over nothing: no rows
}

TEST(HubQueryTest, CopiesShareThePlanAcrossThreads) {
  auto q = ParseHubQuery(
      "SELECT deviceId, properties.reported.t * 2 AS t2 FROM devices WHERE tags.n IN [1, 3] "
      "AND properties.reported.t >= 10");
  ASSERT_TRUE(q);
  auto docs = Fleet(2000);
  std::vector<std::vector<json::value>> results(4);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < results.size(); ++k) {
    threads.emplace_back([copy = *q, &docs, &out = results[k]] {
      for (const auto& d : docs) {
        if (auto row = copy.Apply(d)) out.push_back(std::move(*row));
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_EQ(results[0].size(), 398u);
  EXPECT_EQ(results[0][0], json::parse(R"({"deviceId": "dev11", "t2": 22})"));
  for (const auto& r : results)
    EXPECT_EQ(r, results[0]);
}

TEST(HubQueryTest, ConditionsForEachCollection) {
  auto c = ParseHubCondition("devices.modules.moduleId = 'm1'", HubCollection::kModules);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->Matches(Obj(R"({"moduleId": "m1"})")));
  auto d = ParseHubCondition("devices.modules.moduleId = 'm1'");
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->Matches(Obj(R"({"moduleId": "m1"})")));
  EXPECT_FALSE(d->Evaluate(Obj(R"({"moduleId": "m1"})")).defined());
}

// ---- errors and hostile input ----

TEST(ErrorsTest, CodesCategoriesAndPositions) {
  auto q = ParseHubQuery("SELECT *\nFROM devices\nWHERE x = 'a' AND AND");
  ASSERT_FALSE(q);
  EXPECT_TRUE(q.error().Is(Errc::kSyntax));
  EXPECT_EQ(q.error().code().category().name(), std::string("query"));
  EXPECT_EQ(q.error().message(), "line 3, column 19: expected an expression, found 'AND'");
  EXPECT_THAT(q.error().ToString(), HasSubstr("(query: syntax error)"));

  auto bad_utf8 = ParseHubCondition("x = '\xff'");
  ASSERT_FALSE(bad_utf8);
  EXPECT_TRUE(bad_utf8.error().Is(Errc::kSyntax));
  EXPECT_THAT(bad_utf8.error().message(), HasSubstr("UTF-8"));
}

TEST(ErrorsTest, FoundationLimitsAreConfigurable) {
  ExprOptions options;
  options.limits.max_nodes = 50;
  std::string list = "[";
  for (int i = 0; i < 60; ++i)
    list += "1,";
  list += "1]";
  auto e = ParseExpression(list, options);
  ASSERT_FALSE(e);
  EXPECT_TRUE(e.error().Is(Errc::kLimitExceeded));
  EXPECT_THAT(e.error().message(), HasSubstr("too many terms (the limit is 50)"));

  options.limits.max_length = 10;
  auto longer = ParseExpression("a = 'abcdef'", options);
  ASSERT_FALSE(longer);
  EXPECT_TRUE(longer.error().Is(Errc::kLimitExceeded));

  // The 64 KiB default: 60000 opening parentheses are refused by depth, not by the stack.
  auto deep = ParseExpression(std::string(60000, '('), {});
  ASSERT_FALSE(deep);
  EXPECT_TRUE(deep.error().Is(Errc::kLimitExceeded));
  auto huge = ParseExpression(std::string(70000, 'a'), {});
  ASSERT_FALSE(huge);
  EXPECT_TRUE(huge.error().Is(Errc::kLimitExceeded));
}

TEST(ErrorsTest, GarbageNeverThrows) {
  const char* inputs[] = {
      "",        "(",        ")",         "[[",
      "]]",      "'",        "\"",        "\\",
      "SELECT",  "SELECT *", "FROM",      "*",
      "a..b",    "a.[[",     "a[",        "{",
      "{a",      "{a:",      "f(",        "f(*",
      "x IN",    "x NOT",    "x BETWEEN", "x BETWEEN 1",
      "NOT NOT", "1 +",      "- -",       "0x",
      "1e+",     "\x01",     "\xc3",      "SELECT TOP 99999999999999999999999 * FROM devices"};
  for (const char* in : inputs) {
    EXPECT_NO_THROW({
      auto q = ParseHubQuery(in);
      auto c = ParseHubCondition(in);
      auto e = ParseExpression(in, {});
      EXPECT_FALSE(q) << in;
    }) << in;
  }
}

}  // namespace
}  // namespace orrery::query
