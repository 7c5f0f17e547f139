// `orrery asa run`: the real binary runs Stream Analytics queries over JSON and CSV files and
// writes each output as JSON Lines; errors are one line naming the file (and line, column).
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "test/support/process.h"

namespace orrery {
namespace {
using testing::LineCount;
using testing::OrreryBinary;
using testing::Process;
using testing::TempDir;
namespace fs = std::filesystem;
namespace json = boost::json;

struct Ran {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Ran Asa(const fs::path& cwd, std::vector<std::string> args) {
  std::vector<std::string> argv = {OrreryBinary(), "asa", "run"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Process::Spawn(argv, {}, cwd);
  auto code = p->Wait(std::chrono::seconds(60));
  return {code.value_or(-1), p->output()};
}

void Write(const fs::path& p, std::string_view text) {
  std::ofstream(p) << text;
}

std::vector<json::value> JsonLines(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in.good()) << p;
  std::vector<json::value> out;
  std::string line;
  while (std::getline(in, line))
    out.push_back(json::parse(line));
  return out;
}

bool Has(const Ran& r, std::string_view text) {
  return r.out.find(text) != std::string::npos;
}

TEST(AsaRunCli, WindowsAndFiltersIntoOutputFiles) {
  TempDir dir("asa-run");
  Write(dir.path() / "query.asaql", R"(
-- per-device averages and alerts
SELECT deviceId, AVG(temp) AS avgTemp, COUNT(*) AS n, System.Timestamp() AS windowEnd
INTO averages FROM telemetry TIMESTAMP BY time
GROUP BY deviceId, TumblingWindow(second, 10)

SELECT deviceId, temp INTO alerts FROM telemetry TIMESTAMP BY time WHERE temp > 30
)");
  Write(dir.path() / "telemetry.csv",
        "deviceId,temp,time\n"
        "a,20,2026-01-01T00:00:01Z\n"
        "a,40,2026-01-01T00:00:05Z\n"
        "b,25.5,2026-01-01T00:00:07Z\n"
        "a,30,2026-01-01T00:00:12Z\n");
  auto r = Asa(dir.path(), {"query.asaql", "--input", "telemetry=telemetry.csv"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(Has(r, "4 events")) << r.out;
  EXPECT_TRUE(Has(r, "out/averages.json: 3 rows")) << r.out;
  auto averages = JsonLines(dir.path() / "out/averages.json");
  ASSERT_EQ(averages.size(), 3u);
  EXPECT_EQ(averages[0].at("windowEnd"), "2026-01-01T00:00:10.0000000Z");
  for (const auto& row : averages) {
    if (row.at("deviceId") == "a" && row.at("n") == 2) {
      EXPECT_EQ(row.at("avgTemp"), 30);
    }
    if (row.at("deviceId") == "b") {
      EXPECT_EQ(row.at("avgTemp"), 25.5);
    }
  }
  EXPECT_EQ(JsonLines(dir.path() / "out/alerts.json"),
            (std::vector<json::value>{json::object{{"deviceId", "a"}, {"temp", 40}}}));
}

TEST(AsaRunCli, JoinsStreamsAndReferenceData) {
  TempDir dir("asa-run-join");
  Write(dir.path() / "q.asaql", R"(
SELECT I1.LicensePlate, R.Owner, DATEDIFF(minute, I1.EntryTime, I2.ExitTime) AS minutes
INTO trips
FROM Entry I1 TIMESTAMP BY EntryTime
JOIN [Exit] I2 TIMESTAMP BY ExitTime
  ON I1.LicensePlate = I2.LicensePlate AND DATEDIFF(minute, I1, I2) BETWEEN 0 AND 15
LEFT JOIN Registration R ON I1.LicensePlate = R.LicensePlate
)");
  Write(dir.path() / "entry.json",
        "{\"LicensePlate\":\"A\",\"EntryTime\":\"2026-01-01T00:00:00Z\"}\n"
        "{\"LicensePlate\":\"B\",\"EntryTime\":\"2026-01-01T00:01:00Z\"}\n");
  Write(dir.path() / "exit.csv",
        "LicensePlate,ExitTime\nA,2026-01-01T00:07:00Z\nB,2026-01-01T00:30:00Z\n");
  Write(dir.path() / "registration.csv", "LicensePlate,Owner\nA,Contoso\n");
  auto r = Asa(dir.path(), {"q.asaql", "--input", "Entry=entry.json", "--input", "Exit=exit.csv",
                            "--reference", "Registration=registration.csv"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(JsonLines(dir.path() / "out/trips.json"),
            (std::vector<json::value>{
                json::object{{"LicensePlate", "A"}, {"Owner", "Contoso"}, {"minutes", 7}}}));
  // Without --reference, Registration would be a stream: the JOIN needs a time bound.
  r = Asa(dir.path(), {"q.asaql", "--input", "Entry=entry.json", "--input", "Exit=exit.csv"});
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(Has(r, "is 'Registration' reference data?")) << r.out;
}

TEST(AsaRunCli, JsonInputsToStdoutAndPolicies) {
  TempDir dir("asa-run-json");
  Write(dir.path() / "q.asaql", "SELECT id, System.Timestamp() AS t FROM input TIMESTAMP BY ts");
  Write(dir.path() / "in.json",
        R"([{"id": 1, "ts": "2026-01-01T00:00:10Z"},
            {"id": 2, "ts": "2026-01-01T00:00:01Z"}])");
  auto r = Asa(dir.path(), {"q.asaql", "--input", "input=in.json", "--out", "-"});
  ASSERT_EQ(r.code, 0) << r.out;
  // The late, out-of-order event is adjusted (ASA's default policy).
  EXPECT_TRUE(Has(r, R"({"id":2,"t":"2026-01-01T00:00:10.0000000Z"})")) << r.out;
  EXPECT_TRUE(Has(r, "2 adjusted")) << r.out;
  // Dropped instead, with a tolerance it exceeds.
  r = Asa(dir.path(), {"q.asaql", "--input", "input=in.json", "--out", "-", "--late-arrival",
                       "none", "--out-of-order", "5s", "--drop"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(Has(r, R"("id":2)")) << r.out;
  EXPECT_TRUE(Has(r, "1 dropped as late")) << r.out;
  // Within the tolerance, reordered.
  r = Asa(dir.path(), {"q.asaql", "--input", "input=in.json", "--out", "-", "--late-arrival",
                       "none", "--out-of-order", "10s"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_LT(r.out.find(R"("id":2)"), r.out.find(R"("id":1)")) << r.out;
}

TEST(AsaRunCli, ErrorsNameTheFileLineAndColumn) {
  TempDir dir("asa-run-errors");
  Write(dir.path() / "bad.asaql", "SELECT a b FROM input");
  Write(dir.path() / "good.asaql", "SELECT * FROM input");
  Write(dir.path() / "in.json", "{\"a\":1}\n{\"a\":\n");
  Write(dir.path() / "ok.json", "{\"a\":1}\n");
  auto expect_error = [](const Ran& r, int code, std::string_view text) {
    EXPECT_EQ(r.code, code) << r.out;
    EXPECT_TRUE(Has(r, text)) << r.out;
    EXPECT_EQ(LineCount(r.out), 1u) << r.out;
    EXPECT_TRUE(r.out.starts_with("orrery: ")) << r.out;
  };
  expect_error(Asa(dir.path(), {"bad.asaql", "--input", "input=ok.json"}), 2,
               "bad.asaql: line 1, column 10: expected ',', INTO or FROM, found 'b'");
  expect_error(Asa(dir.path(), {"good.asaql", "--input", "input=in.json"}), 2, "in.json:2:6: ");
  expect_error(Asa(dir.path(), {"good.asaql", "--input", "input=missing.json"}), 2, "missing.json");
  expect_error(Asa(dir.path(), {"good.asaql", "--input", "other=ok.json"}), 2,
               "the query reads no input named 'other'");
  expect_error(Asa(dir.path(), {"good.asaql", "--input", "input"}), 2, "expected NAME=FILE");
  expect_error(Asa(dir.path(), {"good.asaql", "--input", "input=ok.json", "--late-arrival", "x"}),
               2, "'x' is not a duration");
  expect_error(Asa(dir.path(), {"missing.asaql", "--input", "input=ok.json"}), 2, "missing.asaql");
  // An output directory that cannot be created is a runtime failure.
  Write(dir.path() / "file", "");
  expect_error(Asa(dir.path(), {"good.asaql", "--input", "input=ok.json", "--out", "file/sub"}), 1,
               "file/sub");
}

}  // namespace
}  // namespace orrery
