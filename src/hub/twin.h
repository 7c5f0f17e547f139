// Device and module twins: tags, desired and reported properties with `$version` and per-leaf
// `$metadata` (`$lastUpdated`, and `$lastUpdatedVersion` for desired), patch semantics and
// IoT Hub's limits.
//
// Design note. A section (desired or reported) keeps its values and, beside them, a metadata
// tree that mirrors the values' object structure: every node holds "$lastUpdated" (ISO 8601,
// stored as the wire shows it) and, for desired, "$lastUpdatedVersion"; its
// other members are the child nodes, keyed like the values (property names never contain
// '$', so the two cannot clash). A patch merges recursively: an object merges into an object,
// null removes a member, anything else replaces. Every node on the path to a changed leaf
// gets the patch's time (and version). Sizes follow IoT Hub's accounting (keys and string
// values by their UTF-8 length, numbers 8 bytes, booleans 4, objects the sum of their
// members) and are checked *before* a patch is applied, from the delta it would cause, so a
// refused patch leaves the twin untouched and an accepted one is applied in place without
// copying the section.
//
// Not thread-safe: the registry serialises access to one twin.
#pragma once

#include <cstdint>
#include <string>

#include <boost/json/object.hpp>

#include "base/error.h"
#include "hub/identity.h"

namespace orrery::hub {

struct TwinLimits {
  size_t tags_bytes = 8 * 1024;
  size_t desired_bytes = 32 * 1024;
  size_t reported_bytes = 32 * 1024;
  size_t max_depth = 10;           // nesting of objects below a section's root
  size_t max_key_bytes = 1024;     // one property name
  size_t max_string_bytes = 4096;  // one string value
};

struct TwinSection {
  boost::json::object values;
  boost::json::object metadata;  // the mirror tree described above
  int64_t version = 1;           // "$version"
  size_t size = 0;               // IoT Hub size of `values`, kept current
};

struct Twin {
  boost::json::object tags;
  TwinSection desired, reported;
  uint64_t version = 1;       // the twin's "version": every change increments it
  uint64_t etag_counter = 1;  // the twin's etag; changes with tags and desired
  std::string model_id;       // from the device's MQTT username (IoT Plug and Play)
  size_t tags_size = 0;

  std::string etag() const;  // "AAAAAAAAAAE=": base64 of the 8-byte big-endian counter
};

enum class SectionKind { kTags, kDesired, kReported };

// Checks that `patch` is a valid patch for that part of the twin (names, depth, value sizes)
// and that applying it keeps the part within its size limit. kInvalidArgument or kTooLarge
// with IoT Hub-like messages ("... exceeds the 32768-byte limit of desired properties").
// Top-level "$version" and "$metadata" members are read-only and ignored, as IoT Hub does
// when a client sends back a twin it read.
Status CheckPatch(const Twin& twin, SectionKind kind, const boost::json::object& patch,
                  const TwinLimits& limits);

// Applies a checked patch: merges values, updates metadata at `now_ms`, increments the
// section's `$version` (desired/reported) and the twin's version (and etag unless reported).
// Returns the applied patch as the device sees it (read-only members removed).
// REQUIRES: CheckPatch(twin, kind, patch, limits) succeeded.
boost::json::object ApplyPatch(Twin& twin, SectionKind kind, const boost::json::object& patch,
                               int64_t now_ms);

// Replaces tags and/or desired properties wholesale (PUT /twins/{id}): `replacement` is a
// twin object; its "tags" and "properties.desired" (when present) become the new content.
// Returns the patch to push to the device (the new desired values plus null for every
// top-level property that went away) or an empty object when desired did not change.
// Checks like CheckPatch first; nothing changes on error.
Result<boost::json::object> ReplaceTwin(Twin& twin, const boost::json::object& replacement,
                                        const TwinLimits& limits, int64_t now_ms);

// A section with "$metadata" (ISO times) and "$version", for the service API.
boost::json::object SectionToServiceJson(const TwinSection& s, bool desired);
// A section with "$version" only, for the device (MQTT twin GET).
boost::json::object SectionToDeviceJson(const TwinSection& s);

// The device's view of its twin: {"desired":{...,"$version":n},"reported":{...}}.
boost::json::object TwinToDeviceJson(const Twin& twin);
// The service API's twin document (wire contract §4.4), also what device queries run over:
// as JSON text (what responses send, built without copying the twin) and as an object.
std::string SerializeServiceTwin(const Identity& id, const IdentityRuntime& rt, const Twin& twin);
boost::json::object TwinToServiceJson(const Identity& id, const IdentityRuntime& rt,
                                      const Twin& twin);

// Storage encoding.
std::string EncodeTwin(const Twin& twin);
Result<Twin> DecodeTwin(std::string_view bytes);

// IoT Hub's size of a JSON value (see the design note).
size_t TwinValueSize(const boost::json::value& v);

}  // namespace orrery::hub
