// tpm2-tss adapter: ESAPI over a TCTI, the only file that includes tpm2-tss.
// Nothing here throws; every TSS2_RC becomes a dsmil::error that names the
// command, the TCTI and the decoded response code.
#include "runtime/keys/tpm_key.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

namespace dsmil {

namespace {

// The SHA-256 bank's PCRs `pcrs` as a TPM selection.
template <class C> TPML_PCR_SELECTION sha256_selection(const C& pcrs) {
  TPML_PCR_SELECTION sel{};
  sel.count = 1;
  sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
  sel.pcrSelections[0].sizeofSelect = 3;
  for (int i : pcrs)
    sel.pcrSelections[0].pcrSelect[i / 8] |= static_cast<BYTE>(1u << (i % 8));
  return sel;
}

error tpm_fail(const std::string& tcti, const std::string& what, TSS2_RC rc) {
  return make_error(errc::unavailable, "TPM at '" + tcti + "': " + what + " failed (" +
                                           Tss2_RC_Decode(rc) +
                                           "); check that the TPM is reachable and [keys] tcti");
}

// Frees what ESAPI allocated for an output.
template <class T> struct esys_out {
  T* p = nullptr;
  ~esys_out() { Esys_Free(p); }
  T** operator&() { return &p; }
  T* operator->() const { return p; }
};

class tpm_key final : public key_provider {
public:
  tpm_key(std::string tcti_conf, std::vector<int> pcrs, std::vector<int> seal_pcrs)
      : conf_(std::move(tcti_conf)), pcrs_(std::move(pcrs)), seal_pcrs_(std::move(seal_pcrs)) {}
  ~tpm_key() override {
    // Persistent objects and NV indexes: their ESYS_TRs are closed, not flushed.
    for (ESYS_TR* tr : {&key_, &ak_, &nv_})
      if (*tr != ESYS_TR_NONE) Esys_TR_Close(esys_, tr);
    if (esys_ != nullptr) Esys_Finalize(&esys_);
    if (tcti_ != nullptr) Tss2_TctiLdr_Finalize(&tcti_);
  }

  status connect() {
    TSS2_RC rc = Tss2_TctiLdr_Initialize(conf_.c_str(), &tcti_);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "opening the TCTI", rc);
    rc = Esys_Initialize(&esys_, tcti_, nullptr);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "Esys_Initialize", rc);
    return {};
  }

  status open_all(const tpm_options& o) {
    if (auto err = find_or_create(o.signing_handle, false, key_, pem_, id_)) return err;
    if (auto err = find_or_create(o.ak_handle, true, ak_, ak_pem_, ak_id_)) return err;
    return open_counter(o.counter_index);
  }

  status find_or_create(uint32_t handle, bool restricted, ESYS_TR& key, std::string& pem_out,
                        std::string& id_out) {
    TPMI_YES_NO more = TPM2_NO;
    esys_out<TPMS_CAPABILITY_DATA> cap;
    TSS2_RC rc = Esys_GetCapability(esys_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_HANDLES, handle, 1, &more, &cap);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_GetCapability", rc);
    const bool present = cap->data.handles.count > 0 && cap->data.handles.handle[0] == handle;
    if (present) {
      rc = Esys_TR_FromTPMPublic(esys_, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &key);
      if (rc != TSS2_RC_SUCCESS)
        return tpm_fail(conf_, "reading key " + format_tpm_handle(handle), rc);
    } else if (auto err = create(handle, restricted, key)) {
      return err;
    }
    esys_out<TPM2B_PUBLIC> pub;
    rc = Esys_ReadPublic(esys_, key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, nullptr,
                         nullptr);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_ReadPublic", rc);
    const auto& area = pub->publicArea;
    if (area.type != TPM2_ALG_ECC || area.parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
        (area.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) == 0 ||
        ((area.objectAttributes & TPMA_OBJECT_RESTRICTED) != 0) != restricted)
      return make_error(errc::config_error,
                        "TPM handle " + format_tpm_handle(handle) +
                            " holds an object that is not " +
                            (restricted ? "a restricted" : "an unrestricted") +
                            " ECC P-256 signing key; choose another handle in [keys] or evict "
                            "it (tpm2_evictcontrol)");
    const auto& pt = area.unique.ecc;
    auto pem = p256_public_pem(std::string(reinterpret_cast<const char*>(pt.x.buffer), pt.x.size),
                               std::string(reinterpret_cast<const char*>(pt.y.buffer), pt.y.size));
    if (!pem) return pem.err();
    auto id = key_id_of(*pem);
    if (!id) return id.err();
    pem_out = *pem;
    id_out = *id;
    return {};
  }

