// The node's TLS files and its own CA. With no [tls] files configured, the
// node makes, on first start, under <data_dir>:
//
//   tls/ca.crt, tls/ca.key       the node's CA (EC P-256, 10 years)
//   tls/node.crt, tls/node.key   the endpoint's certificate (serverAuth)
//   tls/admin.crt, tls/admin.key the first credential: CN admin, OU admin
//                                (clientAuth; renewed at start when it ends
//                                within 30 days)
//   tls/crl.pem                  revoked serials, signed by the CA
//   tls/issued.json              every certificate the CA issued: name, role,
//                                serial, expiry, revoked
//
// Keys are 0600 like every file of the data dir. With [tls] ca_file,
// cert_file, key_file (an operator's PKI) nothing is made, and issuing and
// revoking are the operator's CA's business; crl_file is reread when it
// changes.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dsmil/result.hpp"
#include "runtime/auth/pki.hpp"

namespace dsmil {

class env;
struct node_config;

namespace tls_layout {
inline constexpr const char* dir = "tls";
inline constexpr const char* ca_cert = "tls/ca.crt";
inline constexpr const char* ca_key = "tls/ca.key";
inline constexpr const char* node_cert = "tls/node.crt";
inline constexpr const char* node_key = "tls/node.key";
inline constexpr const char* admin_cert = "tls/admin.crt";
inline constexpr const char* admin_key = "tls/admin.key";
inline constexpr const char* crl = "tls/crl.pem";
inline constexpr const char* issued = "tls/issued.json";
} // namespace tls_layout

/// The files the control endpoint's TLS uses (CAF reads them per session).
struct tls_files {
  std::string ca, cert, key, crl; ///< crl may be empty
};
tls_files tls_files_of(const node_config& cfg);

/// One certificate the node's CA issued.
struct issued_cert {
  std::string name, role, serial;
  int64_t not_after_s = 0;
  bool revoked = false;
};

/// A credential made for a client: its certificate and the CA's, PEM.
struct issued_credential {
  std::string cert_pem, ca_pem;
  issued_cert record;
};

class node_pki {
public:
  /// Makes what is missing of the node's own PKI (see above), or checks an
  /// operator's files; then loads the CA (and CRL) for request checks.
  /// `warn` gets what an operator should know (a CA made, a credential
  /// renewed, an operator's CRL that no longer loads), one line each.
  static result<std::shared_ptr<node_pki>> open(env& e, const node_config& cfg,
                                                std::function<void(const std::string&)> warn);

  bool own_ca() const { return own_; }
  const tls_files& files() const { return files_; }
  /// The check in force for requests (an operator's CRL is reread, at
  /// most once a second, when its bytes changed).
  std::shared_ptr<const request_verifier> verifier();
  /// The node's CA signs a client certificate for `public_key_pem`.
  result<issued_credential> issue(const std::string& name, role r,
                                  const std::string& public_key_pem, int days);
  /// Revokes every unrevoked certificate issued to `name`; their serials.
  result<std::vector<std::string>> revoke(const std::string& name);
  std::vector<issued_cert> issued();

private:
  node_pki(env& e) : env_(e) {}
  status load_verifier(const std::string& crl_pem);
  status save(); // issued.json, then crl.pem

  env& env_;
  std::function<void(const std::string&)> warn_;
  std::string data_dir_;
  bool own_ = true;
  tls_files files_;
  std::mutex mu_;
  std::shared_ptr<const request_verifier> verifier_;
  std::string crl_text_;
  int64_t crl_checked_ns_ = 0;
  std::vector<issued_cert> issued_;
};

} // namespace dsmil
