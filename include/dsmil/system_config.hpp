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

template <class F> void fields(F& f, system_config& x) {
  f("config_version", x.config_version);
  f("avx512_present", x.avx512_present);
  f("agent_concurrency_limit", x.agent_concurrency_limit);
  f("thermal_threshold_c", x.thermal_threshold_c);
  f("config_data", x.config_data);
}

} // namespace dsmil
