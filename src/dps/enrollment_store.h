// The provisioning service's durable records: individual enrollments, enrollment groups and
// device registration states, held in memory (ordered by id, so queries page in id order) and
// written through to the state store. A change completes — and its callback runs — only once
// it is durable, so an acknowledged enrollment or registration survives kill -9.
//
// Keyspaces: "dps.enrollment" (by registration id), "dps.group" (by enrollment group id),
// "dps.registration" (by registration id).
//
// Thread safety: every method is safe from any thread; one mutex guards the maps and is held
// while a change is queued to the store (which keeps per-key write order). Callbacks run on
// the store's writer thread.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "dps/enrollment.h"
#include "store/kv_store.h"

namespace orrery::dps {

struct StoreLimits {
  size_t max_enrollments = 1'000'000;  // individual enrollments (Azure DPS's limit)
  size_t max_groups = 100;             // enrollment groups (Azure DPS's limit)
};

template <class T>
using Done = std::function<void(Result<T>)>;

class EnrollmentStore {
 public:
  static Result<std::unique_ptr<EnrollmentStore>> Open(store::KvStore* store, StoreLimits limits,
                                                       std::function<int64_t()> now_ms);

  // Creates or replaces an enrollment. `if_match` empty: create or replace; "*": it must
  // exist; an etag: it must be the current one (kPreconditionFailed). `create_only` refuses
  // an existing one (kConflict). Keeps createdDateTimeUtc on replace; new etag.
  void Put(Enrollment e, std::string if_match, bool create_only, Done<Enrollment> done);
  // Deletes an enrollment (an individual one also loses its registration state).
  void Delete(bool group, std::string_view id, std::string_view if_match, Done<void> done);
  std::optional<Enrollment> Get(bool group, std::string_view id) const;
  // Enrollments in id order after `after`, those `filter` keeps, at most `max`.
  std::vector<Enrollment> List(bool group, std::string_view after, size_t max,
                               const std::function<bool(const Enrollment&)>& filter = {}) const;
  // Every group of this attestation type (the candidates for a device not enrolled
  // individually), in id order.
  std::vector<Enrollment> Groups(AttestationType type) const;
  size_t count(bool group) const;

  void PutRegistration(Registration r, Done<Registration> done);
  void DeleteRegistration(std::string_view id, std::string_view if_match, Done<void> done);
  std::optional<Registration> GetRegistration(std::string_view id) const;
  // A group's registrations in id order after `after`, at most `max`.
  std::vector<Registration> ListRegistrations(std::string_view group_id, std::string_view after,
                                              size_t max) const;
  size_t registration_count() const;

 private:
  EnrollmentStore(store::KvStore* store, StoreLimits limits, std::function<int64_t()> now_ms);
  Status Load();
  static bool EtagMatches(std::string_view if_match, std::string_view etag);

  store::KvStore* store_;
  StoreLimits limits_;
  std::function<int64_t()> now_ms_;
  mutable std::mutex mu_;
  std::map<std::string, Enrollment, std::less<>> individual_, groups_;  // guarded by mu_
  std::map<std::string, Registration, std::less<>> registrations_;      // guarded by mu_
};

}  // namespace orrery::dps
