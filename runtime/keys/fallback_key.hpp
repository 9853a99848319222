// A TPM key provider behind a circuit breaker. When the TPM fails (gone,
// unreachable), the breaker counts it and, once open, fails fast; `fallback`
// decides what a checkpoint gets meanwhile: an error (nothing unsigned is
// ever written), or the software key, whose id and provider the signature
// and the manifest then name.
#pragma once

#include <memory>
#include <mutex>

#include "runtime/devices/circuit_breaker.hpp"
#include "runtime/os/env.hpp"
#include "runtime/keys/key_provider.hpp"

namespace dsmil {

/// `software` may be null: then every TPM failure is the checkpoint's error.
std::unique_ptr<key_provider> with_tpm_breaker(env& e, std::unique_ptr<key_provider> tpm,
                                               std::unique_ptr<key_provider> software,
                                               breaker_config cfg);

} // namespace dsmil
