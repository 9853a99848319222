#include "runtime/auth/pki.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "runtime/base/crypto.hpp"

namespace dsmil {

namespace {

template <class T, void (*Free)(T*)> struct deleter {
  void operator()(T* p) const { Free(p); }
};
template <class T, void (*Free)(T*)> using owned = std::unique_ptr<T, deleter<T, Free>>;
using bio_ptr = owned<BIO, BIO_free_all>;
using pkey_ptr = owned<EVP_PKEY, EVP_PKEY_free>;
using x509_ptr = owned<X509, X509_free>;
using crl_ptr = owned<X509_CRL, X509_CRL_free>;
using name_ptr = owned<X509_NAME, X509_NAME_free>;
using bn_ptr = owned<BIGNUM, BN_free>;
using time_ptr = owned<ASN1_TIME, ASN1_TIME_free>;
using md_ctx_ptr = owned<EVP_MD_CTX, EVP_MD_CTX_free>;
using store_ctx_ptr = owned<X509_STORE_CTX, X509_STORE_CTX_free>;

// The newest OpenSSL error as text, for a message.
std::string ssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

error fail(const std::string& what) {
  return make_error(errc::internal, what + ": " + ssl_error());
}

bio_ptr mem_bio(std::string_view text) {
  return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

pkey_ptr read_private_key(const std::string& pem) {
  auto b = mem_bio(pem);
  return pkey_ptr(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
}

pkey_ptr read_public_key(const std::string& pem) {
  auto b = mem_bio(pem);
  return pkey_ptr(PEM_read_bio_PUBKEY(b.get(), nullptr, nullptr, nullptr));
}

x509_ptr read_x509(std::string_view text) {
  if (text.substr(0, 5) == "-----") {
    auto b = mem_bio(text);
    return x509_ptr(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  }
  auto p = reinterpret_cast<const unsigned char*>(text.data());
  x509_ptr x(d2i_X509(nullptr, &p, static_cast<long>(text.size())));
  if (x && p != reinterpret_cast<const unsigned char*>(text.data()) + text.size()) return nullptr;
  return x;
}

template <class T, int (*Write)(BIO*, const T*)> std::string pem_of(const T* x) {
  bio_ptr b(BIO_new(BIO_s_mem()));
  if (!b || Write(b.get(), x) != 1) return {};
  return bio_text(b.get());
}

std::string name_entry(const X509_NAME* n, int nid) {
  if (!n) return {};
  int i = X509_NAME_get_index_by_NID(n, nid, -1);
  if (i < 0) return {};
  auto* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

int64_t unix_of(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

bool add_entry(X509_NAME* n, const char* field, const std::string& value) {
  return X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(value.data()),
                                    static_cast<int>(value.size()), -1, 0) == 1;
}

bool add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool set_serial(ASN1_INTEGER* serial, std::string* hex) {
  bn_ptr bn(BN_new());
  if (!bn || BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) return false;
  if (!BN_to_ASN1_INTEGER(bn.get(), serial)) return false;
  if (hex) {
    char* h = BN_bn2hex(bn.get());
    *hex = h ? h : "";
    OPENSSL_free(h);
  }
  return true;
}

// A certificate for `pub` signed by `signer`, issued by `issuer` (the
// certificate itself for a CA).
result<std::string> build_cert(X509* issuer, EVP_PKEY* signer, EVP_PKEY* pub, const cert_spec& s,
                               bool ca, std::string* serial_hex) {
  x509_ptr x(X509_new());
  if (!x || X509_set_version(x.get(), 2) != 1) return fail("certificate");
  if (!set_serial(X509_get_serialNumber(x.get()), serial_hex)) return fail("serial number");
  if (!ASN1_TIME_set(X509_getm_notBefore(x.get()), static_cast<time_t>(s.not_before_s)) ||
      !ASN1_TIME_set(X509_getm_notAfter(x.get()), static_cast<time_t>(s.not_after_s)))
    return fail("validity");
  name_ptr n(X509_NAME_new());
  if (!n || !add_entry(n.get(), "O", "dsmil-recovery") ||
      (!s.role.empty() && !add_entry(n.get(), "OU", s.role)) || !add_entry(n.get(), "CN", s.name))
    return make_error(errc::invalid_argument, "certificate name '" + s.name + "' is not valid");
  X509_set_subject_name(x.get(), n.get());
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : n.get());
  if (X509_set_pubkey(x.get(), pub) != 1) return fail("public key");
  X509* iss = issuer ? issuer : x.get();
  bool ok = add_ext(x.get(), iss, NID_subject_key_identifier, "hash") &&
            add_ext(x.get(), iss, NID_authority_key_identifier, "keyid:always");
  if (ca) {
    ok = ok && add_ext(x.get(), iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
         add_ext(x.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    ok = ok && add_ext(x.get(), iss, NID_basic_constraints, "critical,CA:FALSE") &&
         add_ext(x.get(), iss, NID_key_usage, "critical,digitalSignature") &&
         add_ext(x.get(), iss, NID_ext_key_usage, s.server ? "serverAuth" : "clientAuth");
    std::string san;
    for (auto& d : s.dns_names)
      san += (san.empty() ? "DNS:" : ",DNS:") + d;
    for (auto& ip : s.ip_addresses)
      san += (san.empty() ? "IP:" : ",IP:") + ip;
    if (!san.empty()) ok = ok && add_ext(x.get(), iss, NID_subject_alt_name, san);
  }
  if (!ok) return fail("certificate extensions");
  if (X509_sign(x.get(), signer, EVP_sha256()) <= 0) return fail("signing the certificate");
  return pem_of<X509, PEM_write_bio_X509>(x.get());
}

} // namespace

result<std::string> new_private_key() {
  pkey_ptr k(EVP_EC_gen("P-256"));
  if (!k) return fail("EC key generation");
  bio_ptr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), k.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return fail("writing the key");
  return bio_text(b.get());
}

result<std::string> public_key_of(const std::string& private_key_pem) {
  auto k = read_private_key(private_key_pem);
  if (!k) return make_error(errc::invalid_argument, "not a PEM private key");
  return pem_of<EVP_PKEY, PEM_write_bio_PUBKEY>(k.get());
}

result<std::string> make_ca_cert(const std::string& key_pem, const cert_spec& spec) {
  auto k = read_private_key(key_pem);
  if (!k) return make_error(errc::invalid_argument, "the CA key is not a PEM private key");
  return build_cert(nullptr, k.get(), k.get(), spec, true, nullptr);
}

result<std::string> issue_cert(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                               const std::string& public_key_pem, const cert_spec& spec,
                               std::string* serial_hex) {
  auto ca = read_x509(ca_cert_pem);
  auto ca_key = read_private_key(ca_key_pem);
  if (!ca || !ca_key) return make_error(errc::invalid_argument, "the CA certificate or key is bad");
  auto pub = read_public_key(public_key_pem);
  if (!pub) return make_error(errc::invalid_argument, "not a PEM public key");
  return build_cert(ca.get(), ca_key.get(), pub.get(), spec, false, serial_hex);
}

result<std::string> make_crl(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                             const std::vector<std::string>& serials_hex, int64_t now_s, int days) {
  auto ca = read_x509(ca_cert_pem);
  auto ca_key = read_private_key(ca_key_pem);
  if (!ca || !ca_key) return make_error(errc::invalid_argument, "the CA certificate or key is bad");
  crl_ptr crl(X509_CRL_new());
  time_ptr last(ASN1_TIME_set(nullptr, static_cast<time_t>(now_s)));
  time_ptr next(ASN1_TIME_set(nullptr, static_cast<time_t>(now_s + int64_t{days} * 86400)));
  if (!crl || !last || !next || X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1)
    return fail("revocation list");
  for (auto& hex : serials_hex) {
    BIGNUM* raw = nullptr;
    if (BN_hex2bn(&raw, hex.c_str()) == 0)
      return make_error(errc::invalid_argument, "serial '" + hex + "' is not hex");
    bn_ptr bn(raw);
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn.get(), nullptr);
    const bool ok = r && serial && X509_REVOKED_set_serialNumber(r, serial) == 1 &&
                    X509_REVOKED_set_revocationDate(r, last.get()) == 1 &&
                    X509_CRL_add0_revoked(crl.get(), r) == 1;
    ASN1_INTEGER_free(serial);
    if (!ok) {
      X509_REVOKED_free(r);
      return fail("revoked entry");
    }
  }
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), ca_key.get(), EVP_sha256()) <= 0) return fail("signing the CRL");
  return pem_of<X509_CRL, PEM_write_bio_X509_CRL>(crl.get());
}

namespace {

cert_info info_of(X509* x) {
  cert_info i;
  i.name = name_entry(X509_get_subject_name(x), NID_commonName);
  i.role = name_entry(X509_get_subject_name(x), NID_organizationalUnitName);
  i.issuer = name_entry(X509_get_issuer_name(x), NID_commonName);
  if (bn_ptr bn{ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nullptr)}) {
    char* h = BN_bn2hex(bn.get());
    i.serial = h ? h : "";
    OPENSSL_free(h);
  }
  i.not_before_s = unix_of(X509_get0_notBefore(x));
  i.not_after_s = unix_of(X509_get0_notAfter(x));
  return i;
}

} // namespace

