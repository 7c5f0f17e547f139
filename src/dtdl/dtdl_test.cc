// Focused cases for the DTDL parser: one valid model of each shape, and each common error
// with the ValidationID the official parser reports.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dtdl/dtmi.h"
#include "dtdl/parser.h"

namespace orrery::dtdl {
namespace {

std::vector<std::string> Ids(const ParseResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors)
    out.push_back(e.validation_id);
  return out;
}

// Parses and expects exactly one error with `validation_id` (short form).
ParsingError ExpectOneError(const std::vector<std::string>& docs, const std::string& validation_id,
                            const ParseOptions& opts = {}) {
  ParseResult r = Parse(docs, opts);
  EXPECT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(Ids(r));
  if (r.errors.empty()) return {};
  EXPECT_EQ(r.errors[0].validation_id, "dtmi:dtdl:parsingError:" + validation_id)
      << r.errors[0].message;
  EXPECT_FALSE(r.errors[0].message.empty());
  return r.errors[0];
}

const char* kThermostat = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:example:Thermostat;1",
  "@type": "Interface",
  "displayName": {"en": "Thermostat", "de": "Thermostat"},
  "extends": "dtmi:com:example:Device;1",
  "contents": [
    {"@type": "Telemetry", "name": "temperature", "schema": "double"},
    {"@type": "Property", "name": "targetTemperature", "schema": "double", "writable": true},
    {"@type": "Command", "name": "reboot",
     "request": {"name": "delay", "schema": "duration"},
     "response": {"name": "status", "schema": {"@type": "Enum", "valueSchema": "string",
       "enumValues": [{"name": "ok", "enumValue": "ok"}, {"name": "failed", "enumValue": "failed"}]}}},
    {"@type": "Relationship", "name": "room", "target": "dtmi:com:example:Room;1", "maxMultiplicity": 1},
    {"@type": "Component", "name": "info", "schema": "dtmi:com:example:Info;1"}
  ],
  "schemas": [
    {"@id": "dtmi:com:example:Reading;1", "@type": "Object",
     "fields": [{"name": "value", "schema": "double"},
                {"name": "tags", "schema": {"@type": "Map",
                  "mapKey": {"name": "key", "schema": "string"},
                  "mapValue": {"name": "value", "schema": "string"}}}]}
  ]
})";

const char* kDeviceAndInfo = R"([
  {"@context": "dtmi:dtdl:context;3", "@id": "dtmi:com:example:Device;1", "@type": "Interface",
   "contents": [{"@type": "Property", "name": "serial", "schema": "string"}]},
  {"@context": "dtmi:dtdl:context;3", "@id": "dtmi:com:example:Info;1", "@type": "Interface",
   "contents": [{"@type": "Property", "name": "vendor", "schema": "string"}]}
])";

TEST(Dtmi, Syntax) {
  auto d = ParseDtmi("dtmi:com:example:Thermostat;1.2");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->major, 1);
  EXPECT_EQ(d->minor, 2);
  EXPECT_EQ(d->Versionless(), "dtmi:com:example:Thermostat");
  EXPECT_FALSE(d->IsReserved());
  EXPECT_FALSE(ParseDtmi("dtmi:com:example;01"));
  EXPECT_FALSE(ParseDtmi("dtmi:com::x;1"));
  EXPECT_FALSE(ParseDtmi("dtmi:com:x_;1"));
  EXPECT_FALSE(ParseDtmi("urn:com:x;1"));
  EXPECT_TRUE(ParseDtmi("dtmi:com:_x;1")->IsReserved());
}

TEST(DtdlParser, ValidModelResolves) {
  ParseResult r = Parse({kThermostat, kDeviceAndInfo});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Ids(r))
                      << (r.errors.empty() ? "" : r.errors[0].message);
  const auto& ri = r.model.interfaces.at("dtmi:com:example:Thermostat;1");
  EXPECT_EQ(ri.contents.size(), 6u);  // five own + "serial" inherited
  EXPECT_TRUE(ri.contents.contains("serial"));
  ASSERT_TRUE(ri.components.contains("info"));
  EXPECT_EQ(ri.components.at("info"), "dtmi:com:example:Info;1");
  EXPECT_EQ(ri.ancestors, std::vector<std::string>{"dtmi:com:example:Device;1"});
  // Generated ids follow the official parser's scheme.
  const Element* t = r.model.Find("dtmi:com:example:Thermostat:_contents:__temperature;1");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind, Kind::kTelemetry);
  EXPECT_EQ(t->schema, "dtmi:dtdl:instance:Schema:double;2");
  const Element* th = r.model.Find("dtmi:com:example:Thermostat;1");
  EXPECT_EQ(th->display_name.at("de"), "Thermostat");
}

