#include "net/listener.h"

#include <fmt/format.h>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/log.h"

namespace orrery::net {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::vector<asio::ip::address> Expand(const std::vector<std::string>& addresses, std::string* bad) {
  std::vector<asio::ip::address> out;
  for (auto& a : addresses) {
    if (a == "localhost") {
      out.push_back(asio::ip::make_address("127.0.0.1"));
      out.push_back(asio::ip::make_address("::1"));
      continue;
    }
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(a, ec);
    if (ec) {
      *bad = a;
      return {};
    }
    out.push_back(addr);
  }
  return out;
}

std::string Describe(const asio::ip::address& a, uint16_t port) {
  return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), port)
                   : fmt::format("{}:{}", a.to_string(), port);
}

}  // namespace

Listener::Listener(IoPool& pool, ListenerOptions options, OnAccept on_accept)
    : pool_(pool), options_(std::move(options)), on_accept_(std::move(on_accept)) {
  if (options_.metrics) {
    metrics::Labels l{{"listener", options_.name}};
    open_gauge_ = &options_.metrics->GetGauge("orrery_net_connections", "Open connections.", l);
    accepted_ =
        &options_.metrics->GetCounter("orrery_net_accepted_total", "Connections accepted.", l);
    rejected_ = &options_.metrics->GetCounter(
        "orrery_net_rejected_total", "Connections refused because the limit was reached.", l);
  }
}

Result<std::shared_ptr<Listener>> Listener::Open(IoPool& pool, ListenerOptions options,
                                                 OnAccept on_accept) {
  std::shared_ptr<Listener> l(new Listener(pool, std::move(options), std::move(on_accept)));
  std::string bad;
  auto addrs = Expand(l->options_.addresses, &bad);
  if (!bad.empty()) {
    return Error(BaseErrc::kInvalidArgument,
                 fmt::format("{}: '{}' is not an IP address", l->options_.name, bad));
  }
  if (addrs.empty()) {
    return Error(BaseErrc::kInvalidArgument,
                 fmt::format("{}: no address to listen on", l->options_.name));
  }
  uint16_t port = l->options_.port;
  std::string skipped;
  for (auto& addr : addrs) {
    auto acc = std::make_unique<tcp::acceptor>(pool.Get(0));
    tcp::endpoint ep(addr, port);
    boost::system::error_code ec;
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && addr.is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      // A loopback ::1 on a host without IPv6 is not worth failing for.
      bool optional_v6 =
          addr.is_v6() && addrs.size() > 1 &&
          (ec == asio::error::address_family_not_supported || ec.value() == EADDRNOTAVAIL);
      if (optional_v6) {
        skipped = Describe(addr, port);
        continue;
      }
      std::string hint;
      if (ec == asio::error::access_denied && port < 1024) {
        hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
      }
      return Error(
          ec == asio::error::address_in_use ? BaseErrc::kAlreadyExists : BaseErrc::kUnavailable,
          fmt::format("cannot listen on {} for {}: {}{}", Describe(addr, port), l->options_.name,
                      ec.message(), hint));
    }
    port = acc->local_endpoint().port();  // an ephemeral port is shared by all addresses
    l->acceptors_.push_back(std::move(acc));
  }
  if (!skipped.empty()) {
    log::Get("net")->debug("{}: skipped {} (IPv6 unavailable)", l->options_.name, skipped);
  }
  l->port_ = port;
  return l;
}

void Listener::Start() {
  for (size_t i = 0; i < acceptors_.size(); ++i)
    Accept(i);
}

void Listener::Stop() {
  if (stopped_.exchange(true)) return;
  for (auto& acc : acceptors_) {
    asio::post(acc->get_executor(), [self = shared_from_this(), a = acc.get()] {
      boost::system::error_code ec;
      a->close(ec);
    });
  }
}

void Listener::Accept(size_t i) {
  auto& ctx = pool_.Next();
  acceptors_[i]->async_accept(
      ctx, [self = shared_from_this(), i](const boost::system::error_code& ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || self->stopped_) return;
        if (ec) {
          // Out of descriptors or similar: back off instead of spinning.
          log::Get("net")->warn("{}: accept failed: {}", self->options_.name, ec.message());
          auto timer = std::make_shared<asio::steady_timer>(self->acceptors_[i]->get_executor(),
                                                            std::chrono::milliseconds(100));
          timer->async_wait([self, i, timer](const boost::system::error_code&) {
            if (!self->stopped_) self->Accept(i);
          });
          return;
        }
        int64_t now = self->active_->fetch_add(1, std::memory_order_relaxed) + 1;
        if (now > static_cast<int64_t>(self->options_.max_connections)) {
          self->active_->fetch_sub(1, std::memory_order_relaxed);
          if (self->rejected_) self->rejected_->Inc();
          boost::system::error_code ignored;
          socket.close(ignored);
        } else {
          if (self->accepted_) self->accepted_->Inc();
          if (self->open_gauge_) self->open_gauge_->Add(1);
          boost::system::error_code ignored;
          socket.set_option(tcp::no_delay(true), ignored);
          ConnectionToken token(self->active_, self->open_gauge_);
          // The socket belongs to `ctx`; run the protocol's start there.
          auto executor = socket.get_executor();
          asio::post(executor, [self, s = std::move(socket), t = std::move(token)]() mutable {
            self->on_accept_(std::move(s), std::move(t));
          });
        }
        self->Accept(i);
      });
}

}  // namespace orrery::net
