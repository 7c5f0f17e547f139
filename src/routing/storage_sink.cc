// The storage endpoint's sink: per partition, one batch file (archive::BatchWriter) open at a
// time, published when it is batch_frequency old or reaches max_chunk_bytes. A batch whose
// file cannot be written is abandoned and its events are read again from the log after a
// backoff (the checkpoint waits for them), so a full or failing disk delays the archive but
// loses nothing.
#include <climits>
#include <map>

#include <fmt/format.h>

#include "archive/batch_writer.h"
#include "archive/errc.h"
#include "archive/path_template.h"
#include "base/log.h"
#include "routing/endpoints.h"

namespace orrery::routing {

namespace {

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("routing");
  return l;
}

archive::Encoding ArchiveEncoding(Encoding e) {
  switch (e) {
    case Encoding::kJson:
      return archive::Encoding::kJson;
    case Encoding::kAvroDeflate:
      return archive::Encoding::kAvroDeflate;
    case Encoding::kAvro:
      break;
  }
  return archive::Encoding::kAvro;
}

class StorageSink final : public Sink {
 public:
  StorageSink(StorageEndpoint config, EndpointOptions options)
      : config_(std::move(config)),
        options_(std::move(options)),
        root_(options_.archive_root / config_.path) {
    health_.endpoint = config_.name;
    auto tmpl = archive::PathTemplate::Parse(config_.file_name_format);
    if (tmpl) {
      template_ = std::move(*tmpl);
    } else {
      Log()->error("storage endpoint '{}': {}", config_.name, tmpl.error().message());
    }
    // Batches a crash left half-written: their events are read again from the checkpoint.
    if (auto removed = archive::RemoveStaleTempFiles(root_); removed && *removed > 0) {
      Log()->info("storage endpoint '{}': removed {} unfinished batch files", config_.name,
                  *removed);
    }
  }
  ~StorageSink() override {
    for (auto& [p, b] : open_) {
      if (b.writer) b.writer->Abort();
    }
  }

  void Add(const eventlog::Event& e, StopToken&) override {
    if (retry_.count(e.partition)) return;  // failed: read again after the backoff
    auto& b = open_[e.partition];
    if (!b.writer && !OpenBatch(e.partition, b, e.sequence)) return;
    auto st = b.writer->Append(e);
    if (!st && st.error().Is(archive::Errc::kSchemaMismatch) && b.writer->records() > 0) {
      // A row with other columns (rows' Avro files have the first row's schema): next file.
      Publish(e.partition, b);
      if (!b.writer && !retry_.count(e.partition) && OpenBatch(e.partition, b, e.sequence)) {
        st = b.writer->Append(e);
      } else {
        return;
      }
    }
    if (!st && (st.error().Is(archive::Errc::kTooLarge) ||
                st.error().Is(archive::Errc::kSchemaMismatch))) {
      // One record that cannot be stored at all: it would block the endpoint forever.
      Log()->error(
          "storage endpoint '{}': partition {} sequence {} cannot be archived ({}); "
          "skipped",
          config_.name, e.partition, e.sequence, st.error().message());
      return;
    }
    if (!st) return Failed(e.partition, b, st.error(), e.sequence);
    if (b.writer->size_bytes() >= static_cast<uint64_t>(config_.max_chunk_bytes)) {
      Publish(e.partition, b);
    }
  }

  void Flush(int64_t now_ms, bool force, StopToken&) override {
    for (auto& [p, b] : open_) {
      if (!b.writer) continue;
      if (force || now_ms - b.started_ms >= config_.batch_frequency_s * 1000) Publish(p, b);
    }
  }

  std::optional<uint64_t> PendingFrom(uint32_t partition) const override {
    if (auto r = retry_.find(partition); r != retry_.end()) return r->second.from;
    auto it = open_.find(partition);
    if (it == open_.end() || !it->second.writer) return std::nullopt;
    return it->second.first_sequence;
  }

  int64_t NextDeadlineMs() const override {
    int64_t next = INT64_MAX;
    for (auto& [p, b] : open_) {
      if (b.writer) next = std::min(next, b.started_ms + config_.batch_frequency_s * 1000);
    }
    for (auto& [p, r] : retry_)
      next = std::min(next, r.at_ms);
    return next;
  }

