// DTDL parser: design note.
//
// Three passes over the submitted documents:
//  1. Structure. Each top-level object is checked for its @context (DTDL version, extension
//     contexts), then parsed recursively against a per-class member table (`Spec`): every
//     member is matched by term or by its "dtmi:dtdl:property:<name>;<v>" form, literal
//     values are checked (types, lengths, patterns, ranges), and nested elements are parsed
//     in turn. Elements without @id get the id the official parser generates
//     ("<parent>:_<member>:__<name>;<version>"), so errors name the same PrimaryID.
//     References to other elements are recorded, not followed.
//  2. Resolution. Recorded references are looked up in the whole set; missing ones are asked
//     of the resolver (repeatedly, bounded) and what it returns is parsed as in pass 1.
//  3. Model rules. Referenced elements' classes, partitions (cross-partition references),
//     cycles and depths through extends / components / schemas (iterative walks with
//     explicit limits), name uniqueness including inherited contents, and per-class rules
//     (Enum value types, Relationship multiplicities, semantic types need numeric schemas,
//     v2 Properties without Arrays, Components without Components).
// Then each Interface is flattened into a ResolvedInterface.
//
// Nothing here throws past Parse(): JSON errors are caught at the document boundary.
#include "dtdl/parser.h"

#include <algorithm>
#include <array>
#include <functional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <boost/json.hpp>

#include "dtdl/dtmi.h"

namespace orrery::dtdl {

namespace json = boost::json;

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kInterface:
      return "Interface";
    case Kind::kTelemetry:
      return "Telemetry";
    case Kind::kProperty:
      return "Property";
    case Kind::kCommand:
      return "Command";
    case Kind::kCommandPayload:
      return "CommandPayload";
    case Kind::kCommandRequest:
      return "CommandRequest";
    case Kind::kCommandResponse:
      return "CommandResponse";
    case Kind::kRelationship:
      return "Relationship";
    case Kind::kComponent:
      return "Component";
    case Kind::kArray:
      return "Array";
    case Kind::kEnum:
      return "Enum";
    case Kind::kEnumValue:
      return "EnumValue";
    case Kind::kMap:
      return "Map";
    case Kind::kMapKey:
      return "MapKey";
    case Kind::kMapValue:
      return "MapValue";
    case Kind::kObject:
      return "Object";
    case Kind::kField:
      return "Field";
    case Kind::kPrimitive:
      return "Schema";
  }
  return "?";
}

namespace {

constexpr int kMaxElementDepth = 64;    // nesting of inline elements in one document
constexpr int kMaxResolverRounds = 16;  // resolver calls per Parse
constexpr std::size_t kMaxElements = 1'000'000;

constexpr std::array kAllKinds = {Kind::kInterface,
                                  Kind::kTelemetry,
                                  Kind::kProperty,
                                  Kind::kCommand,
                                  Kind::kCommandPayload,
                                  Kind::kCommandRequest,
                                  Kind::kCommandResponse,
                                  Kind::kRelationship,
                                  Kind::kComponent,
                                  Kind::kArray,
                                  Kind::kEnum,
                                  Kind::kEnumValue,
                                  Kind::kMap,
                                  Kind::kMapKey,
                                  Kind::kMapValue,
                                  Kind::kObject,
                                  Kind::kField};

bool KindInVersion(Kind k, int v) {
  if (k == Kind::kCommandPayload) return v == 2;
  if (k == Kind::kCommandRequest || k == Kind::kCommandResponse) return v >= 3;
  return k != Kind::kPrimitive;
}

// Semantic types may co-type any element, but only these take a 'unit' (and then need a
// numeric schema).
bool UnitAllowed(Kind k, int v) {
  return k == Kind::kTelemetry || k == Kind::kProperty ||
         (v >= 3 &&
          (k == Kind::kCommandRequest || k == Kind::kCommandResponse || k == Kind::kField));
}

bool IsComplexSchema(Kind k) {
  return k == Kind::kArray || k == Kind::kEnum || k == Kind::kMap || k == Kind::kObject;
}

// ---------------------------------------------------------------------------------------
// Standard schemas and semantic types.

const std::vector<std::string>& PrimitiveNames(int v) {
  static const std::vector<std::string> v2 = {
      "boolean", "date",       "dateTime",        "double",      "duration", "float",
      "integer", "long",       "string",          "time",        "point",    "lineString",
      "polygon", "multiPoint", "multiLineString", "multiPolygon"};
  static const std::vector<std::string> v3 = [] {
    auto out = v2;
    for (const char* n : {"byte", "bytes", "decimal", "short", "unsignedByte", "unsignedInteger",
                          "unsignedLong", "unsignedShort", "uuid", "scaledDecimal"})
      out.emplace_back(n);
    return out;
  }();
  return v == 2 ? v2 : v3;
}

bool IsNumericPrimitive(std::string_view name) {
  static const std::set<std::string_view> k = {
      "double", "float",        "integer",         "long",         "byte",         "decimal",
      "short",  "unsignedByte", "unsignedInteger", "unsignedLong", "unsignedShort"};
  return k.contains(name);
}

// The unit types of the v3 QuantitativeTypes extension, which the overriding extension lets
// an Override Property use as its schema.
const std::set<std::string>& UnitTypes() {
  static const std::set<std::string> k = {"AccelerationUnit",
                                          "AngleUnit",
                                          "AngularAccelerationUnit",
                                          "AngularVelocityUnit",
                                          "ApparentEnergyUnit",
                                          "ApparentPowerUnit",
                                          "AreaUnit",
                                          "CapacitanceUnit",
                                          "ChargeUnit",
                                          "CurrentUnit",
                                          "DataRateUnit",
                                          "DataSizeUnit",
                                          "DensityUnit",
                                          "EnergyRateUnit",
                                          "EnergyUnit",
                                          "ForceUnit",
                                          "FrequencyUnit",
                                          "IlluminanceUnit",
                                          "InductanceUnit",
                                          "IonizingRadiationDoseUnit",
                                          "IrradianceUnit",
                                          "LengthUnit",
                                          "LuminanceUnit",
                                          "LuminousFluxUnit",
                                          "LuminousIntensityUnit",
                                          "MagneticFluxUnit",
                                          "MagneticInductionUnit",
                                          "MassFlowRateUnit",
                                          "MassUnit",
                                          "PowerUnit",
                                          "PressureUnit",
                                          "RadioactivityUnit",
                                          "ReactiveEnergyUnit",
                                          "ReactivePowerUnit",
                                          "ResistanceUnit",
                                          "SoundPressureUnit",
                                          "TemperatureUnit",
                                          "TimeUnit",
                                          "TorqueUnit",
                                          "Unitless",
                                          "VelocityUnit",
                                          "VoltageUnit",
                                          "VolumeFlowRateUnit",
                                          "VolumeUnit"};
  return k;
}

// The unit type of a semantic type's 'unit' ("Temperature" → "TemperatureUnit"; the
// exceptions as the QuantitativeTypes table lists them).
std::string UnitTypeOf(const std::string& semantic_type) {
  static const std::map<std::string, std::string> exceptions = {
      {"Distance", "LengthUnit"},      {"ElectricCharge", "ChargeUnit"},
      {"Humidity", "DensityUnit"},     {"Latitude", "AngleUnit"},
      {"Longitude", "AngleUnit"},      {"Luminosity", "PowerUnit"},
      {"RelativeDensity", "Unitless"}, {"RelativeHumidity", "Unitless"},
      {"Thrust", "ForceUnit"},         {"TimeSpan", "TimeUnit"},
      {"Concentration", "Unitless"},   {"EnergyRate", "PowerUnit"}};
  if (auto it = exceptions.find(semantic_type); it != exceptions.end()) return it->second;
  return semantic_type + "Unit";
}

std::string UnitTypeId(const std::string& unit_type) {
  return "dtmi:standard:class:" + unit_type + ";3";
}

// Primitive schema id as the official parser names it (version 2 for those v2 defines).
std::string PrimitiveId(const std::string& name) {
  const auto& v2 = PrimitiveNames(2);
  bool in_v2 = std::find(v2.begin(), v2.end(), name) != v2.end();
  return "dtmi:dtdl:instance:Schema:" + name + (in_v2 ? ";2" : ";3");
}

// "dtmi:standard:<kind>:<Name>;<version>", the DTMI form of a semantic type or unit term.
bool IsStandardDtmi(std::string_view t, std::string_view kind, int version) {
  std::string prefix = "dtmi:standard:" + std::string(kind) + ":";
  std::string suffix = ";" + std::to_string(version);
  if (!t.starts_with(prefix) || !t.ends_with(suffix)) return false;
  auto d = ParseDtmi(t);
  return d && d->labels.size() == 3;
}

// Abstract DTDL classes and classes of the other DTDL version: naming one in @type is a
// wrong type (badType), not an unknown one.
bool AbstractOrOtherClass(const std::string& t, int version) {
  static const std::set<std::string> abstract = {
      "Schema", "ComplexSchema", "PrimitiveSchema", "Content", "Entity", "NamedEntity",
      "SchemaField", "TemporalSchema", "NumericSchema", "CommandPayload", "CommandRequest",
      "CommandResponse", "LatentType", "Unit", "CommandType",
      // the classes of the standard schemas
      "Boolean", "Date", "DateTime", "Double", "Duration", "Float", "Integer", "Long", "String",
      "Time", "Byte", "Bytes", "Decimal", "Short", "UnsignedByte", "UnsignedInteger",
      "UnsignedLong", "UnsignedShort", "Uuid", "ScaledDecimal", "Point", "LineString", "Polygon",
      "MultiPoint", "MultiLineString", "MultiPolygon"};
  if (!abstract.contains(t)) return false;
  if (version == 2 && t == "CommandPayload") return false;
  if (version >= 3 && (t == "CommandRequest" || t == "CommandResponse")) return false;
  return true;
}

// The semantic types of DTDL v2 (its core context) and of the v3 QuantitativeTypes extension.
const std::set<std::string>& SemanticTypes(int version) {
  static const std::set<std::string> v2 = {"Acceleration",
                                           "Angle",
                                           "AngularAcceleration",
                                           "AngularVelocity",
                                           "Area",
                                           "Capacitance",
                                           "Current",
                                           "DataRate",
                                           "DataSize",
                                           "Density",
                                           "Distance",
                                           "ElectricCharge",
                                           "Energy",
                                           "Force",
                                           "Frequency",
                                           "Humidity",
                                           "Illuminance",
                                           "Inductance",
                                           "Latitude",
                                           "Length",
                                           "Longitude",
                                           "Luminance",
                                           "Luminosity",
                                           "LuminousFlux",
                                           "LuminousIntensity",
                                           "MagneticFlux",
                                           "MagneticInduction",
                                           "Mass",
                                           "MassFlowRate",
                                           "Power",
                                           "Pressure",
                                           "RelativeHumidity",
                                           "Resistance",
                                           "SoundPressure",
                                           "Temperature",
                                           "Thrust",
                                           "TimeSpan",
                                           "Torque",
                                           "Velocity",
                                           "Voltage",
                                           "Volume",
                                           "VolumeFlowRate"};
  if (version == 2) return v2;
  static const std::set<std::string> k = {"Acceleration",
                                          "Angle",
                                          "AngularAcceleration",
                                          "AngularVelocity",
                                          "ApparentEnergy",
                                          "ApparentPower",
                                          "Area",
                                          "Capacitance",
                                          "Concentration",
                                          "Current",
                                          "DataRate",
                                          "DataSize",
                                          "Density",
                                          "Distance",
                                          "ElectricCharge",
                                          "Energy",
                                          "EnergyRate",
                                          "Force",
                                          "Frequency",
                                          "Humidity",
                                          "Illuminance",
                                          "Inductance",
                                          "IonizingRadiationDose",
                                          "Irradiance",
                                          "Latitude",
                                          "Longitude",
                                          "Length",
                                          "Luminance",
                                          "Luminosity",
                                          "LuminousFlux",
                                          "LuminousIntensity",
                                          "MagneticFlux",
                                          "MagneticInduction",
                                          "Mass",
                                          "MassFlowRate",
                                          "Power",
                                          "Pressure",
                                          "Radioactivity",
                                          "ReactiveEnergy",
                                          "ReactivePower",
                                          "RelativeDensity",
                                          "RelativeHumidity",
                                          "Resistance",
                                          "SoundPressure",
                                          "Temperature",
                                          "Thrust",
                                          "TimeSpan",
                                          "Torque",
                                          "Velocity",
                                          "Voltage",
                                          "Volume",
                                          "VolumeFlowRate"};
  return k;
}

// ---------------------------------------------------------------------------------------
// Member tables.

enum class PType {
  kLangString,
  kString,  // representational string
  kName,    // string with the name pattern
  kBool,
  kInt,
  kElements,  // nested elements or dependent references
  kIdRef,     // a DTMI that need not be defined (Relationship target)
  kEnumValue,
  kCommandType,
  kUnit,
};

struct Member {
  const char* term;
  PType type;
  std::vector<Kind> classes{};  // kElements
  bool required = false;
  int max_count = -1;  // kElements: -1 unbounded
  int min_count = 0;
  bool single = false;  // kElements: exactly one value (array of one allowed)
  bool allow_primitive = false;
  std::size_t max_len = 0;
};

const std::vector<Kind> kContentKinds = {Kind::kTelemetry, Kind::kProperty, Kind::kCommand,
                                         Kind::kRelationship, Kind::kComponent};
const std::vector<Kind> kComplex = {Kind::kArray, Kind::kEnum, Kind::kMap, Kind::kObject};

// Length limits: comment and description 512 characters; name and displayName 64 in DTDL
// v2, 512 in v3.
std::vector<Member> Common(int v) {
  return {{"comment", PType::kString, {}, false, -1, 0, false, false, 512},
          {"description", PType::kLangString, {}, false, -1, 0, false, false, 512},
          {"displayName", PType::kLangString, {}, false, -1, 0, false, false, v == 2 ? 64u : 512u}};
}

Member Name(int v) {
  return {"name", PType::kName, {}, true, -1, 0, false, false, v == 2 ? 64u : 512u};
}
Member Schema(bool required = true) {
  return {"schema", PType::kElements, kComplex, required, -1, 0, true, true};
}

const std::vector<Member>& MembersOf(Kind k, int v) {
  static std::map<std::pair<Kind, int>, std::vector<Member>> cache = [] {
    std::map<std::pair<Kind, int>, std::vector<Member>> m;
    for (int ver : {2, 3}) {
      auto add = [&](Kind kind, std::vector<Member> extra) {
        auto c = Common(ver);
        c.insert(c.end(), extra.begin(), extra.end());
        m[{kind, ver}] = std::move(c);
      };
      int contents_max = ver == 2 ? 300 : -1;
      int extends_max = ver == 2 ? 2 : -1;
      add(Kind::kInterface, {{"contents", PType::kElements, kContentKinds, false, contents_max},
                             {"extends", PType::kElements, {Kind::kInterface}, false, extends_max},
                             {"schemas", PType::kElements, kComplex}});
      add(Kind::kTelemetry, {Name(ver), Schema()});
      add(Kind::kProperty, {Name(ver), Schema(), {"writable", PType::kBool}});
      Kind req = ver == 2 ? Kind::kCommandPayload : Kind::kCommandRequest;
      Kind resp = ver == 2 ? Kind::kCommandPayload : Kind::kCommandResponse;
      add(Kind::kCommand, {Name(ver),
                           {"commandType", PType::kCommandType},
                           {"request", PType::kElements, {req}, false, -1, 0, true},
                           {"response", PType::kElements, {resp}, false, -1, 0, true}});
      if (ver == 2) {
        add(Kind::kCommandPayload, {Name(ver), Schema()});
      } else {
        add(Kind::kCommandRequest, {Name(ver), Schema(), {"nullable", PType::kBool}});
        add(Kind::kCommandResponse, {Name(ver), Schema(), {"nullable", PType::kBool}});
      }
      add(Kind::kRelationship,
          {Name(ver),
           {"maxMultiplicity", PType::kInt},
           {"minMultiplicity", PType::kInt},
           {"properties", PType::kElements, {Kind::kProperty}, false, ver == 2 ? 300 : -1},
           {"target", PType::kIdRef},
           {"writable", PType::kBool}});
      add(Kind::kComponent,
          {Name(ver), {"schema", PType::kElements, {Kind::kInterface}, true, -1, 0, true}});
      add(Kind::kArray, {{"elementSchema", PType::kElements, kComplex, true, -1, 0, true, true}});
      add(Kind::kEnum, {{"enumValues",
                         PType::kElements,
                         {Kind::kEnumValue},
                         ver == 2,
                         ver == 2 ? 100 : -1,
                         ver == 2 ? 1 : 0},
                        {"valueSchema", PType::kElements, {}, true, -1, 0, true, true}});
      add(Kind::kEnumValue, {Name(ver), {"enumValue", PType::kEnumValue, {}, true}});
      add(Kind::kMap, {{"mapKey", PType::kElements, {Kind::kMapKey}, true, -1, 0, true},
                       {"mapValue", PType::kElements, {Kind::kMapValue}, true, -1, 0, true}});
      add(Kind::kMapKey, {Name(ver), {"schema", PType::kElements, {}, true, -1, 0, true, true}});
      add(Kind::kMapValue, {Name(ver), Schema()});
      add(Kind::kObject, {{"fields",
                           PType::kElements,
                           {Kind::kField},
                           ver == 2,
                           ver == 2 ? 30 : -1,
                           ver == 2 ? 1 : 0}});
      add(Kind::kField, {Name(ver), Schema()});
    }
    return m;
  }();
  static const std::vector<Member> none;
  auto it = cache.find({k, v});
  return it == cache.end() ? none : it->second;
}

// Every term DTDL reserves (class names, member names, schema names, values): a member or
// type with one of these names is "irrelevant" rather than "undefined".
const std::set<std::string>& ReservedTerms() {
  static const std::set<std::string> k = [] {
    std::set<std::string> s;
    for (Kind kind : kAllKinds)
      s.insert(KindName(kind));
    for (int v : {2, 3}) {
      for (Kind kind : kAllKinds)
        for (const auto& m : MembersOf(kind, v))
          s.insert(m.term);
      for (const auto& p : PrimitiveNames(v))
        s.insert(p);
    }
    for (const char* t :
         {"Schema", "ComplexSchema", "PrimitiveSchema", "Content", "Entity", "NamedEntity",
          "CommandType", "SchemaField", "Unit", "LatentType", "NumericSchema", "TemporalSchema",
          "asynchronous", "synchronous", "languageMajorVersion", "languageVersion"})
      s.insert(t);
    return s;
  }();
  return k;
}

// ---------------------------------------------------------------------------------------
// Helpers.

std::size_t CharCount(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
    if (c >= 0xF0) ++n;  // outside the BMP: two UTF-16 units, as .NET counts
  }
  return n;
}

