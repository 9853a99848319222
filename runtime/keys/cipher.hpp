// Encryption at rest: AES-256-GCM for records, HMAC-SHA-256 for chunk ids
// (so equal plaintext does not show across stores). OpenSSL adapter.
#pragma once

#include <array>
#include <string>

#include "runtime/base/crypto.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

constexpr size_t gcm_nonce_size = 12;
constexpr size_t gcm_tag_size = 16;

/// The keys of an encrypted store, derived from its 32-byte data key.
struct store_keys {
  std::array<uint8_t, 32> enc{}; ///< AES-256-GCM key
  std::array<uint8_t, 32> mac{}; ///< HMAC-SHA-256 key for chunk ids

  /// enc = SHA-256("dsmil enc" || data key), mac = SHA-256("dsmil mac" || data key).
  static store_keys derive(const std::string& data_key);
};

digest hmac_sha256(const std::array<uint8_t, 32>& key, std::string_view data);

/// nonce (random) || ciphertext || tag, appended to `out`. `aad` is
/// authenticated, not encrypted (the chunk id: a record cannot be moved).
void aes_gcm_seal(const std::array<uint8_t, 32>& key, const char* plain, size_t size,
                  const uint8_t* aad, size_t aad_size, std::string& out);
/// Inverse of aes_gcm_seal; integrity_error when the tag does not match.
result<std::string> aes_gcm_open(const std::array<uint8_t, 32>& key, const char* sealed,
                                 size_t size, const uint8_t* aad, size_t aad_size);

} // namespace dsmil