  EndpointHealth Health() const override {
    std::lock_guard lock(health_mu_);
    return health_;
  }

  std::optional<uint64_t> TakeRewind(uint32_t partition, int64_t now_ms) override {
    auto it = retry_.find(partition);
    if (it == retry_.end() || it->second.at_ms > now_ms) return std::nullopt;
    uint64_t from = it->second.from;
    retry_.erase(it);
    return from;
  }

 private:
  struct Batch {
    std::unique_ptr<archive::BatchWriter> writer;
    int64_t started_ms = 0;
    uint64_t first_sequence = 0;
  };
  struct Retry {
    uint64_t from;
    int64_t at_ms;
  };

  bool OpenBatch(uint32_t partition, Batch& b, uint64_t first_sequence) {
    int64_t now = options_.now_ms();
    if (!template_) {
      Failed(partition, b, Error(archive::Errc::kInvalidArgument, "bad fileNameFormat"),
             first_sequence);
      return false;
    }
    auto rel =
        template_->Format(options_.hub_name, partition, now, ArchiveEncoding(config_.encoding));
    if (!rel) {
      Failed(partition, b, rel.error(), first_sequence);
      return false;
    }
    // Batches that start in the same minute share the template's name: number them.
    std::filesystem::path final = root_ / *rel;
    archive::WriterOptions wo{.encoding = ArchiveEncoding(config_.encoding),
                              .body_rows = config_.body_rows};
    for (int n = 0; n < 1000; ++n) {
      std::filesystem::path candidate = final;
      if (n > 0) {
        candidate.replace_filename(
            fmt::format("{}-{}{}", final.stem().string(), n, final.extension().string()));
      }
      auto w = archive::BatchWriter::Open(candidate, wo);
      if (w) {
        b.writer = std::move(*w);
        b.started_ms = now;
        b.first_sequence = first_sequence;
        return true;
      }
      if (!w.error().Is(archive::Errc::kAlreadyExists)) {
        Failed(partition, b, w.error(), first_sequence);
        return false;
      }
    }
    Failed(partition, b,
           Error(archive::Errc::kAlreadyExists,
                 fmt::format("1000 batch files named like {}", final.string())),
           first_sequence);
    return false;
  }

  void Publish(uint32_t partition, Batch& b) {
    auto st = b.writer->Finish();
    if (!st) return Failed(partition, b, st.error(), b.first_sequence);
    {
      std::lock_guard lock(health_mu_);
      health_.status = HealthStatus::kHealthy;
      health_.last_success_ms = health_.last_attempt_ms = options_.now_ms();
      health_.delivered += b.writer->records();
    }
    Log()->debug("storage endpoint '{}': wrote {} records to {}", config_.name, b.writer->records(),
                 b.writer->final_path().string());
    b.writer.reset();
  }

  // `next` is the first event not in the batch (what to read again from when there is none).
  void Failed(uint32_t partition, Batch& b, const Error& e, uint64_t next) {
    uint64_t from = b.writer ? b.first_sequence : next;
    if (b.writer) {
      b.writer->Abort();
      b.writer.reset();
    }
    int64_t now = options_.now_ms();
    {
      std::lock_guard lock(health_mu_);
      health_.status = HealthStatus::kUnhealthy;
      health_.last_error = e.message();
      health_.last_error_ms = health_.last_attempt_ms = now;
    }
    Log()->error("storage endpoint '{}': partition {}: {}; retrying in 10 s", config_.name,
                 partition, e.message());
    retry_[partition] = Retry{from, now + 10'000};
  }

  StorageEndpoint config_;
  EndpointOptions options_;
  std::filesystem::path root_;
  std::optional<archive::PathTemplate> template_;
  std::map<uint32_t, Batch> open_;
  std::map<uint32_t, Retry> retry_;
  mutable std::mutex health_mu_;
  EndpointHealth health_;
};

}  // namespace

std::unique_ptr<Sink> MakeStorageSink(const StorageEndpoint& config,
                                      const EndpointOptions& options) {
  return std::make_unique<StorageSink>(config, options);
}

}  // namespace orrery::routing
