// The DTDL object model produced by the parser: elements by identifier, each with the
// members DTDL defines for its class, plus the resolved (flattened) view of each Interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

namespace orrery::dtdl {

// The material classes of DTDL v2/v3 and the standard (primitive) schemas.
enum class Kind {
  kInterface,
  kTelemetry,
  kProperty,
  kCommand,
  kCommandPayload,   // v2 request/response
  kCommandRequest,   // v3
  kCommandResponse,  // v3
  kRelationship,
  kComponent,
  kArray,
  kEnum,
  kEnumValue,
  kMap,
  kMapKey,
  kMapValue,
  kObject,
  kField,
  kPrimitive,  // a standard schema such as "double" (id "dtmi:dtdl:instance:Schema:double;2")
};

const char* KindName(Kind k);

// A language map: language code -> text. A plain string is stored under "en".
using LangMap = std::map<std::string, std::string>;

// One element. Members that do not apply to its kind stay empty. References to other
// elements (schema, contents, ...) hold element ids, which are keys of Model::elements.
struct Element {
  std::string id;
  Kind kind = Kind::kInterface;
  int dtdl_version = 3;
  std::vector<std::string> supplemental_types;  // e.g. "Temperature" (semantic types)
  // Co-types from language extensions, as DTMIs ("dtmi:iotcentral:class:State;2", …).
  std::vector<std::string> adjunct_types;
  // Their members, by term ("annotates", "ttl", "index", …).
  std::map<std::string, boost::json::value> extension_properties;
  std::string parent;  // structural parent id; empty at top level
  std::string name;
  LangMap display_name;
  LangMap description;
  std::string comment;
  std::string schema;  // Telemetry, Property, CommandPayload, Field, MapKey/Value, Component

  // Interface
  std::vector<std::string> extends;
  std::vector<std::string> contents;
  std::vector<std::string> schemas;

  std::optional<bool> writable;  // Property, Relationship
  std::string unit;              // with a semantic type

  // Relationship
  std::string target;  // an Interface DTMI; need not be defined (non-dependent reference)
  std::optional<std::int64_t> min_multiplicity, max_multiplicity;
  std::vector<std::string> properties;

  // Command
  std::string request, response;
  std::string command_type;
  std::optional<bool> nullable;  // v3 request/response

  // Complex schemas
  std::string element_schema;  // Array
  std::string map_key, map_value;
  std::vector<std::string> fields;  // Object
  std::string value_schema;         // Enum: integer or string primitive id
  std::vector<std::string> enum_values;
  boost::json::value enum_value;  // EnumValue: integer or string
};

// Everything an Interface offers once `extends` is followed: contents by name (own first,
// then inherited, each name once), the components among them and all extended interfaces.
struct ResolvedInterface {
  std::string id;
  std::map<std::string, std::string> contents;    // name -> content element id
  std::map<std::string, std::string> components;  // name -> Interface id of the component
  std::vector<std::string> ancestors;             // every Interface reached through extends
};

struct Model {
  std::map<std::string, Element> elements;  // includes standard schemas that were used
  // Ids of the top-level Interfaces in input order: those of the submitted documents first
  // (submitted_top_level of them), then those of documents the resolver supplied.
  std::vector<std::string> top_level;
  std::size_t submitted_top_level = 0;
  std::map<std::string, ResolvedInterface> interfaces;

  const Element* Find(const std::string& id) const {
    auto it = elements.find(id);
    return it == elements.end() ? nullptr : &it->second;
  }
};

}  // namespace orrery::dtdl
