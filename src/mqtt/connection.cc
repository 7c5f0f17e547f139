#include "mqtt/connection.h"

#include <fmt/format.h>
#include <boost/asio/post.hpp>

#include "base/crypto.h"
#include "base/log.h"
#include "mqtt/broker.h"
#include "mqtt/persistence.h"
#include "mqtt/topic.h"

namespace orrery::mqtt {
namespace asio = boost::asio;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kWriteHighWater = 256 * 1024;  // stop pulling from the queue beyond this

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("mqtt");
  return l;
}

void Inc(metrics::Counter* c, uint64_t n = 1) {
  if (c) c->Inc(n);
}

}  // namespace

Connection::Connection(Broker& broker, net::StreamPtr stream)
    : broker_(broker), stream_(std::move(stream)), timer_(stream_->executor()) {
  client_.transport = stream_->peer().transport;
  client_.remote_address = stream_->peer().remote_address;
}

Connection::~Connection() = default;

void Connection::Start() {
  broker_.Register(shared_from_this());
  registered_ = true;
  // Until CONNECT arrives, the connect timeout bounds how long a silent socket may stay.
  timer_.expires_after(broker_.options().connect_timeout);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec && self->state_ == State::kAwaitConnect)
      self->Close(std::nullopt, "no CONNECT in time");
  });
  last_rx_ = std::chrono::steady_clock::now();
  Read();
}

void Connection::PostFlush() {
  asio::post(stream_->executor(), [self = shared_from_this()] { self->Flush(); });
}

void Connection::PostKick(Reason reason) {
  asio::post(stream_->executor(), [self = shared_from_this(), reason] {
    if (reason == Reason::kSessionTakenOver) {
      self->Close(reason, "another connection took over the client id");
    } else {
      self->Close(reason, ReasonName(reason));
    }
  });
}

// ---------------------------------------------------------------- reading

void Connection::Read() {
  if (reading_ || state_ == State::kClosed || state_ == State::kClosing || read_paused_ ||
      state_ == State::kAuthenticating) {
    return;
  }
  reading_ = true;
  if (stream_->AsyncWaitReadable(
          [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
            self->reading_ = false;
            if (ec) {
              if (self->state_ != State::kClosed) self->Close(std::nullopt, ec.message());
              return;
            }
            self->OnReadable();
          })) {
    return;
  }
  // Transports without readiness (TLS, WebSocket) read into the connection's own buffer.
  if (in_start_ > 0 && in_start_ == in_.size()) {
    in_.clear();
    in_start_ = 0;
  } else if (in_start_ > kReadChunk) {
    in_.erase(0, in_start_);
    in_start_ = 0;
  }
  size_t old = in_.size();
  in_.resize(old + kReadChunk);
  stream_->AsyncRead(
      asio::buffer(in_.data() + old, kReadChunk),
      [self = shared_from_this(), old](const boost::system::error_code& ec, size_t n) {
        self->reading_ = false;
        self->in_.resize(old + (ec ? 0 : n));
        self->OnRead(ec, n);
      });
}

void Connection::OnRead(const boost::system::error_code& ec, size_t n) {
  if (ec) {
    if (state_ != State::kClosed)
      Close(std::nullopt, ec == asio::error::eof ? "peer closed" : ec.message());
    return;
  }
  Inc(broker_.metrics().bytes_in, n);
  last_rx_ = std::chrono::steady_clock::now();
  ProcessInput();
  Read();
}