bool NameMatches(std::string_view s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(s.front())) return false;
  for (char c : s) {
    if (!alpha(c) && !digit(c) && c != '_') return false;
  }
  return s.back() != '_';
}

bool IsLanguageCode(std::string_view s) {
  // BCP 47, loosely: alpha{2,8} then (-alnum{1,8})*
  std::size_t i = 0, part = 0;
  bool first = true;
  while (i <= s.size()) {
    std::size_t j = s.find('-', i);
    if (j == std::string_view::npos) j = s.size();
    std::string_view p = s.substr(i, j - i);
    if (p.empty() || p.size() > 8) return false;
    for (char c : p) {
      bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
      if (!ok) return false;
    }
    if (first && (p.size() < 2 || p.size() > 3)) return false;
    first = false;
    ++part;
    i = j + 1;
    if (j == s.size()) break;
  }
  return part > 0;
}

std::string VersionSuffix(const Dtmi& d) {
  if (!d.has_version) return "";
  std::string s = ";" + std::to_string(d.major);
  if (d.has_minor) s += "." + std::to_string(d.minor);
  return s;
}

// ---------------------------------------------------------------------------------------

struct Ctx {
  int version = 0;
  bool quant = false;       // v3 QuantitativeTypes extension in effect (always in v2)
  bool informal = false;    // an undefined extension is in effect
  bool layering = false;    // the (unimplemented) layering extension was named
  bool iotcentral = false;  // the IoT Central extension (dtmi:iotcentral:context;2)
  // Feature extensions in effect: the version of each (index: Extension), 0 when absent.
  std::array<std::uint8_t, 5> ext{};
};

// ---------------------------------------------------------------------------------------
// Feature extensions (dtmi:dtdl:extension:<name>;<version>) whose adjunct types we implement:
// each adjunct type co-types some material classes and may add literal members. What the
// official parser reports when an adjunct type stands where it may not differs between them
// (see the flags), as the conformance corpus shows.

enum Extension : std::uint8_t { kHistorization, kAnnotation, kRequirement, kMqtt, kOverriding };

struct ExtensionInfo {
  const char* name;
  int max_version;  // versions 1..max_version are defined
};
constexpr std::array<ExtensionInfo, 5> kExtensions = {
    {{"historization", 2}, {"annotation", 2}, {"requirement", 2}, {"mqtt", 4}, {"overriding", 2}}};

enum class AdjunctValue { kString, kTopic, kInteger, kDuration, kTerm };

struct AdjunctMember {
  const char* term;
  AdjunctValue type;
  bool required;
};

struct AdjunctType {
  Extension extension;
  const char* term;
  std::vector<Kind> classes;  // the material classes it may co-type (in DTDL v3)
  std::vector<AdjunctMember> members;
  const char* requires_cotype = nullptr;  // another adjunct type it needs (missingCocotype)
  // Classes it may not co-type in DTDL v3 but may in a later version: invalidCotypeVersion
  // besides invalidCotype.
  std::vector<Kind> later_classes = {};
  bool v2_also_cotype = false;  // in DTDL v2, invalidCotype besides invalidCotypeVersion
  // Classes it is parsed on (its members accepted) but then reported as invalidCotype.
  std::vector<Kind> rule_classes = {};
};

const std::vector<AdjunctType>& AdjunctTypes() {
  static const std::vector<AdjunctType> k = {
      {kHistorization,
       "Historized",
       {Kind::kProperty, Kind::kTelemetry},
       {},
       nullptr,
       {Kind::kCommandResponse, Kind::kMapValue, Kind::kField},
       true},
      {kAnnotation,
       "ValueAnnotation",
       {Kind::kProperty, Kind::kTelemetry},
       {{"annotates", AdjunctValue::kString, true}}},
      {kRequirement, "Required", {Kind::kField}, {}, nullptr, {Kind::kProperty}},
      {kOverriding,
       "Override",
       {Kind::kProperty},
       {{"overrides", AdjunctValue::kTerm, true}},
       "ValueAnnotation",
       {},
       false,
       {Kind::kTelemetry}},
      {kMqtt,
       "Mqtt",
       {Kind::kInterface},
       {{"payloadFormat", AdjunctValue::kString, true},
        {"telemetryTopic", AdjunctValue::kTopic, false},
        {"commandTopic", AdjunctValue::kTopic, false}}},
      {kMqtt, "Idempotent", {Kind::kCommand}, {}},
      {kMqtt,
       "Cacheable",
       {Kind::kCommand},
       {{"ttl", AdjunctValue::kDuration, true}},
       "Idempotent"},
      {kMqtt,
       "Indexed",
       {Kind::kTelemetry, Kind::kCommand, Kind::kField, Kind::kEnumValue},
       {{"index", AdjunctValue::kInteger, true}}},
      {kMqtt, "Transparent", {Kind::kCommandRequest, Kind::kCommandResponse}, {}},
      {kMqtt, "Result", {Kind::kObject}, {}},
      {kMqtt, "Error", {Kind::kObject}, {}},
      {kMqtt, "NormalResult", {Kind::kField}, {}},
      {kMqtt, "ErrorResult", {Kind::kField}, {}},
      {kMqtt, "ErrorMessage", {Kind::kField}, {}},
  };
  return k;
}

// "dtmi:dtdl:extension:mqtt:v3:Indexed" — the DTMI of an adjunct type (or, with a member
// appended, of its member) in extension version `version`.
std::string AdjunctDtmi(const AdjunctType& a, int version) {
  return std::string("dtmi:dtdl:extension:") + kExtensions[a.extension].name + ":v" +
         std::to_string(version) + ":" + a.term;
}

// The adjunct type `t` names in `ctx` (term or DTMI), or null.
const AdjunctType* FindAdjunct(const std::string& t, const Ctx& ctx) {
  for (const auto& a : AdjunctTypes()) {
    int v = ctx.ext[a.extension];
    if (v != 0 && (t == a.term || t == AdjunctDtmi(a, v))) return &a;
  }
  return nullptr;
}

const AdjunctType* AdjunctOf(const std::string& dtmi) {
  for (const auto& a : AdjunctTypes()) {
    std::string prefix = std::string("dtmi:dtdl:extension:") + kExtensions[a.extension].name + ":v";
    if (dtmi.starts_with(prefix) && dtmi.ends_with(std::string(":") + a.term)) return &a;
  }
  return nullptr;
}

bool HasAdjunct(const Element& e, std::string_view term) {
  for (const auto& t : e.adjunct_types) {
    const AdjunctType* a = AdjunctOf(t);
    if (a && a->term == term) return true;
  }
  return false;
}

// ISO 8601 duration, as xsd:duration: P[nY][nM][nD][T[nH][nM][n[.n]S]], at least one part.
bool IsDuration(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size() || s[i] != 'P') return false;
  ++i;
  bool any = false, in_time = false, dot_seen = false;
  std::string order = "YMD";
  std::size_t pos = 0;
  while (i < s.size()) {
    if (s[i] == 'T') {
      if (in_time) return false;
      in_time = true;
      order = "HMS";
      pos = 0;
      ++i;
      if (i >= s.size()) return false;
      continue;
    }
    std::size_t start = i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) {
      if (s[i] == '.') {
        if (dot_seen) return false;
        dot_seen = true;
      }
      ++i;
    }
    if (i == start || i >= s.size()) return false;
    std::size_t at = order.find(s[i], pos);
    if (at == std::string::npos) return false;
    if (dot_seen && s[i] != 'S') return false;
    pos = at + 1;
    any = true;
    ++i;
  }
  return any;
}

