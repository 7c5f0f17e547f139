// The twin graph: digital twins and the relationships between them, validated against their
// DTDL models (from the ModelStore), with Azure Digital Twins' JSON shapes, etags and JSON
// Patch semantics, held in memory and written through to the state store.
//
//   graph->PutTwin("room1", twin_json, /*if_none_match=*/"", done);   // done(Result<object>)
//   graph->PatchTwin("room1", patch_array, /*if_match=*/etag, done);  // done(Result<etag>)
//   graph->PutRelationship("room1", "r1", rel_json, "", done);
//
// Shapes: a twin is {"$dtId","$etag","$metadata":{"$model","$lastUpdateTime",
// "<property>":{"lastUpdateTime"[,"sourceTime"]}}, <properties>, <component>:{"$metadata":
// {…}, <properties>}}; a relationship is {"$relationshipId","$etag","$sourceId",
// "$relationshipName","$targetId", <properties>}.
//
// Validation: every member that does not start with '$' must be a Property of the model (or
// of a component's Interface) with a value of its schema (primitives with their ranges and
// formats, Enum values, Object fields, Map values, Arrays), every Component must be present (an
// object with "$metadata"), string values are at most 4 KB; a relationship's name must be a
// Relationship of the source's model whose target (when it names one) the target twin is of,
// its properties those of the Relationship, within maxMultiplicity. A twin is at most 32 KB.
//
// Indexes (for queries, through Read's GraphView): adjacency both ways, the model index and a
// property index of every top-level primitive property value, kept per changed member.
//
// Durability: a change completes — and `done` runs — only once it is durable (the store's
// group commit), so an acknowledged change survives kill -9. Keyspaces "dt.twin" (by id)
// and "dt.rel" (by source id, '\x1f', relationship id).
//
// Thread safety: every method is safe from any thread; one mutex guards the maps and is held
// while a change is queued to the store (which keeps per-key write order). `done` runs on the
// store's writer thread, or on the caller's for an immediate refusal.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "base/error.h"
#include "store/kv_store.h"
#include "twins/graph_view.h"

namespace orrery::twins {

class ModelStore;

struct TwinLimits {
  size_t max_twins = 2'000'000;              // ADT's default
  size_t max_twin_bytes = 32 << 10;          // a twin's JSON (ADT: 32 KB)
  size_t max_string_bytes = 4 << 10;         // a string property value (ADT: 4 KB)
  size_t max_property_name_bytes = 1 << 10;  // ADT: 1 KB
  size_t max_outgoing = 50'000;              // relationships from one twin (ADT)
  size_t max_incoming = 50'000;              // relationships to one twin (ADT)
  size_t max_relationships = 20'000'000;     // in the graph (ADT's default)
  size_t max_patch_operations = 1000;
};

template <class T>
using Done = std::function<void(Result<T>)>;

// A change the graph made, as Azure Digital Twins notifies it (docs/twins.md, "Event routes").
struct GraphChange {
  enum class Kind {
    kTwinCreate,
    kTwinUpdate,
    kTwinDelete,
    kRelationshipCreate,
    kRelationshipUpdate,
    kRelationshipDelete,
  };
  Kind kind = Kind::kTwinCreate;
  std::string twin_id;          // the twin, or the relationship's source
  std::string relationship_id;  // relationships only
  std::string model_id;         // the twin's model (the source twin's, for relationships)
  // ADT's notification body: the twin or relationship (create; delete: as it was), or
  // {"modelId", "patch": [JSON Patch operations]} for an update.
  boost::json::object data;
  int64_t time_ms = 0;
};

// Sees every change (notifications). The outbox pattern: OnChange adds its record to the
// change's own batch, so the record is durable exactly when the change is.
class ChangeObserver {
 public:
  virtual ~ChangeObserver() = default;
  // Runs under the graph's lock, in change order, before the change's batch is queued; it
  // may add to `batch`. Answers a ticket for OnCommitted. Must not block or call the graph.
  virtual uint64_t OnChange(GraphChange change, store::WriteBatch& batch) = 0;
  // Once the batch is durable (`ok`) or failed, on the store's writer thread, before the
  // change's `done` runs.
  virtual void OnCommitted(uint64_t ticket, bool ok) = 0;
};

class TwinGraph {
 public:
  static Result<std::unique_ptr<TwinGraph>> Open(store::KvStore* store, const ModelStore* models,
                                                 TwinLimits limits,
                                                 std::function<int64_t()> now_ms);
  ~TwinGraph();

  // Sets who sees every change. Call before the first change; `observer` must outlive the
  // graph (nullptr: nobody).
  void SetObserver(ChangeObserver* observer);

  // Creates or replaces a twin from `body` ({"$metadata":{"$model":…}, properties…}).
  // `if_none_match` "*" refuses an existing twin (kPreconditionFailed). Answers the stored twin.
  void PutTwin(std::string id, boost::json::object body, std::string if_none_match,
               Done<boost::json::object> done);
  Result<boost::json::object> GetTwin(std::string_view id) const;
  // Applies a JSON Patch (add, replace, remove; paths into properties and components, and
  // replace of /$metadata/$model) atomically; `if_match` empty, "*" or the current etag.
  // Answers the new etag.
  void PatchTwin(std::string id, boost::json::array patch, std::string if_match,
                 Done<std::string> done);
  // Refused (kRelationshipsNotDeleted) while it has outgoing or incoming relationships.
  void DeleteTwin(std::string id, std::string if_match, Done<void> done);
  // A component: {"$metadata":{…}, properties…}. kComponentNotFound when the model has none of
  // that name.
  Result<boost::json::object> GetComponent(std::string_view id, std::string_view component) const;
  void PatchComponent(std::string id, std::string component, boost::json::array patch,
                      std::string if_match, Done<std::string> done);

  void PutRelationship(std::string source, std::string rel_id, boost::json::object body,
                       std::string if_none_match, Done<boost::json::object> done);
  Result<boost::json::object> GetRelationship(std::string_view source,
                                              std::string_view rel_id) const;
  void PatchRelationship(std::string source, std::string rel_id, boost::json::array patch,
                         std::string if_match, Done<std::string> done);
  void DeleteRelationship(std::string source, std::string rel_id, std::string if_match,
                          Done<void> done);
  // Outgoing relationships of `source` (those named `name` when not empty) in id order after
  // `after`, at most `max`; kDigitalTwinNotFound for an unknown source.
  Result<std::vector<boost::json::object>> ListRelationships(std::string_view source,
                                                             std::string_view name,
                                                             std::string_view after,
                                                             size_t max) const;
  // Incoming relationships of `target`: {"$relationshipId","$sourceId","$relationshipName",
  // "$relationshipLink"}, ordered by (source, id) after the `after` key, at most `max`. The
  // key of an entry (for paging) is IncomingKey(entry).
  Result<std::vector<boost::json::object>> ListIncoming(std::string_view target,
                                                        std::string_view after, size_t max) const;
  static std::string IncomingKey(const boost::json::object& entry);

  // The model of twin `id`, and that of its component `component` (kDigitalTwinNotFound,
  // kComponentNotFound).
  Result<std::string> ModelOf(std::string_view id) const;
  Result<std::string> ComponentModel(std::string_view id, std::string_view component) const;

  size_t twin_count() const;
  size_t relationship_count() const;

  // Runs `f` with a consistent view of the whole graph (queries). The graph's lock is held
  // meanwhile — changes wait — so `f` must be bounded; it must not call the graph.
  void Read(const std::function<void(const GraphView&)>& f) const;

  struct Impl;  // internal (public so that the .cc's view over it can name it)

 private:
  explicit TwinGraph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::twins
