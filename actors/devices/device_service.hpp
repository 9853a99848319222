// device_service: the typed interface of everything that answers for
// devices: a device actor, a group supervisor and the device supervisor.
// Supervisors route by device id, so callers never hold a device actor
// directly and never see its restarts.
#pragma once

#include <memory>
#include <mutex>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/devices/circuit_breaker.hpp"
#include "runtime/devices/driver.hpp"

namespace dsmil {

using device_service =
    caf::typed_actor<caf::replies_to<read_atom, device_id>::with<device_state>,
                     /// Applies the patch; answers the state read back after the write.
                     caf::replies_to<device_patch>::with<device_state>,
                     caf::replies_to<health_atom>::with<std::vector<device_health>>,
                     /// Fault injection: the device actor crashes (its supervisor restarts it).
                     caf::reacts_to<crash_atom, device_id>,
                     /// Internal to a device actor: a retry or a delayed reply is due.
                     caf::reacts_to<retry_atom, uint64_t>>;

/// What survives a device actor's restart: its breaker. Shared by the actor
/// (which updates it) and its supervisor (which reads it for health and trips
/// it on escalation), hence the lock.
struct device_slot {
  explicit device_slot(breaker_config cfg) : breaker(cfg) {}
  std::mutex mu;
  circuit_breaker breaker;
};

struct device_actor_config {
  device_id id = 0;
  std::shared_ptr<driver> drv; ///< the guarded driver, shared by all devices
  std::shared_ptr<device_slot> slot;
  retry_config retry;
};

/// Spawns the actor for one device. It re-reads its device on start.
device_service spawn_device_actor(caf::local_actor* parent, device_actor_config cfg);

/// Milliseconds on the actor clock (the test clock under test_coordinator).
int64_t clock_ms(caf::local_actor* self);

} // namespace dsmil
