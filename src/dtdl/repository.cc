#include "dtdl/repository.h"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <vector>

#include "base/files.h"
#include "dtdl/dtmi.h"

namespace orrery::dtdl {
namespace fs = std::filesystem;

std::string DtmiToRepositoryPath(std::string_view dtmi) {
  auto d = ParseDtmi(dtmi);
  if (!d || !d->has_version || !d->fragment.empty()) return {};
  std::string out;
  out.reserve(dtmi.size() + 5);
  for (char c : dtmi) {
    if (c == ':') {
      out += '/';
    } else if (c == ';') {
      out += '-';
    } else {
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  return out + ".json";
}

bool IsModelRepository(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir / "dtmi", ec);
}

namespace {

// The repository's files by relative path, read once each: a dependency such as a device
// information interface is asked for by thousands of models.
class FileCache {
 public:
  explicit FileCache(fs::path root) : root_(std::move(root)) {}

  // The text of root/rel, or null when it does not exist or cannot be read.
  const std::string* Get(const std::string& rel) {
    auto it = texts_.find(rel);
    if (it != texts_.end()) return it->second.get();
    std::unique_ptr<std::string> text;
    std::error_code ec;
    fs::path p = root_ / rel;
    if (fs::is_regular_file(p, ec)) {
      auto r = files::ReadFile(p, kMaxDocumentBytes);
      if (r) text = std::make_unique<std::string>(std::move(*r));
    }
    return texts_.emplace(rel, std::move(text)).first->second.get();
  }

 private:
  fs::path root_;
  std::unordered_map<std::string, std::unique_ptr<std::string>> texts_;
};

}  // namespace

RepositoryStats LoadRepository(
    const fs::path& root, const std::function<void(const fs::path&, const ParseResult&)>& on_file,
    const ParseOptions& options) {
  RepositoryStats stats;
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root / "dtmi", ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".json")
      files.push_back(fs::relative(it->path(), root));
  }
  std::sort(files.begin(), files.end());
  FileCache cache(root);
  for (const auto& rel : files) {
    ++stats.files;
    const std::string* text = cache.Get(rel.generic_string());
    if (!text) {
      ParseResult r;
      r.errors.push_back({"dtmi:dtdl:parsingError:notJsonObject",
                          {},
                          {},
                          {},
                          {},
                          "cannot read " + (root / rel).string()});
      ++stats.files_with_errors;
      on_file(rel, r);
      continue;
    }
    stats.bytes += text->size();
    ParseOptions opts = options;
    std::size_t supplied = 0;
    opts.resolver = [&cache, &supplied](const std::vector<std::string>& ids) {
      std::vector<std::string> docs;
      for (const auto& id : ids) {
        std::string path = DtmiToRepositoryPath(id);
        if (path.empty()) continue;
        if (const std::string* dep = cache.Get(path)) docs.push_back(*dep);
      }
      supplied += docs.size();
      return docs;
    };
    ParseResult r = Parse({*text}, opts);
    stats.dependency_documents += supplied;
    if (!r.ok()) ++stats.files_with_errors;
    stats.interfaces += r.model.submitted_top_level;
    on_file(rel, r);
  }
  return stats;
}

}  // namespace orrery::dtdl
