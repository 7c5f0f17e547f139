#include "net/stream_server.h"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include "base/crypto.h"
#include "net/test_certs.h"
#include "net/tls_peer.h"

namespace orrery::net {
namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Replies with a description of the peer, then echoes.
struct Echo : std::enable_shared_from_this<Echo> {
  StreamPtr stream;
  char buf[4096];
  std::string hello;
  asio::const_buffer out[1];
  void Start() {
    auto& chain = stream->peer().client_cert_chain_der;
    hello = std::string(TransportName(stream->peer().transport)) +
            " leaf=" + (chain.empty() ? "none" : crypto::HexEncode(crypto::Sha1(chain[0]), true)) +
            " sni=" + stream->peer().sni + "\n";
    out[0] = asio::buffer(hello);
    stream->AsyncWrite(out, [self = shared_from_this()](auto ec, std::size_t) {
      if (!ec) self->Read();
    });
  }
  void Read() {
    stream->AsyncRead(asio::buffer(buf), [self = shared_from_this()](auto ec, std::size_t n) {
      if (ec) return;
      self->out[0] = asio::const_buffer(self->buf, n);
      self->stream->AsyncWrite(self->out, [self](auto e, std::size_t) {
        if (!e) self->Read();
      });
    });
  }
};

StreamAcceptor EchoAcceptor() {
  return [](StreamPtr s) {
    auto e = std::make_shared<Echo>();
    e->stream = std::move(s);
    e->Start();
  };
}

template <class S>
std::string ReadLine(S& s) {
  std::string line;
  char c;
  while (asio::read(s, asio::buffer(&c, 1)) == 1 && c != '\n')
    line += c;
  return line;
}

TEST(StreamServerTest, PlainTcpEchoAndConnectionLimit) {
  IoPool pool(2);
  auto server = StreamServer::Start(
      pool, {.name = "mqtt", .addresses = {"127.0.0.1"}, .max_connections = 1}, EchoAcceptor());
  ASSERT_TRUE(server) << server.error().message();
  pool.Start();
  asio::io_context ctx;
  tcp::socket a(ctx);
  a.connect({asio::ip::make_address("127.0.0.1"), (*server)->port()});
  EXPECT_EQ(ReadLine(a), "tcp leaf=none sni=");
  asio::write(a, asio::buffer(std::string("ping\n")));
  EXPECT_EQ(ReadLine(a), "ping");

  // Over the limit: accepted by the kernel, then closed without a greeting.
  tcp::socket b(ctx);
  b.connect({asio::ip::make_address("127.0.0.1"), (*server)->port()});
  char c;
  boost::system::error_code ec;
  asio::read(b, asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  pool.Stop();
  pool.Join();
}

TEST(StreamServerTest, TlsCapturesClientChainAndSni) {
  testing::TestCerts certs("stream-tls");
  IoPool pool(1);
  auto tls = TlsServerContext::Create({certs.paths.server_cert, certs.paths.server_key});
  ASSERT_TRUE(tls);
  auto server = StreamServer::Start(
      pool, {.name = "mqtts", .addresses = {"127.0.0.1"}, .tls = *tls}, EchoAcceptor());
  ASSERT_TRUE(server);
  pool.Start();
  auto [cert, key] = certs.Client("dev1");
  auto client = MakeClientContext({.ca_file = certs.paths.ca_cert, .cert = cert, .key = key});
  ASSERT_TRUE(client) << client.error().message();
  asio::io_context ctx;
  asio::ssl::stream<tcp::socket> s(ctx, **client);
  s.next_layer().connect({asio::ip::make_address("127.0.0.1"), (*server)->port()});
  detail::SetServerName(s.native_handle(), "localhost");
  SSL_set1_host(s.native_handle(), "localhost");
  s.handshake(asio::ssl::stream_base::client);
  EXPECT_EQ(ReadLine(s), "tls leaf=" + pki::ThumbprintSha1(files::ReadFile(cert).value()).value() +
                             " sni=localhost");
  asio::write(s, asio::buffer(std::string("over tls\n")));
  EXPECT_EQ(ReadLine(s), "over tls");
  pool.Stop();
  pool.Join();
}

TEST(StreamServerTest, PortInUseIsAOneLineError) {
  IoPool pool(1);
  auto first =
      StreamServer::Start(pool, {.name = "mqtt", .addresses = {"127.0.0.1"}}, EchoAcceptor());
  ASSERT_TRUE(first);
  auto second = StreamServer::Start(
      pool, {.name = "mqtt", .addresses = {"127.0.0.1"}, .port = (*first)->port()}, EchoAcceptor());
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message().find("cannot listen on 127.0.0.1:"), std::string::npos)
      << second.error().message();
  EXPECT_NE(second.error().message().find("in use"), std::string::npos) << second.error().message();
}

}  // namespace
}  // namespace orrery::net
