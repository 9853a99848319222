// The [keys] settings that choose how a node signs. Pure: no I/O.
#pragma once

#include "runtime/base/named_enum.hpp"

namespace dsmil {

/// Who signs checkpoints: a key file under the store, or the TPM.
enum class key_provider_kind { software, tpm };

template <> struct enum_names<key_provider_kind> {
  static constexpr std::pair<key_provider_kind, const char*> values[] = {
      {key_provider_kind::software, "software"}, {key_provider_kind::tpm, "tpm"}};
};

/// What a TPM node does while its TPM fails: refuse to sign, or sign with
/// the software key until the TPM answers again.
enum class tpm_failure_policy { fail, software };

template <> struct enum_names<tpm_failure_policy> {
  static constexpr std::pair<tpm_failure_policy, const char*> values[] = {
      {tpm_failure_policy::fail, "fail"}, {tpm_failure_policy::software, "software"}};
};

} // namespace dsmil