void Connection::OnReadable() {
  // Data is waiting: read it into a per-thread scratch buffer, handle every whole packet
  // straight from there, and keep only the bytes of an incomplete packet.
  thread_local std::string scratch(kReadChunk, '\0');
  boost::system::error_code ec;
  size_t n = stream_->ReadAvailable(asio::buffer(scratch), ec);
  if (ec == asio::error::would_block) return Read();
  if (!ec && n == 0) ec = asio::error::eof;
  if (ec) {
    if (state_ != State::kClosed)
      Close(std::nullopt, ec == asio::error::eof ? "peer closed" : ec.message());
    return;
  }
  Inc(broker_.metrics().bytes_in, n);
  last_rx_ = std::chrono::steady_clock::now();
  std::string_view fresh(scratch.data(), n);
  if (in_start_ < in_.size()) {
    in_.append(fresh);
    ProcessInput();
  } else {
    in_.clear();
    in_start_ = 0;
    size_t used = Consume(fresh);
    in_.assign(fresh.substr(used));
  }
  if (in_.empty() && in_.capacity() > 4096) std::string().swap(in_);  // give idle memory back
  Read();
}

void Connection::ProcessInput() {
  in_start_ += Consume(std::string_view(in_).substr(in_start_));
  if (in_start_ == in_.size()) {
    in_.clear();
    in_start_ = 0;
  }
}

size_t Connection::Consume(std::string_view data) {
  DecodeLimits limits{.max_packet_size = broker_.options().max_packet_size};
  size_t pos = 0;
  // Handlers may un-pause reading inline (PumpAcks); the loop below then simply continues,
  // so nothing may start a nested Consume over the same bytes.
  consuming_ = true;
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{consuming_};
  while (state_ != State::kClosing && state_ != State::kClosed && !read_paused_) {
    if (state_ == State::kAuthenticating) break;  // the rest waits for CONNACK
    Packet packet;
    size_t used = 0;
    DecodeError err;
    auto st = Decode(data.substr(pos), version_, limits, packet, used, err);
    if (st == DecodeStatus::kNeedMore) break;
    if (st == DecodeStatus::kError) {
      if (!version_ && err.connack_version) {
        // Refuse a bad CONNECT with a CONNACK the client can read.
        Connack ca;
        ca.reason = err.reason;
        Encode(ca, *err.connack_version, out_);
        version_ = err.connack_version;
        Inc(broker_.metrics().connect_refused);
        Close(std::nullopt, err.message);
        return pos;
      }
      ProtocolViolation(err.reason, err.message);
      return pos;
    }
    pos += used;
    if (!Handle(packet)) return pos;
  }
  return pos;
}

bool Connection::Handle(Packet& packet) {
  switch (TypeOf(packet)) {
    case PacketType::kConnect:
      HandleConnect(std::get<Connect>(packet));
      return true;
    case PacketType::kPublish:
      HandlePublish(std::get<Publish>(packet));
      return true;
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      HandleAck(std::get<Ack>(packet));
      return true;
    case PacketType::kSubscribe:
      HandleSubscribe(std::get<Subscribe>(packet));
      return true;
    case PacketType::kUnsubscribe:
      HandleUnsubscribe(std::get<Unsubscribe>(packet));
      return true;
    case PacketType::kPingreq:
      Send(Pingresp{});
      return true;
    case PacketType::kDisconnect:
      HandleDisconnect(std::get<Disconnect>(packet));
      return false;
    case PacketType::kAuth:
      ProtocolViolation(Reason::kProtocolError, "AUTH without an authentication method");
      return false;
    default:
      ProtocolViolation(Reason::kProtocolError, "a server-to-client packet was sent by the client");
      return false;
  }
}

// ---------------------------------------------------------------- CONNECT

