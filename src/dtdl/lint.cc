#include "dtdl/lint.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/files.h"
#include "dtdl/parser.h"
#include "dtdl/repository.h"

namespace orrery::dtdl {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// "dtmi:a:b;1" → "dtmi:a:b": nested elements' generated ids extend it ("dtmi:a:b:_contents:…").
std::string Unversioned(std::string_view id) {
  auto semi = id.rfind(';');
  return std::string(semi == std::string_view::npos ? id : id.substr(0, semi));
}

void TopLevelIds(const json::value& v, std::vector<std::string>& out) {
  auto add = [&](const json::value& x) {
    if (!x.is_object()) return;
    if (auto* id = x.get_object().if_contains("@id"); id && id->is_string()) {
      out.emplace_back(id->get_string());
    }
  };
  if (v.is_array()) {
    for (auto& x : v.get_array())
      add(x);
  } else {
    add(v);
  }
}

// A model repository: each file validated as one model with its dependencies resolved from the
// repository (see repository.h). An error is printed once, against the first file whose
// validation met it (a broken dependency fails every model that uses it, but is one error).
// Returns the number of files that failed.
std::size_t ValidateRepository(const fs::path& root, std::FILE* out, std::FILE* err) {
  std::set<std::string> printed;
  std::size_t done = 0;
  auto stats = LoadRepository(root, [&](const fs::path& rel, const ParseResult& r) {
    std::string file = (root / rel).string();
    std::size_t fresh = 0;
    auto print = [&](const std::string& line) {
      if (!printed.insert(line).second) return;
      fmt::print(out, "{}: {}\n", file, line);
      ++fresh;
    };
    for (const auto& e : r.errors) {
      std::string where = e.primary_id.empty() ? "" : " [" + e.primary_id + "]";
      print(fmt::format("{}: {}{}", e.validation_id, e.message, where));
    }
    for (const auto& id : r.unresolved) {
      std::string path = DtmiToRepositoryPath(id);
      print(fmt::format(
          "unresolved reference: {} is used but no file of the repository defines it ({})", id,
          path.empty() ? "not a model identifier" : path));
    }
    if (!r.ok() && fresh == 0)
      fmt::print(out, "{}: invalid: a dependency's errors, listed above\n", file);
    if (++done % 1000 == 0) fmt::print(err, "validated {} files\n", done);
  });
  if (stats.files_with_errors == 0) {
    fmt::print(out, "{}: {} model files, {} interfaces, {} dependency loads: valid\n",
               root.string(), stats.files, stats.interfaces, stats.dependency_documents);
  } else {
    fmt::print(out, "{}: {} model files, {} with errors or unresolved references\n", root.string(),
               stats.files, stats.files_with_errors);
  }
  return stats.files_with_errors;
}

}  // namespace

int ValidateFiles(const std::vector<fs::path>& paths, std::FILE* out, std::FILE* err) {
  // Model repositories (a dtmi/ tree) are validated the way their tooling does; everything
  // else named is one set.
  std::vector<fs::path> plain;
  std::size_t repositories = 0, failed_repository_files = 0;
  for (auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec) && IsModelRepository(p)) {
      ++repositories;
      failed_repository_files += ValidateRepository(p, out, err);
    } else {
      plain.push_back(p);
    }
  }
  auto found = files::FindFiles(plain, ".json");
  if (!found) {
    fmt::print(err, "orrery: {}\n", found.error().message());
    return 2;
  }
  std::vector<fs::path> files = std::move(*found);
  if (files.empty() && repositories > 0) return failed_repository_files == 0 ? 0 : 1;
  if (files.empty()) {
    fmt::print(err, "orrery: no .json files to validate\n");
    return 2;
  }
  std::vector<std::string> docs;
  std::vector<std::pair<std::string, std::string>> owners;  // unversioned id → file
  docs.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    auto text = files::ReadFile(files[i], kMaxDocumentBytes);
    if (!text) {
      fmt::print(err, "orrery: {}: {}\n", files[i].string(), text.error().message());
      return 2;
    }
    boost::system::error_code ec;
    auto v = json::parse(*text, ec);
    if (!ec) {
      std::vector<std::string> ids;
      TopLevelIds(v, ids);
      for (auto& id : ids)
        owners.emplace_back(Unversioned(id), files[i].string());
    }
    docs.push_back(std::move(*text));
    if (files.size() >= 1000 && (i + 1) % 1000 == 0) {
      fmt::print(err, "read {}/{} files\n", i + 1, files.size());
    }
  }
  // Longest prefix first, so "dtmi:a:b:c" wins over "dtmi:a:b".
  std::sort(owners.begin(), owners.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  auto file_of = [&](const std::string& element) -> std::string {
    if (files.size() == 1) return files.front().string();
    std::string u = Unversioned(element);
    for (auto& [prefix, file] : owners) {
      if (u == prefix || (u.size() > prefix.size() && u.compare(0, prefix.size(), prefix) == 0 &&
                          u[prefix.size()] == ':')) {
        return file;
      }
    }
    return "(model)";
  };
  auto r = Parse(docs);
  for (auto& e : r.errors) {
    std::string where = e.primary_id.empty() ? "" : " [" + e.primary_id + "]";
    fmt::print(out, "{}: {}: {}{}\n", file_of(e.primary_id), e.validation_id, e.message, where);
  }
  for (auto& id : r.unresolved)
    fmt::print(out, "(model): unresolved reference: {} is used but defined in no file\n", id);
  size_t problems = r.errors.size() + r.unresolved.size();
  if (problems == 0) {
    fmt::print(out, "{} files, {} interfaces: valid\n", files.size(), r.model.interfaces.size());
    return failed_repository_files == 0 ? 0 : 1;
  }
  fmt::print(out, "{} files: {} errors, {} unresolved references\n", files.size(), r.errors.size(),
             r.unresolved.size());
  return 1;
}

}  // namespace orrery::dtdl
