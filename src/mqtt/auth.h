// Authentication and authorization hooks of the broker.
//
// The broker asks an Authenticator once per CONNECT and an Authorizer for every PUBLISH and
// every SUBSCRIBE filter. The IoT Hub layer plugs device identities and hub topic rules in
// here; standalone deployments use ConfigAuth (users with password hashes and topic ACLs).
//
// Thread safety: implementations are called from any io thread concurrently.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "mqtt/packets.h"
#include "net/stream.h"

namespace orrery::mqtt {

// Who is connected. `identity` is opaque to the broker (the hub stores its device record).
struct ClientInfo {
  std::string client_id;
  std::string username;
  std::string principal;  // the authenticated name (user, device id) for logs and ACLs
  std::shared_ptr<const void> identity;
  net::Transport transport = net::Transport::kTcp;
  std::string remote_address;
};

struct ConnectInfo {
  Version version = Version::k311;
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> password;  // never log it
  const net::PeerInfo* peer = nullptr;
};

struct AuthResult {
  Reason reason = Reason::kSuccess;  // kBadUserNameOrPassword, kNotAuthorized, ...
  std::string principal;
  std::shared_ptr<const void> identity;
  std::string message;  // for the log and the v5 reason string; never a secret
  // The broker's key for this client's session, takeover and DeliverTo (ClientInfo's
  // client_id); empty = the client id. Lets a protocol layer keep its clients apart from
  // others that may use the same id (DPS registrations vs hub devices named alike).
  std::string session_key;
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // Calls `done` exactly once, from any thread.
  virtual void Authenticate(const ConnectInfo& info, std::function<void(AuthResult)> done) = 0;
};

enum class Access {
  kAllow,
  kDeny,            // refuse this operation (v5 reason 0x87, or drop for 3.1.1)
  kDenyDisconnect,  // refuse and close the connection (IoT Hub's behaviour)
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual Access CanPublish(const ClientInfo& client, std::string_view topic) = 0;
  virtual Access CanSubscribe(const ClientInfo& client, std::string_view filter) = 0;
};

// Users and ACLs from a TOML file:
//
//   allow_anonymous = false
//   [[user]]
//   name = "alice"
//   password_hash = "$pbkdf2-sha512$20000$<salt base64>$<hash base64>"  # orrery mqtt passwd
//   [[acl]]
//   user = "alice"            # a user name, "*" for every authenticated user, "" for anonymous
//   topic = "sensors/%u/#"    # %u = user name, %c = client id
//   access = "readwrite"      # read (subscribe), write (publish) or readwrite
//
// Without any [[acl]], authenticated (and allowed anonymous) clients may use every topic.
class ConfigAuth final : public Authenticator, public Authorizer {
 public:
  struct User {
    std::string name;
    std::string password_hash;
  };
  struct Acl {
    std::optional<std::string> user;  // nullopt = anonymous; "*" = any authenticated user
    std::string pattern;
    bool read = false;
    bool write = false;
  };

  ConfigAuth(bool allow_anonymous, std::vector<User> users, std::vector<Acl> acls);
  // Loads a users/ACL file; `allow_anonymous_default` applies when the file does not say.
  static Result<std::shared_ptr<ConfigAuth>> Load(const std::string& path,
                                                  bool allow_anonymous_default);

  void Authenticate(const ConnectInfo& info, std::function<void(AuthResult)> done) override;
  Access CanPublish(const ClientInfo& client, std::string_view topic) override;
  Access CanSubscribe(const ClientInfo& client, std::string_view filter) override;

 private:
  bool Allowed(const ClientInfo& client, std::string_view topic_or_filter, bool write,
               bool is_filter) const;
  bool allow_anonymous_;
  std::vector<User> users_;
  std::vector<Acl> acls_;
};

// "$pbkdf2-sha512$<iterations>$<salt>$<hash>" for `password` with a random salt.
std::string HashPassword(std::string_view password, int iterations = 20000);
// Constant-time verification of a password against such a hash.
bool VerifyPassword(std::string_view password, std::string_view hash);

// Whether every topic matched by `filter` is also matched by `acl` (both topic filters).
bool FilterCovers(std::string_view acl, std::string_view filter);

}  // namespace orrery::mqtt