// An MQTT topic pattern: non-empty levels separated by '/', tokens in braces ("{modelId}"),
// no wildcards.
bool IsTopicPattern(std::string_view s) {
  if (s.empty()) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t end = s.find('/', start);
    std::string_view level = s.substr(start, end == std::string_view::npos ? end : end - start);
    if (level.empty()) return false;
    for (char c : level)
      if (c == '+' || c == '#' || c == ' ') return false;
    if (level.front() == '{' && (level.back() != '}' || level.size() < 3)) return false;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// The IoT Central extension (dtmi:iotcentral:context;2): adjunct types for DTDL v2 Properties and
// Telemetries, and the schemas geopoint and vector (usable in any DTDL version).

constexpr std::string_view kIotCentralPrefix = "dtmi:iotcentral:";

// The adjunct type's DTMI when `t` names one of the extension's and its context is in effect.
std::string IotCentralAdjunct(const std::string& t, const Ctx& ctx) {
  if (!ctx.iotcentral) return {};
  for (const char* a : {"AccelerationVector", "Event", "Location", "State", "VelocityVector"}) {
    std::string id = std::string("dtmi:iotcentral:class:") + a + ";2";
    if (t == a || t == id) return id;
  }
  return {};
}

// The schema's DTMI when `s` names geopoint or vector and the context is in effect.
std::string IotCentralSchema(const std::string& s, const Ctx& ctx) {
  if (!ctx.iotcentral) return {};
  for (const char* n : {"geopoint", "vector"}) {
    std::string id = std::string("dtmi:iotcentral:schema:") + n + ";2";
    if (s == n || s == id) return id;
  }
  return {};
}

// Whether `term` is a member DTDL itself defines for the element's class.
bool MembersOfTermExists(const Element& e, const std::string& term) {
  for (const auto& m : MembersOf(e.kind, e.dtdl_version))
    if (term == m.term) return true;
  return false;
}

bool IsVectorAdjunct(const std::string& a) {
  return a == "dtmi:iotcentral:class:VelocityVector;2" ||
         a == "dtmi:iotcentral:class:AccelerationVector;2";
}

// VelocityVector and AccelerationVector take an optional 'unit'.
bool HasUnitAdjunct(const Element& e) {
  return std::any_of(e.adjunct_types.begin(), e.adjunct_types.end(), IsVectorAdjunct);
}

bool IsReservedPrefix(std::string_view id) {
  return id.starts_with("dtmi:dtdl:") || id.starts_with("dtmi:standard:") ||
         id.starts_with(kIotCentralPrefix);
}

struct Reference {
  std::string source;    // element id holding the member
  std::string property;  // member term
  std::string target;    // referenced id
  std::vector<Kind> classes;
  bool allow_primitive;
};

class ParserImpl {
 public:
  explicit ParserImpl(const ParseOptions& o) : opts_(o) {}

  ParseResult Run(const std::vector<std::string>& documents);

 private:
  void Error(std::string id, std::string primary, std::string property, std::string value,
             std::string message, std::string secondary = {}) {
    if (errors_.size() >= 10'000) return;  // bound the report; the model is invalid anyway
    errors_.push_back({"dtmi:dtdl:parsingError:" + id, std::move(primary), std::move(secondary),
                       std::move(property), std::move(value), std::move(message)});
  }

  void ParseDocument(std::string_view text);
  bool ParseContext(const json::value& v, Ctx& ctx, bool top_level);
  std::string ParseElement(const json::object& obj, Ctx ctx, const Element* parent,
                           std::string_view prop, bool multiple, std::size_t index,
                           const std::vector<Kind>& allowed, int depth);
  void ParseMember(Element& e, const Member& m, std::string_view written, const json::value& v,
                   const Ctx& ctx, int depth);
  bool CheckValueObject(const Element& e, const std::string& p, const json::object& o);
  const json::value* TypedLiteral(Element& e, const std::string& p, const json::value& v,
                                  std::string_view kind, std::string_view title,
                                  std::string_view noun);
  std::optional<std::string> RepString(const Element& e, std::string_view prop,
                                       const json::value& v, bool exactly_one);
  void ParseLangString(Element& e, const Member& m, const json::value& v, LangMap& out);
  std::vector<std::string> ParseChildren(Element& e, const Member& m, const json::value& v,
                                         const Ctx& ctx, int depth);

  void ResolveReferences();
  void CheckModel();
  void CheckReferences();
  void CheckCycles();
  void CheckNames();
  void CheckElementRules();
  void CheckIotCentralSchema(const Element& e);
  void CheckExtensionRules();
  void Flatten();

  const ParseOptions& opts_;
  std::map<std::string, Element> elements_;
  std::set<std::string> ids_;  // every id defined so far, valid or not
  std::vector<std::string> top_level_;
  std::set<std::string> top_level_set_;
  std::unordered_map<std::string, std::string> partition_;  // id -> partition root id
  std::vector<Reference> refs_;
  std::vector<ParsingError> errors_;
  std::set<std::string> unresolved_;
  std::map<std::string, std::string> used_primitives_;  // standard schema id -> name
  std::map<std::string, ResolvedInterface> resolved_;
};

// ---------------------------------------------------------------------------------------
// Pass 1.

void ParserImpl::ParseDocument(std::string_view text) {
  if (text.size() > kMaxDocumentBytes) {
    Error("notJsonObject", {}, {}, {},
          "document is larger than " + std::to_string(kMaxDocumentBytes) + " bytes");
    return;
  }
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  json::parse_options po;
  po.max_depth = kMaxJsonDepth;
  std::error_code ec;
  json::value root = json::parse(text, ec, {}, po);
  if (ec) {
    Error("notJsonObject", {}, {}, {}, "document is not valid JSON: " + ec.message());
    return;
  }
  std::vector<const json::object*> tops;
  if (root.is_object()) {
    tops.push_back(&root.get_object());
  } else if (root.is_array()) {
    for (const auto& v : root.get_array()) {
      if (!v.is_object()) {
        Error("notJsonObject", {}, {}, {},
              "top-level JSON element is neither an object nor an array of objects");
        return;
      }
      tops.push_back(&v.get_object());
    }
  } else {
    Error("notJsonObject", {}, {}, {},
          "top-level JSON element is neither an object nor an array of objects");
    return;
  }
  for (const json::object* obj : tops) {
    Ctx ctx;
    auto c = obj->find("@context");
    if (c == obj->end()) {
      Error("missingContext", {}, {}, {}, "top-level JSON object has no @context");
      continue;
    }
    if (!ParseContext(c->value(), ctx, true)) continue;
    for (const char* kw : {"@graph"}) {
      if (obj->contains(kw)) {
        Error("topLevelGraphDisallowed", {}, {}, {}, "top-level object contains '@graph'");
      }
    }
    std::string id = ParseElement(*obj, ctx, nullptr, {}, false, 0, {Kind::kInterface}, 0);
    if (!id.empty()) {
      top_level_.push_back(id);
      top_level_set_.insert(id);
    }
  }
}

// Reads a @context value into `ctx`. Returns false (after reporting) when unusable.
bool ParserImpl::ParseContext(const json::value& v, Ctx& ctx, bool top_level) {
  std::vector<const json::value*> items;
  if (v.is_array()) {
    for (const auto& x : v.get_array())
      items.push_back(&x);
  } else {
    items.push_back(&v);
  }
  if (items.empty()) {
    if (!top_level) return true;  // a nested empty @context changes nothing
    Error("emptyContext", {}, {}, {}, "@context is empty");
    return false;
  }
  bool ok = true;
  bool have_dtdl = ctx.version != 0 && !top_level;

  // The DTDL context specifier is processed first: extension contexts depend on its version.
  // DTDL v2 tolerates it after an extension context; v3 does not.
  auto is_dtdl_ctx = [](const json::value* x) {
    return x->is_string() && x->get_string().starts_with("dtmi:dtdl:context;");
  };
  // An affiliate context may come first only where it implies the DTDL version (the IoT
  // Central context implies v2); a DTDL context after an affiliate that follows a DTDL context
  // is an error in v2 as well.
  bool dtdl_after_affiliate = false, redundant_after_affiliate = false, seen_dtdl = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (is_dtdl_ctx(items[i]) && i > 0 && !is_dtdl_ctx(items[i - 1])) {
      dtdl_after_affiliate = true;
      if (seen_dtdl) redundant_after_affiliate = true;
    }
    if (is_dtdl_ctx(items[i])) seen_dtdl = true;
  }
  std::stable_partition(items.begin(), items.end(), is_dtdl_ctx);
  for (std::size_t i = 0; i < items.size(); ++i) {
    const json::value& item = *items[i];
    if (item.is_object()) {
      Error("disallowedLocalContext", {}, {}, {},
            "@context contains local term definitions, which DTDL v2/v3 do not allow");
      ok = false;
      continue;
    }
    if (!item.is_string()) {
      Error("invalidContextSpecifier", {}, {}, {}, "@context value is not a string");
      ok = false;
      continue;
    }
    std::string s(item.get_string());
    if (!s.starts_with("dtmi:")) {
      Error("nonDtmiContextSpecifier", {}, {}, s, "@context '" + s + "' is not a DTMI");
      ok = false;
      continue;
    }
    auto d = ParseDtmi(s);
    if (!d) {
      Error("invalidContextSpecifier", {}, {}, s, "@context '" + s + "' is not a legal DTMI");
      ok = false;
      continue;
    }
    bool is_dtdl = d->labels.size() == 2 && d->labels[0] == "dtdl" && d->labels[1] == "context";
    if (is_dtdl) {
      if (dtdl_after_affiliate && d->has_version && (d->major >= 3 || redundant_after_affiliate)) {
        Error("dtdlContextFollowsAffiliate", {}, {}, s,
              "DTDL context '" + s + "' follows an extension context");
        ok = false;
      }
      if (!d->has_version) {
        Error("missingContextVersion", {}, {}, s, "@context '" + s + "' has no version");
        ok = false;
        continue;
      }
      if (!d->fragment.empty()) {
        Error("disallowedContextFragment", {}, {}, s,
              "@context '" + s + "' has a fragment, which DTDL v2/v3 do not allow");
        ok = false;
        continue;
      }
      if (d->has_minor || d->major < 2 || d->major > 4) {
        Error("unrecognizedContextVersion", {}, {}, s,
              "@context '" + s + "' names an unknown DTDL version");
        ok = false;
        continue;
      }
      if (d->major > opts_.max_dtdl_version) {
        Error("disallowedContextVersion", {}, {}, s,
              "@context '" + s + "' exceeds the configured maximum DTDL version " +
                  std::to_string(opts_.max_dtdl_version));
        ok = false;
        continue;
      }
      if (d->major > 3) {
        Error("unrecognizedContextVersion", {}, {}, s, "DTDL v4 is not supported");
        ok = false;
        continue;
      }
      ctx.version = static_cast<int>(d->major);
      ctx.quant = ctx.version == 2;
      have_dtdl = true;
      continue;
    }
    if (!have_dtdl) {
      Error("missingDtdlContext", {}, {}, s,
            "@context does not start with a DTDL context specifier");
      ok = false;
      continue;
    }

    if (!d->has_version) {
      Error("missingContextVersion", {}, {}, s, "@context '" + s + "' has no version");
      ok = false;
      continue;
    }
    if (d->labels.size() == 3 && d->labels[0] == "dtdl" && d->labels[1] == "extension" &&
        d->labels[2] == "quantitativeTypes") {
      if (ctx.version < 3) {
        Error("invalidContextSpecifierForVersion", {}, {}, s,
              "'" + s + "' is not valid for DTDL version 2");
        ok = false;
      } else if (d->major != 1) {
        Error("unresolvableContextVersion", {}, {}, s,
              "'" + s + "' names an unknown version of the QuantitativeTypes extension");
        ok = false;
      } else {
        ctx.quant = true;
      }
      continue;
    }
    if (d->labels.size() == 3 && d->labels[0] == "dtdl" && d->labels[1] == "extension" &&
        d->labels[2] == "layering")
      ctx.layering = true;
    if (d->labels.size() == 3 && d->labels[0] == "dtdl" && d->labels[1] == "extension") {
      bool known = false;
      for (std::size_t x = 0; x < kExtensions.size(); ++x) {
        if (d->labels[2] != kExtensions[x].name) continue;
        known = true;
        if (!d->has_minor && d->major >= 1 && d->major <= kExtensions[x].max_version) {
          ctx.ext[x] = static_cast<std::uint8_t>(d->major);
        } else if (opts_.undefined_extensions == UndefinedExtensions::kDisallow ||
                   (opts_.undefined_extensions == UndefinedExtensions::kAllowInV2 &&
                    ctx.version != 2)) {
          Error(
              "unresolvableContextVersion", {}, {}, s,
              "'" + s + "' names an unknown version of the " + kExtensions[x].name + " extension");
          ok = false;
        } else {
          ctx.informal = true;
        }
      }
      if (known) continue;
    }
    if (d->labels.size() == 2 && d->labels[0] == "iotcentral" && d->labels[1] == "context" &&
        d->major == 2 && !d->has_minor) {
      ctx.iotcentral = true;
      continue;
    }
    bool allow =
        opts_.undefined_extensions == UndefinedExtensions::kAllow ||
        (opts_.undefined_extensions == UndefinedExtensions::kAllowInV2 && ctx.version == 2);
    if (allow) {
      ctx.informal = true;
    } else {
      Error("unresolvableContextSpecifier", {}, {}, s,
            "@context '" + s + "' names an extension this parser does not define");
      ok = false;
    }
  }
  if (ctx.version == 0 && ok) {
    Error("missingDtdlContext", {}, {}, {}, "@context has no DTDL context specifier");
    ok = false;
  }
  return ok && ctx.version != 0;
}

// Whether a value object's "@type" names the XSD datatype `name` ("xsd:boolean", the full
// IRI, or an array of one of those).
bool IsXsdType(const json::value& t, std::string_view name) {
  const json::value* x = &t;
  if (t.is_array()) {
    if (t.get_array().size() != 1) return false;
    x = &t.get_array()[0];
  }
  if (!x->is_string()) return false;
  std::string_view s = x->get_string();
  return s == "xsd:" + std::string(name) ||
         s == "http://www.w3.org/2001/XMLSchema#" + std::string(name);
}

bool ParserImpl::CheckValueObject(const Element& e, const std::string& p, const json::object& o) {
  for (const auto& kv : o) {
    std::string_view k = kv.key();
    if (k == "@value" || k == "@type") continue;
    // DTDL v2 ignores JSON-LD keywords other than these three in value objects.
    if (e.dtdl_version == 2 && k.starts_with("@") && k != "@id" && k != "@context" && k != "@graph")
      continue;
    const char* id = k == "@id"           ? "valueObjectId"
                     : k == "@context"    ? "valueObjectContext"
                     : k == "@graph"      ? "valueObjectGraph"
                     : k == "@language"   ? "valueObjectLanguage"
                     : k.starts_with("@") ? "valueObjectKeyword"
                                          : "valueObjectInvalidProp";
    Error(id, e.id, p, std::string(k),
          e.id + " property '" + p + "' value object has '" + std::string(k) +
              "', which is not allowed");
    return false;
  }
  return true;
}

std::optional<std::string> ParserImpl::RepString(const Element& e, std::string_view prop,
                                                 const json::value& v, bool exactly_one) {
  const json::value* x = &v;
  std::string p(prop);
  if (v.is_array()) {
    const auto& a = v.get_array();
    if (a.size() != 1) {
      if (a.empty() && !exactly_one) return std::string();
      Error(a.empty() ? "stringCountBelowMin" : "stringMultipleValues", e.id, p, {},
            e.id + " property '" + p + "' must have exactly one value");
      return std::nullopt;
    }
    x = &a[0];
  }
  if (x->is_string()) return std::string(x->get_string());
  if (x->is_object()) {
    const auto& o = x->get_object();
    if (!CheckValueObject(e, p, o)) return std::nullopt;
    auto val = o.find("@value");
    if (val == o.end()) {
      Error("stringObjectNoValue", e.id, p, {}, e.id + " property '" + p + "' has no '@value'");
      return std::nullopt;
    }
    if (auto t = o.find("@type"); t != o.end()) {
      if (!IsXsdType(t->value(), "string")) {
        Error("stringTypeNotString", e.id, p, {},
              e.id + " property '" + p + "' value object's '@type' is not xsd:string");
        return std::nullopt;
      }
    }
    if (!val->value().is_string()) {
      Error("stringValueNotString", e.id, p, {}, e.id + " property '" + p + "' is not a string");
      return std::nullopt;
    }
    return std::string(val->value().get_string());
  }
  Error("stringNotString", e.id, p, {}, e.id + " property '" + p + "' is not a string");
  return std::nullopt;
}

void ParserImpl::ParseLangString(Element& e, const Member& m, const json::value& v, LangMap& out) {
  std::string p = m.term;
  auto put = [&](const std::string& lang, const std::string& text) {
    if (m.max_len != 0 && CharCount(text) > m.max_len) {
      Error("langStringValueTooLong", e.id, p, text,
            e.id + " property '" + p + "' is longer than " + std::to_string(m.max_len) +
                " characters");
      return;
    }
    out[lang] = text;
  };
  if (v.is_string()) {
    put("en", std::string(v.get_string()));
    return;
  }
  if (v.is_object()) {
    const auto& o = v.get_object();
    // A lone language-tagged value object is not a localizable string (only arrays of them
    // are), so '@value' falls into the keyword rule below.
    for (const auto& kv : o) {
      std::string k(kv.key());
      if (k.starts_with("@")) {
        Error("langMapObjKeyword", e.id, p, k,
              e.id + " property '" + p + "' language map has keyword '" + k + "'");
        return;
      }
      if (!IsLanguageCode(k)) {
        Error("langStringInvalidCode", e.id, p, k, "'" + k + "' is not a language code");
        return;
      }
      if (!kv.value().is_string()) {
        Error("langStringValueNotString", e.id, p, k,
              e.id + " property '" + p + "' value for '" + k + "' is not a string");
        return;
      }
      put(k, std::string(kv.value().get_string()));
    }
    return;
  }
  if (v.is_array()) {
    std::set<std::string> langs;
    for (const auto& item : v.get_array()) {
      if (item.is_string()) {
        if (!langs.insert("en").second) {
          Error("langStringElementCodeNotUnique", e.id, p, "en", "duplicate language");
          return;
        }
        put("en", std::string(item.get_string()));
        continue;
      }
      if (!item.is_object()) {
        Error("langStringElementNotStringOrObject", e.id, p, {},
              e.id + " property '" + p + "' array holds a value that is not a string or object");
        return;
      }
      const auto& o = item.get_object();
      for (const auto& kv : o) {
        std::string_view k = kv.key();
        if (k == "@value" || k == "@language") continue;
        Error(k == "@id"           ? "langStringElementId"
              : k == "@context"    ? "langStringElementContext"
              : k == "@graph"      ? "langStringElementGraph"
              : k == "@type"       ? "langStringElementType"
              : k.starts_with("@") ? "langStringElementKeyword"
                                   : "langStringElementInvalidProp",
              e.id, p, std::string(k), "invalid member '" + std::string(k) + "'");
        return;
      }
      auto val = o.find("@value");
      if (val == o.end()) {
        Error("langStringElementNoValue", e.id, p, {}, "language-tagged value has no '@value'");
        return;
      }
      if (!val->value().is_string()) {
        Error("langStringElementValueNotString", e.id, p, {}, "'@value' is not a string");
        return;
      }
      std::string lang = "en";
      if (auto l = o.find("@language"); l != o.end()) {
        if (!l->value().is_string()) {
          Error("langStringElementCodeNotString", e.id, p, {}, "language code is not a string");
          return;
        }
        lang = std::string(l->value().get_string());
        if (!IsLanguageCode(lang)) {
          Error("langStringElementInvalidCode", e.id, p, lang,
                "'" + lang + "' is not a language code");
          return;
        }
      }
      if (!langs.insert(lang).second) {
        Error("langStringElementCodeNotUnique", e.id, p, lang, "duplicate language " + lang);
        return;
      }
      put(lang, std::string(val->value().get_string()));
    }
    return;
  }
  Error("langStringNotLangString", e.id, p, {},
        e.id + " property '" + p + "' is not a localizable string");
}

std::vector<std::string> ParserImpl::ParseChildren(Element& e, const Member& m,
                                                   const json::value& v, const Ctx& ctx,
                                                   int depth) {
  std::vector<const json::value*> items;
  if (v.is_array()) {
    for (const auto& x : v.get_array())
      items.push_back(&x);
  } else {
    items.push_back(&v);
  }
  std::string p = m.term;
  if (m.single && items.size() > 1) {
    Error("objectMultipleValues", e.id, p, {},
          e.id + " property '" + p + "' has multiple values but only one is allowed");
    return {};
  }
  if (m.max_count >= 0 && items.size() > static_cast<std::size_t>(m.max_count)) {
    Error("objectCountAboveMax", e.id, p, {},
          e.id + " property '" + p + "' has " + std::to_string(items.size()) +
              " values but no more than " + std::to_string(m.max_count) + " are allowed");
  }
  std::vector<std::string> out;
  bool multiple = !m.single;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const json::value& item = *items[i];
    if (item.is_string()) {
      std::string s(item.get_string());
      if (m.allow_primitive) {
        if (ctx.ext[kOverriding] != 0 && ctx.quant && UnitTypes().contains(s) && p == "schema" &&
            (e.kind == Kind::kProperty || e.kind == Kind::kTelemetry)) {
          used_primitives_.emplace(UnitTypeId(s), s);
          out.push_back(UnitTypeId(s));
          continue;
        }
        if (std::string ic = IotCentralSchema(s, ctx); !ic.empty()) {
          used_primitives_.emplace(ic, ic.substr(23, ic.size() - 25));  // "…:schema:<name>;2"
          out.push_back(ic);
          continue;
        }
        const auto& prims = PrimitiveNames(ctx.version);
        if (std::find(prims.begin(), prims.end(), s) != prims.end()) {
          std::string pid = PrimitiveId(s);
          used_primitives_.emplace(pid, s);
          out.push_back(pid);
          continue;
        }
        if (s.starts_with("dtmi:dtdl:instance:Schema:") ||
            s.starts_with("dtmi:standard:schema:geospatial:")) {
          auto d = ParseDtmi(s);
          std::string nm = d && d->labels.size() == 4 ? d->labels[3] : "";
          bool geo = s.starts_with("dtmi:standard:");
          if (!nm.empty() && std::find(prims.begin(), prims.end(), nm) != prims.end() &&
              (s == PrimitiveId(nm) || (d->major == ctx.version && !d->has_minor)) &&
              (geo || s.starts_with("dtmi:dtdl:instance:Schema:"))) {
            used_primitives_.emplace(PrimitiveId(nm), nm);
            out.push_back(PrimitiveId(nm));
            continue;
          }
        }
      }
      if (!s.starts_with("dtmi:")) {
        Error("badDtmiOrTerm", e.id, p, s,
              e.id + " property '" + p + "' has value '" + s +
                  "' that is neither a valid DTMI reference nor a DTDL v" +
                  std::to_string(ctx.version) + " term");
        continue;
      }
      auto d = ParseDtmi(s);
      if (!d) {
        Error("badDtmiOrTerm", e.id, p, s,
              e.id + " property '" + p + "' has value '" + s + "' that is not a valid DTMI");
        continue;
      }
      if (m.classes.empty()) {  // only primitives allowed (Enum valueSchema, MapKey schema)
        Error("badDtmiOrTerm", e.id, p, s,
              e.id + " property '" + p + "' must name a standard schema");
        continue;
      }
      refs_.push_back({e.id, p, s, m.classes, m.allow_primitive});
      out.push_back(s);
      continue;
    }
    if (item.is_object()) {
      const auto& o = item.get_object();
      if (o.size() == 1 && o.contains("@id")) {
        Error("idReference", e.id, p,
              o.at("@id").is_string() ? std::string(o.at("@id").get_string()) : "",
              e.id + " property '" + p + "' has an inline definition with nothing but '@id'");
        continue;
      }
      std::string child =
          ParseElement(o, ctx, &e, p, multiple, i,
                       m.classes.empty() ? std::vector<Kind>{} : m.classes, depth + 1);
      if (!child.empty()) out.push_back(child);
      continue;
    }
    Error("refNotStringOrObject", e.id, p, {},
          e.id + " property '" + p + "' value is neither an object nor a DTMI reference");
  }
  return out;
}