void Connection::HandleConnect(Connect& c) {
  version_ = c.version;
  const auto& opts = broker_.options();
  auto refuse = [&](Reason r, const std::string& why) {
    Connack ca;
    ca.reason = r;
    if (c.version == Version::k5) ca.properties.reason_string = why;
    Send(ca);
    Inc(broker_.metrics().connect_refused);
    Close(std::nullopt, why);
  };
  if (c.properties.authentication_method) {
    return refuse(Reason::kBadAuthenticationMethod, "enhanced authentication is not supported");
  }
  if (c.client_id.size() > opts.max_client_id_length) {
    return refuse(Reason::kClientIdentifierNotValid, "client identifier too long");
  }
  if (c.client_id.empty()) {
    if (c.version == Version::k311 && !c.clean_start) {
      return refuse(Reason::kClientIdentifierNotValid,
                    "an empty client identifier needs clean session 1");
    }
    c.client_id = "orrery-" + crypto::HexEncode(crypto::RandomBytes(8));
    assigned_id_ = true;  // MQTT 5 reports it in CONNACK
  }
  state_ = State::kAuthenticating;
  ConnectInfo info{c.version, c.client_id, c.username, c.password, &stream_->peer()};
  client_.client_id = c.client_id;
  client_.username = c.username.value_or("");
  broker_.authenticator().Authenticate(
      info, [self = shared_from_this(), c = std::move(c)](AuthResult r) mutable {
        asio::post(self->stream_->executor(), [self, c = std::move(c), r = std::move(r)]() mutable {
          self->OnAuthenticated(std::move(c), std::move(r));
        });
      });
}

void Connection::OnAuthenticated(Connect c, AuthResult r) {
  if (state_ != State::kAuthenticating) return;
  const auto& opts = broker_.options();
  if (r.reason != Reason::kSuccess) {
    Connack ca;
    ca.reason = r.reason;
    if (c.version == Version::k5 && !r.message.empty()) ca.properties.reason_string = r.message;
    Send(ca);
    Inc(broker_.metrics().connect_refused);
    Log()->debug("refused client '{}' from {}: {}", c.client_id, client_.remote_address,
                 r.message.empty() ? ReasonName(r.reason) : r.message);
    Close(std::nullopt, "not authorized");
    return;
  }
  client_.principal = std::move(r.principal);
  client_.identity = std::move(r.identity);
  if (!r.session_key.empty()) {
    c.client_id = std::move(r.session_key);
    client_.client_id = c.client_id;
  }

  if (c.version == Version::k5) {
    session_expiry_ = c.properties.session_expiry_interval.value_or(0);
    if (c.properties.receive_maximum) client_receive_max_ = *c.properties.receive_maximum;
    if (c.properties.maximum_packet_size) client_max_packet_ = *c.properties.maximum_packet_size;
  } else {
    session_expiry_ = c.clean_start ? 0 : kSessionNeverExpires;
  }
  session_expiry_ = std::min(session_expiry_, opts.max_session_expiry_s);
  will_ = std::move(c.will);
  keep_alive_s_ = c.keep_alive;

  auto attached =
      broker_.Attach(shared_from_this(), c.client_id, c.clean_start, session_expiry_, c.version);
  session_ = attached.session;
  state_ = State::kConnected;

  Connack ca;
  ca.session_present = attached.present;
  if (c.version == Version::k5) {
    auto& p = ca.properties;
    p.receive_maximum = opts.receive_maximum;
    p.maximum_packet_size = static_cast<uint32_t>(opts.max_packet_size);
    p.topic_alias_maximum = opts.topic_alias_maximum;
    if (!opts.retain_available) p.retain_available = 0;
    if (assigned_id_) p.assigned_client_identifier = c.client_id;
    if (c.properties.session_expiry_interval &&
        session_expiry_ != *c.properties.session_expiry_interval) {
      p.session_expiry_interval = session_expiry_;
    }
  }
  Send(ca);
  Inc(broker_.metrics().connects);
  broker_.NotifyConnected(client_);
  Log()->debug("client '{}' connected from {} ({} v{}{})", client_.client_id,
               client_.remote_address, net::TransportName(client_.transport),
               c.version == Version::k5 ? 5 : 3, attached.present ? ", session resumed" : "");
  ArmKeepAlive();
  if (attached.present) ResendInflight();
  Flush();
  ProcessInput();  // packets that arrived behind the CONNECT
  if (in_.empty() && in_.capacity() > 4096) std::string().swap(in_);
  Read();
}

