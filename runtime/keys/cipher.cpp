#include "runtime/keys/cipher.hpp"

#include <cstring>
#include <memory>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace dsmil {

namespace {

struct ctx_free {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, ctx_free>;

} // namespace

store_keys store_keys::derive(const std::string& data_key) {
  store_keys k;
  auto e = sha256("dsmil enc" + data_key);
  auto m = sha256("dsmil mac" + data_key);
  std::memcpy(k.enc.data(), e.data(), 32);
  std::memcpy(k.mac.data(), m.data(), 32);
  return k;
}

digest hmac_sha256(const std::array<uint8_t, 32>& key, std::string_view data) {
  digest d;
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data(), &len);
  return d;
}

void aes_gcm_seal(const std::array<uint8_t, 32>& key, const char* plain, size_t size,
                  const uint8_t* aad, size_t aad_size, std::string& out) {
  uint8_t nonce[gcm_nonce_size];
  random_bytes(nonce, sizeof(nonce));
  const size_t start = out.size();
  out.resize(start + gcm_nonce_size + size + gcm_tag_size);
  auto* p = reinterpret_cast<unsigned char*>(out.data() + start);
  std::memcpy(p, nonce, gcm_nonce_size);
  ctx_ptr ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce);
  EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad, static_cast<int>(aad_size));
  EVP_EncryptUpdate(ctx.get(), p + gcm_nonce_size, &n,
                    reinterpret_cast<const unsigned char*>(plain), static_cast<int>(size));
  EVP_EncryptFinal_ex(ctx.get(), p + gcm_nonce_size + n, &n);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, gcm_tag_size, p + gcm_nonce_size + size);
}

result<std::string> aes_gcm_open(const std::array<uint8_t, 32>& key, const char* sealed,
                                 size_t size, const uint8_t* aad, size_t aad_size) {
  if (size < gcm_nonce_size + gcm_tag_size)
    return make_error(errc::integrity_error, "sealed record too short");
  const auto* p = reinterpret_cast<const unsigned char*>(sealed);
  const size_t ct = size - gcm_nonce_size - gcm_tag_size;
  std::string plain(ct, '\0');
  ctx_ptr ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), p);
  EVP_DecryptUpdate(ctx.get(), nullptr, &n, aad, static_cast<int>(aad_size));
  EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &n,
                    p + gcm_nonce_size, static_cast<int>(ct));
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, gcm_tag_size,
                      const_cast<unsigned char*>(p + gcm_nonce_size + ct));
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + n, &n) != 1)
    return make_error(errc::integrity_error, "AES-GCM tag mismatch (wrong key or damaged content)");
  return plain;
}

} // namespace dsmil