// A literal member's one value: bare, in a one-element array, or a JSON-LD value object
// {"@value": …, "@type": "xsd:<kind>"}. Reports <kind>MultipleValues, <kind>ObjectNoValue,
// <kind>TypeNot<Title> and <kind>ValueNot<Title> (the JSON type of a value object's @value must
// be `noun`), and returns null then — and for an empty array, which reads as absent. The
// caller checks the bare value's JSON type.
const json::value* ParserImpl::TypedLiteral(Element& e, const std::string& p, const json::value& v,
                                            std::string_view kind, std::string_view title,
                                            std::string_view noun) {
  const json::value* x = &v;
  if (v.is_array() && v.get_array().empty()) return nullptr;  // no value: as if absent
  if (v.is_array()) {
    if (v.get_array().size() != 1) {
      Error(std::string(kind) + "MultipleValues", e.id, p, {},
            e.id + " property '" + p + "' must have one value");
      return nullptr;
    }
    x = &v.get_array()[0];
  }
  if (!x->is_object()) return x;
  const auto& o = x->get_object();
  if (!CheckValueObject(e, p, o)) return nullptr;
  auto val = o.find("@value");
  if (val == o.end()) {
    Error(std::string(kind) + "ObjectNoValue", e.id, p, {}, "no '@value'");
    return nullptr;
  }
  if (auto t = o.find("@type"); t != o.end() && !IsXsdType(t->value(), kind)) {
    Error(std::string(kind) + "TypeNot" + std::string(title), e.id, p, {},
          "'@type' is not xsd:" + std::string(kind));
    return nullptr;
  }
  x = &val->value();
  bool ok = kind == "boolean" ? x->is_bool() : (x->is_int64() || x->is_uint64());
  if (!ok) {
    Error(std::string(kind) + "ValueNot" + std::string(title), e.id, p, {},
          "'@value' is not " + std::string(noun));
    return nullptr;
  }
  return x;
}

