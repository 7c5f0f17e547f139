// One io_context per thread ("per core"): a connection lives on one context for its whole
// life, so its state needs no locks; work for another connection is posted to its context.
//
// Thread safety: Next() and contexts are safe from any thread. Run() blocks the caller's
// thread as worker 0 until Stop().
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace orrery::net {

class IoPool {
 public:
  // REQUIRES: threads >= 1.
  explicit IoPool(size_t threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  size_t size() const { return contexts_.size(); }
  boost::asio::io_context& Get(size_t i) { return *contexts_[i]; }
  // Round-robin choice for a new connection.
  boost::asio::io_context& Next();

  // Starts threads 1..n-1 and runs context 0 on the calling thread until Stop().
  void Run();
  // Starts all n threads in the background (tests, tools); Join() waits for them.
  void Start();
  void Stop();
  void Join();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_{0};
};

}  // namespace orrery::net
