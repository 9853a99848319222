// Supervision of the device actors: one group supervisor per DSMIL group
// (one-for-one restarts with an intensity limit, then escalation: the device
// is given up and its breaker opened), under one device supervisor that
// routes requests by device id and restarts crashed group supervisors, under
// the root supervisor that restarts the device supervisor.
#pragma once

#include "actors/devices/device_service.hpp"

namespace dsmil {

struct supervisor_config {
  std::shared_ptr<driver> drv;
  std::shared_ptr<const device_map> map;
  breaker_config breaker;
  retry_config retry;
  supervision_config supervision;
};

/// Spawns the root supervisor, which starts the device supervisor with its 7
/// group supervisors and 84 device actors. Every device request goes in here.
device_service spawn_root_supervisor(caf::actor_system& sys, supervisor_config cfg);

} // namespace dsmil