void ParserImpl::ParseMember(Element& e, const Member& m, std::string_view /*written*/,
                             const json::value& v, const Ctx& ctx, int depth) {
  std::string p = m.term;
  switch (m.type) {
    case PType::kLangString: {
      LangMap& target = p == "displayName" ? e.display_name : e.description;
      ParseLangString(e, m, v, target);
      break;
    }
    case PType::kString:
    case PType::kName: {
      auto s = RepString(e, p, v, m.type == PType::kName);
      if (!s) break;
      if (m.max_len != 0 && CharCount(*s) > m.max_len) {
        Error("stringTooLong", e.id, p, *s,
              e.id + " property '" + p + "' is longer than " + std::to_string(m.max_len) +
                  " characters");
        break;
      }
      if (m.type == PType::kName && !NameMatches(*s)) {
        Error("stringInvalid", e.id, p, *s,
              e.id + " property '" + p + "' value '" + *s +
                  "' must start with a letter, hold only letters, digits and '_', and not end "
                  "with '_'");
        break;
      }
      if (p == "name") e.name = *s;
      if (p == "comment") e.comment = *s;
      break;
    }
    case PType::kBool: {
      const json::value* x = TypedLiteral(e, p, v, "boolean", "Boolean", "a boolean");
      if (!x) break;
      if (!x->is_bool()) {
        Error("booleanNotBoolean", e.id, p, {},
              e.id + " property '" + p + "' is not a JSON boolean");
        break;
      }
      if (p == "writable") e.writable = x->get_bool();
      if (p == "nullable") e.nullable = x->get_bool();
      break;
    }
    case PType::kInt: {
      const json::value* x = TypedLiteral(e, p, v, "integer", "Integer", "an integer");
      if (!x) break;
      std::int64_t n = 0;
      if (x->is_int64()) {
        n = x->get_int64();
      } else if (x->is_uint64()) {
        n = std::numeric_limits<std::int64_t>::max();
      } else {
        Error("integerNotInteger", e.id, p, {},
              e.id + " property '" + p + "' is not a JSON integer");
        break;
      }
      if (p == "minMultiplicity") e.min_multiplicity = n;
      if (p == "maxMultiplicity") e.max_multiplicity = n;
      break;
    }
    case PType::kIdRef: {
      if (!v.is_string() &&
          !(v.is_array() && v.get_array().size() == 1 && v.get_array()[0].is_string())) {
        Error("identifierNotString", e.id, p, {},
              e.id + " property '" + p + "' must be a DTMI string");
        break;
      }
      auto s = RepString(e, p, v, true);
      if (!s) break;
      auto td = ParseDtmi(*s);
      if (!td || !td->has_version || (ctx.version == 2 && td->has_minor) || td->IsReserved() ||
          !td->fragment.empty()) {
        Error("identifierNotDtmi", e.id, p, *s,
              e.id + " property '" + p + "' value '" + *s + "' is not a valid DTMI");
        break;
      }
      if (s->size() > kMaxDtmiLength) {
        Error("identifierTooLong", e.id, p, *s, "identifier too long");
        break;
      }
      e.target = *s;
      break;
    }
    case PType::kCommandType: {
      auto s = RepString(e, p, v, false);
      if (!s) break;
      std::string vs = std::to_string(ctx.version);
      if (*s != "synchronous" && *s != "asynchronous" &&
          *s != "dtmi:dtdl:instance:CommandType:synchronous;" + vs &&
          *s != "dtmi:dtdl:instance:CommandType:asynchronous;" + vs) {
        Error("identifierInvalid", e.id, p, *s,
              e.id + " property 'commandType' must be 'synchronous' or 'asynchronous'");
        break;
      }
      e.command_type = *s;
      break;
    }
    case PType::kEnumValue: {
      const json::value* x = &v;
      if (v.is_array() && v.get_array().size() == 1) x = &v.get_array()[0];
      if (x->is_object()) {
        const auto& o = x->get_object();
        if (!CheckValueObject(e, p, o)) break;
        auto val = o.find("@value");
        if (val == o.end()) {
          Error("literalNotValid", e.id, p, {}, e.id + " property 'enumValue' has no '@value'");
          break;
        }
        x = &val->value();
        if (auto t = o.find("@type"); t != o.end()) {
          bool is_int = x->is_int64() || x->is_uint64();
          if (IsXsdType(t->value(), "string") && !x->is_string()) {
            Error("stringValueNotString", e.id, p, {}, "'@value' is not a string");
            break;
          }
          if (IsXsdType(t->value(), "integer") && !is_int) {
            Error("integerValueNotInteger", e.id, p, {}, "'@value' is not an integer");
            break;
          }
          if (!IsXsdType(t->value(), "integer") && !IsXsdType(t->value(), "string")) {
            Error("literalNotValid", e.id, p, {},
                  e.id + " property 'enumValue' must be an integer or a string");
            break;
          }
        }
      }
      if (!x->is_string() && !x->is_int64() && !x->is_uint64()) {
        Error("literalNotValid", e.id, p, {},
              e.id + " property 'enumValue' must be an integer or a string");
        break;
      }
      if (x->is_string() && CharCount(x->get_string()) > 512) {
        Error("stringTooLong", e.id, p, std::string(x->get_string()), "enumValue too long");
        break;
      }
      e.enum_value = *x;
      break;
    }
    case PType::kUnit: {
      if (!v.is_string() &&
          !(v.is_array() && v.get_array().size() == 1 && v.get_array()[0].is_string())) {
        Error("identifierNotString", e.id, p, {}, e.id + " property 'unit' must be one unit name");
        break;
      }
      auto s = RepString(e, p, v, true);
      if (!s) break;
      bool term = !s->empty() && std::all_of(s->begin(), s->end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      });
      if (!term && !IsStandardDtmi(*s, "unit", ctx.version)) {
        Error("identifierNotDtmi", e.id, p, *s,
              e.id + " property 'unit' value '" + *s + "' is not a unit");
        break;
      }
      e.unit = *s;
      break;
    }
    case PType::kElements: {
      std::size_t before = errors_.size();
      auto ids = ParseChildren(e, m, v, ctx, depth);
      // Count errors follow the official parser: a required single value that failed is
      // reported (unless the failure was a missing @id, reported on this element already);
      // a minimum count is reported only when the children did not say why.
      bool child_errors = errors_.size() != before;
      bool missing_id = false;
      for (std::size_t i = before; i < errors_.size(); ++i)
        missing_id = missing_id || errors_[i].validation_id.ends_with(":missingRequiredId");
      if (m.required && ids.empty() && !missing_id && (m.single || !child_errors)) {
        std::size_t n = v.is_array() ? v.get_array().size() : 1;
        Error("objectCountBelowMin", e.id, p, {},
              e.id + " property '" + p + "' has " + std::to_string(n) +
                  " values but no valid one, and one is required");
      } else if (m.min_count > 0 && ids.size() < static_cast<std::size_t>(m.min_count) &&
                 !child_errors) {
        Error("objectCountBelowMin", e.id, p, {},
              e.id + " property '" + p + "' has " + std::to_string(ids.size()) +
                  " valid values but " + std::to_string(m.min_count) + " are required");
      }
      if (p == "contents")
        e.contents = ids;
      else if (p == "extends")
        e.extends = ids;
      else if (p == "schemas")
        e.schemas = ids;
      else if (p == "properties")
        e.properties = ids;
      else if (p == "fields")
        e.fields = ids;
      else if (p == "enumValues")
        e.enum_values = ids;
      else if (!ids.empty()) {
        if (p == "schema")
          e.schema = ids[0];
        else if (p == "elementSchema")
          e.element_schema = ids[0];
        else if (p == "valueSchema")
          e.value_schema = ids[0];
        else if (p == "request")
          e.request = ids[0];
        else if (p == "response")
          e.response = ids[0];
        else if (p == "mapKey")
          e.map_key = ids[0];
        else if (p == "mapValue")
          e.map_value = ids[0];
      }
      break;
    }
  }
}