void Connection::ArmKeepAlive() {
  timer_.cancel();
  if (keep_alive_s_ == 0 || state_ != State::kConnected) return;
  auto limit = std::chrono::milliseconds(int64_t{keep_alive_s_} * 1500);
  auto due = last_rx_ + limit;
  timer_.expires_at(due);
  timer_.async_wait([self = shared_from_this(), limit](const boost::system::error_code& ec) {
    if (ec || self->state_ != State::kConnected) return;
    if (std::chrono::steady_clock::now() - self->last_rx_ >= limit) {
      Inc(self->broker_.metrics().keepalive_timeouts);
      self->Close(Reason::kKeepAliveTimeout, "keep-alive timeout");
    } else {
      self->ArmKeepAlive();
    }
  });
}

// ---------------------------------------------------------------- PUBLISH in

void Connection::HandlePublish(Publish& p) {
  if (state_ != State::kConnected) return;
  Inc(broker_.metrics().publish_in);
  const bool v5 = *version_ == Version::k5;
  if (v5) {
    if (p.qos > 0 && acks_.size() >= broker_.options().receive_maximum) {
      return ProtocolViolation(Reason::kReceiveMaximumExceeded, "Receive Maximum exceeded");
    }
    if (auto alias = p.properties.topic_alias) {
      if (*alias == 0 || *alias > broker_.options().topic_alias_maximum) {
        return ProtocolViolation(Reason::kTopicAliasInvalid, "Topic Alias out of range");
      }
      if (p.topic.empty()) {
        auto it = aliases_.find(*alias);
        if (it == aliases_.end()) {
          return ProtocolViolation(Reason::kProtocolError, "unknown Topic Alias");
        }
        p.topic = it->second;
      } else {
        aliases_[*alias] = p.topic;
      }
      p.properties.topic_alias.reset();
    }
    if (!p.properties.subscription_identifiers.empty()) {
      return ProtocolViolation(Reason::kProtocolError,
                               "a client PUBLISH must not carry Subscription Identifiers");
    }
  }
  if (p.retain && !broker_.options().retain_available) {
    return ProtocolViolation(Reason::kRetainNotSupported, "retained messages are disabled");
  }

  // Acknowledgements leave in arrival order; each QoS 1/2 PUBLISH takes a ticket.
  uint64_t ticket = 0;
  if (p.qos > 0) {
    ticket = acks_base_ + acks_.size();
    acks_.push_back({p.qos == 1 ? PacketType::kPuback : PacketType::kPubrec, p.packet_id});
    if (p.qos == 2) {
      std::lock_guard sl(session_->mu);
      if (!session_->incoming_qos2.insert(p.packet_id).second) {
        // A retransmission of a QoS 2 message we already own: acknowledge, do not route.
        acks_.back().ready = true;
        PumpAcks();
        return;
      }
    }
    if (!v5 && acks_.size() >= broker_.options().receive_maximum) {
      read_paused_ = true;  // 3.1.1 has no Receive Maximum: stop reading instead
    }
  }

  Access access = broker_.authorizer().CanPublish(client_, p.topic);
  if (access != Access::kAllow) {
    Inc(broker_.metrics().denied);
    Log()->debug("client '{}' may not publish to '{}'", client_.client_id, p.topic);
    if (access == Access::kDenyDisconnect) {
      return Close(Reason::kNotAuthorized, "publish not authorized");
    }
    if (p.qos > 0) AckReady(ticket, Reason::kNotAuthorized);
    return;
  }

  auto m = std::make_shared<Message>();
  m->topic = std::move(p.topic);
  m->payload = std::move(p.payload);
  m->qos = p.qos;
  m->retain = p.retain;
  m->publisher = client_.client_id;
  if (v5) {
    if (p.properties.message_expiry_interval) {
      m->expires_at_ms = broker_.Now() + int64_t{*p.properties.message_expiry_interval} * 1000;
      p.properties.message_expiry_interval.reset();
    }
    if (!(p.properties == Properties{})) {
      m->properties = std::make_unique<Properties>(std::move(p.properties));
    }
  }
  if (p.qos == 0) {
    broker_.Route(client_, std::move(m), [](Reason) {});
    return;
  }
  broker_.Route(client_, std::move(m),
                [self = shared_from_this(), ticket, exec = stream_->executor()](Reason r) {
                  // May run on the store's writer thread: hop back to our own.
                  asio::post(exec, [self, ticket, r] { self->AckReady(ticket, r); });
                });
}

