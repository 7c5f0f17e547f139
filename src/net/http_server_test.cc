#include "net/http_server.h"

#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "base/crypto.h"
#include "net/http_client.h"
#include "net/test_certs.h"
#include "pki/pki.h"

namespace orrery::net {
namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Echoes bytes on a Stream until it closes.
struct Echo : std::enable_shared_from_this<Echo> {
  StreamPtr stream;
  char buf[4096];
  asio::const_buffer out[1];
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

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() : certs_("http-test"), pool_(2) {}

  void SetUp() override {
    auto router = std::make_shared<Router>();
    router->Add("GET", "/hello/{name}", [](HttpRequest& req, Responder r) {
      r.Send(HttpResponse::Json(200, "{\"hello\":\"" + std::string(req.Param("name")) + "\"}"));
    });
    router->Add(
        "POST", "/echo",
        [](HttpRequest& req, Responder r) { r.Send(HttpResponse::Text(200, req.body)); },
        RouteOptions{.max_body = 10});
    router->Add("GET", "/later", [](HttpRequest&, Responder r) {
      std::thread([r] { r.Send(HttpResponse::Text(202, "from another thread")); }).detach();
    });
    router->Add("GET", "/forgotten", [](HttpRequest&, Responder) {});
    router->Add("GET", "/whoami", [](HttpRequest& req, Responder r) {
      auto& chain = req.peer->client_cert_chain_der;
      r.Send(HttpResponse::Text(
          200, chain.empty() ? "none" : crypto::HexEncode(crypto::Sha1(chain[0]), true)));
    });
    router->AddWebSocket({.path = "/mqtt", .subprotocols = {"mqtt"}, .handler = [](StreamPtr s) {
                            auto e = std::make_shared<Echo>();
                            e->stream = std::move(s);
                            e->Read();
                          }});
    auto tls = TlsServerContext::Create({certs_.paths.server_cert, certs_.paths.server_key});
    ASSERT_TRUE(tls) << tls.error().message();
    auto https = HttpServer::Start(
        pool_, {.name = "https", .addresses = {"127.0.0.1"}, .tls = *tls}, router);
    ASSERT_TRUE(https) << https.error().message();
    https_ = std::move(*https);
    auto plain = HttpServer::Start(pool_, {.name = "http", .addresses = {"127.0.0.1"}}, router);
    ASSERT_TRUE(plain) << plain.error().message();
    http_ = std::move(*plain);
    pool_.Start();
  }
  void TearDown() override {
    https_->Stop();
    http_->Stop();
    pool_.Stop();
    pool_.Join();
  }

  std::string Https(const std::string& path) {
    return "https://localhost:" + std::to_string(https_->port()) + path;
  }
  HttpClientOptions Trusting() {
    HttpClientOptions o;
    o.tls.ca_file = certs_.paths.ca_cert;
    o.timeout = std::chrono::seconds(10);
    return o;
  }

  // Sends raw bytes to the plain server and reads until it closes or `stop_after` responses.
  std::string Raw(const std::string& bytes) {
    asio::io_context ctx;
    tcp::socket s(ctx);
    s.connect({asio::ip::make_address("127.0.0.1"), http_->port()});
    asio::write(s, asio::buffer(bytes));
    std::string out;
    boost::system::error_code ec;
    char buf[4096];
    while (true) {
      size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
    return out;
  }

  testing::TestCerts certs_;
  IoPool pool_;
  std::unique_ptr<HttpServer> https_, http_;
};

TEST_F(HttpServerTest, ServesJsonOverVerifiedTls) {
  auto r = Fetch("GET", Https("/hello/dev%201"), {}, "", Trusting());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"hello\":\"dev 1\"}");
  EXPECT_EQ(r->headers.Get("Content-Type"), "application/json; charset=utf-8");
}

TEST_F(HttpServerTest, UntrustedClientRefusesServer) {
  auto o = Trusting();
  o.tls.ca_file.clear();  // system store does not know our development CA
  auto r = Fetch("GET", Https("/hello/x"), {}, "", o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("certificate"), std::string::npos) << r.error().message();
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowedAreJson) {
  auto r = Fetch("GET", Https("/nope"), {}, "", Trusting());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("\"code\":\"NotFound\""), std::string::npos) << r->body;
  r = Fetch("DELETE", Https("/echo"), {}, "", Trusting());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
}

TEST_F(HttpServerTest, BodyAndHeaderLimits) {
  auto r = Fetch("POST", Https("/echo"), {}, "0123456789", Trusting());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "0123456789");
  r = Fetch("POST", Https("/echo"), {}, "0123456789A", Trusting());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("exceeds 10 bytes"), std::string::npos) << r->body;

  Headers big;
  big.Add("X-Big", std::string(20000, 'x'));
  r = Fetch("GET", Https("/hello/x"), big, "", Trusting());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 431);
}

TEST_F(HttpServerTest, ResponsesFromOtherThreadsAndForgottenRequests) {
  auto r = Fetch("GET", Https("/later"), {}, "", Trusting());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202);
  EXPECT_EQ(r->body, "from another thread");
  r = Fetch("GET", Https("/forgotten"), {}, "", Trusting());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