std::string ParserImpl::ParseElement(const json::object& obj, Ctx ctx, const Element* parent,
                                     std::string_view prop, bool multiple, std::size_t index,
                                     const std::vector<Kind>& allowed_in, int depth) {
  std::string pid = parent ? parent->id : std::string();
  std::string p(prop);
  bool nested_version_change = false;
  if (depth > kMaxElementDepth) {
    Error("excessiveDepthWide", pid, p, {},
          "elements are nested more than " + std::to_string(kMaxElementDepth) + " levels deep");
    return {};
  }
  if (elements_.size() >= kMaxElements) {
    Error("excessiveCount", pid, p, {}, "the model holds too many elements");
    return {};
  }
  if (parent != nullptr) {
    if (auto c = obj.find("@context"); c != obj.end()) {
      int outer = ctx.version;
      if (!ParseContext(c->value(), ctx, false)) return {};
      nested_version_change = ctx.version != outer;
    }
  }
  std::vector<Kind> allowed;
  for (Kind k : allowed_in) {
    if (KindInVersion(k, ctx.version)) allowed.push_back(k);
  }

  // --- @type
  std::vector<std::string> types;
  bool types_ok = true;
  if (auto t = obj.find("@type"); t != obj.end()) {
    if (t->value().is_string()) {
      types.emplace_back(t->value().get_string());
    } else if (t->value().is_array()) {
      for (const auto& x : t->value().get_array()) {
        if (!x.is_string()) {
          types_ok = false;
          break;
        }
        types.emplace_back(x.get_string());
      }
    } else {
      types_ok = false;
    }
  }

  // --- @id
  Element e;
  e.dtdl_version = ctx.version;
  e.parent = pid;
  std::optional<Dtmi> id_dtmi;
  if (auto i = obj.find("@id"); i != obj.end()) {
    if (!i->value().is_string() || i->value().get_string().empty()) {
      Error("idNotString", pid, p, {}, "'@id' is empty or not a string");
      return {};
    }
    std::string s(i->value().get_string());
    id_dtmi = ParseDtmi(s);
    if (s.size() > kMaxDtmiLength) {
      Error("idTooLong", {}, {}, s,
            "identifier is longer than " + std::to_string(kMaxDtmiLength) + " characters");
      return {};
    }
    // DTDL v2 requires a major version; v3 also allows a minor version or none.
    bool bad = !id_dtmi || (ctx.version == 2 && (!id_dtmi->has_version || id_dtmi->has_minor));
    if (!bad && !id_dtmi->fragment.empty() && !ctx.layering) bad = true;
    if (!bad && !id_dtmi->fragment.empty()) {
      Error("disallowedIdFragment", s, {}, {}, "identifier '" + s + "' has a fragment");
      return {};
    }
    if (bad || id_dtmi->IsReserved()) {
      Error("invalidId", {}, {}, s,
            "identifier '" + s + "' is invalid for DTDL version " + std::to_string(ctx.version));
      return {};
    }
    if (id_dtmi->labels[0] == "dtdl" || id_dtmi->labels[0] == "standard" ||
        (ctx.iotcentral && id_dtmi->labels[0] == "iotcentral")) {
      Error("reservedId", {}, {}, s, "identifier '" + s + "' begins with a reserved prefix");
      return {};
    }
    e.id = s;
  } else if (parent == nullptr) {
    Error("missingTopLevelId", {}, {}, {}, "top-level element has no '@id'");
    return {};
  } else {
    auto pd = ParseDtmi(pid);
    if (!pd) return {};
    std::string gen = pd->Versionless() + ":_" + p;
    if (multiple) {
      auto n = obj.find("name");
      if (n != obj.end() && n->value().is_string() && NameMatches(n->value().get_string())) {
        gen += ":__" + std::string(n->value().get_string());
      } else {
        gen += ":__" + std::to_string(index);
      }
    }
    e.id = gen + VersionSuffix(*pd);
    if (p == "schemas") {
      Error("missingRequiredId", pid, p, {}, pid + " property 'schemas' element has no '@id'");
      return {};
    }
    if (p == "schema" &&
        std::find(allowed.begin(), allowed.end(), Kind::kInterface) != allowed.end()) {
      Error("missingRequiredId", pid, p, {}, pid + " property 'schema' element has no '@id'");
      return {};
    }
  }

  if (!types_ok) {
    Error("badType", pid, p, {}, e.id + " '@type' is not a string or array of strings", e.id);
    return {};
  }

  // Reserve the id before any child is parsed, so duplicates across nesting are caught.
  if (ids_.contains(e.id)) {
    if (!id_dtmi) {
      // Two siblings with the same name: the name rule reports it; keep both elements.
      auto pd = ParseDtmi(e.id);
      e.id = pd->Versionless() + "_" + std::to_string(index) + VersionSuffix(*pd);
    }
    if (ids_.contains(e.id)) {
      Error("duplicateDefinition", e.id, {}, {}, e.id + " has more than one definition");
      return {};
    }
  }
  ids_.insert(e.id);

  // Classify the types.
  std::optional<Kind> material;
  bool multiple_material = false;
  bool type_error = false;
  bool informal = false;
  std::string vs = std::to_string(ctx.version);
  for (const auto& t : types) {
    std::optional<Kind> k;
    for (Kind cand : kAllKinds) {
      if (!KindInVersion(cand, ctx.version)) continue;
      if (t == KindName(cand) || t == std::string("dtmi:dtdl:class:") + KindName(cand) + ";" + vs)
        k = cand;
    }
    if (k) {
      if (material && *material != *k) multiple_material = true;
      material = k;
      continue;
    }
    if (std::string adj = IotCentralAdjunct(t, ctx); !adj.empty()) {
      e.adjunct_types.push_back(adj);
      continue;
    }
    if (const AdjunctType* a = FindAdjunct(t, ctx)) {
      e.adjunct_types.push_back(AdjunctDtmi(*a, ctx.ext[a->extension]));
      continue;
    }
    if (ctx.quant &&
        (SemanticTypes(ctx.version).contains(t) || IsStandardDtmi(t, "class", ctx.version))) {
      e.supplemental_types.push_back(t);
      continue;
    }
    if (t.starts_with("dtmi:")) {
      if (!ParseDtmi(t)) {
        Error("typeInvalidDtmi", e.id, {}, t, e.id + " @type '" + t + "' is an invalid DTMI");
        type_error = true;
      } else if (ctx.informal && !t.starts_with("dtmi:dtdl:")) {
        informal = true;
      } else {
        Error("typeIrrelevantDtmiOrTerm", e.id, {}, t,
              e.id + " @type '" + t + "' is not a DTDL v" + vs + " type");
        type_error = true;
      }
      continue;
    }
    if (t.find(':') != std::string::npos && ctx.version == 2) {
      informal = true;  // DTDL v2 tolerates IRI co-types
      continue;
    }
    if (t.find(':') != std::string::npos) {
      Error("typeNotDtmiNorTerm", e.id, {}, t,
            e.id + " @type '" + t + "' is an IRI but not a DTMI");
      type_error = true;
      continue;
    }
    if (AbstractOrOtherClass(t, ctx.version)) {
      Error("badType", pid, p, t,
            e.id + " @type '" + t + "' is not a concrete DTDL v" + vs + " class", e.id);
      type_error = true;
      continue;
    }
    if ((ReservedTerms().contains(t) || SemanticTypes(ctx.version).contains(t)) && ctx.informal) {
      informal = true;
      continue;
    }
    if (ReservedTerms().contains(t) || SemanticTypes(ctx.version).contains(t)) {
      Error("typeIrrelevantDtmiOrTerm", e.id, {}, t,
            e.id + " @type '" + t + "' is not a DTDL v" + vs + " material or supplemental type");
      type_error = true;
      continue;
    }
    if (ctx.informal || ctx.version == 2) {
      informal = true;  // DTDL v2 tolerates undefined co-types: the element is informal
      continue;
    }
    Error("typeUndefinedTerm", e.id, {}, t,
          e.id + " @type '" + t + "' is an undefined term in DTDL v" + vs);
    type_error = true;
  }
  if (multiple_material) {
    Error("multipleMaterialTypes", e.id, {}, {}, e.id + " @type names several DTDL classes");
    return {};
  }
  if (!material) {
    if (types.empty()) {
      // Inferred type: only where the member admits exactly one class.
      if (allowed.size() == 1 && allowed[0] != Kind::kInterface) {
        material = allowed[0];
      } else if (parent == nullptr) {
        Error("typeNotRootable", {}, {}, e.id, "top-level element " + e.id + " has no @type");
        return {};
      } else {
        Error("badType", pid, p, {}, e.id + " has no @type", e.id);
        return {};
      }
    } else {
      if (!type_error) Error("badType", pid, p, {}, e.id + " @type names no DTDL class", e.id);
      return {};
    }
  }
  // With a known class but a bad co-type, keep going so member errors are reported too.
  if (parent == nullptr && *material != Kind::kInterface) {
    Error("typeNotRootable", {}, {}, e.id, "top-level element " + e.id + " is not an Interface");
    return {};
  }
  if (std::find(allowed.begin(), allowed.end(), *material) == allowed.end()) {
    Error("badType", pid, p, KindName(*material),
          pid + " property '" + p + "' may not hold a " + KindName(*material), e.id);
    return {};
  }
  e.kind = *material;
  if (!e.supplemental_types.empty() && !UnitAllowed(e.kind, ctx.version)) {
    Error("invalidCotype", e.id, {}, {},
          e.id + " has semantic type " + e.supplemental_types[0] + ", which a " + KindName(e.kind) +
              " may not have");
  }
  for (const auto& a : e.adjunct_types) {
    if (!a.starts_with(kIotCentralPrefix)) continue;
    std::string term = a.substr(22, a.size() - 24);  // "dtmi:iotcentral:class:<term>;2"
    if (ctx.version != 2) {
      Error("invalidCotypeVersion", e.id, {}, {},
            e.id + " has co-type " + term +
                ", which the IoT Central extension defines for DTDL v2 "
                "only");
    } else if (e.kind != Kind::kTelemetry && e.kind != Kind::kProperty) {
      Error("invalidCotype", e.id, {}, {},
            e.id + " has co-type " + term + ", which only a Property or Telemetry may have");
    }
  }
  // Feature-extension adjunct types: the class and DTDL version they may co-type, the adjunct
  // types they need; the members of one that may not stand here are not allowed either.
  std::vector<const AdjunctType*> adjuncts;  // the accepted ones
  for (const auto& t : e.adjunct_types) {
    const AdjunctType* a = AdjunctOf(t);
    if (!a) continue;
    bool class_ok = std::find(a->classes.begin(), a->classes.end(), e.kind) != a->classes.end();
    bool later = std::find(a->later_classes.begin(), a->later_classes.end(), e.kind) !=
                 a->later_classes.end();
    if (std::find(a->rule_classes.begin(), a->rule_classes.end(), e.kind) !=
        a->rule_classes.end()) {
      Error("invalidCotype", e.id, {}, {},
            e.id + " is a " + KindName(e.kind) + ", which may not be co-typed " + a->term);
      class_ok = true;
    }
    if (ctx.version == 2) {
      if (a->v2_also_cotype || !class_ok)
        Error("invalidCotype", e.id, {}, {}, e.id + " may not be co-typed " + a->term);
      if (class_ok || later)
        Error("invalidCotypeVersion", e.id, {}, {},
              e.id + " is co-typed " + a->term + ", which DTDL v2 does not allow");
      continue;
    }
    if (!class_ok) {
      Error("invalidCotype", e.id, {}, {},
            e.id + " is a " + KindName(e.kind) + ", which may not be co-typed " + a->term);
      if (later)
        Error("invalidCotypeVersion", e.id, {}, {},
              e.id + " is co-typed " + a->term + ", which DTDL v3 allows on other classes only");
      continue;
    }
    if (a->requires_cotype && !HasAdjunct(e, a->requires_cotype)) {
      Error("missingCocotype", e.id, {}, {},
            e.id + " is co-typed " + a->term + ", which requires co-type " + a->requires_cotype);
    }
    adjuncts.push_back(a);
  }
  if (!id_dtmi && e.kind == Kind::kInterface) {
    Error("missingRequiredId", pid, p, {}, pid + " property '" + p + "' Interface has no '@id'");
    return {};
  }
  // Observed rules of the official parser: contents may be of either version; otherwise
  // only complex schemas and (component) Interfaces of an earlier version may be embedded.
  if (nested_version_change && p != "contents" &&
      (ctx.version > parent->dtdl_version || p == "extends" ||
       (e.kind != Kind::kInterface && !IsComplexSchema(e.kind)))) {
    Error("disallowedVersionDefinition", pid, p, std::to_string(ctx.version),
          pid + " property '" + p + "' holds an element in another DTDL version");
    return {};
  }
  std::sort(e.supplemental_types.begin(), e.supplemental_types.end());
  e.supplemental_types.erase(std::unique(e.supplemental_types.begin(), e.supplemental_types.end()),
                             e.supplemental_types.end());
  if (e.supplemental_types.size() > 1) {
    Error("conflictingSupplementalTypes", e.id, "unit", {},
          e.id + " has more than one semantic type");
    return {};
  }
  if (id_dtmi && e.kind == Kind::kInterface && e.id.size() > 128) {
    Error("idTooLongForType", {}, {}, e.id, "Interface identifiers are limited to 128 characters");
    return {};
  }

  // --- members
  const auto& members = MembersOf(e.kind, ctx.version);
  std::map<std::string, const json::value*> seen;  // term -> value
  struct AdjunctValueSeen {
    const AdjunctMember* member;
    const AdjunctType* owner;
    const json::value* value;
  };
  std::map<std::string, AdjunctValueSeen> adjunct_seen;
  // A wrong co-type is reported but keeps the element, so that a parent's required member
  // does not read as missing too (the official parser reports only the co-type).
  bool ok = !type_error;
  std::size_t errors_before = errors_.size();
  for (const auto& kv : obj) {
    std::string key(kv.key());
    if (key == "@context" || key == "@id" || key == "@type") continue;
    if (key.starts_with("@")) {
      // DTDL v2 merely recommends against other JSON-LD keywords; v3 forbids them.
      if (ctx.version == 2 && key != "@graph") continue;
      if (parent == nullptr) {
        Error("topLevelKeywordDisallowed", {}, {}, key,
              "top-level object contains '" + key + "', which is not allowed");
      } else {
        Error("keywordDisallowed", pid, p, key, e.id + " has keyword '" + key + "', not allowed");
      }
      ok = false;
      continue;
    }
    std::string term = key;
    std::string prefix = "dtmi:dtdl:property:";
    if (key.starts_with(prefix)) {
      auto semi = key.find(';');
      if (semi != std::string::npos && key.substr(semi + 1) == vs) {
        term = key.substr(prefix.size(), semi - prefix.size());
      }
    }
    const Member* m = nullptr;
    for (const auto& cand : members) {
      if (term == cand.term) m = &cand;
    }
    Member unit{"unit", PType::kUnit};
    if (!m && term == "unit" &&
        ((!e.supplemental_types.empty() && UnitAllowed(e.kind, ctx.version)) || HasUnitAdjunct(e)))
      m = &unit;
    if (!m) {
      const AdjunctMember* am = nullptr;
      const AdjunctType* owner = nullptr;
      for (const AdjunctType* a : adjuncts)
        for (const auto& cand : a->members)
          if (key == cand.term || key == AdjunctDtmi(*a, ctx.ext[a->extension]) + ":" + cand.term) {
            am = &cand;
            owner = a;
          }
      if (am) {
        if (adjunct_seen.contains(am->term)) {
          Error("duplicatePropertyName", e.id, am->term, {},
                e.id + " property '" + std::string(am->term) + "' is given twice");
          ok = false;
        } else {
          adjunct_seen[am->term] = {am, owner, &kv.value()};
        }
        continue;
      }
      // A member of an adjunct type that may not stand here (or whose extension is in effect
      // but not co-typed): no type of the element allows it.
      bool foreign = false;
      for (const auto& t : e.adjunct_types)
        if (const AdjunctType* a = AdjunctOf(t))
          for (const auto& cand : a->members)
            foreign = foreign || key == cand.term;
      if (foreign) {
        Error("noTypeThatAllows", e.id, key, {},
              e.id + " has no @type that allows property '" + key + "'");
        ok = false;
        continue;
      }
      // A member an extension in effect defines, on an element without its adjunct type.
      bool defined = false;
      for (const auto& a : AdjunctTypes())
        if (ctx.ext[a.extension] != 0)
          for (const auto& cand : a.members)
            defined = defined || key == cand.term;
      if (defined) {
        Error("propertyIrrelevantDtmiOrTerm", e.id, key, {},
              e.id + " property '" + key + "' belongs to an adjunct type the element lacks");
        // …and one that another of its adjunct types requires.
        bool required_cotype = false;
        for (const AdjunctType* a : adjuncts)
          if (a->requires_cotype)
            for (const auto& b : AdjunctTypes())
              if (b.term == std::string_view(a->requires_cotype))
                for (const auto& cand : b.members)
                  required_cotype = required_cotype || key == cand.term;
        if (required_cotype)
          Error("noTypeThatAllows", e.id, key, {},
                e.id + " has no @type that allows property '" + key + "'");
        ok = false;
        continue;
      }
    }
    if (m) {
      const json::value& mv = kv.value();
      if (mv.is_null() ||
          (mv.is_array() && !mv.get_array().empty() && mv.get_array()[0].is_null())) {
        Error("propertyValueNull", e.id, key, {}, e.id + " property '" + key + "' is null");
        ok = false;
        continue;
      }
      if (seen.contains(m->term)) {
        Error("duplicatePropertyName", e.id, m->term, {},
              e.id + " property '" + std::string(m->term) + "' is given twice");
        ok = false;
        continue;
      }
      seen[m->term] = &kv.value();
      continue;
    }
    // In DTDL v3 even an informally co-typed element may not have a malformed DTMI or a
    // non-DTMI IRI as a member name.
    bool iri = key.find(':') != std::string::npos;
    bool malformed = ctx.version >= 3 && (key.starts_with("dtmi:") ? !ParseDtmi(key) : iri);
    if (informal && !malformed) continue;
    // Like the official parser, an IRI-named member that no type allows is reported twice:
    // what is wrong with the name, and that no @type of the element allows it.
    auto no_type_allows = [&] {
      Error("noTypeThatAllows", e.id, key, {},
            e.id + " has no @type that allows property '" + key + "'");
    };
    if (key.starts_with("dtmi:")) {
      if (!ParseDtmi(key)) {
        Error("propertyInvalidDtmi", e.id, key, {},
              e.id + " property '" + key + "' is an invalid DTMI");
      } else {
        Error("propertyIrrelevantDtmiOrTerm", e.id, key, {},
              e.id + " property '" + key + "' is not a property of " + KindName(e.kind));
      }
      no_type_allows();
      ok = false;
      continue;
    }
    if (key.find(':') != std::string::npos) {
      Error("propertyNotDtmiNorTerm", e.id, key, {},
            e.id + " property '" + key + "' is an IRI but not a DTMI");
      no_type_allows();
      ok = false;
      continue;
    }
    if (term == "unit" || term == "topUnit" || term == "bottomUnit") {
      Error("noTypeThatAllows", e.id, key, {},
            e.id + " has no @type that allows property '" + key + "'");
      ok = false;
      continue;
    }
    if (ReservedTerms().contains(term)) {
      Error("propertyIrrelevantDtmiOrTerm", e.id, key, {},
            e.id + " property '" + key + "' is not a property of " + KindName(e.kind));
      ok = false;
      continue;
    }
    Error("propertyUndefinedTerm", e.id, key, {},
          e.id + " property '" + key + "' is an undefined term in DTDL v" + vs);
    ok = false;
  }
  partition_[e.id] = (e.kind == Kind::kInterface || parent == nullptr) ? e.id : partition_[pid];
  for (const auto& m : members) {
    auto it = seen.find(m.term);
    if (it == seen.end()) {
      if (m.required) {
        const char* vid =
            m.type == PType::kElements ? "missingObjectProperty" : "missingLiteralProperty";
        Error(vid, e.id, m.term, {}, e.id + " requires property '" + std::string(m.term) + "'");
        ok = false;
      }
      continue;
    }
    ParseMember(e, m, m.term, *it->second, ctx, depth);
  }
  if (!e.supplemental_types.empty() && ctx.version == 2 && !seen.contains("unit") &&
      UnitAllowed(e.kind, ctx.version)) {
    Error("missingSupplementalLiteralProperty", e.id, "unit", {},
          e.id + " has semantic type " + e.supplemental_types[0] + ", which requires 'unit'");
    ok = false;
  }
  if (auto it = seen.find("unit"); it != seen.end()) {
    ParseMember(e, Member{"unit", PType::kUnit}, "unit", *it->second, ctx, depth);
  }
  for (const AdjunctType* a : adjuncts) {
    for (const auto& am : a->members) {
      std::string member_iri = AdjunctDtmi(*a, ctx.ext[a->extension]) + ":" + am.term;
      auto it = adjunct_seen.find(am.term);
      if (it == adjunct_seen.end()) {
        if (am.required)
          Error("missingSupplementalLiteralProperty", e.id, am.term, {},
                e.id + " is co-typed " + a->term + ", which requires '" + am.term + "'");
        continue;
      }
      const json::value& v = *it->second.value;
      if (am.type == AdjunctValue::kInteger) {
        const json::value* x = TypedLiteral(e, member_iri, v, "integer", "Integer", "an integer");
        if (!x) continue;
        if (!x->is_int64()) {
          Error("integerNotInteger", e.id, member_iri, {},
                e.id + " '" + am.term + "' is not an integer");
          continue;
        }
        e.extension_properties[am.term] = *x;
        continue;
      }
      auto str = RepString(e, member_iri, v, true);
      if (!str) continue;
      if (am.type == AdjunctValue::kTopic && !IsTopicPattern(*str)) {
        Error("stringInvalid", e.id, member_iri, *str,
              e.id + " '" + am.term + "' is not an MQTT topic pattern: '" + *str + "'");
        continue;
      }
      if (am.type == AdjunctValue::kDuration && !IsDuration(*str)) {
        Error("durationInvalid", e.id, member_iri, *str,
              e.id + " '" + am.term + "' is not an ISO 8601 duration: '" + *str + "'");
        continue;
      }
      e.extension_properties[am.term] = json::string(*str);
    }
  }
  if (errors_.size() != errors_before) ok = false;
  if (!ok) {
    partition_.erase(e.id);
    return {};
  }
  std::string id = e.id;
  elements_.emplace(id, std::move(e));
  return id;
}

