// What the ADT query engine reads of the twin graph: twins and relationships in Azure
// Digital Twins' JSON shapes (see twin_graph.h), the adjacency both ways, and model
// inheritance for IS_OF_MODEL. TwinGraph implements it over its maps; tests implement it over
// plain vectors.
//
// Thread safety: an implementation answers under its own lock or over a snapshot; callbacks
// must not call back into the view. Visiting stops when a callback returns false.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

namespace orrery::twins {

class GraphView {
 public:
  virtual ~GraphView() = default;
  using Visit = std::function<bool(const boost::json::object&)>;

  // Every twin, in $dtId order.
  virtual void ForEachTwin(const Visit& visit) const = 0;
  // The twins whose $metadata.$model is `model_id` or (unless `exact`) extends it, in $dtId
  // order: the model index.
  virtual void ForEachTwinOfModel(std::string_view model_id, bool exact,
                                  const Visit& visit) const = 0;
  // One twin, or nullptr. The pointer is valid during the current ForEach… call or query.
  virtual const boost::json::object* Twin(std::string_view id) const = 0;
  // Every relationship, in (source, id) order.
  virtual void ForEachRelationship(const Visit& visit) const = 0;
  // Relationships from `source` (named `name` when not empty), in relationship id order.
  virtual void ForEachOutgoing(std::string_view source, std::string_view name,
                               const Visit& visit) const = 0;
  // Relationships to `target` (named `name` when not empty), in (source, id) order.
  virtual void ForEachIncoming(std::string_view target, std::string_view name,
                               const Visit& visit) const = 0;
  // Whether a twin of model `twin_model` is of `model_id`: equal, or (unless `exact`) an
  // Interface it extends, directly or not.
  virtual bool IsOfModel(std::string_view twin_model, std::string_view model_id,
                         bool exact) const = 0;
};

}  // namespace orrery::twins
