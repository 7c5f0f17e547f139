// The real ontologies in ../shared/data/dtdl parse as one model each, without errors:
// RealEstateCore v3, Smart Cities and Energy Grid (skipped when the data is absent).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "dtdl/parser.h"

namespace orrery::dtdl {
namespace {

namespace fs = std::filesystem;

fs::path DataDir() {
  fs::path src = std::getenv("ORRERY_SOURCE_DIR")
                     ? fs::path(std::getenv("ORRERY_SOURCE_DIR"))
                     : fs::path(__FILE__).parent_path().parent_path().parent_path();
  return src / ".." / "shared" / "data" / "dtdl";
}

// Every .json file under dir/Ontology (the repositories' model folders).
std::vector<std::string> LoadOntology(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir / "Ontology"))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::string> docs;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    docs.push_back(ss.str());
  }
  return docs;
}

void ExpectOntologyLoads(const std::string& name, std::size_t min_interfaces) {
  fs::path dir = DataDir() / name;
  if (!fs::is_directory(dir / "Ontology")) GTEST_SKIP() << name << " not found at " << dir;
  auto docs = LoadOntology(dir);
  ParseResult r = Parse(docs);
  for (std::size_t i = 0; i < r.errors.size() && i < 20; ++i)
    ADD_FAILURE() << r.errors[i].validation_id << " " << r.errors[i].primary_id << ": "
                  << r.errors[i].message;
  for (std::size_t i = 0; i < r.unresolved.size() && i < 20; ++i)
    ADD_FAILURE() << "unresolved " << r.unresolved[i];
  EXPECT_TRUE(r.ok()) << r.errors.size() << " errors, " << r.unresolved.size() << " unresolved";
  EXPECT_GE(r.model.interfaces.size(), min_interfaces);
  std::cout << name << ": " << docs.size() << " documents, " << r.model.interfaces.size()
            << " interfaces, " << r.model.elements.size() << " elements\n";
}

TEST(DtdlOntologies, RealEstateCore) {
  ExpectOntologyLoads("realestatecore-building", 700);
}
TEST(DtdlOntologies, SmartCities) {
  ExpectOntologyLoads("smartcities", 10);
}
TEST(DtdlOntologies, EnergyGrid) {
  ExpectOntologyLoads("energygrid", 10);
}

}  // namespace
}  // namespace orrery::dtdl
