#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "base/log.h"
#include "store/kv_store.h"

namespace orrery::store {

namespace {

std::string FullKey(std::string_view space, std::string_view key) {
  std::string k;
  k.reserve(space.size() + 1 + key.size());
  k.append(space);
  k.push_back('\0');
  k.append(key);
  return k;
}

Error FromStatus(const rocksdb::Status& s, std::string_view what) {
  Errc code = s.IsCorruption() ? Errc::kCorruption : Errc::kIo;
  return Error(code, fmt::format("{}: {}", what, s.ToString()));
}

class RocksDbStore final : public KvStore {
 public:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, metrics::Registry* m) : db_(std::move(db)) {
    if (m) {
      syncs_ = &m->GetCounter("orrery_store_syncs_total",
                              "Durable (fsync) write groups committed by the state store.");
      batches_ = &m->GetCounter("orrery_store_async_batches_total",
                                "Asynchronous write batches applied by the state store.");
    }
    writer_ = std::thread([this] { WriterLoop(); });
  }

  ~RocksDbStore() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    writer_.join();
    db_->Close();
  }

  Result<std::optional<std::string>> Get(std::string_view space, std::string_view key) override {
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), FullKey(space, key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromStatus(s, "read");
    return std::optional<std::string>(std::move(value));
  }

  Status Scan(std::string_view space, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& visit) override {
    std::string start = FullKey(space, prefix);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(start); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key();
      if (!k.starts_with(start)) break;
      std::string_view key(k.data() + space.size() + 1, k.size() - space.size() - 1);
      if (!visit(key, std::string_view(it->value().data(), it->value().size()))) break;
    }
    if (!it->status().ok()) return FromStatus(it->status(), "scan");
    return Ok();
  }

  Status Write(WriteBatch batch, Durability durability) override {
    rocksdb::WriteBatch wb;
    Fill(wb, batch);
    rocksdb::WriteOptions wo;
    wo.sync = durability == Durability::kDurable;
    auto s = db_->Write(wo, &wb);
    if (!s.ok()) return FromStatus(s, "write");
    if (wo.sync && syncs_) syncs_->Inc();
    return Ok();
  }

  void Drain() override {
    // Callbacks run in queue order and each is destroyed before the next runs, so when this
    // empty marker's callback runs, everything queued before it is finished.
    std::promise<void> done;
    auto finished = done.get_future();
    WriteAsync(WriteBatch{}, [&done](Status) { done.set_value(); });
    finished.wait();
  }

  void WriteAsync(WriteBatch batch, std::function<void(Status)> done) override {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        queue_.push_back({std::move(batch), std::move(done)});
        cv_.notify_one();
        return;
      }
    }
    done(Error(Errc::kClosed, "the state store is shutting down"));
  }

 private:
  struct Pending {
    WriteBatch batch;
    std::function<void(Status)> done;
  };

  static void Fill(rocksdb::WriteBatch& wb, const WriteBatch& batch) {
    for (auto& op : batch.ops()) {
      if (op.is_delete) {
        wb.Delete(op.key);
      } else {
        wb.Put(op.key, op.value);
      }
    }
  }

  // Group commit: everything queued while the previous fsync ran goes into one write.
  void WriterLoop() {
    std::deque<Pending> work;
    while (true) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;
        work.swap(queue_);
      }
      rocksdb::WriteBatch wb;
      for (auto& p : work)
        Fill(wb, p.batch);
      rocksdb::WriteOptions wo;
      wo.sync = true;
      auto s = db_->Write(wo, &wb);
      Status st = s.ok() ? Ok() : Status(FromStatus(s, "durable write"));
      if (syncs_) syncs_->Inc();
      if (batches_) batches_->Inc(work.size());
      if (!s.ok()) log::Get("store")->error("durable write failed: {}", s.ToString());
      for (auto& p : work) {
        if (p.done) p.done(st);
        p.done = nullptr;  // release what the callback owns before later ones run (Drain)
      }
      work.clear();
    }
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread writer_;
  metrics::Counter* syncs_ = nullptr;
  metrics::Counter* batches_ = nullptr;
};

}  // namespace

void WriteBatch::Put(std::string_view space, std::string_view key, std::string_view value) {
  ops_.push_back({false, FullKey(space, key), std::string(value)});
}

void WriteBatch::Delete(std::string_view space, std::string_view key) {
  ops_.push_back({true, FullKey(space, key), {}});
}

void WriteBatch::Append(WriteBatch&& other) {
  for (auto& op : other.ops_)
    ops_.push_back(std::move(op));
  other.ops_.clear();
}

Result<std::unique_ptr<KvStore>> OpenRocksDb(const RocksDbOptions& options) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.IncreaseParallelism(2);
  o.compression = rocksdb::kLZ4Compression;
  o.max_open_files = 512;
  o.keep_log_file_num = 3;
  o.max_total_wal_size = 256 << 20;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(o, options.path.string(), &raw);
  if (!s.ok()) {
    return Error(Errc::kOpenFailed, fmt::format("cannot open the state store at {}: {}",
                                                options.path.string(), s.ToString()));
  }
  return std::unique_ptr<KvStore>(
      std::make_unique<RocksDbStore>(std::unique_ptr<rocksdb::DB>(raw), options.metrics));
}

}  // namespace orrery::store