// ---------------------------------------------------------------------------------------
// Pass 2.

void ParserImpl::ResolveReferences() {
  std::set<std::string> asked;
  for (int round = 0; round < kMaxResolverRounds; ++round) {
    std::vector<std::string> missing;
    std::set<std::string> dedup;
    for (const auto& r : refs_) {
      if (!elements_.contains(r.target) && !asked.contains(r.target) &&
          !IsReservedPrefix(r.target) && dedup.insert(r.target).second)
        missing.push_back(r.target);
    }
    if (missing.empty() || !opts_.resolver) break;
    asked.insert(missing.begin(), missing.end());
    auto docs = opts_.resolver(missing);
    if (docs.empty()) break;
    for (const auto& d : docs)
      ParseDocument(d);
  }
  // Identifiers with a reserved prefix are the language's own: one that names nothing is an
  // error, not a model to look for.
  for (const auto& r : refs_) {
    if (elements_.contains(r.target)) continue;
    if (IsReservedPrefix(r.target)) {
      Error("undefinedReservedId", r.source, r.property, {},
            r.source + " property '" + r.property + "' refers to " + r.target +
                ", a reserved identifier that names no element",
            r.target);
    } else {
      unresolved_.insert(r.target);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Pass 3.

void ParserImpl::CheckReferences() {
  for (const auto& r : refs_) {
    auto it = elements_.find(r.target);
    if (it == elements_.end()) continue;
    const Element& t = it->second;
    const Element* src = &elements_.at(r.source);
    bool referenceable = t.kind == Kind::kInterface || top_level_set_.contains(t.id) ||
                         partition_[t.id] == partition_[src->id];
    if (!referenceable) {
      Error("crossPartitionReference", r.source, r.property, partition_[t.id],
            r.source + " property '" + r.property + "' refers to " + t.id +
                ", whose definition is nested within " + partition_[t.id],
            t.id);
      continue;
    }
    if (std::find(r.classes.begin(), r.classes.end(), t.kind) == r.classes.end()) {
      Error("notRequiredType", r.source, r.property, {},
            r.source + " property '" + r.property + "' refers to " + t.id + ", a " +
                KindName(t.kind) + ", which is not allowed here",
            t.id);
    }
  }
}

// Children of an element along the members that form paths (dependent references and
// nested elements), optionally restricted to one member.
void ForEachChild(const Element& e, const std::function<void(const std::string&, const char*)>& f) {
  for (const auto& c : e.contents)
    f(c, "contents");
  for (const auto& c : e.schemas)
    f(c, "schemas");
  for (const auto& c : e.extends)
    f(c, "extends");
  for (const auto& c : e.properties)
    f(c, "properties");
  for (const auto& c : e.fields)
    f(c, "fields");
  for (const auto& c : e.enum_values)
    f(c, "enumValues");
  if (!e.schema.empty()) f(e.schema, "schema");
  if (!e.element_schema.empty()) f(e.element_schema, "elementSchema");
  if (!e.request.empty()) f(e.request, "request");
  if (!e.response.empty()) f(e.response, "response");
  if (!e.map_key.empty()) f(e.map_key, "mapKey");
  if (!e.map_value.empty()) f(e.map_value, "mapValue");
}

void ParserImpl::CheckCycles() {
  // Iterative DFS with colours over every path-forming member: a back edge is a cycle.
  enum Colour : std::uint8_t { kWhite, kGrey, kBlack };
  std::unordered_map<std::string, Colour> colour;
  std::set<std::string> reported;
  for (const auto& [root_id, root] : elements_) {
    if (colour[root_id] != kWhite) continue;
    struct Frame {
      std::string id;
      std::vector<std::pair<std::string, const char*>> children;
      std::size_t next = 0;
    };
    std::vector<Frame> stack;
    auto push = [&](const std::string& id) {
      Frame f{id, {}, 0};
      auto it = elements_.find(id);
      if (it != elements_.end())
        ForEachChild(it->second,
                     [&](const std::string& c, const char* p) { f.children.emplace_back(c, p); });
      colour[id] = kGrey;
      stack.push_back(std::move(f));
    };
    push(root_id);
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.next == f.children.size()) {
        colour[f.id] = kBlack;
        stack.pop_back();
        continue;
      }
      auto [child, prop] = f.children[f.next++];
      if (!elements_.contains(child)) continue;
      Colour c = colour[child];
      if (c == kGrey) {
        if (reported.insert(child).second) {
          std::string p(prop);
          bool narrow = p == "extends";
          Error(narrow ? "recursiveStructureNarrow" : "recursiveStructureWide", child, p, {},
                child + " is at the root of a " + (narrow ? "chain of 'extends'" : "hierarchy") +
                    " that includes itself");
        }
        continue;
      }
      if (c == kWhite) push(child);
    }
  }
}

void ParserImpl::CheckNames() {
  // Flattened contents by name, through extends, with depth and count limits. Cycles were
  // reported already; the walk below keeps a visited set so it terminates regardless.
  for (const auto& [id, e] : elements_) {
    if (e.kind != Kind::kInterface) continue;
    int max_depth = 10;
    // extends depth (longest chain) and total count
    std::unordered_map<std::string, int> depth_of;
    std::function<int(const std::string&, int)> depth_fn = [&](const std::string& x,
                                                               int level) -> int {
      if (level > max_depth + 1) return level;
      auto it = elements_.find(x);
      if (it == elements_.end()) return level;
      int best = level;
      for (const auto& b : it->second.extends)
        best = std::max(best, depth_fn(b, level + 1));
      return best;
    };
    int d = depth_fn(id, 1);
    if (d > max_depth + 1 - 0 && d > 11) {
      Error("excessiveDepthNarrow", id, "'extends'", {},
            id + " is at the root of a chain of 'extends' deeper than " +
                std::to_string(max_depth) + " levels");
    }
    std::set<std::string> visited;
    std::vector<std::string> work = e.extends;
    std::vector<std::string> ancestors;
    while (!work.empty() && visited.size() < 100'000) {
      std::string x = work.back();
      work.pop_back();
      if (!visited.insert(x).second) continue;
      ancestors.push_back(x);
      auto it = elements_.find(x);
      if (it == elements_.end()) continue;
      work.insert(work.end(), it->second.extends.begin(), it->second.extends.end());
    }
    if (e.dtdl_version >= 3 && ancestors.size() > 1024) {
      Error("excessiveCount", id, "extends", {},
            id + " has " + std::to_string(ancestors.size()) +
                " interfaces in its 'extends' hierarchy; at most 1024 are allowed");
    }
    // Own names unique.
    std::map<std::string, std::string> names;
    for (const auto& c : e.contents) {
      auto it = elements_.find(c);
      if (it == elements_.end()) continue;
      if (!names.emplace(it->second.name, c).second) {
        Error(
            "nonUniquePropertyValue", id, "contents", it->second.name,
            id + " property 'contents' has more than one element named '" + it->second.name + "'");
      }
    }
    for (const auto& a : ancestors) {
      auto ai = elements_.find(a);
      if (ai == elements_.end()) continue;
      for (const auto& c : ai->second.contents) {
        auto it = elements_.find(c);
        if (it == elements_.end()) continue;
        auto [pos, inserted] = names.emplace(it->second.name, c);
        if (!inserted && pos->second != c) {
          Error("nonUniqueImportedPropertyValue", id, "contents", it->second.name,
                id + ", because it transitively extends " + a +
                    ", has more than one content named '" + it->second.name + "'",
                a);
        }
      }
    }
    ResolvedInterface r;
    r.id = id;
    r.ancestors = ancestors;
    for (const auto& [n, c] : names) {
      r.contents[n] = c;
      const Element& ce = elements_.at(c);
      if (ce.kind == Kind::kComponent) r.components[n] = ce.schema;
    }
    resolved_[id] = std::move(r);
  }
}

void ParserImpl::CheckElementRules() {
  auto unique_names = [&](const Element& e, const std::vector<std::string>& ids, const char* prop) {
    std::set<std::string> names;
    for (const auto& c : ids) {
      auto it = elements_.find(c);
      if (it == elements_.end()) continue;
      if (!names.insert(it->second.name).second)
        Error("nonUniquePropertyValue", e.id, prop, it->second.name,
              e.id + " property '" + std::string(prop) + "' has more than one element named '" +
                  it->second.name + "'");
    }
  };
  // Complex-schema depth, counted as the official parser does: the number of 'elementSchema' /
  // 'schema' steps below an Array, Map or Object (an Object's fields, a Map's value), at most 5.
  // The step into an Enum or a primitive counts; an Enum adds none of its own.
  std::function<int(const std::string&, int)> schema_depth = [&](const std::string& id,
                                                                 int guard) -> int {
    if (guard > 64) return guard;
    auto it = elements_.find(id);
    if (it == elements_.end()) return 0;
    const Element& s = it->second;
    std::vector<const std::string*> inner;
    if (s.kind == Kind::kArray && !s.element_schema.empty()) inner.push_back(&s.element_schema);
    if (s.kind == Kind::kMap) {
      auto mv = elements_.find(s.map_value);
      if (mv != elements_.end() && !mv->second.schema.empty()) inner.push_back(&mv->second.schema);
    }
    if (s.kind == Kind::kObject) {
      for (const auto& f : s.fields) {
        auto fe = elements_.find(f);
        if (fe != elements_.end() && !fe->second.schema.empty())
          inner.push_back(&fe->second.schema);
      }
    }
    if (inner.empty()) return 0;
    int deepest = 0;
    for (const std::string* c : inner)
      deepest = std::max(deepest, schema_depth(*c, guard + 1));
    return 1 + deepest;
  };
  // Whether a schema contains an Array anywhere (v2 Properties may not).
  std::function<std::string(const std::string&, int)> find_array = [&](const std::string& id,
                                                                       int guard) -> std::string {
    if (guard > 64) return {};
    // Geospatial schemas are arrays underneath (GeoJSON coordinates).
    for (const char* g :
         {"point", "lineString", "polygon", "multiPoint", "multiLineString", "multiPolygon"})
      if (id == PrimitiveId(g)) return id;
    auto it = elements_.find(id);
    if (it == elements_.end()) return {};
    const Element& s = it->second;
    if (s.kind == Kind::kArray) return s.id;

    std::vector<std::string> next;
    if (s.kind == Kind::kMap) {
      auto mv = elements_.find(s.map_value);
      if (mv != elements_.end()) next.push_back(mv->second.schema);
    }
    if (s.kind == Kind::kObject) {
      for (const auto& f : s.fields) {
        auto fe = elements_.find(f);
        if (fe != elements_.end()) next.push_back(fe->second.schema);
      }
    }
    for (const auto& n : next) {
      auto r = find_array(n, guard + 1);
      if (!r.empty()) return r;
    }
    return {};
  };
  for (const auto& [id, e] : elements_) {
    switch (e.kind) {
      case Kind::kInterface:
        break;
      case Kind::kObject:
        unique_names(e, e.fields, "fields");
        break;
      case Kind::kRelationship: {
        unique_names(e, e.properties, "properties");
        if (e.min_multiplicity && *e.min_multiplicity != 0) {
          Error("valueNotExact", id, "minMultiplicity", std::to_string(*e.min_multiplicity),
                id + " property 'minMultiplicity' must be 0");
        }
        if (e.max_multiplicity) {
          if (*e.max_multiplicity < 1)
            Error("valueBelowMin", id, "maxMultiplicity", std::to_string(*e.max_multiplicity),
                  id + " property 'maxMultiplicity' must be at least 1");
          else if (e.dtdl_version == 2 && *e.max_multiplicity > 500)
            Error("valueAboveMax", id, "maxMultiplicity", std::to_string(*e.max_multiplicity),
                  id + " property 'maxMultiplicity' must be at most 500");
        }
        break;
      }
      case Kind::kEnum: {
        unique_names(e, e.enum_values, "enumValues");
        bool is_int = e.value_schema == PrimitiveId("integer");
        bool is_str = e.value_schema == PrimitiveId("string");
        if (!e.value_schema.empty() && !is_int && !is_str) {
          Error("notRequiredValue", id, "valueSchema", e.value_schema,
                id + " property 'valueSchema' must be 'integer' or 'string'");
        }
        std::set<std::string> values;
        for (const auto& v : e.enum_values) {
          auto it = elements_.find(v);
          if (it == elements_.end()) continue;
          const auto& ev = it->second.enum_value;
          if ((is_int && !ev.is_int64() && !ev.is_uint64()) || (is_str && !ev.is_string())) {
            Error("nonConformantDatatype", v, "enumValue", json::serialize(ev),
                  v + " property 'enumValue' does not match the Enum's valueSchema", id);
          }
          if (!values.insert(json::serialize(ev)).second)
            Error("nonUniquePropertyValue", id, "enumValues", json::serialize(ev),
                  id + " property 'enumValues' has more than one element with enumValue " +
                      json::serialize(ev));
        }
        break;
      }
      case Kind::kMapKey: {
        if (!e.schema.empty() && e.schema != PrimitiveId("string")) {
          Error("notRequiredValue", id, "schema", e.schema, id + " MapKey schema must be 'string'");
        }
        break;
      }
      case Kind::kTelemetry:
      case Kind::kProperty:
      case Kind::kCommandRequest:
      case Kind::kCommandResponse:
      case Kind::kField: {
        if (!e.supplemental_types.empty() && !e.schema.empty()) {
          std::string prim;
          if (e.schema.starts_with("dtmi:dtdl:instance:Schema:")) {
            auto d = ParseDtmi(e.schema);
            if (d && d->labels.size() == 4) prim = d->labels[3];
          }
          if (!IsNumericPrimitive(prim)) {
            Error("notRequiredType", id, "schema", {},
                  id + " has a semantic type, so its schema must be numeric", e.schema);
          }
        }
        if (!e.schema.empty()) CheckIotCentralSchema(e);
        if (e.kind == Kind::kProperty && e.dtdl_version == 2 && !e.schema.empty()) {
          auto arr = find_array(e.schema, 0);
          if (!arr.empty())
            Error("excludedType", id, "'schema'", {},
                  id + " contains Array " + arr + ", which DTDL v2 Properties may not", arr);
        }
        break;
      }
      case Kind::kComponent: {
        auto it = elements_.find(e.schema);
        if (it != elements_.end()) {
          for (const auto& c : it->second.contents) {
            auto ci = elements_.find(c);
            if (ci != elements_.end() && ci->second.kind == Kind::kComponent)
              Error("excludedType", id, "'schema'", {},
                    id + " refers to " + e.schema + ", which itself contains Component " + c +
                        "; components may not nest",
                    c);
          }
        }
        break;
      }
      default:
        break;
    }
    if (IsComplexSchema(e.kind)) {
      // Only report at the outermost schema of a chain.
      bool outermost = true;
      auto pi = elements_.find(e.parent);
      if (pi != elements_.end()) {
        Kind pk = pi->second.kind;
        if (IsComplexSchema(pk) || pk == Kind::kField || pk == Kind::kMapValue) outermost = false;
      }
      if (outermost) {
        int d = schema_depth(id, 0);
        if (d > 5)
          Error("excessiveDepthWide", id, {}, {},
                id + " is at the root of a schema hierarchy deeper than 5 levels");
      }
    }
  }
}

// The schema each IoT Central adjunct type requires: State an Enum; Event a numeric schema or
// string; Location a geospatial schema or geopoint; VelocityVector and AccelerationVector a
// vector.
void ParserImpl::CheckIotCentralSchema(const Element& e) {
  const Element* schema = nullptr;
  if (auto it = elements_.find(e.schema); it != elements_.end()) schema = &it->second;
  auto prim = [&]() -> std::string {
    if (!e.schema.starts_with("dtmi:dtdl:instance:Schema:")) return {};
    auto d = ParseDtmi(e.schema);
    return d && d->labels.size() == 4 ? d->labels[3] : std::string();
  };
  for (const auto& a : e.adjunct_types) {
    if (a == "dtmi:iotcentral:class:State;2" && !(schema && schema->kind == Kind::kEnum)) {
      Error("notRequiredType", e.id, "schema", {},
            e.id + " is a State, so its schema must be an Enum", e.schema);
    } else if (a == "dtmi:iotcentral:class:Event;2" && !IsNumericPrimitive(prim()) &&
               prim() != "string") {
      Error("notRequiredType", e.id, "schema", {},
            e.id + " is an Event, so its schema must be numeric or string", e.schema);
    } else if (a == "dtmi:iotcentral:class:Location;2") {
      bool ok = e.schema == "dtmi:iotcentral:schema:geopoint;2";
      for (const char* g :
           {"point", "lineString", "polygon", "multiPoint", "multiLineString", "multiPolygon"})
        ok = ok || e.schema == PrimitiveId(g);
      if (!ok)
        Error("notRequiredValue", e.id, "schema", {},
              e.id + " is a Location, so its schema must be geospatial or geopoint", e.schema);
    } else if (IsVectorAdjunct(a) && e.schema != "dtmi:iotcentral:schema:vector;2") {
      Error("notRequiredValue", e.id, "schema", {},
            e.id + " is a " + a.substr(22, a.size() - 24) + ", so its schema must be vector",
            e.schema);
    }
  }
}

void ParserImpl::CheckModel() {
  CheckReferences();
  CheckCycles();
  if (!errors_.empty()) return;  // depth/name walks assume an acyclic, typed model
  CheckNames();
  CheckElementRules();
  CheckExtensionRules();
}

// Rules of the feature extensions that look beyond one element: what a ValueAnnotation
// annotates (a Property or Telemetry of the same Interface, own or inherited, that is not an
// annotation itself; one that is absent is allowed), Indexed indices unique among an
// Interface's contents, a Transparent request or response whose schema is an Object.
void ParserImpl::CheckExtensionRules() {
  std::set<std::string> reported;
  for (const auto& [iid, ri] : resolved_) {
    std::map<std::int64_t, std::string> indices;
    std::set<std::pair<std::string, std::string>> overridden;  // (element, property)
    for (const auto& [name, cid] : ri.contents) {
      const Element& c = elements_.at(cid);
      if (HasAdjunct(c, "ValueAnnotation")) {
        auto at = c.extension_properties.find("annotates");
        if (at == c.extension_properties.end() || !at->second.is_string()) continue;
        auto target = ri.contents.find(std::string(at->second.get_string()));
        if (target == ri.contents.end() || reported.contains(cid)) continue;
        const Element& t = elements_.at(target->second);
        if (t.kind != Kind::kProperty && t.kind != Kind::kTelemetry) {
          reported.insert(cid);
          Error("notSiblingRequiredType", cid, "annotates", t.name,
                cid + " annotates '" + t.name + "', which is a " + KindName(t.kind) +
                    ", not a Property or Telemetry",
                t.id);
        } else if (HasAdjunct(t, "ValueAnnotation")) {
          reported.insert(cid);
          Error("disallowedType", cid, "annotates", t.name,
                cid + " annotates '" + t.name + "', which is itself a ValueAnnotation", t.id);
        } else if (auto ov = c.extension_properties.find("overrides");
                   HasAdjunct(c, "Override") && ov != c.extension_properties.end() &&
                   ov->second.is_string()) {
          // Override: the annotated element's extension property it stands for, with the
          // schema of that property's type; one Override per element and property.
          std::string prop(ov->second.get_string());
          if (!overridden.emplace(t.id, prop).second) {
            Error("multipleReference", iid, "contents", prop,
                  iid + " has more than one Override of '" + prop + "' of " + t.id, t.id);
          } else if (!reported.insert(cid).second) {
          } else if (prop == "unit" && t.supplemental_types.empty()) {
            Error("noMatchingSupplementalProperty", cid, "annotates", prop,
                  cid + " overrides '" + prop + "', which " + t.id + " does not have", t.id);
          } else if (prop == "unit") {
            std::string want = UnitTypeId(UnitTypeOf(t.supplemental_types[0]));
            if (c.schema != want)
              Error("siblingPropertyMismatch", cid, "schema", c.schema,
                    cid + " overrides the unit of " + t.id + ", so its schema must be " +
                        UnitTypeOf(t.supplemental_types[0]),
                    t.id);
          } else if (MembersOfTermExists(t, prop)) {
            Error("matchingPropertyNotSupplemental", cid, "annotates", prop,
                  cid + " overrides '" + prop + "', which is not an extension property", t.id);
          } else {
            Error("noMatchingSupplementalProperty", cid, "annotates", prop,
                  cid + " overrides '" + prop + "', which " + t.id + " does not have", t.id);
          }
        }
      }
    }
    const Element& iface = elements_.at(iid);
    for (const auto& cid : iface.contents) {
      auto ci = elements_.find(cid);
      if (ci == elements_.end()) continue;  // unresolved
      const Element& c = ci->second;
      auto ix = c.extension_properties.find("index");
      if (!HasAdjunct(c, "Indexed") || ix == c.extension_properties.end() || !ix->second.is_int64())
        continue;
      auto [pos, inserted] = indices.emplace(ix->second.get_int64(), cid);
      if (!inserted)
        Error("nonUniquePropertyValue", iid, "contents", std::to_string(ix->second.get_int64()),
              iid + " property 'contents' has more than one element with index " +
                  std::to_string(ix->second.get_int64()),
              cid);
    }
  }
  for (const auto& [id, e] : elements_) {
    if (!HasAdjunct(e, "Transparent") || e.schema.empty()) continue;
    auto it = elements_.find(e.schema);
    if (it == elements_.end() || it->second.kind != Kind::kObject)
      Error("notRequiredType", id, "schema", {},
            id + " is Transparent, so its schema must be an Object", e.schema);
  }
}

}  // namespace