void Connection::AckReady(uint64_t ticket, Reason reason) {
  if (ticket < acks_base_ || ticket >= acks_base_ + acks_.size()) return;
  auto& a = acks_[ticket - acks_base_];
  a.ready = true;
  a.reason = reason;
  PumpAcks();
}

void Connection::PumpAcks() {
  if (state_ != State::kConnected) return;
  bool sent = false;
  while (!acks_.empty() && acks_.front().ready) {
    auto& a = acks_.front();
    Ack ack;
    ack.type = a.type;
    ack.packet_id = a.packet_id;
    // 3.1.1 cannot carry a reason; MQTT 5 reports "no matching subscribers" and refusals.
    ack.reason = a.reason;
    if (a.type == PacketType::kPubrec && IsError(a.reason)) {
      std::lock_guard sl(session_->mu);
      session_->incoming_qos2.erase(a.packet_id);  // a failed QoS 2 flow ends here
    }
    if (*version_ == Version::k311) {
      // 3.1.1 acknowledgements carry no reason: a message that could not be made durable must
      // not be acknowledged at all, so the client sends it again on its next connection.
      if (a.reason == Reason::kUnspecifiedError || a.reason == Reason::kServerBusy ||
          a.reason == Reason::kQuotaExceeded || a.reason == Reason::kImplementationSpecificError) {
        return Close(std::nullopt,
                     fmt::format("could not accept a message: {}", ReasonName(a.reason)));
      }
      ack.reason = Reason::kSuccess;
    }
    Send(ack);
    acks_.pop_front();
    ++acks_base_;
    sent = true;
  }
  if (sent && read_paused_ && acks_.size() < broker_.options().receive_maximum) {
    read_paused_ = false;
    if (!consuming_) {
      ProcessInput();
      Read();
    }
  }
}

// ---------------------------------------------------------------- acks from the client

void Connection::HandleAck(Ack& a) {
  if (state_ != State::kConnected) return;
  if (a.type == PacketType::kPubrel) {
    bool known;
    {
      std::lock_guard sl(session_->mu);
      known = session_->incoming_qos2.erase(a.packet_id) > 0;
    }
    Ack comp;
    comp.type = PacketType::kPubcomp;
    comp.packet_id = a.packet_id;
    if (!known && *version_ == Version::k5) comp.reason = Reason::kPacketIdentifierNotFound;
    Send(comp);
    return;
  }
  store::WriteBatch batch;
  bool pubrel = false;
  std::shared_ptr<DeliveryHook> acked;
  {
    std::lock_guard sl(session_->mu);
    auto it = session_->inflight.find(a.packet_id);
    if (it == session_->inflight.end()) return;  // unknown: ignore (MQTT 5 §4.3.2)
    auto& inf = it->second;
    bool done = false;
    if (a.type == PacketType::kPuback && inf.state == Inflight::State::kAwaitPuback) {
      done = true;
    } else if (a.type == PacketType::kPubrec && inf.state == Inflight::State::kAwaitPubrec) {
      if (IsError(a.reason)) {
        done = true;
      } else {
        inf.state = Inflight::State::kAwaitPubcomp;
        pubrel = true;
        if (inf.out.store_seq && session_->persistent()) {
          batch.Put(persist::kQueue, persist::QueueKey(session_->client_id, inf.out.store_seq),
                    persist::EncodeMessage(inf.out, inf.state, a.packet_id));
        }
      }
    } else if (a.type == PacketType::kPubcomp && inf.state == Inflight::State::kAwaitPubcomp) {
      done = true;
    } else {
      return;  // an acknowledgement that does not fit the flow: ignore
    }
    if (done) {
      if (inf.out.store_seq) {
        batch.Delete(persist::kQueue, persist::QueueKey(session_->client_id, inf.out.store_seq));
      }
      if (!IsError(a.reason)) acked = std::move(inf.out.hook);
      session_->inflight.erase(it);
    }
  }
  if (acked) acked->Settle(true);
  broker_.WriteQueue(std::move(batch));
  if (pubrel) {
    Ack rel;
    rel.type = PacketType::kPubrel;
    rel.packet_id = a.packet_id;
    Send(rel);
  }
  Flush();
}