TEST(DtdlParser, V2ModelWithSemanticType) {
  ParseResult r = Parse({R"({"@context": "dtmi:dtdl:context;2", "@id": "dtmi:ex:T;1",
    "@type": "Interface", "contents": [{"@type": ["Telemetry", "Temperature"],
    "name": "t", "schema": "double", "unit": "degreeCelsius"}]})"});
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(Ids(r));
}

TEST(DtdlParser, QuantitativeTypesNeedTheExtensionInV3) {
  const char* with =
      R"({"@context": ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:quantitativeTypes;1"],
    "@id": "dtmi:ex:T;1", "@type": "Interface", "contents": [{"@type": ["Telemetry", "Temperature"],
    "name": "t", "schema": "double", "unit": "degreeCelsius"}]})";
  EXPECT_TRUE(Parse({with}).ok());
  const char* without = R"({"@context": "dtmi:dtdl:context;3",
    "@id": "dtmi:ex:T;1", "@type": "Interface", "contents": [{"@type": ["Telemetry", "Temperature"],
    "name": "t", "schema": "double", "unit": "degreeCelsius"}]})";
  EXPECT_FALSE(Parse({without}).ok());
}

TEST(DtdlParser, DuplicateContentName) {
  auto e = ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1",
    "@type": "Interface", "contents": [{"@type": "Property", "name": "x", "schema": "double"},
    {"@type": "Telemetry", "name": "x", "schema": "double"}]})"},
                          "nonUniquePropertyValue");
  EXPECT_EQ(e.primary_id, "dtmi:ex:A;1");
  EXPECT_EQ(e.property, "contents");
  EXPECT_EQ(e.value, "x");
}

TEST(DtdlParser, InheritedNameClash) {
  ExpectOneError(
      {R"([{"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1", "@type": "Interface",
    "extends": "dtmi:ex:B;1", "contents": [{"@type": "Property", "name": "x", "schema": "double"}]},
    {"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:B;1", "@type": "Interface",
    "contents": [{"@type": "Property", "name": "x", "schema": "double"}]}])"},
      "nonUniqueImportedPropertyValue");
}

TEST(DtdlParser, MissingContext) {
  ExpectOneError({R"({"@id": "dtmi:ex:A;1", "@type": "Interface"})"}, "missingContext");
}

TEST(DtdlParser, InvalidId) {
  auto e = ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A_;1",
    "@type": "Interface"})"},
                          "invalidId");
  EXPECT_EQ(e.value, "dtmi:ex:A_;1");
}

TEST(DtdlParser, MinorVersionOnlyInV3) {
  EXPECT_TRUE(Parse({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1.5",
    "@type": "Interface"})"})
                  .ok());
  ExpectOneError({R"({"@context": "dtmi:dtdl:context;2", "@id": "dtmi:ex:A;1.5",
    "@type": "Interface"})"},
                 "invalidId");
}

TEST(DtdlParser, ReservedPrefix) {
  ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:dtdl:A;1",
    "@type": "Interface"})"},
                 "reservedId");
}

TEST(DtdlParser, TopLevelMustBeInterface) {
  ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1",
    "@type": "Array", "elementSchema": "double"})"},
                 "typeNotRootable");
}

TEST(DtdlParser, UndefinedTypeAndProperty) {
  ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1",
    "@type": "Interface", "contents": [{"@type": ["Property", "Fancy"], "name": "x", "schema": "double"}]})"},
                 "typeUndefinedTerm");
  ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1",
    "@type": "Interface", "contents": [{"@type": "Property", "name": "x", "schema": "double", "colour": 1}]})"},
                 "propertyUndefinedTerm");
}