  status open_counter(uint32_t index) {
    TPMI_YES_NO more = TPM2_NO;
    esys_out<TPMS_CAPABILITY_DATA> cap;
    TSS2_RC rc = Esys_GetCapability(esys_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_HANDLES, index, 1, &more, &cap);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_GetCapability", rc);
    if (cap->data.handles.count > 0 && cap->data.handles.handle[0] == index) {
      rc = Esys_TR_FromTPMPublic(esys_, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv_);
      if (rc != TSS2_RC_SUCCESS)
        return tpm_fail(conf_, "reading NV index " + format_tpm_handle(index), rc);
    } else {
      TPM2B_AUTH auth{};
      TPM2B_NV_PUBLIC info{};
      info.nvPublic.nvIndex = index;
      info.nvPublic.nameAlg = TPM2_ALG_SHA256;
      info.nvPublic.attributes = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_OWNERWRITE |
                                 TPMA_NV_OWNERREAD | TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD |
                                 TPMA_NV_NO_DA;
      info.nvPublic.dataSize = 8;
      rc = Esys_NV_DefineSpace(esys_, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, &auth, &info, &nv_);
      if (rc != TSS2_RC_SUCCESS)
        return tpm_fail(conf_, "defining the NV counter " + format_tpm_handle(index), rc);
      // A counter has no value until its first increment.
      rc = Esys_NV_Increment(esys_, nv_, nv_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
      if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_NV_Increment", rc);
    }
    return {};
  }

  result<uint64_t> read_counter() {
    esys_out<TPM2B_MAX_NV_BUFFER> data;
    TSS2_RC rc =
        Esys_NV_Read(esys_, nv_, nv_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &data);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_NV_Read", rc);
    uint64_t v = 0;
    for (int i = 0; i < data->size && i < 8; ++i)
      v = (v << 8) | data->buffer[i];
    return v;
  }

  std::string provider() const override { return "tpm"; }
  std::string scheme() const override { return "ecdsa-p256-sha256"; }
  std::string key_id() const override { return id_; }
  std::string public_pem() const override { return pem_; }

  result<std::string> sign_digest(const digest& d) override {
    std::lock_guard<std::mutex> guard(mu_);
    TPM2B_DIGEST in{};
    in.size = static_cast<UINT16>(d.size());
    std::memcpy(in.buffer, d.data(), d.size());
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_ECDSA;
    scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    // An unrestricted key signs an outside digest with the null ticket.
    TPMT_TK_HASHCHECK ticket{};
    ticket.tag = TPM2_ST_HASHCHECK;
    ticket.hierarchy = TPM2_RH_NULL;
    esys_out<TPMT_SIGNATURE> sig;
    TSS2_RC rc = Esys_Sign(esys_, key_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &in, &scheme,
                           &ticket, &sig);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_Sign", rc);
    const auto& e = sig->signature.ecdsa;
    return ecdsa_der(
        std::string(reinterpret_cast<const char*>(e.signatureR.buffer), e.signatureR.size),
        std::string(reinterpret_cast<const char*>(e.signatureS.buffer), e.signatureS.size));
  }

  result<uint64_t> counter() override {
    std::lock_guard<std::mutex> guard(mu_);
    return read_counter();
  }

  result<uint64_t> advance_counter() override {
    std::lock_guard<std::mutex> guard(mu_);
    TSS2_RC rc = Esys_NV_Increment(esys_, nv_, nv_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_NV_Increment", rc);
    return read_counter();
  }

  std::string attestation_key_id() const override { return ak_id_; }
  std::string attestation_public_pem() const override { return ak_pem_; }

  result<std::vector<std::pair<int, std::string>>> read_pcrs() override {
    std::lock_guard<std::mutex> guard(mu_);
    return read_pcr_values();
  }

  result<platform_evidence> attest(const digest& qualifying) override {
    std::lock_guard<std::mutex> guard(mu_);
    platform_evidence ev;
    // PCRs can change between the read and the quote: read, quote, and check
    // the quote's digest against what was read, a few times.
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto pcrs = read_pcr_values();
      if (!pcrs) return pcrs.err();
      auto q = quote(qualifying);
      if (!q) return q.err();
      auto fields = parse_quote(q->first);
      auto composite = pcr_composite_digest(*pcrs);
      if (!fields) return fields.err();
      if (!composite) return composite.err();
      if (fields->pcr_digest != *composite) continue;
      ev.pcrs = std::move(*pcrs);
      ev.quote_attest = std::move(q->first);
      ev.quote_signature = std::move(q->second);
      break;
    }
    if (ev.quote_attest.empty())
      return make_error(errc::unavailable, "TPM at '" + conf_ +
                                               "': PCRs kept changing while being quoted; "
                                               "try again");
    ev.ak_key_id = ak_id_;
    ev.ak_public_pem = ak_pem_;
    TSS2_RC rc = Esys_NV_Increment(esys_, nv_, nv_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_NV_Increment", rc);
    auto c = read_counter();
    if (!c) return c.err();
    ev.counter = *c;
    return ev;
  }

  // blob := "DSMT1" u8[3] PCR mask, TPM2B_PUBLIC, TPM2B_PRIVATE (marshalled) of
  // a sealed data object under the owner storage primary, which the TPM
  // re-derives on demand. A non-empty mask binds it to those PCRs' values.
  result<std::string> seal(const std::string& secret) override {
    std::lock_guard<std::mutex> guard(mu_);
    if (secret.size() > 128) return make_error(errc::invalid_argument, "secret too large to seal");
    ESYS_TR parent = ESYS_TR_NONE;
    if (auto err = storage_primary(parent)) return err;
    TPM2B_SENSITIVE_CREATE sensitive{};
    sensitive.sensitive.data.size = static_cast<UINT16>(secret.size());
    std::memcpy(sensitive.sensitive.data.buffer, secret.data(), secret.size());
    TPM2B_PUBLIC tmpl{};
    tmpl.publicArea.type = TPM2_ALG_KEYEDHASH;
    tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
    tmpl.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                       TPMA_OBJECT_NODA |
                                       (seal_pcrs_.empty() ? TPMA_OBJECT_USERWITHAUTH : 0);
    if (!seal_pcrs_.empty()) {
      // The policy digest of "these PCRs hold today's values", from a trial session.
      ESYS_TR trial = ESYS_TR_NONE;
      if (auto err = policy_session(TPM2_SE_TRIAL, seal_pcrs_, trial)) {
        Esys_FlushContext(esys_, parent);
        return err;
      }
      esys_out<TPM2B_DIGEST> policy;
      TSS2_RC prc =
          Esys_PolicyGetDigest(esys_, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &policy);
      Esys_FlushContext(esys_, trial);
      if (prc != TSS2_RC_SUCCESS) {
        Esys_FlushContext(esys_, parent);
        return tpm_fail(conf_, "TPM2_PolicyGetDigest", prc);
      }
      tmpl.publicArea.authPolicy = *policy.p;
    }
    tmpl.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation{};
    esys_out<TPM2B_PRIVATE> priv;
    esys_out<TPM2B_PUBLIC> pub;
    TSS2_RC rc =
        Esys_Create(esys_, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl,
                    &outside, &creation, &priv, &pub, nullptr, nullptr, nullptr);
    Esys_FlushContext(esys_, parent);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_Create (sealing)", rc);
    uint8_t buf[sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE)];
    size_t off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub.p, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Marshal(priv.p, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
      return make_error(errc::internal, "cannot marshal the sealed object");
    char mask[3] = {0, 0, 0};
    for (int i : seal_pcrs_)
      mask[i / 8] = static_cast<char>(mask[i / 8] | (1 << (i % 8)));
    return "DSMT1" + std::string(mask, 3) + std::string(reinterpret_cast<char*>(buf), off);
  }

  result<std::string> unseal(const std::string& blob) override {
    std::lock_guard<std::mutex> guard(mu_);
    if (blob.size() < 8 || blob.compare(0, 5, "DSMT1") != 0)
      return make_error(errc::integrity_error, "not a TPM-sealed key");
    std::vector<int> bound;
    for (int i = 0; i < 24; ++i)
      if ((static_cast<uint8_t>(blob[5 + static_cast<size_t>(i / 8)]) >> (i % 8)) & 1)
        bound.push_back(i);
    TPM2B_PUBLIC pub{};
    TPM2B_PRIVATE priv{};
    size_t off = 0;
    const auto* data = reinterpret_cast<const uint8_t*>(blob.data() + 8);
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(data, blob.size() - 8, &off, &pub) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Unmarshal(data, blob.size() - 8, &off, &priv) != TSS2_RC_SUCCESS)
      return make_error(errc::integrity_error, "the sealed key is damaged");
    ESYS_TR parent = ESYS_TR_NONE;
    if (auto err = storage_primary(parent)) return err;
    ESYS_TR item = ESYS_TR_NONE;
    TSS2_RC rc =
        Esys_Load(esys_, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &item);
    Esys_FlushContext(esys_, parent);
    if (rc != TSS2_RC_SUCCESS)
      return tpm_fail(conf_, "loading the sealed key (sealed by another TPM?)", rc);
    ESYS_TR auth = ESYS_TR_PASSWORD;
    if (!bound.empty()) {
      if (auto err = policy_session(TPM2_SE_POLICY, bound, auth)) {
        Esys_FlushContext(esys_, item);
        return err;
      }
    }
    esys_out<TPM2B_SENSITIVE_DATA> out;
    rc = Esys_Unseal(esys_, item, auth, ESYS_TR_NONE, ESYS_TR_NONE, &out);
    Esys_FlushContext(esys_, item);
    if (auth != ESYS_TR_PASSWORD) Esys_FlushContext(esys_, auth);
    if (rc != TSS2_RC_SUCCESS) {
      std::string which;
      for (int i : bound)
        which += (which.empty() ? "" : ",") + std::to_string(i);
      return tpm_fail(conf_,
                      bound.empty() ? std::string("TPM2_Unseal")
                                    : "TPM2_Unseal under the PCR policy (PCR " + which +
                                          " changed since the key was sealed?)",
                      rc);
    }
    return std::string(reinterpret_cast<const char*>(out->buffer), out->size);
  }

private:
  // A trial or policy session with PolicyPCR over `pcrs` (today's values).
  status policy_session(TPM2_SE type, const std::vector<int>& pcrs, ESYS_TR& session) {
    TPMT_SYM_DEF sym{};
    sym.algorithm = TPM2_ALG_NULL;
    TSS2_RC rc =
        Esys_StartAuthSession(esys_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                              ESYS_TR_NONE, nullptr, type, &sym, TPM2_ALG_SHA256, &session);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_StartAuthSession", rc);
    const TPML_PCR_SELECTION sel = sha256_selection(pcrs);
    TPM2B_DIGEST none{};
    rc = Esys_PolicyPCR(esys_, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &none, &sel);
    if (rc != TSS2_RC_SUCCESS) {
      Esys_FlushContext(esys_, session);
      session = ESYS_TR_NONE;
      return tpm_fail(conf_, "TPM2_PolicyPCR", rc);
    }
    return {};
  }

  // The owner storage primary (ECC P-256, AES-128-CFB): the same template
  // gives the same key, so it is made when needed and flushed after.
  status storage_primary(ESYS_TR& parent) {
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_PUBLIC tmpl{};
    auto& a = tmpl.publicArea;
    a.type = TPM2_ALG_ECC;
    a.nameAlg = TPM2_ALG_SHA256;
    a.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                         TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA;
    a.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    a.parameters.eccDetail.symmetric.keyBits.aes = 128;
    a.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    a.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    a.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    a.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation{};
    TSS2_RC rc = Esys_CreatePrimary(esys_, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                    ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation, &parent,
                                    nullptr, nullptr, nullptr, nullptr);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_CreatePrimary (storage key)", rc);
    return {};
  }

  // (attest bytes, DER signature) of a quote over the PCRs and `qualifying`.
  result<std::pair<std::string, std::string>> quote(const digest& qualifying) {
    TPM2B_DATA extra{};
    extra.size = static_cast<UINT16>(qualifying.size());
    std::memcpy(extra.buffer, qualifying.data(), qualifying.size());
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_ECDSA;
    scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    const TPML_PCR_SELECTION sel = sha256_selection(pcrs_);
    esys_out<TPM2B_ATTEST> attest;
    esys_out<TPMT_SIGNATURE> sig;
    TSS2_RC rc = Esys_Quote(esys_, ak_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &extra,
                            &scheme, &sel, &attest, &sig);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_Quote", rc);
    const auto& e = sig->signature.ecdsa;
    auto der = ecdsa_der(
        std::string(reinterpret_cast<const char*>(e.signatureR.buffer), e.signatureR.size),
        std::string(reinterpret_cast<const char*>(e.signatureS.buffer), e.signatureS.size));
    if (!der) return der.err();
    return std::make_pair(
        std::string(reinterpret_cast<const char*>(attest->attestationData), attest->size),
        std::move(*der));
  }

  result<std::vector<std::pair<int, std::string>>> read_pcr_values() {
    std::set<int> left(pcrs_.begin(), pcrs_.end());
    std::vector<std::pair<int, std::string>> out;
    // A TPM returns at most 8 digests per read: read until all are in.
    while (!left.empty()) {
      const TPML_PCR_SELECTION sel = sha256_selection(left);
      UINT32 update_counter = 0;
      esys_out<TPML_PCR_SELECTION> got;
      esys_out<TPML_DIGEST> values;
      TSS2_RC rc = Esys_PCR_Read(esys_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel,
                                 &update_counter, &got, &values);
      if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_PCR_Read", rc);
      size_t k = 0;
      for (uint32_t s = 0; s < got->count; ++s) {
        if (got->pcrSelections[s].hash != TPM2_ALG_SHA256) continue;
        for (int i = 0; i < 8 * got->pcrSelections[s].sizeofSelect && k < values->count; ++i) {
          if ((got->pcrSelections[s].pcrSelect[i / 8] & (1u << (i % 8))) == 0) continue;
          const auto& v = values->digests[k++];
          out.emplace_back(i, to_hex(v.buffer, v.size));
          left.erase(i);
        }
      }
      if (k == 0)
        return make_error(errc::unavailable,
                          "TPM at '" + conf_ + "': the SHA-256 PCR bank does not hold PCR " +
                              std::to_string(*left.begin()) + "; check [keys] pcrs");
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  status create(uint32_t handle, bool restricted, ESYS_TR& key) {
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_PUBLIC tmpl{};
    auto& a = tmpl.publicArea;
    a.type = TPM2_ALG_ECC;
    a.nameAlg = TPM2_ALG_SHA256;
    a.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                         TPMA_OBJECT_NODA | (restricted ? TPMA_OBJECT_RESTRICTED : 0);
    a.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    a.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    a.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    a.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    a.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation{};
    ESYS_TR transient = ESYS_TR_NONE;
    TSS2_RC rc = Esys_CreatePrimary(esys_, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                    ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation,
                                    &transient, nullptr, nullptr, nullptr, nullptr);
    if (rc != TSS2_RC_SUCCESS) return tpm_fail(conf_, "TPM2_CreatePrimary", rc);
    rc = Esys_EvictControl(esys_, ESYS_TR_RH_OWNER, transient, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, handle, &key);
    Esys_FlushContext(esys_, transient); // the transient copy, persistent or not
    if (rc != TSS2_RC_SUCCESS)
      return tpm_fail(conf_, "making a key persistent at " + format_tpm_handle(handle), rc);
    return {};
  }

  std::string conf_;
  std::vector<int> pcrs_;
  std::vector<int> seal_pcrs_;
  TSS2_TCTI_CONTEXT* tcti_ = nullptr;
  ESYS_CONTEXT* esys_ = nullptr;
  ESYS_TR key_ = ESYS_TR_NONE; // signing key
  ESYS_TR ak_ = ESYS_TR_NONE;  // attestation key
  ESYS_TR nv_ = ESYS_TR_NONE;  // anti-replay counter
  std::string pem_, id_, ak_pem_, ak_id_;
  std::mutex mu_; // one TPM command at a time
};

} // namespace

result<std::unique_ptr<key_provider>> open_tpm_key(const tpm_options& o) {
  if (auto err = check_tpm_options(o)) return err;
  // tpm2-tss logs its own view of every failure to stderr; ours names the
  // TCTI and the decoded code in one line. TSS2_LOG set by the user wins.
  ::setenv("TSS2_LOG", "all+none", 0);
  auto k = std::make_unique<tpm_key>(o.tcti, o.pcrs, o.seal_pcrs);
  if (auto err = k->connect()) return err;
  if (auto err = k->open_all(o)) return err;
  return std::unique_ptr<key_provider>(std::move(k));
}

} // namespace dsmil
