#include "dsmil/device.hpp"

#include <cstdio>

namespace dsmil {

std::string format_device_id(device_id id) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%04x", static_cast<unsigned>(id));
  return buf;
}

bool same_restorable_state(const device_state& a, const device_state& b) {
  return a.id == b.id && a.registers == b.registers && a.config_blob == b.config_blob &&
         a.enabled == b.enabled && a.security_level == b.security_level;
}

device_patch restore_patch(const device_state& target) {
  device_patch p;
  p.id = target.id;
  p.register_index.reserve(target.registers.size());
  for (uint32_t i = 0; i < target.registers.size(); ++i)
    p.register_index.push_back(i);
  p.register_value = target.registers;
  p.set_blob = true;
  p.config_blob = target.config_blob;
  p.enabled = target.enabled ? 1 : 0;
  p.security_level = static_cast<int8_t>(target.security_level);
  return p;
}

} // namespace dsmil
