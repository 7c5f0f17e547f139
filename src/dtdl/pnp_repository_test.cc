// The IoT Plug and Play model repository (Azure/iot-plugandplay-models, 19,255 files, in
// ../shared/data/dtdl/iot-plugandplay-models.tar.gz) loads as a model repository: every file
// valid, each with its dependencies resolved from the repository (see repository.h for what a
// repository load is). The tarball is extracted with the system's tar into a temporary folder;
// the test is skipped when it is absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "dtdl/parser.h"
#include "dtdl/repository.h"

namespace orrery::dtdl {
namespace {

namespace fs = std::filesystem;

fs::path DataDir() {
  fs::path src = std::getenv("ORRERY_SOURCE_DIR")
                     ? fs::path(std::getenv("ORRERY_SOURCE_DIR"))
                     : fs::path(__FILE__).parent_path().parent_path().parent_path();
  return src / ".." / "shared" / "data" / "dtdl";
}

TEST(DtdlPlugAndPlay, EveryModelOfTheRepositoryLoads) {
  fs::path tarball = DataDir() / "iot-plugandplay-models.tar.gz";
  if (!fs::is_regular_file(tarball))
    GTEST_SKIP() << "IoT Plug and Play models not found at " << tarball;
  fs::path tmp = fs::temp_directory_path() / ("orrery-pnp-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  auto t0 = std::chrono::steady_clock::now();
  std::string cmd = "tar xzf '" + tarball.string() + "' -C '" + tmp.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  fs::path root = tmp / "iot-plugandplay-models";
  ASSERT_TRUE(IsModelRepository(root)) << root << " has no dtmi folder";
  auto t1 = std::chrono::steady_clock::now();
  std::size_t reported = 0;
  RepositoryStats stats = LoadRepository(root, [&](const fs::path& rel, const ParseResult& r) {
    if (r.ok() || reported++ >= 20) return;
    for (std::size_t i = 0; i < r.errors.size() && i < 3; ++i)
      ADD_FAILURE() << rel << ": " << r.errors[i].validation_id << " " << r.errors[i].primary_id
                    << ": " << r.errors[i].message;
    for (std::size_t i = 0; i < r.unresolved.size() && i < 3; ++i)
      ADD_FAILURE() << rel << ": unresolved " << r.unresolved[i];
  });
  auto t2 = std::chrono::steady_clock::now();
  fs::remove_all(tmp);
  EXPECT_EQ(stats.files_with_errors, 0u);
  EXPECT_GE(stats.files, 19'000u);
  EXPECT_EQ(stats.interfaces, stats.files);  // one root Interface per file
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << "iot-plugandplay-models: " << stats.files << " files (" << stats.bytes / 1024
            << " KiB), " << stats.interfaces << " interfaces, " << stats.dependency_documents
            << " dependency loads; extracted in " << ms(t1 - t0) << " ms, loaded in " << ms(t2 - t1)
            << " ms\n";
}

}  // namespace
}  // namespace orrery::dtdl
