// Key providers sign manifest digests; verification needs only the public
// key (PEM) and OpenSSL, so any machine can verify a store offline.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/base/crypto.hpp"
#include "runtime/keys/tpm_quote.hpp"
#include "runtime/os/env.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

class key_provider {
public:
  virtual ~key_provider() = default;
  virtual std::string provider() const = 0; ///< "software" or "tpm"
  virtual std::string scheme() const = 0;   ///< e.g. "ecdsa-p256-sha256"
  /// SHA-256 of the public key's DER encoding, hex.
  virtual std::string key_id() const = 0;
  virtual std::string public_pem() const = 0;
  /// DER signature over a SHA-256 digest.
  virtual result<std::string> sign_digest(const digest& d) = 0;
  /// The platform state for a new checkpoint whose merkle root is
  /// `qualifying`: PCR values, a quote over them and `qualifying`, and the
  /// anti-replay counter, advanced by one. Empty for a provider without a TPM.
  virtual result<platform_evidence> attest(const digest& qualifying) {
    (void)qualifying;
    return platform_evidence{};
  }
  /// The anti-replay counter's current value, without advancing it; 0 for a
  /// provider without one.
  virtual result<uint64_t> counter() { return uint64_t{0}; }
  /// Advances the anti-replay counter without a checkpoint (the newest was
  /// deleted) and returns the new value; 0 for a provider without one.
  virtual result<uint64_t> advance_counter() { return uint64_t{0}; }
  /// Key id of the attestation key whose counter this is; empty without one.
  virtual std::string attestation_key_id() const { return {}; }
  virtual std::string attestation_public_pem() const { return {}; }
  /// Today's SHA-256 PCR values (index, hex), nothing quoted or advanced;
  /// empty for a provider without a TPM.
  virtual result<std::vector<std::pair<int, std::string>>> read_pcrs() {
    return std::vector<std::pair<int, std::string>>{};
  }
  /// Protects a secret (the store's data key) so that only this provider
  /// gets it back: sealed in the TPM, or wrapped under a passphrase.
  /// `unavailable` when the provider cannot (a software key without a
  /// passphrase file): the caller then keeps the secret in a 0600 file.
  virtual result<std::string> seal(const std::string& secret) {
    (void)secret;
    return make_error(errc::unavailable, "this key provider cannot seal");
  }
  virtual result<std::string> unseal(const std::string& blob) {
    (void)blob;
    return make_error(errc::unavailable, "this key provider cannot unseal");
  }
};

/// ECDSA P-256 with OpenSSL. The private key lives in `keys_dir`/signing.key
/// (PEM, mode 0600), generated on first use; the public key is written to
/// `keys_dir`/<key_id>.pem.
/// With `passphrase_file`, seal()/unseal() wrap secrets with AES-256-GCM
/// under a key derived from the file's first line with scrypt.
result<std::unique_ptr<key_provider>> open_software_key(env& e, const std::string& keys_dir,
                                                        const std::string& tmp_dir,
                                                        const std::string& passphrase_file = "");

/// Checks a DER ECDSA signature over `d` with a PEM public key. Errors:
/// integrity_error when the signature does not match, invalid_argument when
/// the key or signature cannot be parsed.
status verify_digest(const std::string& public_pem, const digest& d, const std::string& sig_der);

/// Key id (SHA-256 of the DER public key, hex) of a PEM public key.
result<std::string> key_id_of(const std::string& public_pem);

/// PEM of the P-256 public key with affine coordinates `x`, `y` (32 bytes
/// each, big-endian), as a TPM reports it.
result<std::string> p256_public_pem(const std::string& x, const std::string& y);
/// DER ECDSA-Sig-Value of the raw signature (r, s), big-endian integers.
result<std::string> ecdsa_der(const std::string& r, const std::string& s);

} // namespace dsmil
