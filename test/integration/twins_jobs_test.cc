// The digital twins Jobs API through the real `orrery serve`: import jobs from files in the
// jobs directory (a good file, a bad one with per-line errors, files outside refused), a
// cancel, a job that survives kill -9 and resumes, delete jobs, and `orrery dt job`.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/strings.h"
#include "net/http_client.h"
#include "test/support/orrery_server.h"

namespace orrery {
namespace {
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::OrreryServer;

const std::string kVersion = "api-version=2023-10-31";

const char* kModels =
    R"({"Section":"Models"}
{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Floor;1","@type":"Interface","contents":[{"@type":"Property","name":"level","schema":"integer"},{"@type":"Relationship","name":"hosts","target":"dtmi:ex:Zone;1"}]}
{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Zone;1","@type":"Interface","contents":[{"@type":"Property","name":"label","schema":"string"}]}
)";

std::string Header() {
  return "{\"Section\":\"Header\"}\n{\"fileVersion\":\"1.0.0\",\"author\":\"jobs test\"}\n";
}

std::string Zones(int n) {
  std::string s = "{\"Section\":\"Twins\"}\n";
  for (int i = 0; i < n; ++i)
    s += fmt::format(R"({{"$dtId":"z{}","$metadata":{{"$model":"dtmi:ex:Zone;1"}},"label":"Z{}"}})",
                     i, i) +
         "\n";
  return s;
}

// A service principal's session: the CLI for setup, REST calls with its token.
class JobsSession {
 public:
  explicit JobsSession(OrreryServer& server) : server_(server) {}

  int Run(std::vector<std::string> args, std::string* output = nullptr, bool with_secret = true) {
    std::vector<std::string> argv = {testing::OrreryBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    for (std::string flag : {"--data-dir", "--twins-port"}) {
      argv.push_back(flag);
      argv.push_back(flag == "--data-dir" ? server_.data_dir().string()
                                          : std::to_string(server_.ports().twins));
    }
    std::vector<std::string> env;
    if (with_secret) env = {"AZURE_CLIENT_ID=" + client_id_, "AZURE_CLIENT_SECRET=" + secret_};
    auto p = testing::Process::Spawn(argv, env);
    int code = p->Wait(std::chrono::seconds(120)).value_or(-1);
    if (output) *output = p->output();
    return code;
  }

  // Creates the principal and gets its token.
  bool Login(std::string role) {
    std::string out;
    if (Run({"identity", "sp", "create", "--name", "jobs-" + role, "--role", role}, &out, false)) {
      return false;
    }
    auto p = json::parse(out.substr(out.find('{'), out.rfind('}') - out.find('{') + 1));
    client_id_ = std::string(p.at("clientId").as_string());
    secret_ = std::string(p.at("clientSecret").as_string());
    net::Headers h;
    h.Set("Content-Type", "application/x-www-form-urlencoded");
    auto r = Http("POST", "/" + std::string(p.at("tenantId").as_string()) + "/oauth2/v2.0/token",
                  "grant_type=client_credentials&client_id=" + strings::UrlEncode(client_id_) +
                      "&client_secret=" + strings::UrlEncode(secret_) +
                      "&scope=" + strings::UrlEncode("https://digitaltwins.azure.net/.default"),
                  std::move(h), false);
    if (r.status != 200) return false;
    token_ = std::string(json::parse(r.body).at("access_token").as_string());
    return true;
  }

  net::HttpResponse Http(std::string method, std::string path, std::string body = {},
                         net::Headers h = {}, bool versioned = true) {
    net::HttpClientOptions o;
    o.tls.ca_file = server_.ca_file();
    o.timeout = 30s;
    if (!token_.empty()) h.Set("Authorization", "Bearer " + token_);
    if (!body.empty() && !h.Get("Content-Type")) h.Set("Content-Type", "application/json");
    if (versioned) path += (path.find('?') == std::string::npos ? "?" : "&") + kVersion;
    auto r = net::Fetch(method, server_.TwinsUrl(path), std::move(h), body, o);
    EXPECT_TRUE(r) << method << " " << path << ": " << r.error().message();
    return r ? *r : net::HttpResponse{.status = 0};
  }

  json::object Object(const net::HttpResponse& r) {
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    return !ec && v.is_object() ? v.get_object() : json::object{};
  }
  std::string ErrorCode(const net::HttpResponse& r) {
    auto o = Object(r);
    auto* e = o.if_contains("error");
    return e && e->is_object() ? std::string(e->at("code").as_string()) : "";
  }

  // Polls a job until `until` holds (or 120 s pass).
  json::object Poll(std::string path, std::function<bool(const json::object&)> until) {
    json::object job;
    for (int i = 0; i < 6000; ++i) {
      auto r = Http("GET", path);
      job = Object(r);
      if (r.status == 200 && until(job)) return job;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << path << " never got there: " << json::serialize(job);
    return job;
  }
  json::object Done(std::string path) {
    return Poll(path, [](const json::object& j) {
      auto s = j.at("status").as_string();
      return s != "notstarted" && s != "running" && s != "cancelling";
    });
  }

  fs::path JobsDir() const { return server_.data_dir() / "twins" / "jobs"; }
  void WriteFile(std::string name, const std::string& text) {
    std::ofstream(JobsDir() / name, std::ios::binary) << text;
  }
  // The output file's lines.
  std::vector<json::object> Output(std::string name) {
    std::vector<json::object> lines;
    std::ifstream in(JobsDir() / name);
    std::string line;
    while (std::getline(in, line))
      lines.push_back(json::parse(line).as_object());
    return lines;
  }

 private:
  OrreryServer& server_;
  std::string client_id_, secret_, token_;
};

std::string Body(std::string input, std::string output) {
  return json::serialize(json::object{{"inputBlobUri", input}, {"outputBlobUri", output}});
}

TEST(TwinsJobsTest, ImportJobsThroughTheRestApi) {
  OrreryServer server("twins-jobs");
  ASSERT_TRUE(server.started()) << server.process().output();
  JobsSession owner(server), reader(server);
  ASSERT_TRUE(owner.Login("owner"));
  ASSERT_TRUE(reader.Login("reader"));
  ASSERT_TRUE(fs::is_directory(owner.JobsDir()));

  owner.WriteFile(
      "graph.ndjson",
      Header() + kModels + Zones(3) + "{\"Section\":\"Twins\"}\n" +
          R"({"$dtId":"f1","$metadata":{"$model":"dtmi:ex:Floor;1"},"level":1})" +
          "\n{\"Section\":\"Relationships\"}\n" +
          R"({"$dtId":"f1","$relationshipId":"h0","$targetId":"z0","$relationshipName":"hosts"})" +
          "\n");
  EXPECT_EQ(reader.Http("PUT", "/jobs/imports/load", Body("graph.ndjson", "load.log")).status, 403);
  auto created = owner.Http("PUT", "/jobs/imports/load", Body("graph.ndjson", "load.log"));
  ASSERT_EQ(created.status, 201) << created.body;
  auto c = owner.Object(created);
  EXPECT_EQ(c.at("id").as_string(), "load");
  EXPECT_EQ(c.at("inputBlobUri").as_string(), "graph.ndjson");
  EXPECT_TRUE(c.contains("createdDateTime"));
  auto job = reader.Done("/jobs/imports/load");
  ASSERT_EQ(job.at("status").as_string(), "succeeded") << json::serialize(job);
  EXPECT_TRUE(job.contains("finishedDateTime"));
  EXPECT_TRUE(job.contains("purgeDateTime"));
  EXPECT_EQ(job.at("progress").at("twins").as_int64(), 4);
  auto zone = reader.Http("GET", "/digitaltwins/z2");
  ASSERT_EQ(zone.status, 200) << zone.body;
  EXPECT_EQ(reader.Object(zone).at("label").as_string(), "Z2");
  EXPECT_EQ(reader.Http("GET", "/digitaltwins/f1/relationships/h0").status, 200);
  auto log = owner.Output("load.log");
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.front().at("details").at("status").as_string(), "Started");
  EXPECT_EQ(log.back().at("details").at("status").as_string(), "Succeeded");

  // A bad file: every problem with its line, nothing imported, the job failed.
  owner.WriteFile("bad.ndjson", Header() + "{\"Section\":\"Twins\"}\n" +
                                    R"({"$dtId":"new1","$metadata":{"$model":"dtmi:ex:Zone;1"}})" +
                                    "\n{\"$dtId\":\"x\"}\n{broken\n" + kModels);
  ASSERT_EQ(owner.Http("PUT", "/jobs/imports/bad", Body("file:bad.ndjson", "bad.log")).status, 201);
  job = owner.Done("/jobs/imports/bad");
  EXPECT_EQ(job.at("status").as_string(), "failed");
  EXPECT_EQ(job.at("error").at("code").as_string(), "ValidationFailed");
  EXPECT_NE(std::string(job.at("error").at("message").as_string()).find("3 problems"),
            std::string::npos)
      << json::serialize(job);
  std::vector<int64_t> lines;
  for (auto& l : owner.Output("bad.log")) {
    if (l.at("logType").as_string() == "Error")
      lines.push_back(l.at("details").at("line").as_int64());
  }
  EXPECT_EQ(lines, (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(owner.Http("GET", "/digitaltwins/new1").status, 404);

  // Refusals: files outside the jobs directory, an existing output, a duplicate id.
  auto outside =
      owner.Http("PUT", "/jobs/imports/x",
                 Body((server.data_dir() / "identity" / "principals.json").string(), "x.log"));
  EXPECT_EQ(outside.status, 400);
  EXPECT_EQ(owner.ErrorCode(outside), "ValidationFailed");
  EXPECT_NE(outside.body.find("outside the jobs directory"), std::string::npos) << outside.body;
  auto up = owner.Http("PUT", "/jobs/imports/x", Body("graph.ndjson", "../../x.log"));
  EXPECT_EQ(owner.ErrorCode(up), "ValidationFailed");
  EXPECT_FALSE(fs::exists(server.data_dir() / "x.log"));
  auto exists = owner.Http("PUT", "/jobs/imports/x", Body("graph.ndjson", "load.log"));
  EXPECT_NE(exists.body.find("exists already"), std::string::npos) << exists.body;
  auto blob = owner.Http("PUT", "/jobs/imports/x",
                         Body("https://acct.blob.core.windows.net/c/graph.ndjson", "x.log"));
  EXPECT_EQ(owner.ErrorCode(blob), "ValidationFailed");
  EXPECT_EQ(owner.ErrorCode(owner.Http("PUT", "/jobs/imports/load", Body("graph.ndjson", "y"))),
            "ValidationFailed");
  EXPECT_EQ(owner.ErrorCode(owner.Http("GET", "/jobs/imports/nope")), "ImportJobNotFound");
  EXPECT_EQ(owner.ErrorCode(owner.Http("POST", "/jobs/imports/load/cancel")), "ValidationFailed");

  // Listing pages in creation order.
  net::Headers one;
  one.Set("max-items-per-page", "1");
  auto first = reader.Object(reader.Http("GET", "/jobs/imports", {}, one));
  ASSERT_EQ(first.at("value").as_array().size(), 1u);
  EXPECT_EQ(first.at("value").at(0).at("id").as_string(), "load");
  std::string next(first.at("nextLink").as_string());
  auto second = reader.Object(
      reader.Http("GET", "/jobs/imports?" + next.substr(next.find("continuationToken=")), {}, one));
  EXPECT_EQ(second.at("value").at(0).at("id").as_string(), "bad");
  EXPECT_TRUE(second.at("nextLink").is_null());

  EXPECT_EQ(owner.Http("DELETE", "/jobs/imports/bad").status, 204);
  EXPECT_EQ(owner.Http("GET", "/jobs/imports/bad").status, 404);
}

TEST(TwinsJobsTest, CancelAndAJobThatSurvivesKill9) {
  OrreryServer server("twins-jobs-restart");
  ASSERT_TRUE(server.started()) << server.process().output();
  JobsSession owner(server);
  ASSERT_TRUE(owner.Login("owner"));
  constexpr int kZones = 60'000;
  owner.WriteFile("big.ndjson", Header() + kModels + Zones(kZones));

  // Cancelled: right away (queued) or at its next line (running).
  ASSERT_EQ(owner.Http("PUT", "/jobs/imports/c1", Body("big.ndjson", "c1.log")).status, 201);
  // One bulk job at a time: no delete job meanwhile.
  auto busy = owner.Http("POST", "/jobs/deletions");
  EXPECT_EQ(busy.status, 400);
  EXPECT_EQ(owner.ErrorCode(busy), "JobLimitReached") << busy.body;
  auto cancel = owner.Http("POST", "/jobs/imports/c1/cancel");
  ASSERT_EQ(cancel.status, 200) << cancel.body;
  auto cs = owner.Object(cancel).at("status").as_string();
  EXPECT_TRUE(cs == "cancelling" || cs == "cancelled") << cs;
  auto cancelled = owner.Done("/jobs/imports/c1");
  EXPECT_EQ(cancelled.at("status").as_string(), "cancelled");
  EXPECT_LT(cancelled.at("progress").at("twins").as_int64(), kZones);

  // kill -9 in the middle: the job resumes from its checkpoint when the server is back.
  ASSERT_EQ(owner.Http("PUT", "/jobs/imports/r1", Body("big.ndjson", "r1.log")).status, 201);
  owner.Poll("/jobs/imports/r1",
             [](const json::object& j) { return j.at("progress").at("twins").as_int64() > 0; });
  server.Restart(SIGKILL);
  ASSERT_TRUE(server.started()) << server.process().output();
  auto job = owner.Done("/jobs/imports/r1");
  EXPECT_EQ(job.at("status").as_string(), "succeeded") << json::serialize(job);
  bool resumed = false;
  for (auto& l : owner.Output("r1.log")) {
    auto* s = l.at("details").as_object().if_contains("status");
    resumed = resumed || (s && s->as_string() == "Resumed");
  }
  EXPECT_TRUE(resumed);
  auto count = owner.Http("POST", "/query", R"({"query":"SELECT COUNT() FROM DIGITALTWINS"})");
  ASSERT_EQ(count.status, 200) << count.body;
  EXPECT_EQ(owner.Object(count).at("value").at(0).at("COUNT").as_int64(), kZones);

  // A delete job: 202 with where to poll, then everything is gone.
  net::Headers op;
  op.Set("Operation-Id", "wipe1");
  auto wipe = owner.Http("POST", "/jobs/deletions?timeoutInMinutes=60", {}, op);
  ASSERT_EQ(wipe.status, 202) << wipe.body;
  EXPECT_EQ(wipe.headers.Get("Operation-Id").value_or(""), "wipe1");
  EXPECT_NE(wipe.headers.Get("Operation-Location").value_or("").find("/jobs/deletions/wipe1"),
            std::string::npos);
  auto deleted = owner.Done("/jobs/deletions/wipe1");
  EXPECT_EQ(deleted.at("status").as_string(), "succeeded") << json::serialize(deleted);
  EXPECT_EQ(deleted.at("progress").at("twins").as_int64(), kZones);
  EXPECT_EQ(owner.Http("GET", "/digitaltwins/z1").status, 404);
  EXPECT_EQ(owner.Object(owner.Http("GET", "/models")).at("value").as_array().size(), 0u);
  EXPECT_EQ(owner.ErrorCode(owner.Http("POST", "/jobs/deletions", {}, op)), "ValidationFailed");
  EXPECT_EQ(owner.Object(owner.Http("GET", "/jobs/deletions")).at("value").as_array().size(), 1u);
}

TEST(TwinsJobsTest, TheJobCli) {
  OrreryServer server("twins-jobs-cli");
  ASSERT_TRUE(server.started()) << server.process().output();
  JobsSession owner(server);
  ASSERT_TRUE(owner.Login("owner"));
  testing::TempDir elsewhere("twins-jobs-file");
  auto file = elsewhere.path() / "graph.ndjson";
  std::ofstream(file) << Header() << kModels << Zones(5);

  std::string out;
  ASSERT_EQ(owner.Run({"dt", "job", "import", file.string(), "--id", "cli1"}, &out), 0) << out;
  EXPECT_NE(out.find("copied " + file.string()), std::string::npos) << out;
  EXPECT_NE(out.find("import job cli1: succeeded"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(owner.JobsDir() / "cli1.ndjson"));
  EXPECT_EQ(owner.Http("GET", "/digitaltwins/z4").status, 200);

  // A failing file: the errors of the output file are shown, exit 1.
  std::ofstream(owner.JobsDir() / "dup.ndjson")
      << Header() << "{\"Section\":\"Twins\"}\n"
      << R"({"$dtId":"bad","$metadata":{"$model":"dtmi:ex:Zone;1"},"label":7})"
      << "\n";
  EXPECT_EQ(
      owner.Run({"dt", "job", "import", (owner.JobsDir() / "dup.ndjson").string(), "--id", "cli2"},
                &out),
      1);
  EXPECT_EQ(out.find("copied"), std::string::npos) << out;  // in the jobs directory already
  EXPECT_NE(out.find("line 4 (Twins, bad): ValidationFailed"), std::string::npos) << out;

  ASSERT_EQ(owner.Run({"dt", "job", "list"}, &out), 0) << out;
  EXPECT_NE(out.find("\"cli2\""), std::string::npos) << out;
  ASSERT_EQ(owner.Run({"dt", "job", "show", "cli1"}, &out), 0) << out;
  EXPECT_NE(out.find("\"succeeded\""), std::string::npos) << out;

  EXPECT_EQ(owner.Run({"dt", "job", "delete-all"}, &out), 2) << out;
  EXPECT_NE(out.find("--yes"), std::string::npos) << out;
  ASSERT_EQ(owner.Run({"dt", "job", "delete-all", "--yes", "--id", "all"}, &out), 0) << out;
  EXPECT_NE(out.find("delete job all: succeeded"), std::string::npos) << out;
  EXPECT_EQ(owner.Http("GET", "/digitaltwins/z4").status, 404);
  ASSERT_EQ(owner.Run({"dt", "job", "show", "all"}, &out), 0) << out;
  EXPECT_EQ(owner.Run({"dt", "job", "delete", "cli2"}, &out), 0) << out;
  EXPECT_EQ(owner.Run({"dt", "job", "show", "cli2"}, &out), 1) << out;
}

}  // namespace
}  // namespace orrery
