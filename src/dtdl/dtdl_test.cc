// Focused cases for the DTDL parser: one valid model of each shape, and each common error
// with the ValidationID the official parser reports.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "dtdl/dtmi.h"
#include "dtdl/lint.h"
#include "dtdl/parser.h"
#include "dtdl/repository.h"

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

TEST(DtdlParser, SchemaDepthCountsStepsBelowTheOutermostSchema) {
  // Five nested Objects, the innermost with an Enum field: five 'schema' steps, the limit.
  std::string schema = R"({"@type": "Enum", "valueSchema": "integer",
    "enumValues": [{"name": "a", "enumValue": 1}]})";
  for (int i = 0; i < 5; ++i)
    schema = R"({"@type": "Object", "fields": [{"name": "f", "schema": )" + schema + "}]}";
  auto doc = [](const std::string& s) {
    return R"({"@context": "dtmi:dtdl:context;2", "@id": "dtmi:ex:A;1", "@type": "Interface",
      "contents": [{"@type": "Telemetry", "name": "t", "schema": )" +
           s + "}]}";
  };
  EXPECT_TRUE(Parse({doc(schema)}).ok());
  std::string deeper =
      R"({"@type": "Object", "fields": [{"name": "f", "schema": )" + schema + "}]}";
  ExpectOneError({doc(deeper)}, "excessiveDepthWide");
}

// The IoT Central extension: adjunct types on v2 Properties and Telemetries, geopoint and
// vector schemas.
std::string Central(const std::string& contents, int version = 2) {
  return R"({"@context": ["dtmi:dtdl:context;)" + std::to_string(version) +
         R"(", "dtmi:iotcentral:context;2"], "@id": "dtmi:ex:Central;1", "@type": "Interface",
    "contents": [)" +
         contents + "]}";
}

TEST(DtdlIotCentral, AdjunctTypesAndSchemas) {
  ParseOptions strict;
  strict.undefined_extensions = UndefinedExtensions::kDisallow;  // the extension is known
  ParseResult r = Parse({Central(R"(
      {"@type": ["Telemetry", "AccelerationVector"], "name": "accel", "schema": "vector",
       "unit": "metrePerSecondSquared"},
      {"@type": ["Property", "Location"], "name": "where", "schema": "geopoint"},
      {"@type": ["Telemetry", "Location"], "name": "fence", "schema": "polygon"},
      {"@type": ["Telemetry", "Event"], "name": "alert", "schema": "string"},
      {"@type": ["Property", "State"], "name": "state", "schema": {"@type": "Enum",
        "valueSchema": "integer", "enumValues": [{"name": "on", "enumValue": 1}]}},
      {"@type": "Property", "name": "pos", "schema": "dtmi:iotcentral:schema:vector;2"})")},
                        strict);
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(Ids(r));
  ASSERT_TRUE(r.model.Find("dtmi:iotcentral:schema:geopoint;2"));
  const Element* accel = r.model.Find("dtmi:ex:Central:_contents:__accel;1");
  ASSERT_TRUE(accel);
  EXPECT_EQ(accel->adjunct_types,
            std::vector<std::string>{"dtmi:iotcentral:class:AccelerationVector;2"});
  EXPECT_EQ(accel->unit, "metrePerSecondSquared");
}

TEST(DtdlIotCentral, SchemaConstraints) {
  ExpectOneError({Central(R"({"@type": ["Telemetry", "VelocityVector"], "name": "v",
                             "schema": "double"})")},
                 "notRequiredValue");
  ExpectOneError(
      {Central(R"({"@type": ["Telemetry", "State"], "name": "s", "schema": "integer"})")},
      "notRequiredType");
  ExpectOneError(
      {Central(R"({"@type": ["Telemetry", "Event"], "name": "e", "schema": "boolean"})")},
      "notRequiredType");
  ExpectOneError(
      {Central(R"({"@type": ["Telemetry", "Location"], "name": "l", "schema": "integer"})")},
      "notRequiredValue");
  // Adjunct types are for DTDL v2 Properties and Telemetries only.
  ExpectOneError(
      {Central(R"({"@type": ["Property", "VelocityVector"], "name": "v", "schema": "vector"})", 3)},
      "invalidCotypeVersion");
  ExpectOneError({Central(R"({"@type": "Command", "name": "c", "request":
                   {"@type": ["CommandPayload", "Event"], "name": "p", "schema": "string"}})")},
                 "invalidCotype");
}

TEST(DtdlIotCentral, ReservedIdentifiers) {
  ExpectOneError({Central(R"({"@id": "dtmi:iotcentral:t;1", "@type": "Telemetry", "name": "t",
                             "schema": "double"})")},
                 "reservedId");
  // Without the extension's context the prefix is an ordinary one.
  EXPECT_TRUE(Parse({R"({"@context": "dtmi:dtdl:context;2", "@id": "dtmi:ex:A;1",
    "@type": "Interface", "contents": [{"@id": "dtmi:iotcentral:t;1", "@type": "Telemetry",
    "name": "t", "schema": "double"}]})"})
                  .ok());
  // A reference into a reserved prefix that names nothing is an error, not an unresolved model.
  auto e = ExpectOneError({R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:ex:A;1",
    "@type": "Interface", "contents": ["dtmi:dtdl:nothing;1"]})"},
                          "undefinedReservedId");
  EXPECT_EQ(e.secondary_id, "dtmi:dtdl:nothing;1");
  // Without the context the schema terms are not defined (the missing schema is reported too).
  ParseResult r = Parse({R"({"@context": "dtmi:dtdl:context;2", "@id": "dtmi:ex:A;1",
    "@type": "Interface", "contents": [{"@type": "Telemetry", "name": "t", "schema": "vector"}]})"});
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0].validation_id, "dtmi:dtdl:parsingError:badDtmiOrTerm");
}

