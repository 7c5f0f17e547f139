#include "dps/enrollment_store.h"

#include <fmt/format.h>

#include "dps/errc.h"

namespace orrery::dps {

namespace {
constexpr std::string_view kIndividualSpace = "dps.enrollment";
constexpr std::string_view kGroupSpace = "dps.group";
constexpr std::string_view kRegistrationSpace = "dps.registration";

std::string_view SpaceOf(bool group) {
  return group ? kGroupSpace : kIndividualSpace;
}

std::string_view Kind(bool group) {
  return group ? "enrollment group" : "enrollment";
}
}  // namespace

EnrollmentStore::EnrollmentStore(store::KvStore* store, StoreLimits limits,
                                 std::function<int64_t()> now_ms)
    : store_(store), limits_(limits), now_ms_(std::move(now_ms)) {}

Result<std::unique_ptr<EnrollmentStore>> EnrollmentStore::Open(store::KvStore* store,
                                                               StoreLimits limits,
                                                               std::function<int64_t()> now_ms) {
  std::unique_ptr<EnrollmentStore> s(new EnrollmentStore(store, limits, std::move(now_ms)));
  ORRERY_TRY(s->Load());
  return s;
}

Status EnrollmentStore::Load() {
  std::lock_guard lock(mu_);
  Status failure = Ok();
  for (bool group : {false, true}) {
    auto& map = group ? groups_ : individual_;
    ORRERY_TRY(store_->Scan(SpaceOf(group), "", [&](std::string_view key, std::string_view value) {
      auto e = DecodeEnrollment(value, group);
      if (!e) {
        failure = e.error();
        return false;
      }
      map.emplace(std::string(key), std::move(*e));
      return true;
    }));
    ORRERY_TRY(failure);
  }
  ORRERY_TRY(
      store_->Scan(kRegistrationSpace, "", [&](std::string_view key, std::string_view value) {
        auto r = DecodeRegistration(value);
        if (!r) {
          failure = r.error();
          return false;
        }
        registrations_.emplace(std::string(key), std::move(*r));
        return true;
      }));
  return failure;
}

bool EnrollmentStore::EtagMatches(std::string_view if_match, std::string_view etag) {
  if (if_match.size() >= 2 && if_match.front() == '"' && if_match.back() == '"') {
    if_match = if_match.substr(1, if_match.size() - 2);
  }
  return if_match == "*" || if_match == etag;
}

void EnrollmentStore::Put(Enrollment e, std::string if_match, bool create_only,
                          Done<Enrollment> done) {
  std::unique_lock lock(mu_);
  auto& map = e.group ? groups_ : individual_;
  auto it = map.find(e.id);
  if (it != map.end() && create_only) {
    lock.unlock();
    return done(Error(Errc::kConflict, fmt::format("{} '{}' already exists", Kind(e.group), e.id)));
  }
  if (!if_match.empty()) {
    if (it == map.end()) {
      lock.unlock();
      return done(Error(Errc::kEnrollmentNotFound,
                        fmt::format("{} '{}' does not exist", Kind(e.group), e.id)));
    }
    if (!EtagMatches(if_match, it->second.etag)) {
      lock.unlock();
      return done(Error(Errc::kPreconditionFailed,
                        fmt::format("{} '{}' has changed (etag {} is not the current {})",
                                    Kind(e.group), e.id, if_match, it->second.etag)));
    }
  }
  if (it == map.end()) {
    size_t max = e.group ? limits_.max_groups : limits_.max_enrollments;
    if (map.size() >= max) {
      lock.unlock();
      return done(Error(Errc::kQuotaExceeded,
                        fmt::format("{} {}s exist, the most allowed", max, Kind(e.group))));
    }
  }
  int64_t now = now_ms_();
  e.created_ms = it == map.end() ? now : it->second.created_ms;
  e.updated_ms = now;
  e.etag_counter = it == map.end() ? 1 : it->second.etag_counter + 1;
  e.etag = EtagFor(e.etag_counter);
  std::optional<Enrollment> before;
  if (it != map.end()) before = it->second;
  map[e.id] = e;
  store::WriteBatch batch;
  batch.Put(SpaceOf(e.group), e.id, EncodeEnrollment(e));
  store_->WriteAsync(std::move(batch), [this, e, before = std::move(before),
                                        done = std::move(done)](Status st) mutable {
    if (!st) {
      // Undo the in-memory change unless something newer replaced it meanwhile.
      std::lock_guard relock(mu_);
      auto& m = e.group ? groups_ : individual_;
      auto cur = m.find(e.id);
      if (cur != m.end() && cur->second.etag_counter == e.etag_counter) {
        if (before) {
          cur->second = *before;
        } else {
          m.erase(cur);
        }
      }
      return done(Error(Errc::kUnavailable, fmt::format("the {} could not be stored: {}",
                                                        Kind(e.group), st.error().message())));
    }
    done(std::move(e));
  });
}

void EnrollmentStore::Delete(bool group, std::string_view id, std::string_view if_match,
                             Done<void> done) {
  std::unique_lock lock(mu_);
  auto& map = group ? groups_ : individual_;
  auto it = map.find(id);
  if (it == map.end()) {
    lock.unlock();
    return done(
        Error(Errc::kEnrollmentNotFound, fmt::format("{} '{}' does not exist", Kind(group), id)));
  }
  if (!if_match.empty() && !EtagMatches(if_match, it->second.etag)) {
    lock.unlock();
    return done(Error(Errc::kPreconditionFailed,
                      fmt::format("{} '{}' has changed (etag {} is not the current {})",
                                  Kind(group), id, if_match, it->second.etag)));
  }
  store::WriteBatch batch;
  batch.Delete(SpaceOf(group), id);
  map.erase(it);
  if (!group) {
    if (auto reg = registrations_.find(id); reg != registrations_.end()) {
      registrations_.erase(reg);
      batch.Delete(kRegistrationSpace, id);
    }
  }
  store_->WriteAsync(std::move(batch), [done = std::move(done)](Status st) {
    if (!st) {
      return done(Error(Errc::kUnavailable,
                        fmt::format("the deletion could not be stored: {}", st.error().message())));
    }
    done(Ok());
  });
}

std::optional<Enrollment> EnrollmentStore::Get(bool group, std::string_view id) const {
  std::lock_guard lock(mu_);
  auto& map = group ? groups_ : individual_;
  auto it = map.find(id);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

std::vector<Enrollment> EnrollmentStore::List(
    bool group, std::string_view after, size_t max,
    const std::function<bool(const Enrollment&)>& filter) const {
  std::lock_guard lock(mu_);
  auto& map = group ? groups_ : individual_;
  std::vector<Enrollment> out;
  for (auto it = after.empty() ? map.begin() : map.upper_bound(after);
       it != map.end() && out.size() < max; ++it) {
    if (!filter || filter(it->second)) out.push_back(it->second);
  }
  return out;
}

std::vector<Enrollment> EnrollmentStore::Groups(AttestationType type) const {
  std::lock_guard lock(mu_);
  std::vector<Enrollment> out;
  for (auto& [id, e] : groups_) {
    if (e.attestation.type == type) out.push_back(e);
  }
  return out;
}

size_t EnrollmentStore::count(bool group) const {
  std::lock_guard lock(mu_);
  return group ? groups_.size() : individual_.size();
}

void EnrollmentStore::PutRegistration(Registration r, Done<Registration> done) {
  std::unique_lock lock(mu_);
  auto it = registrations_.find(r.registration_id);
  int64_t now = now_ms_();
  r.created_ms = it == registrations_.end() ? now : it->second.created_ms;
  r.updated_ms = now;
  r.etag_counter = it == registrations_.end() ? 1 : it->second.etag_counter + 1;
  r.etag = EtagFor(r.etag_counter);
  registrations_[r.registration_id] = r;
  store::WriteBatch batch;
  batch.Put(kRegistrationSpace, r.registration_id, EncodeRegistration(r));
  store_->WriteAsync(std::move(batch), [r, done = std::move(done)](Status st) mutable {
    if (!st) {
      return done(Error(Errc::kUnavailable, fmt::format("the registration could not be stored: {}",
                                                        st.error().message())));
    }
    done(std::move(r));
  });
}

void EnrollmentStore::DeleteRegistration(std::string_view id, std::string_view if_match,
                                         Done<void> done) {
  std::unique_lock lock(mu_);
  auto it = registrations_.find(id);
  if (it == registrations_.end()) {
    lock.unlock();
    return done(
        Error(Errc::kRegistrationNotFound, fmt::format("no registration state for '{}'", id)));
  }
  if (!if_match.empty() && !EtagMatches(if_match, it->second.etag)) {
    lock.unlock();
    return done(Error(Errc::kPreconditionFailed,
                      fmt::format("the registration state of '{}' has changed", id)));
  }
  registrations_.erase(it);
  store::WriteBatch batch;
  batch.Delete(kRegistrationSpace, id);
  store_->WriteAsync(std::move(batch), [done = std::move(done)](Status st) {
    if (!st) {
      return done(Error(Errc::kUnavailable,
                        fmt::format("the deletion could not be stored: {}", st.error().message())));
    }
    done(Ok());
  });
}

std::optional<Registration> EnrollmentStore::GetRegistration(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = registrations_.find(id);
  if (it == registrations_.end()) return std::nullopt;
  return it->second;
}

std::vector<Registration> EnrollmentStore::ListRegistrations(std::string_view group_id,
                                                             std::string_view after,
                                                             size_t max) const {
  std::lock_guard lock(mu_);
  std::vector<Registration> out;
  for (auto it = after.empty() ? registrations_.begin() : registrations_.upper_bound(after);
       it != registrations_.end() && out.size() < max; ++it) {
    if (it->second.group_id == group_id) out.push_back(it->second);
  }
  return out;
}

size_t EnrollmentStore::registration_count() const {
  std::lock_guard lock(mu_);
  return registrations_.size();
}

}  // namespace orrery::dps
