// device_map: the 84 DSMIL devices, their groups, quarantine and critical
// lists, loaded from config/devices.toml and validated.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dsmil/device.hpp"
#include "dsmil/result.hpp"

namespace dsmil {
class env;
}

namespace dsmil {

struct device_info {
  device_id id = 0;
  uint8_t group = 0;
  std::string name; ///< DSMIL<G>D<X>
  std::string role;
  bool quarantined = false;
  std::string quarantine_reason;
  bool critical = false;
  std::string critical_role;
  uint32_t register_count = 0;
  uint32_t config_blob_size = 0;
};

struct group_info {
  uint8_t index = 0;
  std::string role;
  std::vector<uint8_t> depends_on;
  bool optional = false;
};

class device_map {
public:
  /// Parses and validates a devices.toml. Errors name the file and line.
  /// Reads and parses the file `path` through `e`.
  static result<device_map> load_file(env& e, const std::string& path);
  /// Same, from text; `source` names the origin in error messages.
  static result<device_map> parse(const std::string& text, const std::string& source);

  const std::vector<device_info>& devices() const { return devices_; }
  const std::vector<group_info>& groups() const { return groups_; }

  /// nullptr when no such device exists (e.g. 0x800C).
  const device_info* find(device_id id) const;

  /// Groups ordered so that each comes after the groups it depends on:
  /// the order in which a rollback restores them (disable in reverse).
  const std::vector<uint8_t>& restore_order() const { return order_; }

private:
  std::vector<device_info> devices_; // sorted by id
  std::vector<group_info> groups_;   // by index
  std::vector<uint8_t> order_;
};

/// Parses "0x8005", "8005" or "32773"; the id must exist in `map`.
/// Errors say what was wrong and what ids exist.
result<device_id> parse_device_id(const std::string& text, const device_map& map);

} // namespace dsmil
