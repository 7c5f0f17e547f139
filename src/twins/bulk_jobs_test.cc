#include "twins/bulk_jobs.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/files.h"
#include "twins/errc.h"
#include "twins/model_store.h"
#include "twins/twin_graph.h"

namespace orrery::twins {
namespace {
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char* kSpace =
    R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Space;1","@type":"Interface","contents":[{"@type":"Property","name":"name","schema":"string"}]})";
// Extends Space, which comes later in the file: the job orders the models.
const char* kRoom =
    R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface","extends":"dtmi:ex:Space;1","contents":[{"@type":"Property","name":"area","schema":"double"},{"@type":"Relationship","name":"next","target":"dtmi:ex:Room;1"}]})";

std::string Header() {
  return "{\"Section\":\"Header\"}\n{\"fileVersion\":\"1.0.0\",\"author\":\"test\"}\n";
}
std::string Twin(std::string_view id, std::string_view props = "") {
  return fmt::format(R"({{"$dtId":"{}","$metadata":{{"$model":"dtmi:ex:Room;1"}}{}{}}})", id,
                     props.empty() ? "" : ",", props) +
         "\n";
}
std::string Rel(std::string_view src, std::string_view id, std::string_view dst) {
  return fmt::format(
             R"({{"$dtId":"{}","$relationshipId":"{}","$targetId":"{}","$relationshipName":"next"}})",
             src, id, dst) +
         "\n";
}

class BulkJobsTest : public ::testing::Test {
 protected:
  BulkJobsTest() {
    dir_ = fs::temp_directory_path() /
           ("orrery-jobs-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "jobs");
    Open();
  }
  ~BulkJobsTest() override {
    Close();
    fs::remove_all(dir_);
  }
  void Open(BulkJobsOptions o = {}) {
    auto kv = store::OpenRocksDb({.path = dir_ / "state"});
    ASSERT_TRUE(kv) << kv.error().message();
    kv_ = std::move(*kv);
    auto m = ModelStore::Open(kv_.get(), {}, [] { return int64_t{1'800'000'000'000}; });
    ASSERT_TRUE(m);
    models_ = std::move(*m);
    auto g =
        TwinGraph::Open(kv_.get(), models_.get(), {}, [] { return int64_t{1'800'000'000'000}; });
    ASSERT_TRUE(g);
    graph_ = std::move(*g);
    o.jobs_dir = dir_ / "jobs";
    auto j =
        BulkJobs::Open(kv_.get(), models_.get(), graph_.get(), o, [this] { return now_.load(); });
    ASSERT_TRUE(j) << j.error().message();
    jobs_ = std::move(*j);
    jobs_->Start();
  }
  void Close() {
    jobs_.reset();
    graph_.reset();
    models_.reset();
    if (kv_) kv_->Drain();
    kv_.reset();
  }
  void Write(std::string name, const std::string& text) {
    std::ofstream(dir_ / "jobs" / name, std::ios::binary) << text;
  }
  std::vector<json::object> Log(std::string name) {
    std::ifstream in(dir_ / "jobs" / name);
    std::vector<json::object> out;
    std::string line;
    while (std::getline(in, line))
      out.push_back(json::parse(line).as_object());
    return out;
  }
  static std::string Details(const std::vector<json::object>& log) {
    std::string s;
    for (auto& l : log)
      s += json::serialize(l.at("details")) + "\n";
    return s;
  }
  BulkJob WaitFor(JobKind kind, const std::string& id, std::function<bool(const BulkJob&)> done) {
    for (int i = 0; i < 3000; ++i) {
      auto j = jobs_->Get(kind, id);
      if (j && done(*j)) return *j;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "job " << id << " did not get there";
    return jobs_->Get(kind, id).value();
  }
  BulkJob Finished(JobKind kind, const std::string& id) {
    return WaitFor(kind, id, [](const BulkJob& j) {
      return j.status != JobStatus::kNotStarted && j.status != JobStatus::kRunning &&
             j.status != JobStatus::kCancelling;
    });
  }
  std::string BigFile(int twins) {
    std::string text = Header() + "{\"Section\":\"Models\"}\n" + kRoom + "\n" + kSpace +
                       "\n{\"Section\":\"Twins\"}\n";
    for (int i = 0; i < twins; ++i)
      text += Twin(fmt::format("t{:06}", i));
    return text;
  }

  fs::path dir_;
  std::atomic<int64_t> now_{1'800'000'000'000};
  std::unique_ptr<store::KvStore> kv_;
  std::unique_ptr<ModelStore> models_;
  std::unique_ptr<TwinGraph> graph_;
  std::unique_ptr<BulkJobs> jobs_;
};

TEST_F(BulkJobsTest, ImportsModelsTwinsAndRelationships) {
  Write("graph.ndjson", Header() + "{\"Section\":\"Models\"}\n" + kRoom + "\n" + kSpace + "\n" +
                            "{\"Section\":\"Twins\"}\n" +
                            Twin("r1", R"("name":"One","area":12.5)") + Twin("r2") +
                            "{\"Section\":\"Relationships\"}\n" + Rel("r1", "n1", "r2"));
  auto added = jobs_->AddImport("job1", "graph.ndjson", "graph.log.ndjson");
  ASSERT_TRUE(added) << added.error().message();
  EXPECT_EQ(added->input, fs::canonical(dir_ / "jobs" / "graph.ndjson"));
  auto job = Finished(JobKind::kImport, "job1");
  auto log = Log("graph.log.ndjson");
  ASSERT_EQ(job.status, JobStatus::kSucceeded) << job.error_message << "\n" << Details(log);
  EXPECT_EQ(job.progress.models, 2u);
  EXPECT_EQ(job.progress.twins, 2u);
  EXPECT_EQ(job.progress.relationships, 1u);
  EXPECT_EQ(job.progress.errors, 0u);
  EXPECT_EQ(models_->size(), 2u);
  auto r1 = graph_->GetTwin("r1");
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->at("name").as_string(), "One");
  EXPECT_TRUE(graph_->GetRelationship("r1", "n1"));

  // ADT's log lines: the start, each section's start and end, the summary.
  ASSERT_GE(log.size(), 8u) << Details(log);
  EXPECT_EQ(log[0].at("jobId").as_string(), "job1");
  EXPECT_EQ(log[0].at("jobType").as_string(), "Import");
  EXPECT_EQ(log[0].at("logType").as_string(), "Info");
  EXPECT_EQ(log[0].at("details").at("status").as_string(), "Started");
  EXPECT_EQ(log[1].at("details").at("section").as_string(), "Models");
  EXPECT_EQ(log.back().at("details").at("status").as_string(), "Succeeded");
  EXPECT_EQ(log.back().at("details").at("twins").as_int64(), 2);

  auto j = ToJson(job);
  EXPECT_EQ(j.at("status").as_string(), "succeeded");
  EXPECT_EQ(j.at("inputBlobUri").as_string(), "graph.ndjson");
  EXPECT_EQ(j.at("createdDateTime").as_string(), "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(j.at("purgeDateTime").as_string(), "2027-02-14T08:00:00.000Z");
  EXPECT_FALSE(j.contains("error"));

  // The same file again: models are unchanged, twins and relationships replaced.
  auto again = jobs_->AddImport("job2", "file:graph.ndjson", "again.log.ndjson");
  ASSERT_TRUE(again) << again.error().message();
  auto second = Finished(JobKind::kImport, "job2");
  EXPECT_EQ(second.status, JobStatus::kSucceeded) << Details(Log("again.log.ndjson"));
  EXPECT_EQ(jobs_->List(JobKind::kImport, 0, 10).size(), 2u);
  EXPECT_EQ(jobs_->List(JobKind::kImport, added->seq, 10).at(0).id, "job2");
}

TEST_F(BulkJobsTest, ABadFileFailsWithEveryProblemAndImportsNothing) {
  Write("bad.ndjson", Header() + "{\"Section\":\"Models\"}\n" + kSpace + "\n" +
                          "{\"Section\":\"Twins\"}\n" + Twin("ok") + "{\"$dtId\":\"x\"}\n" +
                          "not json\n");
  ASSERT_TRUE(jobs_->AddImport("bad", "bad.ndjson", "bad.log"));
  auto job = Finished(JobKind::kImport, "bad");
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error_code, "ValidationFailed");
  EXPECT_NE(job.error_message.find("2 problems (the first, line 7"), std::string::npos)
      << job.error_message;
  EXPECT_EQ(models_->size(), 0u);
  EXPECT_EQ(graph_->twin_count(), 0u);
  std::vector<int64_t> error_lines;
  for (auto& l : Log("bad.log")) {
    if (l.at("logType").as_string() == "Error") {
      error_lines.push_back(l.at("details").at("line").as_int64());
      EXPECT_EQ(l.at("details").at("section").as_string(), "Twins");
    }
  }
  EXPECT_EQ(error_lines, (std::vector<int64_t>{7, 8}));
}

TEST_F(BulkJobsTest, RefusedEntitiesAreLoggedAndTheRestImported) {
  Write("mixed.ndjson", Header() + "{\"Section\":\"Models\"}\n" + kRoom + "\n" + kSpace + "\n" +
                            "{\"Section\":\"Twins\"}\n" + Twin("a") +
                            Twin("b", R"("area":"large")") +  // line 8: not a double
                            "{\"$dtId\":\"c\",\"$metadata\":{\"$model\":\"dtmi:ex:Nope;1\"}}\n" +
                            "{\"Section\":\"Relationships\"}\n" + Rel("a", "n1", "b") +  // 11
                            Rel("a", "n2", "a"));
  ASSERT_TRUE(jobs_->AddImport("mixed", "mixed.ndjson", "mixed.log"));
  auto job = Finished(JobKind::kImport, "mixed");
  auto log = Log("mixed.log");
  EXPECT_EQ(job.status, JobStatus::kFailed) << Details(log);
  EXPECT_EQ(job.progress.twins, 1u);
  EXPECT_EQ(job.progress.relationships, 1u);
  EXPECT_EQ(job.progress.errors, 3u);
  std::map<int64_t, std::string> errors;
  for (auto& l : log) {
    if (l.at("logType").as_string() == "Error") {
      errors[l.at("details").at("line").as_int64()] =
          std::string(l.at("details").at("code").as_string());
    }
  }
  EXPECT_EQ(errors.size(), 3u) << Details(log);
  EXPECT_EQ(errors[8], "ValidationFailed");
  EXPECT_TRUE(errors.contains(9));
  EXPECT_TRUE(errors.contains(11));  // its target was refused
  EXPECT_TRUE(graph_->GetRelationship("a", "n2"));
}

TEST_F(BulkJobsTest, FilesStayInTheJobsDirectory) {
  Write("in.ndjson", Header());
  fs::create_directories(dir_ / "outside");
  std::ofstream(dir_ / "outside" / "x.ndjson") << Header();
  fs::create_symlink(dir_ / "outside" / "x.ndjson", dir_ / "jobs" / "link.ndjson");
  auto code = [&](std::string in, std::string out) {
    auto r = jobs_->AddImport("j", in, out);
    return r ? std::string("ok") : r.error().message();
  };
  EXPECT_NE(code((dir_ / "outside" / "x.ndjson").string(), "o1").find("outside the jobs"),
            std::string::npos);
  EXPECT_NE(code("../outside/x.ndjson", "o1").find("outside the jobs"), std::string::npos);
  EXPECT_NE(code("link.ndjson", "o1").find("outside the jobs"), std::string::npos);
  EXPECT_NE(code("in.ndjson", "../outside/o1").find("outside the jobs"), std::string::npos);
  EXPECT_NE(code("https://account.blob.core.windows.net/c/in.ndjson", "o1").find("not a file:"),
            std::string::npos);
  EXPECT_NE(code("missing.ndjson", "o1").find("missing.ndjson"), std::string::npos);
  EXPECT_NE(code("in.ndjson", "in.ndjson").find("exists already"), std::string::npos);
  EXPECT_NE(code("in.ndjson", "nodir/o1").find("directory"), std::string::npos);
  EXPECT_FALSE(jobs_->AddImport("bad id!", "in.ndjson", "o1"));
  auto uri = "file://" + (dir_ / "jobs" / "in.ndjson").string();
  EXPECT_EQ(code(uri, "file:o1"), "ok");
  auto dup = jobs_->AddImport("j", "in.ndjson", "o2");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::kValidationFailed);
  EXPECT_TRUE(fs::exists(dir_ / "jobs" / "o1"));
}

TEST_F(BulkJobsTest, CancelAQueuedAndARunningJob) {
  Close();
  Open({.max_in_flight = 1});
  Write("big.ndjson", BigFile(20'000));
  ASSERT_TRUE(jobs_->AddImport("first", "big.ndjson", "first.log"));
  ASSERT_TRUE(jobs_->AddImport("second", "big.ndjson", "second.log"));
  auto queued = jobs_->Cancel("second");
  ASSERT_TRUE(queued) << queued.error().message();
  EXPECT_EQ(queued->status, JobStatus::kCancelled);
  WaitFor(JobKind::kImport, "first", [](const BulkJob& j) { return j.progress.twins > 0; });
  // One bulk job at a time: no delete job while the import runs.
  auto refused = jobs_->AddDelete("", 0);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::kJobLimitReached);
  EXPECT_FALSE(jobs_->Remove("first"));
  auto cancelling = jobs_->Cancel("first");
  ASSERT_TRUE(cancelling);
  EXPECT_EQ(cancelling->status, JobStatus::kCancelling);
  auto job = Finished(JobKind::kImport, "first");
  EXPECT_EQ(job.status, JobStatus::kCancelled);
  EXPECT_LT(job.progress.twins, 20'000u);
  EXPECT_EQ(Log("first.log").back().at("details").at("status").as_string(), "Cancelled");
  EXPECT_FALSE(jobs_->Cancel("first"));
  EXPECT_TRUE(jobs_->Remove("first"));
  EXPECT_EQ(jobs_->Get(JobKind::kImport, "first").error().code(), Errc::kImportJobNotFound);
}

TEST_F(BulkJobsTest, AJobRunningAtAStopResumesFromItsCheckpoint) {
  Close();
  Open({.max_in_flight = 1, .checkpoint_every_ms = 0});
  Write("big.ndjson", BigFile(3'000));
  ASSERT_TRUE(jobs_->AddImport("resume", "big.ndjson", "resume.log"));
  WaitFor(JobKind::kImport, "resume", [](const BulkJob& j) { return j.progress.twins > 100; });
  Close();
  Open();
  auto job = Finished(JobKind::kImport, "resume");
  auto log = Log("resume.log");
  EXPECT_EQ(job.status, JobStatus::kSucceeded) << job.error_message << Details(log);
  EXPECT_EQ(graph_->twin_count(), 3'000u);
  bool resumed = false;
  for (auto& l : log) {
    auto* status = l.at("details").as_object().if_contains("status");
    resumed = resumed || (status && status->as_string() == "Resumed");
  }
  EXPECT_TRUE(resumed) << Details(log);
  EXPECT_GE(job.progress.twins, 3'000u);
}

TEST_F(BulkJobsTest, DeleteJobsDeleteEverything) {
  Write("graph.ndjson", Header() + "{\"Section\":\"Models\"}\n" + kRoom + "\n" + kSpace + "\n" +
                            "{\"Section\":\"Twins\"}\n" + Twin("r1") + Twin("r2") +
                            "{\"Section\":\"Relationships\"}\n" + Rel("r1", "n1", "r2") +
                            Rel("r2", "n2", "r1"));
  ASSERT_TRUE(jobs_->AddImport("load", "graph.ndjson", "load.log"));
  ASSERT_EQ(Finished(JobKind::kImport, "load").status, JobStatus::kSucceeded);
  EXPECT_FALSE(jobs_->AddDelete("d1", 5));  // timeout below 15 minutes
  auto added = jobs_->AddDelete("d1", 0);
  ASSERT_TRUE(added) << added.error().message();
  EXPECT_EQ(added->timeout_ms, 720 * 60'000);
  auto job = Finished(JobKind::kDelete, "d1");
  EXPECT_EQ(job.status, JobStatus::kSucceeded) << job.error_message;
  EXPECT_EQ(job.progress.relationships, 2u);
  EXPECT_EQ(job.progress.twins, 2u);
  EXPECT_EQ(job.progress.models, 2u);
  EXPECT_EQ(graph_->twin_count(), 0u);
  EXPECT_EQ(graph_->relationship_count(), 0u);
  EXPECT_EQ(models_->size(), 0u);
  auto j = ToJson(job);
  EXPECT_FALSE(j.contains("inputBlobUri"));
  EXPECT_EQ(j.at("status").as_string(), "succeeded");
  auto dup = jobs_->AddDelete("d1", 0);
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message().find("already exists"), std::string::npos);
  auto generated = jobs_->AddDelete("", 0);
  ASSERT_TRUE(generated);
  EXPECT_EQ(generated->id.size(), 36u);
  Finished(JobKind::kDelete, generated->id);
  EXPECT_EQ(jobs_->List(JobKind::kDelete, 0, 10).size(), 2u);

  // Kept across a restart; purged once their time has come.
  Close();
  Open();
  EXPECT_TRUE(jobs_->Get(JobKind::kDelete, "d1"));
  now_ += 31LL * 24 * 3'600'000;
  Write("empty.ndjson", Header());
  ASSERT_TRUE(jobs_->AddImport("later", "empty.ndjson", "later.log"));
  EXPECT_FALSE(jobs_->Get(JobKind::kDelete, "d1"));
  EXPECT_FALSE(jobs_->Get(JobKind::kImport, "load"));
  EXPECT_EQ(Finished(JobKind::kImport, "later").status, JobStatus::kSucceeded);
}

}  // namespace
}  // namespace orrery::twins
