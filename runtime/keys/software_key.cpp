// OpenSSL adapter: the only file that touches EVP_PKEY. Nothing here throws.
#include "runtime/keys/key_provider.hpp"

#include <array>
#include <map>
#include <mutex>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "runtime/keys/cipher.hpp"

namespace dsmil {

namespace {

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct bio_free {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct ctx_free {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;
using ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, ctx_free>;

std::string ssl_error() {
  unsigned long code = ERR_get_error();
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

std::string bio_string(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

result<std::string> public_der(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return make_error(errc::internal, "cannot encode public key: " + ssl_error());
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

// Parsed public keys by their PEM text. OpenSSL 3 decodes a PEM key through
// its provider decoders in about a millisecond here, and every manifest
// verification needs its key twice (key id, signature): the same few keys
// verify every checkpoint, so they are decoded once.
pkey_ptr read_public(const std::string& pem) {
  static std::mutex mu;
  static std::map<std::string, pkey_ptr> cache;
  {
    std::lock_guard<std::mutex> guard(mu);
    auto it = cache.find(pem);
    if (it != cache.end() && EVP_PKEY_up_ref(it->second.get()) == 1)
      return pkey_ptr(it->second.get());
  }
  bio_ptr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  pkey_ptr key(PEM_read_bio_PUBKEY(b.get(), nullptr, nullptr, nullptr));
  if (!key || EVP_PKEY_up_ref(key.get()) != 1) return key;
  std::lock_guard<std::mutex> guard(mu);
  if (cache.size() >= 64) cache.clear(); // a handful of keys in practice
  cache[pem] = pkey_ptr(key.get());
  return key;
}

// scrypt parameters for the passphrase key (N = 2^15: ~30 ms, 32 MiB).
constexpr uint64_t scrypt_n = 1u << 15, scrypt_r = 8, scrypt_p = 1;

class software_key final : public key_provider {
public:
  software_key(pkey_ptr key, std::string id, std::string pem, std::string passphrase)
      : key_(std::move(key)), id_(std::move(id)), pem_(std::move(pem)),
        passphrase_(std::move(passphrase)) {}

  // blob := "DSMW1" salt(16) AES-256-GCM(secret) under scrypt(passphrase, salt)
  result<std::string> seal(const std::string& secret) override {
    if (passphrase_.empty()) return key_provider::seal(secret);
    uint8_t salt[16];
    random_bytes(salt, sizeof(salt));
    auto k = derive(salt);
    if (!k) return k.err();
    std::string sealed;
    aes_gcm_seal(*k, secret.data(), secret.size(), salt, sizeof(salt), sealed);
    return std::string("DSMW1") + std::string(reinterpret_cast<char*>(salt), sizeof(salt)) + sealed;
  }

  result<std::string> unseal(const std::string& blob) override {
    if (passphrase_.empty())
      return make_error(errc::unavailable, "the data key is wrapped under a passphrase; set "
                                           "[keys] passphrase_file");
    if (blob.size() < 21 || blob.compare(0, 5, "DSMW1") != 0)
      return make_error(errc::integrity_error, "not a passphrase-wrapped key");
    const auto* salt = reinterpret_cast<const uint8_t*>(blob.data() + 5);
    auto k = derive(salt);
    if (!k) return k.err();
    auto plain = aes_gcm_open(*k, blob.data() + 21, blob.size() - 21, salt, 16);
    if (!plain)
      return make_error(errc::permission_denied,
                        "the passphrase does not open the data key (wrong passphrase file?)");
    return plain;
  }

  std::string provider() const override { return "software"; }
  std::string scheme() const override { return "ecdsa-p256-sha256"; }
  std::string key_id() const override { return id_; }
  std::string public_pem() const override { return pem_; }

  result<std::string> sign_digest(const digest& d) override {
    ctx_ptr ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
    size_t len = 0;
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_sign(ctx.get(), nullptr, &len, d.data(), d.size()) != 1)
      return make_error(errc::internal, "cannot sign: " + ssl_error());
    std::string sig(len, '\0');
    if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, d.data(),
                      d.size()) != 1)
      return make_error(errc::internal, "cannot sign: " + ssl_error());
    sig.resize(len);
    return sig;
  }

private:
  result<std::array<uint8_t, 32>> derive(const uint8_t* salt) const {
    std::array<uint8_t, 32> k{};
    if (EVP_PBE_scrypt(passphrase_.data(), passphrase_.size(), salt, 16, scrypt_n, scrypt_r,
                       scrypt_p, 64u << 20, k.data(), k.size()) != 1)
      return make_error(errc::internal, "scrypt failed: " + ssl_error());
    return k;
  }

  pkey_ptr key_;
  std::string id_;
  std::string pem_;
  std::string passphrase_;
};

} // namespace

result<std::string> key_id_of(const std::string& public_pem) {
  auto key = read_public(public_pem);
  if (!key) return make_error(errc::invalid_argument, "not a PEM public key");
  auto der = public_der(key.get());
  if (!der) return der.err();
  return sha256_hex(*der);
}

result<std::unique_ptr<key_provider>> open_software_key(env& e, const std::string& keys_dir,
                                                        const std::string& tmp_dir,
                                                        const std::string& passphrase_file) {
  std::string passphrase;
  if (!passphrase_file.empty()) {
    auto text = e.read_file(passphrase_file);
    if (!text)
      return make_error(errc::config_error, "passphrase file " + passphrase_file +
                                                " cannot be read (" + text.err().message + ")");
    passphrase = text->substr(0, text->find('\n'));
    if (passphrase.size() < 8)
      return make_error(errc::config_error, "passphrase file " + passphrase_file +
                                                ": the passphrase (first line) needs at least "
                                                "8 characters");
  }
  const std::string path = keys_dir + "/signing.key";
  pkey_ptr key;
  auto text = e.read_file(path);
  if (text) {
    bio_ptr b(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
    key.reset(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
    if (!key)
      return make_error(errc::integrity_error, path + " is not a PEM private key; restore it "
                                                      "from backup (checkpoints it signed stay "
                                                      "verifiable with keys/<key_id>.pem)");
  } else if (text.err().code == errc::not_found) {
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!key) return make_error(errc::internal, "cannot generate a P-256 key: " + ssl_error());
    bio_ptr b(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_PrivateKey(b.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
      return make_error(errc::internal, "cannot encode private key: " + ssl_error());
    if (auto err = write_durable(e, tmp_dir, path, bio_string(b.get()), 0600)) return err;
  } else {
    return text.err();
  }
  bio_ptr pub(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1)
    return make_error(errc::internal, "cannot encode public key: " + ssl_error());
  std::string pem = bio_string(pub.get());
  auto der = public_der(key.get());
  if (!der) return der.err();
  std::string id = sha256_hex(*der);
  const std::string pub_path = keys_dir + "/" + id + ".pem";
  if (!e.exists(pub_path))
    if (auto err = write_durable(e, tmp_dir, pub_path, pem, private_file_mode)) return err;
  return std::unique_ptr<key_provider>(
      new software_key(std::move(key), id, pem, std::move(passphrase)));
}

status verify_digest(const std::string& public_pem, const digest& d, const std::string& sig_der) {
  auto key = read_public(public_pem);
  if (!key) {
    ERR_clear_error();
    return make_error(errc::integrity_error, "public key is not a valid PEM key");
  }
  ctx_ptr ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1)
    return make_error(errc::internal, "cannot verify: " + ssl_error());
  int rc = EVP_PKEY_verify(ctx.get(), reinterpret_cast<const unsigned char*>(sig_der.data()),
                           sig_der.size(), d.data(), d.size());
  ERR_clear_error();
  if (rc != 1) return make_error(errc::integrity_error, "signature does not match");
  return {};
}

result<std::string> p256_public_pem(const std::string& x, const std::string& y) {
  if (x.empty() || y.empty() || x.size() > 32 || y.size() > 32)
    return make_error(errc::invalid_argument, "not a P-256 point");
  // Uncompressed SEC1 point: 0x04 || X || Y, each left-padded to 32 bytes.
  std::string point(65, '\0');
  point[0] = 0x04;
  std::copy(x.begin(), x.end(), point.begin() + 1 + static_cast<long>(32 - x.size()));
  std::copy(y.begin(), y.end(), point.begin() + 33 + static_cast<long>(32 - y.size()));
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  bool ok = ctx && params && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
            EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) == 1;
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  pkey_ptr key(raw);
  if (!ok) return make_error(errc::integrity_error, "not a P-256 point: " + ssl_error());
  bio_ptr pub(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1)
    return make_error(errc::internal, "cannot encode public key: " + ssl_error());
  return bio_string(pub.get());
}

result<std::string> ecdsa_der(const std::string& r, const std::string& s) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* br = BN_bin2bn(reinterpret_cast<const unsigned char*>(r.data()),
                         static_cast<int>(r.size()), nullptr);
  BIGNUM* bs = BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()),
                         static_cast<int>(s.size()), nullptr);
  if (sig == nullptr || br == nullptr || bs == nullptr || ECDSA_SIG_set0(sig, br, bs) != 1) {
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(sig);
    return make_error(errc::internal, "cannot encode an ECDSA signature");
  }
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (n <= 0) return make_error(errc::internal, "cannot encode an ECDSA signature");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

} // namespace dsmil