ParseResult Parse(const std::vector<std::string>& documents, const ParseOptions& options) {
  ParseResult out;
  try {
    ParserImpl p(options);
    return p.Run(documents);
  } catch (const std::exception& e) {
    out.errors.push_back({"dtmi:dtdl:parsingError:internal",
                          {},
                          {},
                          {},
                          {},
                          std::string("internal error: ") + e.what()});
  }
  return out;
}

ParseResult ParserImpl::Run(const std::vector<std::string>& documents) {
  for (const auto& d : documents)
    ParseDocument(d);
  std::size_t submitted = top_level_.size();
  ResolveReferences();
  ParseResult out;
  if (errors_.empty()) CheckModel();
  out.errors = std::move(errors_);
  out.unresolved.assign(unresolved_.begin(), unresolved_.end());
  if (!out.errors.empty() || !out.unresolved.empty()) return out;
  for (const auto& [pid, name] : used_primitives_) {
    Element p;
    p.id = pid;
    p.kind = Kind::kPrimitive;
    p.name = name;
    elements_.emplace(p.id, std::move(p));
  }
  out.model.elements = std::move(elements_);
  out.model.top_level = std::move(top_level_);
  out.model.submitted_top_level = submitted;
  out.model.interfaces = std::move(resolved_);
  return out;
}

}  // namespace orrery::dtdl
