// One MQTT network connection: the protocol state machine over a net::Stream (TCP, TLS,
// WebSocket). Lives on its stream's io thread; other threads only call the Post* methods.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>

#include "mqtt/auth.h"
#include "mqtt/codec.h"
#include "mqtt/session.h"
#include "net/stream.h"

namespace orrery::mqtt {

class Broker;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Broker& broker, net::StreamPtr stream);
  ~Connection();

  void Start();
  // Thread-safe: asks the connection to drain its session's queue.
  void PostFlush();
  // Thread-safe: closes the connection (MQTT 5: DISCONNECT with `reason` first).
  void PostKick(Reason reason);

 private:
  enum class State { kAwaitConnect, kAuthenticating, kConnected, kClosing, kClosed };

  void Read();
  void OnRead(const boost::system::error_code& ec, size_t n);
  void OnReadable();
  // Decodes and handles whole packets from `data`; returns the bytes used. Stops early while
  // authenticating, paused or closing.
  size_t Consume(std::string_view data);
  void ProcessInput();          // Consume() what is buffered in in_
  bool Handle(Packet& packet);  // false: stop processing (closing)
  void HandleConnect(Connect& c);
  void OnAuthenticated(Connect c, AuthResult r);
  void HandlePublish(Publish& p);
  void HandleAck(Ack& a);
  void HandleSubscribe(Subscribe& s);
  void HandleUnsubscribe(Unsubscribe& u);
  void HandleDisconnect(Disconnect& d);

  void Send(const Packet& p);
  void StartWrite();
  void OnWrite(const boost::system::error_code& ec);
  void Flush();
  void ResendInflight();
  void AckReady(uint64_t ticket, Reason reason);
  void PumpAcks();

  void ProtocolViolation(Reason reason, const std::string& message);
  void Close(std::optional<Reason> disconnect_reason, const std::string& why);
  void Finish();
  void ArmKeepAlive();

  Broker& broker_;
  net::StreamPtr stream_;
  State state_ = State::kAwaitConnect;
  std::optional<Version> version_;
  ClientInfo client_;
  SessionPtr session_;
  std::optional<Will> will_;
  bool will_on_close_ = true;  // cleared by a normal DISCONNECT

  std::string in_;
  size_t in_start_ = 0;
  bool reading_ = false;
  bool read_paused_ = false;

  std::string out_;
  std::string writing_;
  boost::asio::const_buffer write_buf_[1];
  bool write_in_flight_ = false;
  bool flush_wanted_ = false;

  // Inbound QoS 1/2 acknowledgements, sent strictly in arrival order (MQTT §4.6).
  struct PendingAck {
    PacketType type;
    uint16_t packet_id;
    bool ready = false;
    Reason reason = Reason::kSuccess;
  };
  std::deque<PendingAck> acks_;
  uint64_t acks_base_ = 0;  // ticket of acks_.front()

  uint16_t keep_alive_s_ = 0;
  std::chrono::steady_clock::time_point last_rx_;
  boost::asio::steady_timer timer_;

  uint16_t client_receive_max_ = 65535;
  uint32_t client_max_packet_ = 0xFFFFFFFF;
  uint32_t session_expiry_ = 0;
  std::unordered_map<uint16_t, std::string> aliases_;
  bool registered_ = false;
  bool consuming_ = false;
  bool assigned_id_ = false;
  bool finished_ = false;
};

}  // namespace orrery::mqtt
