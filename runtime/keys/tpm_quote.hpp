// TPM quotes as stored in a manifest, and their verification with OpenSSL
// alone: parsing the TPMS_ATTEST a TPM signed (TPM 2.0 Part 2, 10.12) needs
// no TPM library, so any machine can check which platform state a
// checkpoint was taken under.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dsmil/result.hpp"
#include "runtime/base/crypto.hpp"

namespace dsmil {

/// What a provider with a TPM says about the platform when a checkpoint is
/// taken: PCR values, a quote over them, the anti-replay counter.
struct platform_evidence {
  std::vector<std::pair<int, std::string>> pcrs; ///< SHA-256 bank, (index, hex), ascending
  std::string quote_attest;                      ///< TPMS_ATTEST bytes the TPM signed
  std::string quote_signature;                   ///< DER ECDSA over SHA-256(quote_attest)
  std::string ak_key_id;                         ///< key id of the attestation key
  std::string ak_public_pem;
  uint64_t counter = 0; ///< NV monotonic counter after this checkpoint's increment; 0: none
};

/// The fields of a quote that verification needs.
struct quote_fields {
  std::string extra_data; ///< the qualifying data
  std::vector<int> pcrs;  ///< SHA-256 bank selection, ascending
  std::string pcr_digest; ///< SHA-256 over the selected PCR values, in order
  uint64_t clock = 0;
  uint32_t reset_count = 0;
};

/// Parses a TPMS_ATTEST of type quote; errors say what is malformed.
result<quote_fields> parse_quote(const std::string& attest);

/// SHA-256 over the PCR values (hex) in ascending index order: what a quote
/// over those PCRs carries as its pcrDigest.
result<std::string> pcr_composite_digest(const std::vector<std::pair<int, std::string>>& pcrs);

/// Checks a quote: the AK's signature over it, the qualifying data equals
/// `qualifying`, the selection and digest equal `pcrs`. Errors are
/// integrity_error and say which part failed.
status verify_quote(const std::string& attest, const std::string& signature_der,
                    const std::string& ak_public_pem, const digest& qualifying,
                    const std::vector<std::pair<int, std::string>>& pcrs);

} // namespace dsmil
