#include "api/twins_jobs_api.h"

#include <charconv>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "base/strings.h"
#include "twins/bulk_jobs.h"
#include "twins/errc.h"

namespace orrery::api {
namespace json = boost::json;
using net::HttpRequest;
using net::HttpResponse;
using net::Responder;
using twins::JobKind;

namespace {
constexpr size_t kMaxPage = 100;

using Handler = std::function<HttpResponse(twins::BulkJobs&, const HttpRequest&)>;

// Authorizes, then runs `f` (on the blocking executor when it writes the store).
net::HttpHandler Guard(std::shared_ptr<const TwinsApiOptions> o, bool write, Handler f) {
  return [o, write, f = std::move(f)](HttpRequest& req, Responder r) {
    if (auto refused = AuthorizeTwinsCall(*o, req, write)) return r.Send(std::move(*refused));
    if (!write) return r.Send(f(*o->jobs, req));
    boost::asio::post(o->blocking, [o, f, req = std::move(req), r] { r.Send(f(*o->jobs, req)); });
  };
}

HttpResponse Invalid(std::string message) {
  return TwinsError(Error(twins::Errc::kValidationFailed, std::move(message)));
}

HttpResponse JobResponse(int status, const Result<twins::BulkJob>& job) {
  if (!job) return TwinsError(job.error());
  return HttpResponse::Json(status, json::serialize(twins::ToJson(*job)));
}

Result<uint64_t> Number(std::string_view text, std::string_view what) {
  uint64_t n = 0;
  auto [p, err] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (err != std::errc() || p != text.data() + text.size()) {
    return Error(twins::Errc::kInvalidArgument, fmt::format("{} must be a whole number", what));
  }
  return n;
}

// {"value":[…],"nextLink":…} in acceptance order; the token is the last job's sequence number.
HttpResponse List(twins::BulkJobs& jobs, const HttpRequest& req, JobKind kind) {
  size_t page = kMaxPage;
  if (auto h = req.headers.Get("max-items-per-page")) {
    auto n = Number(*h, "max-items-per-page");
    if (!n || *n == 0) {
      return TwinsError(
          Error(twins::Errc::kInvalidArgument, "max-items-per-page must be a positive integer"));
    }
    page = std::min<size_t>(page, *n);
  }
  uint64_t after = 0;
  if (auto token = req.Query("continuationToken")) {
    auto n = Number(*token, "continuationToken");
    if (!n) return TwinsError(n.error());
    after = *n;
  }
  auto list = jobs.List(kind, after, page + 1);
  json::array value;
  for (size_t i = 0; i < list.size() && i < page; ++i)
    value.push_back(twins::ToJson(list[i]));
  json::object out{{"value", std::move(value)}};
  if (list.size() > page) {
    out["nextLink"] =
        fmt::format("{}{}?api-version={}&continuationToken={}", TwinsBaseUrl(req), req.path,
                    strings::UrlEncode(req.Query("api-version").value_or(kTwinsApiVersions[0])),
                    list[page - 1].seq);
  } else {
    out["nextLink"] = nullptr;
  }
  return HttpResponse::Json(200, json::serialize(out));
}

HttpResponse AddImport(twins::BulkJobs& jobs, const HttpRequest& req) {
  boost::system::error_code ec;
  json::value body = json::parse(req.body, ec);
  if (ec || !body.is_object()) {
    return Invalid(R"(the body must be {"inputBlobUri": "…", "outputBlobUri": "…"})");
  }
  auto str = [&](std::string_view key) {
    auto* v = body.get_object().if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  return JobResponse(
      201, jobs.AddImport(std::string(req.Param("id")), str("inputBlobUri"), str("outputBlobUri")));
}

HttpResponse AddDelete(twins::BulkJobs& jobs, const HttpRequest& req) {
  int64_t timeout = 0;
  if (auto t = req.Query("timeoutInMinutes")) {
    auto n = Number(*t, "timeoutInMinutes");
    if (!n) return Invalid(n.error().message());
    timeout = static_cast<int64_t>(std::min<uint64_t>(*n, 1'000'000));
    if (timeout == 0) return Invalid("timeoutInMinutes must be between 15 and 1440");
  }
  auto job = jobs.AddDelete(std::string(req.headers.Get("Operation-Id").value_or("")), timeout);
  if (!job) return TwinsError(job.error());
  auto r = JobResponse(202, job);
  std::string version(req.Query("api-version").value_or(kTwinsApiVersions[0]));
  r.headers.Set("Operation-Location",
                fmt::format("{}/jobs/deletions/{}?api-version={}", TwinsBaseUrl(req),
                            strings::UrlEncode(job->id), strings::UrlEncode(version)));
  r.headers.Set("Operation-Id", job->id);
  return r;
}

}  // namespace

void RegisterTwinsJobsRoutes(net::Router& router, const TwinsApiOptions& options) {
  auto o = std::make_shared<const TwinsApiOptions>(options);
  router.Add("PUT", "/jobs/imports/{id}", Guard(o, true, AddImport));
  router.Add("GET", "/jobs/imports/{id}",
             Guard(o, false, [](twins::BulkJobs& jobs, const HttpRequest& req) {
               return JobResponse(200, jobs.Get(JobKind::kImport, req.Param("id")));
             }));
  router.Add("GET", "/jobs/imports",
             Guard(o, false, [](twins::BulkJobs& jobs, const HttpRequest& req) {
               return List(jobs, req, JobKind::kImport);
             }));
  router.Add("POST", "/jobs/imports/{id}/cancel",
             Guard(o, true, [](twins::BulkJobs& jobs, const HttpRequest& req) {
               return JobResponse(200, jobs.Cancel(req.Param("id")));
             }));
  router.Add("DELETE", "/jobs/imports/{id}",
             Guard(o, true, [](twins::BulkJobs& jobs, const HttpRequest& req) {
               auto st = jobs.Remove(req.Param("id"));
               return st ? HttpResponse::Empty(204) : TwinsError(st.error());
             }));
  router.Add("POST", "/jobs/deletions", Guard(o, true, AddDelete));
  router.Add("GET", "/jobs/deletions/{id}",
             Guard(o, false, [](twins::BulkJobs& jobs, const HttpRequest& req) {
               return JobResponse(200, jobs.Get(JobKind::kDelete, req.Param("id")));
             }));
  router.Add("GET", "/jobs/deletions",
             Guard(o, false, [](twins::BulkJobs& jobs, const HttpRequest& req) {
               return List(jobs, req, JobKind::kDelete);
             }));
}

}  // namespace orrery::api
