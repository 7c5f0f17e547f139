// `orrery dt model validate FILE|DIR …`: the DTDL linter. Every *.json file named, or found
// under a named directory, is read and the whole set is parsed as one model (references
// between files resolve); each error is printed on one line as
//   <file>: <ValidationID>: <message> [<element id>]
// and a last line sums up. A directory laid out as a model repository (it has a "dtmi" folder,
// like Azure/iot-plugandplay-models) is validated the way the repository's tooling does it
// instead: each file as one model, its dependencies resolved from the repository by DTMI path
// (see repository.h). Exit status: 0 valid, 1 errors or unresolved references, 2 usage (nothing
// to read, an unreadable file).
//
// Thread safety: none needed (a command).
#pragma once

#include <cstdio>
#include <filesystem>
#include <vector>

namespace orrery::dtdl {

int ValidateFiles(const std::vector<std::filesystem::path>& paths, std::FILE* out, std::FILE* err);

}  // namespace orrery::dtdl