// ---------------------------------------------------------------- SUBSCRIBE

void Connection::HandleSubscribe(Subscribe& s) {
  if (state_ != State::kConnected) return;
  const bool v5 = *version_ == Version::k5;
  uint32_t sub_id =
      s.properties.subscription_identifiers.empty() ? 0 : s.properties.subscription_identifiers[0];
  Suback ack;
  ack.packet_id = s.packet_id;
  std::vector<std::pair<MessagePtr, uint8_t>> retained;
  for (auto& [filter, options] : s.filters) {
    if (v5 && options.no_local && !SplitShared(filter).group.empty()) {
      return ProtocolViolation(Reason::kProtocolError, "No Local on a shared subscription");
    }
    std::vector<MessagePtr> r;
    Reason reason = broker_.Subscribe(client_, session_, filter, options, sub_id, r);
    ack.reasons.push_back(reason);
    for (auto& m : r)
      retained.emplace_back(std::move(m), options.qos);
  }
  std::vector<std::string> filters;
  for (auto& f : s.filters)
    filters.push_back(f.first);
  auto finish = [self = shared_from_this(), ack = std::move(ack), retained = std::move(retained),
                 filters = std::move(filters), sub_id]() mutable {
    if (self->state_ != State::kConnected) return;
    self->Send(ack);
    for (size_t i = 0; i < ack.reasons.size() && i < filters.size(); ++i) {
      if (!IsError(ack.reasons[i])) self->broker_.NotifySubscribed(self->client_, filters[i]);
    }
    for (auto& [m, qos] : retained) {
      Outgoing o;
      o.qos = std::min(qos, m->qos);
      o.retain = true;
      o.message = std::move(m);
      if (sub_id) o.subscription_ids.push_back(sub_id);
      self->broker_.Enqueue(self->session_, std::move(o));
    }
  };
  bool persistent;
  {
    std::lock_guard sl(session_->mu);
    persistent = session_->persistent();
  }
  if (persistent && broker_.store()) {
    // SUBACK once the subscription would survive a restart.
    broker_.PersistSession(session_, [f = std::move(finish), exec = stream_->executor()](
                                         Status) mutable { asio::post(exec, std::move(f)); });
  } else {
    finish();
  }
}

void Connection::HandleUnsubscribe(Unsubscribe& u) {
  if (state_ != State::kConnected) return;
  Unsuback ack;
  ack.packet_id = u.packet_id;
  for (auto& f : u.filters)
    ack.reasons.push_back(broker_.Unsubscribe(session_, f));
  bool persistent;
  {
    std::lock_guard sl(session_->mu);
    persistent = session_->persistent();
  }
  if (persistent && broker_.store()) {
    broker_.PersistSession(session_, [self = shared_from_this(), ack = std::move(ack),
                                      exec = stream_->executor()](Status) mutable {
      asio::post(exec, [self, ack = std::move(ack)] {
        if (self->state_ == State::kConnected) self->Send(ack);
      });
    });
  } else {
    Send(ack);
  }
}