result<cert_info> read_cert(std::string_view pem_or_der) {
  auto x = read_x509(pem_or_der);
  if (!x) return make_error(errc::invalid_argument, "not an X.509 certificate (PEM or DER)");
  return info_of(x.get());
}

result<std::string> cert_der(const std::string& pem) {
  auto x = read_x509(pem);
  if (!x) return make_error(errc::invalid_argument, "not a PEM certificate");
  unsigned char* der = nullptr;
  int n = i2d_X509(x.get(), &der);
  if (n <= 0) return fail("certificate encoding");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string signed_bytes(std::string_view nonce, std::string_view command,
                         std::string_view request) {
  std::string encoded;
  encoded.reserve(command.size() + 1 + request.size());
  encoded.append(command).push_back('\0');
  encoded.append(request);
  auto d = sha256(encoded);
  std::string out(nonce);
  out.append(reinterpret_cast<const char*>(d.data()), d.size());
  return out;
}

namespace {

bool verify_with(EVP_PKEY* key, std::string_view msg, std::string_view sig) {
  md_ctx_ptr md(EVP_MD_CTX_new());
  const bool ok =
      md && EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1;
  ERR_clear_error();
  return ok;
}

} // namespace

bool check_signature(const std::string& cert_pem, std::string_view bytes, std::string_view sig) {
  auto x = read_x509(cert_pem);
  return x && verify_with(X509_get0_pubkey(x.get()), bytes, sig);
}

result<request_signer> request_signer::load(const std::string& cert_pem,
                                            const std::string& key_pem) {
  auto x = read_x509(cert_pem);
  if (!x) return make_error(errc::invalid_argument, "the certificate is not PEM");
  auto k = read_private_key(key_pem);
  if (!k) return make_error(errc::invalid_argument, "the key is not a PEM private key");
  if (X509_check_private_key(x.get(), k.get()) != 1) {
    ERR_clear_error();
    return make_error(errc::invalid_argument, "the key does not belong to the certificate");
  }
  request_signer s;
  auto der = dsmil::cert_der(cert_pem);
  if (!der) return der.err();
  s.der_ = std::move(*der);
  s.info_ = info_of(x.get());
  s.key_ =
      std::shared_ptr<void>(k.release(), [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
  return s;
}

result<std::string> request_signer::sign(std::string_view nonce, std::string_view command,
                                         std::string_view request) const {
  return sign_bytes(signed_bytes(nonce, command, request));
}

result<std::string> request_signer::sign_bytes(std::string_view msg) const {
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  auto* key = static_cast<EVP_PKEY*>(key_.get());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(msg.data()),
                     msg.size()) != 1)
    return fail("signing the request");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) != 1)
    return fail("signing the request");
  sig.resize(len);
  return sig;
}