TEST(DtdlParser, BadName) {
  auto e = ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1",
    "@type": "Interface", "contents": [{"@type": "Property", "name": "1x", "schema": "double"}]})"},
                          "stringInvalid");
  EXPECT_EQ(e.property, "name");
}

TEST(DtdlParser, MissingSchema) {
  auto e = ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1",
    "@type": "Interface", "contents": [{"@type": "Telemetry", "name": "t"}]})"},
                          "missingObjectProperty");
  EXPECT_EQ(e.primary_id, "dtmi:ex:A:_contents:__t;1");
  EXPECT_EQ(e.property, "schema");
}

TEST(DtdlParser, DisplayNameTooLong) {
  // 64 characters in DTDL v2, 512 in v3.
  auto doc = [](int v, std::size_t n) {
    return R"({"@context": "dtmi:dtdl:context;)" + std::to_string(v) +
           R"(", "@id": "dtmi:ex:A;1", "@type": "Interface", "displayName": ")" +
           std::string(n, 'a') + R"("})";
  };
  EXPECT_TRUE(Parse({doc(2, 64)}).ok());
  ExpectOneError({doc(2, 65)}, "langStringValueTooLong");
  EXPECT_TRUE(Parse({doc(3, 512)}).ok());
  ExpectOneError({doc(3, 513)}, "langStringValueTooLong");
}

TEST(DtdlParser, ExtendsCycle) {
  ParseResult r =
      Parse({R"([{"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1", "@type": "Interface",
    "extends": "dtmi:ex:B;1"}, {"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:B;1",
    "@type": "Interface", "extends": "dtmi:ex:A;1"}])"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors[0].validation_id, "dtmi:dtdl:parsingError:recursiveStructureNarrow");
}

TEST(DtdlParser, ComponentCycle) {
  ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1", "@type": "Interface",
    "contents": [{"@type": "Component", "name": "me", "schema": "dtmi:ex:A;1"}]})"},
                 "recursiveStructureWide");
}

TEST(DtdlParser, DuplicateDefinition) {
  ExpectOneError(
      {R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1", "@type": "Interface"})",
       R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1", "@type": "Interface"})"},
      "duplicateDefinition");
}

TEST(DtdlParser, UnresolvedReferenceAndResolver) {
  const char* doc =
      R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1", "@type": "Interface",
    "extends": "dtmi:ex:B;1"})";
  ParseResult r = Parse({doc});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.unresolved, std::vector<std::string>{"dtmi:ex:B;1"});

  ParseOptions opts;
  int calls = 0;
  opts.resolver = [&](const std::vector<std::string>& ids) {
    ++calls;
    EXPECT_EQ(ids, std::vector<std::string>{"dtmi:ex:B;1"});
    return std::vector<std::string>{
        R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:B;1", "@type": "Interface"})"};
  };
  r = Parse({doc}, opts);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(calls, 1);
}

TEST(DtdlParser, BadJsonAndShapes) {
  ExpectOneError({"{not json"}, "notJsonObject");
  ExpectOneError({"42"}, "notJsonObject");
  ExpectOneError({std::string(200000, '[')}, "notJsonObject");  // beyond the depth bound
}

TEST(DtdlParser, DeepSchemaIsAnErrorNotACrash) {
  // Nest arrays far past the DTDL limit and the parser's own nesting bound.
  std::string schema = "\"double\"";
  for (int i = 0; i < 90; ++i)
    schema = R"({"@type": "Array", "elementSchema": )" + schema + "}";
  std::string doc =
      R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1", "@type": "Interface",
    "contents": [{"@type": "Telemetry", "name": "t", "schema": )" +
      schema + "}]}";
  ParseResult r = Parse({doc});
  EXPECT_FALSE(r.ok());
}

TEST(DtdlParser, RelationshipMultiplicity) {
  ExpectOneError({R"({"@context": "dtmi:dtdl:context;2", "@id": "dtmi:ex:A;1", "@type": "Interface",
    "contents": [{"@type": "Relationship", "name": "r", "minMultiplicity": 1}]})"},
                 "valueNotExact");
}

}  // namespace
}  // namespace orrery::dtdl
