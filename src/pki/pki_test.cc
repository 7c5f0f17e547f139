#include "pki/pki.h"

#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <gtest/gtest.h>

#include "base/files.h"

namespace orrery::pki {
namespace {

// Verifies `leaf_pem` against `ca_pem` with OpenSSL's own chain verification.
bool Verifies(const std::string& ca_pem, const std::string& leaf_pem, const char* host) {
  BIO* b1 = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  BIO* b2 = BIO_new_mem_buf(leaf_pem.data(), static_cast<int>(leaf_pem.size()));
  X509* ca = PEM_read_bio_X509(b1, nullptr, nullptr, nullptr);
  X509* leaf = PEM_read_bio_X509(b2, nullptr, nullptr, nullptr);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  if (host) X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, 0);
  bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(ca);
  X509_free(leaf);
  BIO_free(b1);
  BIO_free(b2);
  return ok;
}

TEST(PkiTest, IssuedServerCertificateVerifiesForItsNames) {
  auto ca = CreateRootCa("Test CA");
  ASSERT_TRUE(ca) << ca.error().message();
  auto server = IssueCertificate(*ca, {.common_name = "hub.example",
                                       .dns_names = {"hub.example", "localhost"},
                                       .ip_addresses = {"127.0.0.1", "::1"}});
  ASSERT_TRUE(server) << server.error().message();
  EXPECT_TRUE(Verifies(ca->cert_pem, server->cert_pem, "hub.example"));
  EXPECT_TRUE(Verifies(ca->cert_pem, server->cert_pem, "localhost"));
  EXPECT_FALSE(Verifies(ca->cert_pem, server->cert_pem, "other.example"));

  auto other_ca = CreateRootCa("Other CA");
  ASSERT_TRUE(other_ca);
  EXPECT_FALSE(Verifies(other_ca->cert_pem, server->cert_pem, "localhost"));

  auto info = Inspect(server->cert_pem);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->subject_cn, "hub.example");
  EXPECT_EQ(info->dns_names, (std::vector<std::string>{"hub.example", "localhost"}));
  EXPECT_EQ(info->ip_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_GT(info->not_after_unix, std::time(nullptr) + 300 * 86400);
}

TEST(PkiTest, ThumbprintsAreUppercaseHex) {
  auto cert = CreateSelfSigned({.common_name = "dev1", .usage = Usage::kClient});
  ASSERT_TRUE(cert);
  auto t1 = ThumbprintSha1(cert->cert_pem);
  auto t256 = ThumbprintSha256(cert->cert_pem);
  ASSERT_TRUE(t1 && t256);
  EXPECT_EQ(t1->size(), 40u);
  EXPECT_EQ(t256->size(), 64u);
  EXPECT_EQ(t1->find_first_not_of("0123456789ABCDEF"), std::string::npos);
  EXPECT_FALSE(ThumbprintSha1("not a certificate"));
}

TEST(PkiTest, EnsureDevelopmentCertsIsIdempotentAndFollowsHostName) {
  auto dir = std::filesystem::temp_directory_path() / ("orrery-pki-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto first = EnsureDevelopmentCerts(dir, "localhost");
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_TRUE(first->created_ca);
  EXPECT_TRUE(first->issued_server);
  EXPECT_EQ(
      std::filesystem::status(first->paths.ca_key).permissions() & std::filesystem::perms::all,
      files::kSecretPerms);

  auto second = EnsureDevelopmentCerts(dir, "localhost");
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->created_ca);
  EXPECT_FALSE(second->issued_server);

  auto renamed = EnsureDevelopmentCerts(dir, "hub.local");
  ASSERT_TRUE(renamed);
  EXPECT_FALSE(renamed->created_ca);
  EXPECT_TRUE(renamed->issued_server);
  auto ca_pem = files::ReadFile(renamed->paths.ca_cert);
  auto chain = files::ReadFile(renamed->paths.server_cert);
  ASSERT_TRUE(ca_pem && chain);
  EXPECT_TRUE(Verifies(*ca_pem, *chain, "hub.local"));
  EXPECT_TRUE(Verifies(*ca_pem, *chain, "localhost"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace orrery::pki
