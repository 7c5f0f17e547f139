// bench/dtdl: the DTDL parser on the real corpora, on one core — parse + validate + resolve.
//
//   rec        RealEstateCore v3 (767 files) parsed as one model, as Azure Digital Twins loads
//              an ontology: every round reads the same in-memory texts.
//   pnp        the IoT Plug and Play model repository (19,255 files) loaded as a repository: each
//              file one Parse, its dependencies resolved from the repository (in memory, so the
//              figure is the parser's, not the disk's).
//   pnp-disk   the same through LoadRepository from the extracted folder (what `orrery dt model
//              validate` costs on a warm page cache).
//
// Figures: files/s, MB/s of model text, models (top-level Interfaces)/s. No peer runs here (the
// official parser is .NET, which this machine does not have, and no published figure for it was
// found); the figures are for tracking. Usage:
//   dtdl_bench [--data DIR] [--rounds N]
// DIR holds realestatecore-building/ and iot-plugandplay-models.tar.gz (default
// ../shared/data/dtdl next to the source tree); the tarball is extracted with the system's tar
// into a temporary folder, removed at the end.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "base/files.h"
#include "dtdl/parser.h"
#include "dtdl/repository.h"

using namespace orrery;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Corpus {
  std::vector<std::string> paths;  // relative, generic form
  std::vector<std::string> texts;
  std::size_t bytes = 0;
};

Corpus ReadAll(const fs::path& root, const fs::path& under) {
  Corpus c;
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root / under))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto t = files::ReadFile(f, dtdl::kMaxDocumentBytes);
    if (!t) continue;
    c.bytes += t->size();
    c.paths.push_back(fs::relative(f, root).generic_string());
    c.texts.push_back(std::move(*t));
  }
  return c;
}

void Report(const char* name, std::size_t files, std::size_t bytes, std::size_t models,
            double seconds, int rounds) {
  double per_round = seconds / rounds;
  fmt::print(
      "{:<9} {:>8.0f} files/s  {:>7.1f} MB/s  {:>8.0f} models/s  ({} files, {:.1f} MB, {} "
      "models; {:.0f} ms per load, best of {})\n",
      name, files / per_round, bytes / per_round / 1e6, models / per_round, files, bytes / 1e6,
      models, per_round * 1e3, rounds);
}

template <class F>
double Best(int rounds, F&& f) {
  double best = 1e30;
  for (int i = 0; i < rounds; ++i) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path data = fs::path(ORRERY_SOURCE_DIR_DEFAULT) / ".." / "shared" / "data" / "dtdl";
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) {
      data = argv[++i];
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      fmt::print(stderr, "usage: dtdl_bench [--data DIR] [--rounds N]\n");
      return 2;
    }
  }
  fmt::print("DTDL parse + validate + resolve, 1 thread (of {} cores), best of {} rounds\n\n",
             std::thread::hardware_concurrency(), rounds);
  int status = 0;

  // RealEstateCore: one model of 767 documents.
  fs::path rec = data / "realestatecore-building";
  if (fs::is_directory(rec / "Ontology")) {
    Corpus c = ReadAll(rec, "Ontology");
    std::size_t models = 0;
    double s = Best(rounds, [&] {
      auto r = dtdl::Parse(c.texts);
      if (!r.ok()) status = 1;
      models = r.model.top_level.size();
    });
    Report("rec", c.texts.size(), c.bytes, models, s, rounds);
  } else {
    fmt::print("rec       skipped: {} not found\n", rec.string());
  }

  // The IoT Plug and Play repository.
  fs::path tarball = data / "iot-plugandplay-models.tar.gz";
  if (!fs::is_regular_file(tarball)) {
    fmt::print("pnp       skipped: {} not found\n", tarball.string());
    return status;
  }
  fs::path tmp = fs::temp_directory_path() / ("orrery-dtdl-bench-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  std::string cmd = "tar xzf '" + tarball.string() + "' -C '" + tmp.string() + "'";
  if (std::system(cmd.c_str()) != 0) {
    fmt::print(stderr, "cannot extract {}\n", tarball.string());
    fs::remove_all(tmp);
    return 1;
  }
  fs::path root = tmp / "iot-plugandplay-models";
  Corpus c = ReadAll(root, "dtmi");
  std::unordered_map<std::string, const std::string*> by_path;
  for (std::size_t i = 0; i < c.paths.size(); ++i)
    by_path[c.paths[i]] = &c.texts[i];
  std::size_t models = 0, failed = 0;
  double s = Best(rounds, [&] {
    models = failed = 0;
    dtdl::ParseOptions opts;
    opts.resolver = [&](const std::vector<std::string>& ids) {
      std::vector<std::string> docs;
      for (const auto& id : ids)
        if (auto it = by_path.find(dtdl::DtmiToRepositoryPath(id)); it != by_path.end())
          docs.push_back(*it->second);
      return docs;
    };
    for (const auto& text : c.texts) {
      auto r = dtdl::Parse({text}, opts);
      models += r.model.submitted_top_level;
      failed += !r.ok();
    }
  });
  Report("pnp", c.texts.size(), c.bytes, models, s, rounds);
  std::size_t disk_models = 0;
  double sd = Best(rounds, [&] {
    auto stats = dtdl::LoadRepository(root, [](const fs::path&, const dtdl::ParseResult&) {});
    disk_models = stats.interfaces;
    failed += stats.files_with_errors;
  });
  Report("pnp-disk", c.texts.size(), c.bytes, disk_models, sd, rounds);
  fs::remove_all(tmp);
  if (failed != 0) {
    fmt::print(stderr, "{} repository files did not load\n", failed);
    status = 1;
  }
  return status;
}
