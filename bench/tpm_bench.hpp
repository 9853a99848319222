// `dsmil-bench tpm`: what signing in a TPM costs per checkpoint, measured on a
// real TPM 2.0 (a chip through --tcti, or a swtpm the bench starts itself).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "dsmil/result.hpp"

namespace dsmil::bench {

struct tpm_bench_options {
  std::string tcti; ///< empty: start a swtpm for the run
  unsigned runs = 200;
};

/// Keys: tcti, runs, sign_p50_ms, sign_p99_ms, attest_p50_ms, attest_p99_ms,
/// checkpoint_tpm_p50_ms, checkpoint_tpm_p99_ms, checkpoint_software_p50_ms,
/// checkpoint_software_p99_ms, signs_per_checkpoint.
result<nlohmann::json> run_tpm_bench(const tpm_bench_options& o);
void print_tpm_report(const nlohmann::json& r);

} // namespace dsmil::bench