TEST(DtdlRepository, DtmiToPath) {
  EXPECT_EQ(DtmiToRepositoryPath("dtmi:com:Example:Thermostat;1"),
            "dtmi/com/example/thermostat-1.json");
  EXPECT_EQ(DtmiToRepositoryPath("dtmi:com:example:Thermostat"), "");  // no version
  EXPECT_EQ(DtmiToRepositoryPath("not a dtmi;1"), "");
}

// Two versions of a model define the same nested element; each file is one model, and a
// dependency is found by its path.
TEST(DtdlRepository, EachFileIsOneModelWithItsDependencies) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("orrery-dtdl-repo-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "dtmi" / "ex");
  auto write = [&](const std::string& rel, const std::string& text) {
    std::ofstream(root / rel) << text;
  };
  const char* sensor = R"({"@context": "dtmi:dtdl:context;2", "@id": "dtmi:ex:Sensor;%V",
    "@type": "Interface", "contents": [{"@type": "Telemetry", "name": "mode",
    "schema": {"@id": "dtmi:ex:Sensor:Mode;1", "@type": "Enum", "valueSchema": "integer",
    "enumValues": [{"name": "on", "enumValue": 1}]}}]})";
  for (const char* v : {"1", "2"}) {
    std::string text = sensor;
    text.replace(text.find("%V"), 2, v);
    write(std::string("dtmi/ex/sensor-") + v + ".json", text);
  }
  write("dtmi/ex/device-1.json", R"({"@context": "dtmi:dtdl:context;2",
    "@id": "dtmi:ex:Device;1", "@type": "Interface",
    "contents": [{"@type": "Component", "name": "sensor", "schema": "dtmi:ex:Sensor;2"}]})");
  write("dtmi/ex/broken-1.json", R"({"@context": "dtmi:dtdl:context;2",
    "@id": "dtmi:ex:Broken;1", "@type": "Interface", "extends": "dtmi:ex:Missing;1"})");
  ASSERT_TRUE(IsModelRepository(root));
  std::map<std::string, ParseResult> results;
  RepositoryStats stats = LoadRepository(
      root, [&](const fs::path& rel, const ParseResult& r) { results[rel.generic_string()] = r; });
  EXPECT_EQ(stats.files, 4u);
  EXPECT_EQ(stats.interfaces, 3u);  // of the files that loaded
  EXPECT_EQ(stats.files_with_errors, 1u);
  EXPECT_EQ(stats.dependency_documents, 1u);  // Sensor;2 for Device;1
  EXPECT_TRUE(results["dtmi/ex/sensor-1.json"].ok());
  EXPECT_TRUE(results["dtmi/ex/sensor-2.json"].ok());
  EXPECT_TRUE(results["dtmi/ex/device-1.json"].ok());
  EXPECT_TRUE(results["dtmi/ex/device-1.json"].model.interfaces.contains("dtmi:ex:Sensor;2"));
  EXPECT_EQ(results["dtmi/ex/broken-1.json"].unresolved,
            std::vector<std::string>{"dtmi:ex:Missing;1"});
  // The linter reads a directory with a dtmi folder the same way.
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  EXPECT_EQ(ValidateFiles({root}, out, err), 1);
  std::rewind(out);
  std::string text;
  for (int c; (c = std::fgetc(out)) != EOF;)
    text += static_cast<char>(c);
  std::fclose(out);
  std::fclose(err);
  EXPECT_NE(text.find("broken-1.json: unresolved reference: dtmi:ex:Missing;1"), std::string::npos)
      << text;
  EXPECT_NE(text.find("4 model files, 1 with errors"), std::string::npos) << text;
  fs::remove_all(root);
}

