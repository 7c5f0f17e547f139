// Unit tests of the routing dialect's programming interface: what the data-driven cases
// (testdata/route_*.test) cannot show — the SystemProperties table, every system property
// name, inputs built from C++ containers, ownership of Evaluate's result, the slot storage
// past its inline capacity, threads, and error codes.
#include "query/routing/route_condition.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "query/errc.h"

namespace orrery::query {
namespace {

using ::testing::HasSubstr;

RouteCondition Parse(std::string_view text) {
  auto r = ParseRouteCondition(text);
  EXPECT_TRUE(r) << text << ": " << r.error().ToString();
  return *r;
}

constexpr SystemProperty kAll[] = {
    SystemProperty::kContentType,
    SystemProperty::kContentEncoding,
    SystemProperty::kMessageId,
    SystemProperty::kCorrelationId,
    SystemProperty::kUserId,
    SystemProperty::kTo,
    SystemProperty::kConnectionDeviceId,
    SystemProperty::kConnectionModuleId,
    SystemProperty::kConnectionDeviceGenerationId,
    SystemProperty::kConnectionAuthMethod,
    SystemProperty::kEnqueuedTime,
    SystemProperty::kCreationTimeUtc,
    SystemProperty::kDtDataSchema,
    SystemProperty::kDtSubject,
    SystemProperty::kInterfaceName,
};
static_assert(std::size(kAll) == kSystemPropertyCount);

TEST(SystemPropertiesTest, RoutingNamesAsDocumented) {
  EXPECT_EQ(SystemPropertyName(SystemProperty::kContentType), "contentType");
  EXPECT_EQ(SystemPropertyName(SystemProperty::kConnectionDeviceId), "connectionDeviceId");
  EXPECT_EQ(SystemPropertyName(SystemProperty::kEnqueuedTime), "enqueuedTime");
  EXPECT_EQ(SystemPropertyName(SystemProperty::kDtDataSchema), "dt-dataschema");
  for (SystemProperty p : kAll) {
    EXPECT_EQ(FindSystemProperty(SystemPropertyName(p)), p) << SystemPropertyName(p);
  }
}

TEST(SystemPropertiesTest, WireNamesAndCaseAreAccepted) {
  EXPECT_EQ(FindSystemProperty("iothub-connection-device-id"), SystemProperty::kConnectionDeviceId);
  EXPECT_EQ(FindSystemProperty("iothub-connection-module-id"), SystemProperty::kConnectionModuleId);
  EXPECT_EQ(FindSystemProperty("iothub-connection-auth-generation-id"),
            SystemProperty::kConnectionDeviceGenerationId);
  EXPECT_EQ(FindSystemProperty("iothub-connection-auth-method"),
            SystemProperty::kConnectionAuthMethod);
  EXPECT_EQ(FindSystemProperty("iothub-enqueuedtime"), SystemProperty::kEnqueuedTime);
  EXPECT_EQ(FindSystemProperty("iothub-creation-time-utc"), SystemProperty::kCreationTimeUtc);
  EXPECT_EQ(FindSystemProperty("message-id"), SystemProperty::kMessageId);
  EXPECT_EQ(FindSystemProperty("correlation-id"), SystemProperty::kCorrelationId);
  EXPECT_EQ(FindSystemProperty("user-id"), SystemProperty::kUserId);
  EXPECT_EQ(FindSystemProperty("content-type"), SystemProperty::kContentType);
  EXPECT_EQ(FindSystemProperty("CONTENTTYPE"), SystemProperty::kContentType);
  EXPECT_EQ(FindSystemProperty("iothub-message-source"), std::nullopt);  // "N/A" for routing
  EXPECT_EQ(FindSystemProperty("body"), std::nullopt);
  EXPECT_EQ(FindSystemProperty(""), std::nullopt);
}

TEST(SystemPropertiesTest, SetGetClear) {
  SystemProperties s;
  EXPECT_EQ(s.Get(SystemProperty::kContentType), std::nullopt);
  s.Set(SystemProperty::kContentType, "");
  EXPECT_EQ(s.Get(SystemProperty::kContentType), "");  // present, though empty
  EXPECT_TRUE(s.SetByName("iothub-connection-device-id", "d1"));
  EXPECT_EQ(s.Get(SystemProperty::kConnectionDeviceId), "d1");
  EXPECT_FALSE(s.SetByName("nope", "x"));
  s.Clear(SystemProperty::kContentType);
  EXPECT_EQ(s.Get(SystemProperty::kContentType), std::nullopt);
  EXPECT_EQ(s.Get(SystemProperty::kConnectionDeviceId), "d1");
}

// Every system property is readable under its routing name and its other names, and only
// from its own slot.
TEST(RouteConditionTest, EverySystemPropertyByName) {
  for (SystemProperty p : kAll) {
    RouteInput in;
    in.system.Set(p, "v");
    std::string name(SystemPropertyName(p));
    EXPECT_TRUE(Parse("$" + name + " = 'v'").Matches(in)) << name;
    EXPECT_TRUE(Parse("IS_DEFINED($" + name + ")").Matches(in)) << name;
    for (SystemProperty other : kAll) {
      if (other == p) continue;
      EXPECT_FALSE(Parse("IS_DEFINED($" + std::string(SystemPropertyName(other)) + ")").Matches(in))
          << name << " leaks into " << SystemPropertyName(other);
    }
  }
  RouteInput in;
  in.system.Set(SystemProperty::kConnectionDeviceId, "d1");
  EXPECT_TRUE(Parse("$iothub-connection-device-id = 'd1'").Matches(in));
  EXPECT_TRUE(Parse("$ConnectionDeviceID = 'd1'").Matches(in));   // names ignore case
  EXPECT_FALSE(Parse("$connectionDeviceId = 'D1'").Matches(in));  // values do not
  EXPECT_FALSE(Parse("connectionDeviceId = 'd1'").Matches(in));   // bare: an app property
}

TEST(RouteConditionTest, ApplicationPropertiesFromAVector) {
  std::vector<AppProperty> props = {
      {"processingPath", "hot"}, {"Status", "old"}, {"status", "Active"}, {"$custom", "x"}};
  RouteInput in;
  in.app_properties = props;
  EXPECT_TRUE(Parse("processingPath = 'hot'").Matches(in));
  EXPECT_TRUE(Parse("PROCESSINGPATH = 'hot'").Matches(in));
  EXPECT_TRUE(Parse("STATUS = 'Active'").Matches(in));  // the last of the repeated name
  EXPECT_FALSE(Parse("status = 'old'").Matches(in));
  EXPECT_TRUE(Parse("$custom = 'x'").Matches(in));  // not a system property: the app's
  EXPECT_FALSE(Parse("custom = 'x'").Matches(in));
  in.system.Set(SystemProperty::kContentType, "application/json");
  props.emplace_back("$contentType", "text/plain");
  in.app_properties = props;
  // "IoT Hub first searches for it in the system properties".
  EXPECT_TRUE(Parse("$contentType = 'application/json'").Matches(in));
  in.system.Clear(SystemProperty::kContentType);
  EXPECT_TRUE(Parse("$contentType = 'text/plain'").Matches(in));
}

TEST(RouteConditionTest, UsesBodyAndTwin) {
  EXPECT_FALSE(Parse("processingPath = 'hot'").uses_body());
  EXPECT_FALSE(Parse("processingPath = 'hot'").uses_twin());
  EXPECT_TRUE(Parse("$body.temperature > 30").uses_body());
  EXPECT_FALSE(Parse("$body.temperature > 30").uses_twin());
  EXPECT_TRUE(Parse("$twin.tags.floor = '1'").uses_twin());
  EXPECT_TRUE(Parse("LENGTH($BODY.a[0].b) = 2").uses_body());
  // Never body queries, so nothing to parse: `$body`, `$body[0]`, `$twin`.
  EXPECT_FALSE(Parse("IS_DEFINED($body) OR $body[0] = 'Feb'").uses_body());
  EXPECT_FALSE(Parse("IS_DEFINED($twin)").uses_twin());
  EXPECT_FALSE(Parse("true").uses_body());
}

TEST(RouteConditionTest, EvaluateReturnsAnOwnedCopy) {
  auto c = Parse("$body.a.b");
  Value v;
  {
    json::value body = json::parse(R"({"a":{"b":"a string too long for the small buffer"}})");
    RouteInput in;
    in.body = &body;
    v = c.Evaluate(in);
    ASSERT_TRUE(v.defined());
    EXPECT_FALSE(v.borrowed());
  }
  EXPECT_EQ(v.get(), json::value("a string too long for the small buffer"));

  std::vector<AppProperty> props = {{"p", std::string(2000, 'x')}};  // past the stack buffer
  RouteInput in;
  in.app_properties = props;
  Value p = Parse("p").Evaluate(in);
  props.clear();
  ASSERT_TRUE(p.defined());
  EXPECT_EQ(p->get_string(), std::string(2000, 'x'));
}

// More distinct properties than the inline slots: the slots move to the heap.
TEST(RouteConditionTest, ManyProperties) {
  std::string text;
  std::vector<AppProperty> props;
  for (int i = 0; i < 20; ++i) {
    if (i > 0) text += " AND ";
    text += "p" + std::to_string(i) + " = '" + std::to_string(i) + "'";
    props.emplace_back("p" + std::to_string(i), std::to_string(i));
  }
  auto c = Parse(text);
  RouteInput in;
  in.app_properties = props;
  EXPECT_TRUE(c.Matches(in));
  props[19].second = "x";
  EXPECT_FALSE(c.Matches(in));
  props.pop_back();
  in.app_properties = props;  // a span: re-taken after the vector changed size
  EXPECT_FALSE(c.Matches(in));
  EXPECT_FALSE(c.Evaluate(in).defined());  // true AND … AND undefined
}

TEST(RouteConditionTest, TextAndTheDefaultCondition) {
  EXPECT_EQ(Parse("processingPath = 'hot'").text(), "processingPath = 'hot'");
  RouteInput nothing;
  EXPECT_TRUE(Parse("true").Matches(nothing));
  EXPECT_TRUE(Parse("").Matches(nothing));  // no condition: true, as IoT Hub's default
  EXPECT_TRUE(Parse("  \n ").Matches(nothing));
  EXPECT_EQ(Parse("").text(), "");
  EXPECT_FALSE(Parse("false").Matches(nothing));
  EXPECT_FALSE(Parse("undefined").Matches(nothing));
  EXPECT_FALSE(Parse("null").Matches(nothing));
  EXPECT_FALSE(Parse("1").Matches(nothing));
}

TEST(RouteConditionTest, ErrorsSayWhatAndWhere) {
  auto syntax = ParseRouteCondition("processingPath = ");
  ASSERT_FALSE(syntax);
  EXPECT_TRUE(syntax.error().Is(Errc::kSyntax));
  EXPECT_THAT(syntax.error().message(), HasSubstr("line 1, column 18: expected an expression"));

  auto unknown = ParseRouteCondition("a = 1 AND\n  twin_change_includes(x)");
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(unknown.error().Is(Errc::kUnknownFunction));
  EXPECT_THAT(unknown.error().message(), HasSubstr("line 2, column 3: unknown function"));

  auto arity = ParseRouteCondition("LENGTH()");
  ASSERT_FALSE(arity);
  EXPECT_TRUE(arity.error().Is(Errc::kInvalidQuery));

  auto long_text = ParseRouteCondition(std::string(8193, ' '));
  ASSERT_FALSE(long_text);  // blank, but too long to be the default condition
  EXPECT_TRUE(long_text.error().Is(Errc::kLimitExceeded));
  EXPECT_THAT(long_text.error().message(), HasSubstr("the limit is 8192"));
}

TEST(RouteConditionTest, ConcurrentEvaluation) {
  auto c = Parse("$body.temperature > 30 AND processingPath = 'hot' AND $twin.tags.floor = '1'");
  json::value body = json::parse(R"({"temperature": 35})");
  json::object twin = json::parse(R"({"tags": {"Floor": "1"}})").as_object();
  std::vector<AppProperty> props = {{"processingPath", "hot"}};
  std::vector<std::thread> threads;
  std::atomic<int> matched{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      RouteInput in;
      in.app_properties = props;
      in.body = &body;
      in.twin = &twin;
      for (int i = 0; i < 2000; ++i) {
        if (c.Matches(in)) matched.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(matched.load(), 8000);
}

}  // namespace
}  // namespace orrery::query