void Connection::HandleDisconnect(Disconnect& d) {
  if (*version_ == Version::k5) {
    if (d.properties.session_expiry_interval) {
      if (session_expiry_ == 0 && *d.properties.session_expiry_interval != 0) {
        return ProtocolViolation(Reason::kProtocolError,
                                 "Session Expiry set on DISCONNECT after 0 on CONNECT");
      }
      session_expiry_ =
          std::min(*d.properties.session_expiry_interval, broker_.options().max_session_expiry_s);
      if (session_) {
        std::lock_guard sl(session_->mu);
        session_->expiry_s = session_expiry_;
      }
    }
    will_on_close_ = d.reason == Reason::kDisconnectWithWill;
  } else {
    will_on_close_ = false;
  }
  Close(std::nullopt, "client disconnected");
}

// ---------------------------------------------------------------- sending

void Connection::Send(const Packet& p) {
  Encode(p, version_.value_or(Version::k311), out_);
  StartWrite();
}

void Connection::StartWrite() {
  if (write_in_flight_ || out_.empty() || state_ == State::kClosed) return;
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  auto self = shared_from_this();
  write_buf_[0] = asio::buffer(writing_);
  stream_->AsyncWrite(std::span<const asio::const_buffer>(write_buf_, 1),
                      [self](const boost::system::error_code& ec, size_t n) {
                        self->write_in_flight_ = false;
                        Inc(self->broker_.metrics().bytes_out, n);
                        self->OnWrite(ec);
                      });
}

void Connection::OnWrite(const boost::system::error_code& ec) {
  writing_.clear();
  if (writing_.capacity() > 64 * 1024) std::string().swap(writing_);
  if (ec) {
    if (state_ != State::kClosed) Close(std::nullopt, "write failed: " + ec.message());
    return;
  }
  if (state_ == State::kClosing) {
    if (out_.empty()) return Finish();
    return StartWrite();
  }
  if (flush_wanted_) Flush();
  StartWrite();
}

void Connection::Flush() {
  if (state_ != State::kConnected || !session_) return;
  if (out_.size() >= kWriteHighWater) {
    flush_wanted_ = true;
    return;
  }
  flush_wanted_ = false;
  const Version v = *version_;
  const uint16_t window = std::min<uint16_t>(client_receive_max_, broker_.options().max_inflight);
  store::WriteBatch batch;
  int64_t now = 0;
  size_t sent = 0, expired = 0, too_large = 0;
  {
    std::lock_guard sl(session_->mu);
    if (session_->connection.lock().get() != this) return;  // taken over
    session_->flush_scheduled = false;
    auto& q = session_->queue;
    while (!q.empty()) {
      if (out_.size() >= kWriteHighWater) {
        flush_wanted_ = true;
        break;
      }
      Outgoing& o = q.front();
      const Message& m = *o.message;
      if (m.expires_at_ms) {
        if (!now) now = broker_.Now();
        if (m.expires_at_ms <= now) {
          if (o.store_seq)
            batch.Delete(persist::kQueue, persist::QueueKey(session_->client_id, o.store_seq));
          q.pop_front();
          ++expired;
          continue;
        }
      }
      if (o.qos > 0 && session_->inflight.size() >= window) break;
      // MQTT 5 properties of this delivery: the message's, subscription ids, remaining expiry.
      const Properties* props = nullptr;
      Properties local;
      if (v == Version::k5 && (m.properties || !o.subscription_ids.empty() || m.expires_at_ms)) {
        if (m.properties) local = *m.properties;
        local.subscription_identifiers = o.subscription_ids;
        if (m.expires_at_ms) {
          local.message_expiry_interval =
              static_cast<uint32_t>(std::max<int64_t>(1, (m.expires_at_ms - now + 999) / 1000));
        }
        props = &local;
      }
      if (PublishSize(v, m.topic, m.payload, o.qos, props) > client_max_packet_) {
        if (o.store_seq)
          batch.Delete(persist::kQueue, persist::QueueKey(session_->client_id, o.store_seq));
        q.pop_front();
        ++too_large;
        continue;
      }
      uint16_t pid = 0;
      if (o.qos > 0) {
        do {
          pid = session_->next_packet_id++;
          if (session_->next_packet_id == 0) session_->next_packet_id = 1;
        } while (pid == 0 || session_->inflight.count(pid));
      }
      EncodePublish(out_, v, m.topic, m.payload, o.qos, o.retain, false, pid, props);
      ++sent;
      if (o.qos > 0) {
        auto state = o.qos == 1 ? Inflight::State::kAwaitPuback : Inflight::State::kAwaitPubrec;
        if (o.store_seq) {
          batch.Put(persist::kQueue, persist::QueueKey(session_->client_id, o.store_seq),
                    persist::EncodeMessage(o, state, pid));
        }
        session_->inflight.emplace(pid, Inflight{std::move(o), state});
      }
      q.pop_front();
    }
  }
  Inc(broker_.metrics().publish_out, sent);
  Inc(broker_.metrics().dropped_expired, expired);
  Inc(broker_.metrics().dropped_too_large, too_large);
  broker_.WriteQueue(std::move(batch));
  StartWrite();
}

