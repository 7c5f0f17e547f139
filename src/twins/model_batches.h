// The upload order of a set of DTDL models: batches of at most `max_batch` Interfaces (ADT
// takes 250 per POST /models), each referencing only models of itself and earlier batches,
// so that a large ontology (RealEstateCore: 767 Interfaces) uploads whole. Used by
// `orrery dt model add` and by import jobs.
//
// A model depends on another when any string in it (but relationship targets, which may form
// cycles and need not exist, and "@id"s) names an "@id" the other defines. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <vector>

#include <boost/json/value.hpp>

namespace orrery::twins {

// Dependency order, stable in input order; models in a cycle go last (the parser then reports
// the cycle).
std::vector<std::vector<boost::json::value>> ModelBatches(std::vector<boost::json::value> models,
                                                          size_t max_batch);

}  // namespace orrery::twins
