// Device model shared by the library, the node and embedding programs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsmil {

/// A DSMIL device id, 0x8000-0x806B; only 0x80G0-0x80GB exist (G = group 0-6).
using device_id = uint16_t;

constexpr device_id first_device_id = 0x8000;
constexpr device_id last_device_id = 0x806B;
constexpr int group_count = 7;
constexpr int devices_per_group = 12;
constexpr uint8_t max_security_level = 4;

/// The readable state of one device, as captured in a checkpoint.
struct device_state {
  device_id id = 0;
  std::vector<uint32_t> registers;
  std::vector<uint8_t> config_blob;
  bool enabled = false;
  uint8_t security_level = 0;   ///< 0 (UNCLASSIFIED) .. 4 (SCI)
  double temperature_c = 0;     ///< read-only sensor value, not restored
  int64_t last_activity_ns = 0; ///< Unix time of the last write, not restored
};

/// A write to one device. Fields left unset are not touched. A rollback
/// restores a device with a patch that sets every restorable field.
struct device_patch {
  device_id id = 0;
  std::vector<uint32_t> register_index; ///< parallel to register_value
  std::vector<uint32_t> register_value;
  bool set_blob = false;
  std::vector<uint8_t> config_blob;
  int8_t enabled = -1;        ///< -1 unchanged, 0 disable, 1 enable
  int8_t security_level = -1; ///< -1 unchanged, else 0-4
};

/// "0x8005" (lower-case hex, 4 digits).
std::string format_device_id(device_id id);

/// True when the restorable parts of two states are equal bit for bit:
/// registers, config blob, enabled flag and security level.
bool same_restorable_state(const device_state& a, const device_state& b);

/// The patch that turns any state of this device into `target`.
device_patch restore_patch(const device_state& target);

} // namespace dsmil
