// Test helper: an HTTPS webhook receiver on loopback (its own throw-away CA), recording every
// POST to /hook it accepts; it refuses the first `fail_first` requests, and any while
// set_down(true), with 503. Link orrery_net.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/test_certs.h"

namespace orrery::testing {

class WebhookReceiver {
 public:
  struct Request {
    net::Headers headers;
    std::string body;
  };

  explicit WebhookReceiver(int fail_first = 0, const std::string& name = "webhook-receiver")
      : certs_(name), fail_first_(fail_first) {
    auto router = std::make_shared<net::Router>();
    router->Add("POST", "/hook", [this](net::HttpRequest& req, net::Responder r) {
      std::lock_guard lock(mu_);
      if (++attempts_ <= fail_first_ || down_) {
        return r.Send(net::HttpResponse::Text(503, "down"));
      }
      received_.push_back({req.headers, req.body});
      r.Send(net::HttpResponse::Empty(204));
    });
    auto tls = net::TlsServerContext::Create({certs_.paths.server_cert, certs_.paths.server_key});
    EXPECT_TRUE(tls);
    auto server = net::HttpServer::Start(
        pool_, {.name = "hook", .addresses = {"127.0.0.1"}, .tls = *tls}, router);
    EXPECT_TRUE(server);
    server_ = std::move(*server);
    pool_.Start();
  }
  ~WebhookReceiver() {
    server_->Stop();
    pool_.Stop();
    pool_.Join();
  }
  uint16_t port() const { return server_->port(); }
  std::string url() const { return "https://localhost:" + std::to_string(port()) + "/hook"; }
  std::filesystem::path ca() const { return certs_.paths.ca_cert; }
  std::vector<Request> received() {
    std::lock_guard lock(mu_);
    return received_;
  }
  int attempts() {
    std::lock_guard lock(mu_);
    return attempts_;
  }
  void set_down(bool down) {
    std::lock_guard lock(mu_);
    down_ = down;
  }
  // Polls `done` (the receiver has nothing to wait on) until it holds or `limit` passes.
  bool WaitUntil(const std::function<bool()>& done,
                 std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
  }

 private:
  net::testing::TestCerts certs_;
  net::IoPool pool_{1};
  std::unique_ptr<net::HttpServer> server_;
  std::mutex mu_;
  int fail_first_;
  int attempts_ = 0;
  bool down_ = false;
  std::vector<Request> received_;
};

}  // namespace orrery::testing
