// Rollback planning (the validation phase): what a rollback will restore, in
// which order, and what the operator must be warned about. Pure: no I/O.
#pragma once

#include <string>
#include <vector>

#include "dsmil/device.hpp"
#include "dsmil/system_config.hpp"
#include "runtime/devices/device_map.hpp"

namespace dsmil {

struct checkpoint_contents; // store/store.hpp

/// Which part of a checkpoint to roll back. Empty lists mean everything
/// (a full rollback, configuration included); a selection by devices or
/// groups restores those devices and every group that depends, directly or
/// not, on a group they belong to.
struct rollback_selection {
  std::vector<device_id> devices;
  std::vector<uint8_t> groups;
  bool full() const { return devices.empty() && groups.empty(); }
};

/// How one device differs from its checkpointed state.
struct device_diff {
  device_id id = 0;
  std::vector<uint32_t> registers; ///< indexes that differ
  bool blob = false;
  bool enabled = false;
  bool security_level = false;
  bool any() const { return !registers.empty() || blob || enabled || security_level; }
};

struct rollback_plan {
  bool restore_configuration = false;
  std::vector<uint8_t> dependents; ///< groups added because they depend on the selection
  bool configuration_differs = false;
  std::vector<device_id> devices;     ///< to restore, in group dependency order
  std::vector<device_id> quarantined; ///< selected but never written
  std::vector<device_diff> diffs;     ///< devices whose current state differs
  std::vector<std::string> warnings;
  std::vector<device_id> critical_changes; ///< need --ack-critical
};

/// Builds the plan for rolling `current` back to `target`.
/// Errors: no_such_device / invalid_argument for a bad selection.
result<rollback_plan> plan_rollback(const device_map& map, const checkpoint_contents& target,
                                    const std::vector<device_state>& current,
                                    const system_config& current_config,
                                    const rollback_selection& selection);

/// Differences between two states of one device.
device_diff diff_device(const device_state& current, const device_state& target);

} // namespace dsmil
