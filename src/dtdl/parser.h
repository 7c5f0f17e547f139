// DTDL v2/v3 parser and validator.
//
// Input: a set of JSON-LD documents (each an Interface object or an array of them). Output:
// either a validated Model or the list of parsing errors, each naming the ValidationID the
// official DTDL parser (DTDLParser for .NET) reports, e.g.
// "dtmi:dtdl:parsingError:nonUniquePropertyValue".
//
// Bounds: documents are limited in size (kMaxDocumentBytes) and JSON nesting (kMaxJsonDepth);
// element nesting, extends chains and component chains are walked with explicit limits and
// cycle checks, so no input can recurse without bound. Parse never throws.
//
// Thread safety: a Parser holds only options; Parse may be called from several threads on
// distinct Parser objects, or concurrently on one if the resolver is thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dtdl/model.h"

namespace orrery::dtdl {

inline constexpr std::size_t kMaxDocumentBytes = 16 * 1024 * 1024;
inline constexpr int kMaxJsonDepth = 200;

struct ParsingError {
  std::string validation_id;  // full DTMI, e.g. "dtmi:dtdl:parsingError:invalidId"
  std::string primary_id;     // element the error is about, empty when none
  std::string secondary_id;   // a second element involved, empty when none
  std::string property;       // offending member name, empty when none
  std::string value;          // offending value, empty when none
  std::string message;        // for people
};

// Called with identifiers the submitted documents reference but do not define; returns the
// JSON texts of documents that define (some of) them. Called repeatedly until nothing new
// is needed or it returns nothing new.
using Resolver = std::function<std::vector<std::string>(const std::vector<std::string>& ids)>;

// Whether extension contexts this parser does not know are accepted. Elements using terms
// from them are then "informally co-typed" and their unknown members are not errors. The
// default accepts them in DTDL v2 documents only, which is what the conformance corpus's
// cases without options expect.
enum class UndefinedExtensions { kAllowInV2, kAllow, kDisallow };

struct ParseOptions {
  UndefinedExtensions undefined_extensions = UndefinedExtensions::kAllowInV2;
  int max_dtdl_version = 3;  // contexts above this are refused (disallowedContextVersion)
  Resolver resolver;         // optional
};

struct ParseResult {
  Model model;                       // meaningful only when errors is empty
  std::vector<ParsingError> errors;  // empty when the model is valid
  // Identifiers that are referenced but were neither submitted nor supplied by the resolver.
  std::vector<std::string> unresolved;
  // Valid and complete: no errors and nothing unresolved.
  bool ok() const { return errors.empty() && unresolved.empty(); }
};

// Parses and validates `documents` (JSON texts) as one model.
ParseResult Parse(const std::vector<std::string>& documents, const ParseOptions& options = {});

}  // namespace orrery::dtdl
