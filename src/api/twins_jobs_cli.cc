#include "api/twins_jobs_cli.h"

#include <unistd.h>

#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/cli_http.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"

namespace orrery::api {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {
constexpr std::string_view kApiVersion = "2023-10-31";
constexpr size_t kMaxShownErrors = 20;

std::string GeneratedId(std::string_view prefix) {
  // import-20261201-170503-1a2b: sortable, and unique enough for one person's jobs.
  std::string t = timeutil::FormatUtcMs(timeutil::NowMs());  // 2026-12-01T17:05:03.123Z
  std::string stamp;
  for (char ch : t.substr(0, 19)) {
    if (ch == 'T') {
      stamp += '-';
    } else if (ch != '-' && ch != ':') {
      stamp += ch;
    }
  }
  return fmt::format("{}-{}-{}", prefix, stamp, crypto::HexEncode(crypto::RandomBytes(2)));
}

std::string Field(const json::object& job, std::string_view section, std::string_view key) {
  auto* s = job.if_contains(section);
  if (!s || !s->is_object()) return "";
  auto* v = s->get_object().if_contains(key);
  if (!v) return "";
  return v->is_string() ? std::string(v->get_string()) : json::serialize(*v);
}

std::string ProgressLine(const json::object& job, bool import) {
  std::string status = cli::Str(job, "status");
  std::string where;
  if (import && !Field(job, "progress", "section").empty()) {
    where = fmt::format(" ({}, line {})", Field(job, "progress", "section"),
                        Field(job, "progress", "line"));
  }
  return fmt::format("{} job {}: {}{}: {} models, {} twins, {} relationships{}, {} errors",
                     import ? "import" : "delete", cli::Str(job, "id"), status, where,
                     Field(job, "progress", "models"), Field(job, "progress", "twins"),
                     Field(job, "progress", "relationships"), import ? "" : " deleted",
                     Field(job, "progress", "errors"));
}

// The Error lines of an import job's output file, when it can be read here.
void PrintOutputErrors(const fs::path& output, std::FILE* err) {
  std::ifstream in(output);
  if (!in) return;
  std::string line;
  size_t shown = 0, total = 0;
  while (std::getline(in, line)) {
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (ec || !v.is_object() || cli::Str(v.get_object(), "logType") != "Error") continue;
    if (++total > kMaxShownErrors) continue;
    auto* d = v.get_object().if_contains("details");
    if (!d || !d->is_object()) continue;
    auto& o = d->get_object();
    std::string id = cli::Str(o, "id");
    fmt::print(err, "  line {} ({}{}{}): {}: {}\n",
               o.contains("line") ? json::serialize(o.at("line")) : "?", cli::Str(o, "section"),
               id.empty() ? "" : ", ", id, cli::Str(o, "code"),
               cli::OneLine(cli::Str(o, "message")));
    ++shown;
  }
  if (total > shown) fmt::print(err, "  … and {} more in {}\n", total - shown, output.string());
}

// Polls the job until it has finished, printing its progress when it changes.
Result<json::object> Follow(const ServiceConnection& c, const JobCommandOptions& o,
                            const std::string& path, bool import, std::FILE* err) {
  std::string last;
  for (;;) {
    ORRERY_ASSIGN_OR_RETURN(auto r, cli::Send(c, {.method = "GET", .path = path}, kApiVersion));
    ORRERY_ASSIGN_OR_RETURN(json::object job, cli::BodyObject(r));
    std::string line = ProgressLine(job, import);
    if (line != last) fmt::print(err, "{}\n", line);
    last = line;
    std::string status = cli::Str(job, "status");
    if (status != "notstarted" && status != "running" && status != "cancelling") return job;
    std::this_thread::sleep_for(o.poll);
  }
}

Status Outcome(const json::object& job, bool import, std::FILE* out) {
  fmt::print(out, "{}\n", PrettyJson(job));
  std::string status = cli::Str(job, "status");
  if (status == "succeeded") return Ok();
  return Error(BaseErrc::kUnavailable,
               fmt::format("{} job {} {}: {}", import ? "import" : "delete", cli::Str(job, "id"),
                           status, Field(job, "error", "message")));
}

// Every job of one kind, following the continuation tokens.
Result<json::array> AllJobs(const ServiceConnection& c, std::string_view base) {
  json::array all;
  std::string path(base);
  for (int pages = 0; pages < 10'000; ++pages) {
    ORRERY_ASSIGN_OR_RETURN(auto r, cli::Send(c, {.method = "GET", .path = path}, kApiVersion));
    ORRERY_ASSIGN_OR_RETURN(json::object page, cli::BodyObject(r));
    if (auto* v = page.if_contains("value"); v && v->is_array()) {
      for (auto& j : v->get_array())
        all.push_back(j);
    }
    std::string next = cli::Str(page, "nextLink");
    auto token = next.find("continuationToken=");
    if (token == std::string::npos) break;
    path = std::string(base) + "?" + next.substr(token);
  }
  return all;
}

Status Import(const ServiceConnection& c, const JobCommandOptions& o, std::FILE* out,
              std::FILE* err) {
  std::error_code ec;
  if (!fs::is_regular_file(o.file, ec)) {
    return cli::Usage(fmt::format("{} is not a file", o.file.string()));
  }
  fs::path dir = fs::canonical(o.jobs_dir, ec);
  if (ec) {
    return cli::Usage(fmt::format(
        "the server's jobs directory {} is not here ({}): run this where the server's data "
        "directory is (--data-dir, or twins.jobs_dir), or put the file in its jobs directory and "
        "use the REST API",
        o.jobs_dir.string(), ec.message()));
  }
  std::string id = o.id.empty() ? GeneratedId("import") : o.id;
  fs::path file = fs::canonical(o.file);
  fs::path rel = file.lexically_relative(dir);
  if (rel.empty() || *rel.begin() == "..") {
    rel = id + ".ndjson";
    if (!fs::copy_file(file, dir / rel, ec) || ec) {
      return Error(BaseErrc::kUnavailable,
                   fmt::format("cannot copy {} to {}: {}", file.string(), (dir / rel).string(),
                               ec ? ec.message() : "it exists"));
    }
    fmt::print(err, "copied {} to {}\n", o.file.string(), (dir / rel).string());
  }
  std::string output = id + ".output.ndjson";
  json::object body{{"inputBlobUri", rel.string()}, {"outputBlobUri", output}};
  std::string path = "/jobs/imports/" + strings::UrlEncode(id);
  ORRERY_ASSIGN_OR_RETURN(
      auto created,
      cli::Send(c, {.method = "PUT", .path = path, .body = json::serialize(body)}, kApiVersion));
  ORRERY_ASSIGN_OR_RETURN(json::object job, cli::BodyObject(created));
  fmt::print(err, "import job {}: its log goes to {}\n", id, (dir / output).string());
  if (o.no_wait) {
    fmt::print(out, "{}\n", PrettyJson(job));
    return Ok();
  }
  ORRERY_ASSIGN_OR_RETURN(job, Follow(c, o, path, true, err));
  if (cli::Str(job, "status") != "succeeded") PrintOutputErrors(dir / output, err);
  return Outcome(job, true, out);
}

Status DeleteAll(const ServiceConnection& c, const JobCommandOptions& o, std::FILE* out,
                 std::FILE* err) {
  if (!o.yes) {
    if (!o.in || !::isatty(::fileno(o.in))) {
      return cli::Usage(
          "delete-all deletes every model, twin and relationship; pass --yes to confirm");
    }
    fmt::print(err, "Delete every model, twin and relationship at {}? Type 'yes': ", c.url);
    std::fflush(err);
    char answer[16] = {};
    if (!std::fgets(answer, sizeof answer, o.in) || std::string_view(answer) != "yes\n") {
      return cli::Usage("not confirmed; nothing was deleted");
    }
  }
  net::Headers h;
  if (!o.id.empty()) h.Set("Operation-Id", o.id);
  ORRERY_ASSIGN_OR_RETURN(
      auto created,
      cli::Send(c, {.method = "POST", .path = "/jobs/deletions", .headers = std::move(h)},
                kApiVersion));
  ORRERY_ASSIGN_OR_RETURN(json::object job, cli::BodyObject(created));
  if (o.no_wait) {
    fmt::print(out, "{}\n", PrettyJson(job));
    return Ok();
  }
  std::string path = "/jobs/deletions/" + strings::UrlEncode(cli::Str(job, "id"));
  ORRERY_ASSIGN_OR_RETURN(job, Follow(c, o, path, false, err));
  return Outcome(job, false, out);
}
}  // namespace

Status JobCommand(const ServiceConnection& c, const JobCommandOptions& o, std::FILE* out,
                  std::FILE* err) {
  using Op = JobCommandOptions::Op;
  std::string import_path = "/jobs/imports/" + strings::UrlEncode(o.id);
  switch (o.op) {
    case Op::kImport:
      return Import(c, o, out, err);
    case Op::kDeleteAll:
      return DeleteAll(c, o, out, err);
    case Op::kList: {
      ORRERY_ASSIGN_OR_RETURN(json::array imports, AllJobs(c, "/jobs/imports"));
      ORRERY_ASSIGN_OR_RETURN(json::array deletions, AllJobs(c, "/jobs/deletions"));
      fmt::print(out, "{}\n",
                 PrettyJson(json::object{{"imports", std::move(imports)},
                                         {"deletions", std::move(deletions)}}));
      return Ok();
    }
    case Op::kShow: {
      auto r = cli::Exchange(c, {.method = "GET", .path = import_path}, kApiVersion);
      if (r && r->status == 404) {
        return cli::Print(
            out,
            cli::Send(c, {.method = "GET", .path = "/jobs/deletions/" + strings::UrlEncode(o.id)},
                      kApiVersion));
      }
      if (r && r->status >= 300) return cli::Refusal(*r);
      return cli::Print(out, r);
    }
    case Op::kCancel:
      return cli::Print(
          out, cli::Send(c, {.method = "POST", .path = import_path + "/cancel"}, kApiVersion));
    case Op::kRemove:
      ORRERY_TRY(cli::Send(c, {.method = "DELETE", .path = import_path}, kApiVersion));
      fmt::print(err, "deleted import job {} (its files stay)\n", o.id);
      return Ok();
  }
  return Ok();
}

}  // namespace orrery::api
