// Azure Digital Twins' Jobs API (api-version 2023-10-31) on the twins listener, over
// twins::BulkJobs (twins/bulk_jobs.h):
//
//   PUT    /jobs/imports/{id} {"inputBlobUri","outputBlobUri"}   201 + the ImportJob
//   GET    /jobs/imports/{id}                                     200; 404 ImportJobNotFound
//   GET    /jobs/imports  (max-items-per-page)                    {"value","nextLink"}
//   POST   /jobs/imports/{id}/cancel                              200 + the job (cancelling)
//   DELETE /jobs/imports/{id}                                     204 (not while it runs)
//   POST   /jobs/deletions[?timeoutInMinutes=] (Operation-Id)     202 + Operation-Location
//   GET    /jobs/deletions/{id}, GET /jobs/deletions              200; 404 DeleteJobNotFound
//
// The "blob URIs" are file: URIs or paths inside the server's jobs directory. Authorization
// as for the rest of the data plane: the owner role for changes, reader or owner for reads.
// Changes write the store (fsync) on the `blocking` executor.
#pragma once

#include "api/twins_api.h"
#include "net/http.h"

namespace orrery::api {

// REQUIRES: options.jobs (and what AuthorizeTwinsCall needs) outlive the router.
void RegisterTwinsJobsRoutes(net::Router& router, const TwinsApiOptions& options);

}  // namespace orrery::api
