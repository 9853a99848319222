// The `configuration` component: the system configuration a checkpoint
// captures and a rollback restores.
#pragma once

#include <cstdint>
#include <string>

namespace dsmil {

struct system_config {
  uint32_t config_version = 1; ///< bumped by every change
  bool avx512_present = false; ///< detected from the CPU; captured, never restored
  uint32_t agent_concurrency_limit = 80;
  double thermal_threshold_c = 85.0;
  std::string config_data; ///< free-form configuration payload

  /// True when the restorable fields are equal (all but avx512_present).
  bool same_restorable(const system_config& other) const {
    return config_version == other.config_version &&
           agent_concurrency_limit == other.agent_concurrency_limit &&
           thermal_threshold_c == other.thermal_threshold_c && config_data == other.config_data;
  }
};

} // namespace dsmil