void Connection::ResendInflight() {
  const Version v = *version_;
  std::lock_guard sl(session_->mu);
  for (auto& [pid, inf] : session_->inflight) {
    if (inf.state == Inflight::State::kAwaitPubcomp) {
      Ack rel;
      rel.type = PacketType::kPubrel;
      rel.packet_id = pid;
      Encode(rel, v, out_);
      continue;
    }
    const Message& m = *inf.out.message;
    Properties local;
    const Properties* props = nullptr;
    if (v == Version::k5 && (m.properties || !inf.out.subscription_ids.empty())) {
      if (m.properties) local = *m.properties;
      local.subscription_identifiers = inf.out.subscription_ids;
      props = &local;
    }
    EncodePublish(out_, v, m.topic, m.payload, inf.out.qos, inf.out.retain, /*dup=*/true, pid,
                  props);
  }
}

// ---------------------------------------------------------------- closing

void Connection::ProtocolViolation(Reason reason, const std::string& message) {
  Inc(broker_.metrics().protocol_errors);
  Log()->debug("closing client '{}' from {}: {} ({})", client_.client_id, client_.remote_address,
               message, ReasonName(reason));
  // MQTT 5 explains with DISCONNECT; MQTT 3.1.1 can only close (§4.8).
  Close(version_ == Version::k5 && state_ == State::kConnected ? std::optional<Reason>(reason)
                                                               : std::nullopt,
        message);
}

void Connection::Close(std::optional<Reason> disconnect_reason, const std::string& why) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  bool was_connected = state_ == State::kConnected;
  if (disconnect_reason && version_ == Version::k5 && was_connected) {
    Disconnect d;
    d.reason = *disconnect_reason;
    if (*disconnect_reason != Reason::kSessionTakenOver) d.properties.reason_string = why;
    Encode(d, Version::k5, out_);
  }
  state_ = State::kClosing;
  timer_.cancel();
  if (session_ && was_connected) {
    std::optional<Will> will;
    if (will_on_close_ && will_) will = std::move(will_);
    broker_.Detach(shared_from_this(), session_, std::move(will), client_);
  }
  Log()->trace("closing connection of '{}': {}", client_.client_id, why);
  if (!write_in_flight_) {
    if (out_.empty()) return Finish();
    StartWrite();
  }
}

void Connection::Finish() {
  if (finished_) return;
  finished_ = true;
  state_ = State::kClosed;
  stream_->Close();
  if (registered_) broker_.Unregister(this);
}

}  // namespace orrery::mqtt