result<std::shared_ptr<const request_verifier>> request_verifier::make(const std::string& ca_pem,
                                                                       const std::string& crl_pem) {
  std::shared_ptr<X509_STORE> store(X509_STORE_new(), X509_STORE_free);
  if (!store) return fail("certificate store");
  // Every certificate of a CA bundle is trusted.
  auto b = mem_bio(ca_pem);
  int cas = 0;
  while (x509_ptr x{PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(store.get(), x.get()) != 1) return fail("adding the CA");
    ++cas;
  }
  ERR_clear_error();
  if (cas == 0) return make_error(errc::config_error, "the CA file holds no PEM certificate");
  auto v = std::make_shared<request_verifier>();
  if (!crl_pem.empty()) {
    auto cb = mem_bio(crl_pem);
    int crls = 0;
    while (crl_ptr c{PEM_read_bio_X509_CRL(cb.get(), nullptr, nullptr, nullptr)}) {
      if (X509_STORE_add_crl(store.get(), c.get()) != 1) return fail("adding the CRL");
      ++crls;
    }
    ERR_clear_error();
    if (crls == 0) return make_error(errc::config_error, "the CRL file holds no PEM CRL");
    v->has_crl_ = true;
  }
  v->store_ = store;
  return std::shared_ptr<const request_verifier>(v);
}

result<cert_info> request_verifier::verify(std::string_view cert_der, std::string_view nonce,
                                           std::string_view command, std::string_view request,
                                           std::string_view signature, int64_t now_s) const {
  auto x = read_x509(cert_der);
  if (!x) return make_error(errc::permission_denied, "the request carries no valid certificate");
  auto info = info_of(x.get());
  const std::string who = "certificate '" + info.name + "'";
  store_ctx_ptr ctx(X509_STORE_CTX_new());
  if (!ctx ||
      X509_STORE_CTX_init(ctx.get(), static_cast<X509_STORE*>(store_.get()), x.get(), nullptr) != 1)
    return fail("certificate check");
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(now_s));
  if (has_crl_) X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_CRL_CHECK);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int e = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    switch (e) {
    case X509_V_ERR_CERT_REVOKED:
      return make_error(errc::permission_denied, who + " is revoked");
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return make_error(errc::permission_denied, who + " expired");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return make_error(errc::permission_denied, who + " is not valid yet");
    case X509_V_ERR_INVALID_PURPOSE:
      return make_error(errc::permission_denied, who + " is not a client certificate");
    default:
      return make_error(errc::permission_denied,
                        who + " is not accepted (" + X509_verify_cert_error_string(e) + ")");
    }
  }
  if (!verify_with(X509_get0_pubkey(x.get()), signed_bytes(nonce, command, request), signature))
    return make_error(errc::permission_denied,
                      "the request's signature does not match " + who + " and the node's nonce");
  return info;
}

} // namespace dsmil