TEST_F(HttpServerTest, ChunkedBodiesAndKeepAlive) {
  std::string out =
      Raw("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n0\r\n\r\n"
          "GET /hello/again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(out.find("HTTP/1.1 200 OK"), std::string::npos) << out;
  EXPECT_NE(out.find("hello"), std::string::npos) << out;
  EXPECT_NE(out.find("{\"hello\":\"again\"}"), std::string::npos) << out;
}

TEST_F(HttpServerTest, MalformedRequestGets400AndServerStaysUp) {
  std::string out = Raw("GARBAGE\r\n\r\n");
  EXPECT_NE(out.find("400"), std::string::npos) << out;
  out = Raw("GET /hello/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(out.find("200 OK"), std::string::npos) << out;
}

TEST_F(HttpServerTest, RefusesTls11) {
  asio::io_context ctx;
  asio::ssl::context c(asio::ssl::context::tls_client);
  SSL_CTX_set_security_level(c.native_handle(), 0);
  SSL_CTX_set_min_proto_version(c.native_handle(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(c.native_handle(), TLS1_1_VERSION);
  SSL_CTX_set_cipher_list(c.native_handle(), "DEFAULT:@SECLEVEL=0");
  asio::ssl::stream<tcp::socket> s(ctx, c);
  s.next_layer().connect({asio::ip::make_address("127.0.0.1"), https_->port()});
  boost::system::error_code ec;
  s.handshake(asio::ssl::stream_base::client, ec);
  ASSERT_TRUE(ec);
  // The refusal comes from the server (a protocol-version alert), not from our client.
  EXPECT_NE(ec.message().find("version"), std::string::npos) << ec.message();
}

TEST_F(HttpServerTest, ClientCertificateIsCapturedNotRequired) {
  auto r = Fetch("GET", Https("/whoami"), {}, "", Trusting());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "none");
  auto [cert, key] = certs_.Client("device-7");
  auto o = Trusting();
  o.tls.cert = cert;
  o.tls.key = key;
  r = Fetch("GET", Https("/whoami"), {}, "", o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, pki::ThumbprintSha1(files::ReadFile(cert).value()).value());
}

TEST_F(HttpServerTest, WebSocketCarriesAByteStreamAcrossFrames) {
  namespace websocket = boost::beast::websocket;
  asio::io_context ctx;
  websocket::stream<tcp::socket> ws(ctx);
  ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), http_->port()});
  ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(boost::beast::http::field::sec_websocket_protocol, "mqtt");
  }));
  websocket::response_type res;
  ws.handshake(res, "localhost", "/mqtt");
  EXPECT_EQ(res[boost::beast::http::field::sec_websocket_protocol], "mqtt");
  ws.binary(true);
  for (std::string piece : {"ab", "cd", "ef"})
    ws.write(asio::buffer(piece));
  std::string got;
  while (got.size() < 6) {
    boost::beast::flat_buffer b;
    ws.read(b);
    got += boost::beast::buffers_to_string(b.data());
  }
  EXPECT_EQ(got, "abcdef");
  ws.close(websocket::close_code::normal);
}

TEST_F(HttpServerTest, WebSocketWithoutSubprotocolIsRefused) {
  namespace websocket = boost::beast::websocket;
  asio::io_context ctx;
  websocket::stream<tcp::socket> ws(ctx);
  ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), http_->port()});
  boost::system::error_code ec;
  ws.handshake("localhost", "/mqtt", ec);
  EXPECT_TRUE(ec);
}

TEST_F(HttpServerTest, SessionReusesOneConnectionPerOrigin) {
  auto session = HttpSession::Create(Trusting());
  ASSERT_TRUE(session) << session.error().message();
  for (int i = 0; i < 5; ++i) {
    auto r = (*session)->Send("GET", Https("/hello/n" + std::to_string(i)), {}, "");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "{\"hello\":\"n" + std::to_string(i) + "\"}");
  }
  auto r = (*session)->Send("POST", Https("/echo"), {}, "0123456789");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "0123456789");
  EXPECT_EQ((*session)->connections(), 1u);
  // Another origin (the plain server) needs its own connection.
  r = (*session)->Send("GET", "http://127.0.0.1:" + std::to_string(http_->port()) + "/hello/p", {},
                       "");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "{\"hello\":\"p\"}");
  EXPECT_EQ((*session)->connections(), 2u);
  // A refused request (413) does not cost the connection either.
  r = (*session)->Send("POST", "http://127.0.0.1:" + std::to_string(http_->port()) + "/echo", {},
                       "0123456789A");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 413);
}

// A server that answers one request per connection with keep-alive and then drops the
// connection, as servers do with idle ones: the session's next request must go out again
// on a fresh connection instead of failing.
TEST(HttpSessionTest, ResendsOnceWhenTheServerDroppedTheIdleConnection) {
  asio::io_context ctx;
  tcp::acceptor acceptor(ctx, {asio::ip::make_address("127.0.0.1"), 0});
  auto port = acceptor.local_endpoint().port();
  std::thread server([&] {
    for (int conn = 0; conn < 2; ++conn) {
      tcp::socket s = acceptor.accept();
      std::string got;
      char buf[1024];
      boost::system::error_code ec;
      while (got.find("\r\n\r\n") == std::string::npos) {
        size_t n = s.read_some(asio::buffer(buf), ec);
        if (ec) break;
        got.append(buf, n);
      }
      std::string body = "conn" + std::to_string(conn);
      asio::write(s,
                  asio::buffer("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                               "\r\n\r\n" + body),
                  ec);
      s.shutdown(tcp::socket::shutdown_both, ec);
      s.close();
    }
  });
  HttpClientOptions o;
  o.timeout = std::chrono::seconds(10);
  auto session = HttpSession::Create(o);
  ASSERT_TRUE(session);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  auto r = (*session)->Send("POST", url, {}, "one");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "conn0");
  r = (*session)->Send("POST", url, {}, "two");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "conn1");
  EXPECT_EQ((*session)->connections(), 2u);
  server.join();
  // Nobody listens any more: a clear error, no retry loop.
  acceptor.close();
  r = (*session)->Send("POST", url, {}, "three");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("cannot connect to 127.0.0.1"), std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace orrery::net