// Feature extensions: adjunct types with their classes, versions and members.
std::string V3With(const std::string& extensions, const std::string& body) {
  return R"({"@context": ["dtmi:dtdl:context;3", )" + extensions +
         R"(], "@id": "dtmi:ex:Sensor;1", )" + body + "}";
}

TEST(DtdlExtensions, Historization) {
  const std::string ctx = R"("dtmi:dtdl:extension:historization;1")";
  ParseResult r = Parse({V3With(ctx, R"("@type": "Interface", "contents": [
      {"@type": ["Property", "Historized"], "name": "setPoint", "schema": "double"}])")});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Ids(r));
  EXPECT_EQ(r.model.Find("dtmi:ex:Sensor:_contents:__setPoint;1")->adjunct_types,
            std::vector<std::string>{"dtmi:dtdl:extension:historization:v1:Historized"});
  ExpectOneError({V3With(ctx, R"("@type": "Interface", "contents": [
      {"@type": ["Command", "Historized"], "name": "c"}])")},
                 "invalidCotype");
  // An unknown version of a known extension.
  ParseOptions strict;
  strict.undefined_extensions = UndefinedExtensions::kDisallow;
  ExpectOneError({V3With(R"("dtmi:dtdl:extension:historization;100")", R"("@type": "Interface")")},
                 "unresolvableContextVersion", strict);
}

TEST(DtdlExtensions, AnnotationNamesASibling) {
  const std::string ctx = R"("dtmi:dtdl:extension:annotation;1")";
  EXPECT_TRUE(Parse({V3With(ctx, R"("@type": "Interface", "contents": [
      {"@type": "Telemetry", "name": "temp", "schema": "double"},
      {"@type": ["Telemetry", "ValueAnnotation"], "name": "accuracy", "annotates": "temp",
       "schema": "double"},
      {"@type": ["Property", "ValueAnnotation"], "name": "gone", "annotates": "absent",
       "schema": "date"}])")})
                  .ok());
  ExpectOneError({V3With(ctx, R"("@type": "Interface", "contents": [
      {"@type": "Command", "name": "reset"},
      {"@type": ["Property", "ValueAnnotation"], "name": "note", "annotates": "reset",
       "schema": "string"}])")},
                 "notSiblingRequiredType");
  ExpectOneError({V3With(ctx, R"("@type": "Interface", "contents": [
      {"@type": ["Property", "ValueAnnotation"], "name": "note", "schema": "string"}])")},
                 "missingSupplementalLiteralProperty");
}

TEST(DtdlExtensions, Mqtt) {
  const std::string ctx = R"("dtmi:dtdl:extension:mqtt;2")";
  EXPECT_TRUE(
      Parse({V3With(ctx, R"("@type": ["Interface", "Mqtt"], "payloadFormat": "Json/ecma/404",
      "telemetryTopic": "vehicles/{modelId}/{senderId}/telemetry",
      "contents": [{"@type": ["Command", "Idempotent", "Cacheable"], "name": "get", "ttl": "PT15S",
                    "response": {"name": "mph", "schema": "integer"}}])")})
          .ok());
  ExpectOneError({V3With(ctx, R"("@type": ["Interface", "Mqtt"], "payloadFormat": "Json/ecma/404",
      "telemetryTopic": "a//b")")},
                 "stringInvalid");
  ExpectOneError({V3With(ctx, R"("@type": ["Interface", "Mqtt"], "payloadFormat": "Json/ecma/404",
      "contents": [{"@type": ["Command", "Idempotent", "Cacheable"], "name": "get", "ttl": "soon"}])")},
                 "durationInvalid");
  ExpectOneError({V3With(ctx, R"("@type": ["Interface", "Mqtt"], "payloadFormat": "Json/ecma/404",
      "contents": [{"@type": ["Command", "Cacheable"], "name": "get", "ttl": "PT1M"}])")},
                 "missingCocotype");
}

}  // namespace
}  // namespace orrery::dtdl
