// The tpm key provider: a signing key inside a TPM 2.0 (a chip through
// /dev/tpmrm0, or swtpm in tests), reached with tpm2-tss ESAPI over a TCTI.
// The only header of the project that speaks of TPMs; tpm_key.cpp is the only
// file that includes tpm2-tss.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dsmil/result.hpp"
#include "runtime/keys/key_provider.hpp"

namespace dsmil {

struct tpm_options {
  /// TCTI configuration: "device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321".
  std::string tcti = "device:/dev/tpmrm0";
  /// Where the signing key is made persistent (owner hierarchy), on first use.
  uint32_t signing_handle = 0x81010001;
  /// The attestation key (restricted: it signs only what the TPM itself
  /// made, such as quotes), persistent here.
  uint32_t ak_handle = 0x81010002;
  /// NV index of the monotonic counter advanced by every new checkpoint.
  uint32_t counter_index = 0x01500020;
  /// PCRs of the SHA-256 bank captured in each checkpoint.
  std::vector<int> pcrs = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                           12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
  /// PCRs whose values at sealing time the data key is bound to (a PCR
  /// policy): it unseals only while they are unchanged. Empty: no policy.
  std::vector<int> seal_pcrs;
};

/// Connects to the TPM, and finds the ECC P-256 signing key at
/// `signing_handle`, the attestation key at `ak_handle` and the NV counter at
/// `counter_index`, or creates them there (primary keys under the owner
/// hierarchy made persistent with EvictControl, an owner NV counter;
/// idempotent). Every TPM
/// command runs under one lock, and every transient handle is flushed.
/// Errors are `unavailable` and name the TCTI and the TPM's response code.
result<std::unique_ptr<key_provider>> open_tpm_key(const tpm_options& o);

/// "0x81010001".
std::string format_tpm_handle(uint32_t handle);
/// "0x81010001" or "2164326401" -> handle; errors name the text.
result<uint32_t> parse_tpm_handle(const std::string& text);

/// Checks the PCR lists of `o` (0-23); errors are config_error naming the PCR.
status check_tpm_options(const tpm_options& o);

} // namespace dsmil
