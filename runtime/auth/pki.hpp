// Certificates for the control endpoint, through OpenSSL: the node's own CA
// and what it issues (ECDSA P-256, SHA-256), revocation lists, and the
// signature each request carries besides TLS (a client signs the node's
// nonce and the SHA-256 of the encoded request with its certificate's key).
//
// A certificate names a person or program by its subject CN and their role
// by its OU. Client certificates carry EKU clientAuth, the node's serverAuth.
// Pure computation over PEM/DER text: no files (runtime/auth/node_pki.hpp
// keeps them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dsmil/result.hpp"
#include "runtime/base/named_enum.hpp"

namespace dsmil {

/// What a credential may do; each command belongs to one class
/// (actors/node/command_classes.hpp), and a role may use its own class and
/// those below it.
enum class role : uint8_t { viewer, operator_, admin };
template <> struct enum_names<role> {
  static constexpr std::pair<role, const char*> values[] = {
      {role::viewer, "viewer"}, {role::operator_, "operator"}, {role::admin, "admin"}};
};

/// A new EC P-256 private key, PEM (PKCS#8).
result<std::string> new_private_key();
/// The public key of a private key, PEM (SubjectPublicKeyInfo).
result<std::string> public_key_of(const std::string& private_key_pem);

struct cert_spec {
  std::string name;         ///< subject CN
  std::string role;         ///< subject OU; empty for the CA and the node
  bool server = false;      ///< EKU serverAuth (the node) instead of clientAuth
  int64_t not_before_s = 0; ///< unix seconds
  int64_t not_after_s = 0;
  std::vector<std::string> dns_names, ip_addresses; ///< subjectAltName (servers)
};

/// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign,
/// cRLSign) for `key_pem`, PEM.
result<std::string> make_ca_cert(const std::string& key_pem, const cert_spec& spec);
/// A certificate for `public_key_pem` signed by the CA; `serial_hex` gets
/// its serial number (random, 128 bits). PEM.
result<std::string> issue_cert(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                               const std::string& public_key_pem, const cert_spec& spec,
                               std::string* serial_hex = nullptr);
/// A CRL signed by the CA revoking `serials_hex` (as of `now_s`, valid
/// `days`), PEM.
result<std::string> make_crl(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                             const std::vector<std::string>& serials_hex, int64_t now_s, int days);

/// What a certificate says about its holder.
struct cert_info {
  std::string name;   ///< subject CN
  std::string role;   ///< subject OU (empty when it has none)
  std::string serial; ///< hex, upper case
  std::string issuer; ///< issuer CN
  int64_t not_before_s = 0, not_after_s = 0;
};
/// Reads a certificate, PEM or DER.
result<cert_info> read_cert(std::string_view pem_or_der);
/// A PEM certificate as DER.
result<std::string> cert_der(const std::string& pem);

/// What a client signs: nonce || SHA-256(command '\0' encoded request).
std::string signed_bytes(std::string_view nonce, std::string_view command,
                         std::string_view request);

/// Whether `sig` over `bytes` was made by the key of the certificate
/// `cert_pem` (the audit log's head, signed with the node's key).
bool check_signature(const std::string& cert_pem, std::string_view bytes, std::string_view sig);

/// A client's credential: its certificate (DER, sent with every request)
/// and its key, which signs.
class request_signer {
public:
  static result<request_signer> load(const std::string& cert_pem, const std::string& key_pem);
  const std::string& cert_der() const { return der_; }
  const cert_info& info() const { return info_; }
  /// An ECDSA signature (DER) over signed_bytes(...).
  result<std::string> sign(std::string_view nonce, std::string_view command,
                           std::string_view request) const;
  /// An ECDSA signature (DER) over `bytes` (SHA-256).
  result<std::string> sign_bytes(std::string_view bytes) const;

private:
  std::string der_;
  std::shared_ptr<void> key_; // EVP_PKEY
  cert_info info_;
};

/// The node's check of every request: the certificate chains to the CA,
/// is within its validity, carries clientAuth, is not revoked (when there
/// is a CRL), and its key made the signature. Thread-safe (const).
class request_verifier {
public:
  /// `crl_pem` may be empty: nothing is revoked.
  static result<std::shared_ptr<const request_verifier>> make(const std::string& ca_pem,
                                                              const std::string& crl_pem);
  /// The holder, or why not (permission_denied, one line naming the
  /// certificate's CN where it has one).
  result<cert_info> verify(std::string_view cert_der, std::string_view nonce,
                           std::string_view command, std::string_view request,
                           std::string_view signature, int64_t now_s) const;

private:
  std::shared_ptr<void> store_; // X509_STORE
  bool has_crl_ = false;
};

} // namespace dsmil
