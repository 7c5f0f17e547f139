// bench/common: the HTTPS keep-alive load driver the REST benchmarks share (service, dps).
// C connections on one thread (one io_context), each running its requests one after the
// other, as SDK clients do; the caller says what to send next and sees every response.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

namespace boost::asio::ssl {
class context;
}

namespace orrery::bench {

using Clock = std::chrono::steady_clock;

struct Request {
  boost::beast::http::verb method;
  std::string target;
  std::string body;
  // Set after the defaults (Host, Authorization = the connection's token, Content-Type): an
  // "Authorization" here replaces the connection's token for this request (DPS devices each
  // sign their own).
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent this long after the previous response (a status poll honouring Retry-After); the
  // latency handed to `done` counts from the send, not from the wait.
  Clock::duration delay{};
};
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// What one connection does: `next` yields its next request (nullopt: the connection is done);
// `done` sees each response with its latency (request written → response read).
struct ConnectionScript {
  std::function<std::optional<Request>()> next;
  std::function<void(const Response&, Clock::duration)> done;
};

// Runs `connections` HTTPS keep-alive connections to 127.0.0.1:`port` until each one's `next`
// is exhausted (a connection that fails is reported on stderr and ends). `token` is every
// request's default Authorization header. All callbacks run on the calling thread.
void RunLoad(boost::asio::ssl::context& tls, uint16_t port, const std::string& token,
             size_t connections, const std::function<std::optional<Request>()>& next,
             const std::function<void(const Response&, Clock::duration)>& done);

// The same with per-connection state: `script(i)` makes connection i's callbacks.
void RunLoad(boost::asio::ssl::context& tls, uint16_t port, const std::string& token,
             size_t connections, const std::function<ConnectionScript(size_t)>& script);

// The p-quantile (0..1) of `v` by rank; 0 for an empty sample.
double Percentile(std::vector<double> v, double p);

}  // namespace orrery::bench
