// Faults the simulator injects into one device: set in [devices.faults] and
// by `dsmilctl device fault`. Pure: no I/O.
#pragma once

#include <cstdint>

namespace dsmil {

/// Faults the simulator injects into one device.
struct fault_spec {
  double error_rate = 0;       ///< probability (0-1) that a driver call fails
  uint32_t latency_ms = 0;     ///< added to every call
  bool offline = false;        ///< every call fails: device offline
  int32_t stuck_register = -1; ///< writes to this register index are lost; -1 none
  bool thermal_spike = false;  ///< temperature above the critical limit

  bool any() const {
    return error_rate > 0 || latency_ms > 0 || offline || stuck_register >= 0 || thermal_spike;
  }
};

} // namespace dsmil
