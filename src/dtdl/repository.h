// DTDL model repositories: the layout of Azure/iot-plugandplay-models and of the Azure IoT
// models repository client (ModelsRepositoryClient, dmr-client). Each model is one file at the
// path its DTMI maps to ("dtmi2path"): the segments lower-cased, ':' → '/', ';' → '-', plus
// ".json", under the repository root — "dtmi:com:Example:Thermostat;1" →
// "dtmi/com/example/thermostat-1.json".
//
// What loading a repository means, the way the repository's own tooling validates it: every file
// is one model, parsed on its own, and the identifiers it references but does not define are
// resolved from the repository by their path, recursively (the official parser's resolver
// callback). A repository is not one model: successive versions of a model routinely define the
// same nested element identifiers (an Enum with an @id in r700-13.json and again in
// r700-131.json), and the official parser reports duplicateDefinition for any element defined
// twice in one parse, identical or not. A reference that no file's path answers stays
// unresolved, as it does for the repository client.
//
// Thread safety: LoadRepository may run concurrently on distinct or the same roots (it only
// reads files).
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "dtdl/parser.h"

namespace orrery::dtdl {

// "dtmi:com:Example:Thermostat;1" → "dtmi/com/example/thermostat-1.json"; empty when `dtmi` is
// not a DTMI with a version (or has a fragment), which no repository file can hold.
std::string DtmiToRepositoryPath(std::string_view dtmi);

// Whether `dir` is laid out as a model repository: it has a "dtmi" folder.
bool IsModelRepository(const std::filesystem::path& dir);

struct RepositoryStats {
  std::size_t files = 0;                 // model files parsed (each one Parse)
  std::size_t bytes = 0;                 // their total size
  std::size_t interfaces = 0;            // top-level Interfaces of the files themselves
  std::size_t files_with_errors = 0;     // files whose parse reported errors or left ids unresolved
  std::size_t dependency_documents = 0;  // documents the resolver supplied, all files together
};

// Parses every *.json file under root/dtmi (in path order) as one model each, resolving missing
// identifiers from the repository, and calls on_file(relative path, result) for each. Returns the
// totals; a file that cannot be read is reported through on_file as a parse error
// (notJsonObject) so that nothing is skipped silently.
RepositoryStats LoadRepository(
    const std::filesystem::path& root,
    const std::function<void(const std::filesystem::path&, const ParseResult&)>& on_file,
    const ParseOptions& options = {});

}  // namespace orrery::dtdl
