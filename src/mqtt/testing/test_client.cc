#include "mqtt/testing/test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace orrery::mqtt::testing {

TestClient::TestClient(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("TestClient connect");
    std::abort();
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

TestClient::~TestClient() {
  Close();
}

void TestClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void TestClient::SendRaw(std::string_view bytes) {
  while (!bytes.empty() && fd_ >= 0) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void TestClient::Send(const Packet& p) {
  std::string out;
  Encode(p, version_, out);
  SendRaw(out);
}

std::optional<Packet> TestClient::Receive(std::chrono::milliseconds timeout) {
  if (!stash_.empty()) {
    Packet p = std::move(stash_.front());
    stash_.pop_front();
    return p;
  }
  return ReceiveWire(timeout);
}

std::optional<Packet> TestClient::ReceiveWire(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    Packet p;
    size_t used = 0;
    DecodeError err;
    auto st = Decode(buf_, version_, {}, p, used, err);
    if (st == DecodeStatus::kOk) {
      buf_.erase(0, used);
      return p;
    }
    if (st == DecodeStatus::kError || closed_ || fd_ < 0) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      closed_ = true;
    } else {
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
}

bool TestClient::WaitClosed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!closed_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      closed_ = true;
    } else {
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  return true;
}

Connack TestClient::Connect(const std::string& client_id, Version v, bool clean,
                            uint16_t keep_alive) {
  mqtt::Connect c;
  c.version = v;
  c.client_id = client_id;
  c.clean_start = clean;
  c.keep_alive = keep_alive;
  if (v == Version::k5 && !clean) c.properties.session_expiry_interval = 3600;
  return Connect(c);
}

Connack TestClient::Connect(const mqtt::Connect& c) {
  version_ = c.version;
  Send(c);
  auto p = Receive();
  if (!p || !std::holds_alternative<Connack>(*p)) {
    Connack failed;
    failed.reason = Reason::kUnspecifiedError;
    return failed;
  }
  return std::get<Connack>(*p);
}

Reason TestClient::Subscribe(const std::string& filter, uint8_t qos, uint32_t sub_id,
                             SubscriptionOptions extra) {
  mqtt::Subscribe s;
  s.packet_id = NextId();
  extra.qos = qos;
  s.filters = {{filter, extra}};
  if (sub_id) s.properties.subscription_identifiers = {sub_id};
  Send(s);
  while (auto p = ReceiveWire(std::chrono::seconds(5))) {
    if (auto* ack = std::get_if<Suback>(&*p); ack && ack->packet_id == s.packet_id) {
      return ack->reasons.empty() ? Reason::kUnspecifiedError : ack->reasons[0];
    }
    stash_.push_back(std::move(*p));
  }
  return Reason::kUnspecifiedError;
}

Reason TestClient::Publish(const std::string& topic, const std::string& payload, uint8_t qos,
                           bool retain, Properties props) {
  mqtt::Publish p;
  p.topic = topic;
  p.payload = payload;
  p.qos = qos;
  p.retain = retain;
  p.properties = std::move(props);
  if (qos) p.packet_id = NextId();
  Send(p);
  if (qos == 0) return Reason::kSuccess;
  while (auto r = ReceiveWire(std::chrono::seconds(5))) {
    auto* a = std::get_if<Ack>(&*r);
    if (!a || a->packet_id != p.packet_id ||
        (a->type != PacketType::kPuback && a->type != PacketType::kPubrec)) {
      stash_.push_back(std::move(*r));
      continue;
    }
    if (a->type == PacketType::kPuback) return a->reason;
    if (a->type == PacketType::kPubrec) {
      if (IsError(a->reason)) return a->reason;
      Ack rel;
      rel.type = PacketType::kPubrel;
      rel.packet_id = p.packet_id;
      Send(rel);
      Reason rec = a->reason;
      while (auto c = ReceiveWire(std::chrono::seconds(5))) {
        auto* comp = std::get_if<Ack>(&*c);
        if (comp && comp->type == PacketType::kPubcomp && comp->packet_id == p.packet_id) {
          return rec;
        }
        stash_.push_back(std::move(*c));
      }
      return Reason::kUnspecifiedError;
    }
  }
  return Reason::kUnspecifiedError;
}

std::optional<mqtt::Publish> TestClient::ReceivePublish(std::chrono::milliseconds timeout,
                                                        bool ack) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto p = Receive(left);
    if (!p) return std::nullopt;
    auto* pub = std::get_if<mqtt::Publish>(&*p);
    if (!pub) continue;  // acknowledgements of our own flows are not what we wait for
    if (ack && pub->qos == 1) {
      Ack a;
      a.type = PacketType::kPuback;
      a.packet_id = pub->packet_id;
      Send(a);
    } else if (ack && pub->qos == 2) {
      Ack rec;
      rec.type = PacketType::kPubrec;
      rec.packet_id = pub->packet_id;
      Send(rec);
      while (auto r = ReceiveWire(left)) {
        auto* rel = std::get_if<Ack>(&*r);
        if (rel && rel->type == PacketType::kPubrel && rel->packet_id == pub->packet_id) {
          Ack comp;
          comp.type = PacketType::kPubcomp;
          comp.packet_id = pub->packet_id;
          Send(comp);
          break;
        }
        stash_.push_back(std::move(*r));
      }
    }
    return std::move(*pub);
  }
}

}  // namespace orrery::mqtt::testing
