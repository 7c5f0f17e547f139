// Test helper: a throw-away CA and localhost server certificate in a temp directory.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "base/files.h"
#include "pki/pki.h"

namespace orrery::net::testing {

struct TestCerts {
  std::filesystem::path dir;
  pki::TlsPaths paths;
  pki::CertAndKey ca;

  explicit TestCerts(const std::string& name) {
    dir = std::filesystem::temp_directory_path() /
          ("orrery-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto r = pki::EnsureDevelopmentCerts(dir, "localhost");
    if (!r) ADD_FAILURE() << r.error().message();
    paths = r->paths;
    ca.cert_pem = files::ReadFile(paths.ca_cert).value();
    ca.key_pem = files::ReadFile(paths.ca_key).value();
  }
  ~TestCerts() { std::filesystem::remove_all(dir); }

  // Writes a client certificate issued by the CA; returns {cert, key} paths.
  std::pair<std::filesystem::path, std::filesystem::path> Client(const std::string& cn) {
    auto c = pki::IssueCertificate(ca, {.common_name = cn, .usage = pki::Usage::kClient}).value();
    auto cert = dir / (cn + ".pem");
    auto key = dir / (cn + "-key.pem");
    files::WriteFileAtomic(cert, c.cert_pem).value();
    files::WriteFileAtomic(key, c.key_pem, files::kSecretPerms).value();
    return {cert, key};
  }
};

}  // namespace orrery::net::testing
