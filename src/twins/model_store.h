// The digital twins model store: DTDL Interfaces as uploaded, validated as a set, durable in
// the state store (keyspace "dt.model"), with Azure Digital Twins' model life cycle —
// add a batch (all-or-nothing), get, list with dependenciesFor, decommission, delete while
// nothing references the model.
//
//   ORRERY_ASSIGN_OR_RETURN(auto store, ModelStore::Open(kv, {}, now_ms));
//   auto added = store->Add({model_json, …});          // → ModelRecords, or ADT's errors
//   auto page = store->List({.dependencies_for = {"dtmi:ex:Room;1"}}, "", 100);
//
// Validation: a batch is parsed together with the stored models it references (resolved
// through the parser's resolver, transitively), so a model may extend or use models uploaded
// earlier or in the same batch, and an upload never leaves a reference dangling.
//
// Thread safety: every method is safe from any thread; one mutex serialises changes (so two
// uploads cannot both claim one id). Add, Decommission and Delete block until the change is
// durable (an fsync): call them off the I/O threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "base/error.h"
#include "dtdl/model.h"
#include "store/kv_store.h"

namespace orrery::twins {

struct ModelLimits {
  size_t max_models = 10'000;         // stored models (ADT's default limit)
  size_t max_batch = 250;             // models per upload (ADT's limit)
  size_t max_model_bytes = 1 << 20;   // one model's JSON (ADT: 1 MB)
  size_t max_dependencies_for = 250;  // ids in one dependenciesFor list
};

struct ModelRecord {
  std::string id;
  boost::json::value definition;  // the Interface as uploaded
  dtdl::LangMap display_name;     // from the definition; "en" for a plain string
  dtdl::LangMap description;
  int64_t upload_time_ms = 0;
  bool decommissioned = false;
  // The stored models this one needs: what it extends and its components' Interfaces (DTDL
  // forbids references into another Interface's schemas). Relationship targets are not
  // dependencies (DTDL lets them be absent).
  std::vector<std::string> dependencies;
};

struct ListOptions {
  // Empty: every model. Otherwise these models and everything they depend on, transitively;
  // an id that is not stored is kModelNotFound.
  std::vector<std::string> dependencies_for;
};

class ModelStore {
 public:
  static Result<std::unique_ptr<ModelStore>> Open(store::KvStore* store, ModelLimits limits,
                                                  std::function<int64_t()> now_ms);

  // Validates `models` (each one Interface object) together with the stored models they
  // reference and stores them all, or none. Errors: kInvalidArgument (not an Interface
  // object, no @id), kLimitExceeded (batch, size, count), kModelAlreadyExists (every id that
  // exists, in the message), kDtdlParserError (`details`, when given, then gets one line per
  // DTDL error or unresolved reference), kModelVersionNotSupported.
  Result<std::vector<ModelRecord>> Add(const std::vector<boost::json::value>& models,
                                       std::vector<std::string>* details = nullptr);

  std::optional<ModelRecord> Get(std::string_view id) const;
  // A model's version without copying its definition: (upload time, decommissioned).
  struct Stamp {
    int64_t upload_time_ms = 0;
    bool decommissioned = false;
  };
  std::optional<Stamp> GetStamp(std::string_view id) const;
  // Models in id order after `after`, at most `max`. Errors: kModelNotFound for an unknown
  // dependenciesFor id, kLimitExceeded for too many of them.
  Result<std::vector<ModelRecord>> List(const ListOptions& options, std::string_view after,
                                        size_t max) const;
  // Marks a model decommissioned (no new twins may use it); decommissioning twice is fine.
  Status Decommission(std::string_view id);
  // Deletes a model no other stored model depends on (kModelReferencesNotDeleted otherwise).
  Status Delete(std::string_view id);
  size_t size() const;

  // JSON texts of the stored definitions of `ids` that exist (for parsers resolving
  // references, e.g. twin validation).
  std::vector<std::string> Definitions(const std::vector<std::string>& ids) const;

 private:
  ModelStore(store::KvStore* store, ModelLimits limits, std::function<int64_t()> now_ms);
  Status Load();

  store::KvStore* store_;
  ModelLimits limits_;
  std::function<int64_t()> now_ms_;
  mutable std::mutex mu_;
  std::map<std::string, ModelRecord, std::less<>> models_;  // guarded by mu_
  // id -> ids of the stored models that depend on it; guarded by mu_
  std::map<std::string, std::vector<std::string>, std::less<>> dependents_;
};

// The record's JSON as the models REST API returns it (DigitalTwinsModelData):
// {"id","displayName","description","uploadTime","decommissioned"[,"model"]}.
boost::json::object ToModelData(const ModelRecord& r, bool include_definition);

}  // namespace orrery::twins
