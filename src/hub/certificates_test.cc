#include "hub/certificates.h"

#include <gtest/gtest.h>

#include "base/crypto.h"
#include "hub/errc.h"
#include "hub/test_util.h"
#include "pki/pki.h"

namespace orrery::hub {
namespace {
using testing::StoreDir;
using testing::Wait;

std::string Der(std::string_view pem) {
  // Strip the armour and base64-decode: what TLS hands the authenticator.
  std::string b64;
  for (auto line : {pem}) {
    size_t start = line.find('\n') + 1, end = line.find("-----END");
    for (char c : line.substr(start, end - start))
      if (c != '\n' && c != '\r') b64 += c;
  }
  return *crypto::Base64Decode(b64);
}

class CaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.Open();
    auto s = CaStore::Open(store_.get());
    ASSERT_TRUE(s);
    cas_ = std::move(*s);
    root_ = *pki::CreateRootCa("Test Root");
  }
  Result<CaCertificate> Put(std::string name, std::string pem, bool verified) {
    return Wait<Result<CaCertificate>>(
        [&](auto cb) { cas_->Put(std::move(name), std::move(pem), verified, cb); });
  }
  StoreDir dir_;
  std::unique_ptr<store::KvStore> store_;
  std::unique_ptr<CaStore> cas_;
  pki::CertAndKey root_;
};

TEST_F(CaStoreTest, ProofOfPossessionThenDevicesChainToTheCa) {
  auto added = Put("root", root_.cert_pem, false);
  ASSERT_TRUE(added) << added.error().message();
  EXPECT_FALSE(added->verified);
  EXPECT_EQ(added->thumbprint.size(), 40u);
  auto leaf =
      *pki::IssueCertificate(root_, {.common_name = "dev-ca", .usage = pki::Usage::kClient});
  // Not verified yet: devices are refused.
  auto early = cas_->Authenticate({Der(leaf.cert_pem)}, "dev-ca");
  ASSERT_FALSE(early);
  EXPECT_TRUE(early.error().Is(Errc::kUnauthorized));

  auto coded =
      Wait<Result<CaCertificate>>([&](auto cb) { cas_->GenerateVerificationCode("root", cb); });
  ASSERT_TRUE(coded);
  ASSERT_EQ(coded->verification_code.size(), 32u);
  // A proof with the wrong CN, or signed by another key, is refused.
  auto other = *pki::CreateRootCa("Other");
  auto bad_cn = *pki::IssueCertificate(root_, {.common_name = "not-the-code"});
  auto bad_key = *pki::IssueCertificate(other, {.common_name = coded->verification_code});
  for (auto& proof : {bad_cn, bad_key}) {
    auto r =
        Wait<Result<CaCertificate>>([&](auto cb) { cas_->Verify("root", proof.cert_pem, cb); });
    EXPECT_FALSE(r);
  }
  auto proof = *pki::IssueCertificate(root_, {.common_name = coded->verification_code});
  auto verified =
      Wait<Result<CaCertificate>>([&](auto cb) { cas_->Verify("root", proof.cert_pem, cb); });
  ASSERT_TRUE(verified) << verified.error().message();
  EXPECT_TRUE(verified->verified);

  auto ok = cas_->Authenticate({Der(leaf.cert_pem)}, "dev-ca");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(*ok, "root");
  // The CN must be the device id; a certificate from another CA does not chain.
  EXPECT_FALSE(cas_->Authenticate({Der(leaf.cert_pem)}, "someone-else"));
  auto stranger = *pki::IssueCertificate(other, {.common_name = "dev-ca"});
  auto refused = cas_->Authenticate({Der(stranger.cert_pem)}, "dev-ca");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("does not chain"), std::string::npos);

  // An intermediate CA registered on its own is an anchor too; the device sends its leaf.
  auto inter = *pki::IssueCertificate(root_, {.common_name = "Inter", .is_ca = true});
  ASSERT_TRUE(Put("inter", inter.cert_pem, true));
  auto deep =
      *pki::IssueCertificate(inter, {.common_name = "dev-deep", .usage = pki::Usage::kClient});
  auto via = cas_->Authenticate({Der(deep.cert_pem)}, "dev-deep");
  ASSERT_TRUE(via) << via.error().message();

  // Survives a reopen; delete removes it.
  store_->Drain();
  auto again = CaStore::Open(store_.get());
  ASSERT_TRUE(again);
  ASSERT_TRUE((*again)->Get("root"));
  EXPECT_TRUE((*again)->Get("root")->verified);
  ASSERT_TRUE(Wait<Status>([&](auto cb) { cas_->Delete("root", cb); }));
  EXPECT_FALSE(cas_->Get("root"));
  EXPECT_TRUE(Wait<Status>([&](auto cb) { cas_->Delete("root", cb); })
                  .error()
                  .Is(Errc::kCertificateNotFound));
}

TEST_F(CaStoreTest, RefusesWhatIsNotACaCertificate) {
  auto leaf = *pki::IssueCertificate(root_, {.common_name = "leaf"});
  auto r = Put("leaf", leaf.cert_pem, true);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("not a CA"), std::string::npos);
  EXPECT_FALSE(Put("junk", "not a certificate", true));
  EXPECT_FALSE(Put("bad/name", root_.cert_pem, true));
}

}  // namespace
}  // namespace orrery::hub
