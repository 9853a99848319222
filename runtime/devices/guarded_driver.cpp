#include "runtime/devices/driver.hpp"

namespace dsmil {

guarded_driver::guarded_driver(std::shared_ptr<const device_map> map,
                               std::shared_ptr<driver> backend)
    : map_(std::move(map)), backend_(std::move(backend)) {}

namespace {

error no_device(device_id id) {
  return make_error(errc::no_such_device,
                    "no such device " + format_device_id(id) +
                        "; device ids are 0x80G0-0x80GB for groups G = 0-6 (see 'device list')");
}

} // namespace

result<device_state> guarded_driver::read(device_id id) {
  if (map_->find(id) == nullptr) return no_device(id);
  return backend_->read(id);
}

status guarded_driver::write(const device_patch& p) {
  auto* info = map_->find(p.id);
  if (info == nullptr) return no_device(p.id);
  if (info->quarantined)
    return make_error(errc::quarantined, "device " + format_device_id(p.id) + " (" + info->name +
                                             ") is quarantined (" + info->quarantine_reason +
                                             "): writes are refused");
  if (p.register_index.size() != p.register_value.size())
    return make_error(errc::invalid_argument,
                      "malformed patch: register index and value lists differ");
  for (auto idx : p.register_index)
    if (idx >= info->register_count)
      return make_error(errc::invalid_argument, "register " + std::to_string(idx) +
                                                    " does not exist on " + format_device_id(p.id) +
                                                    " (it has registers 0-" +
                                                    std::to_string(info->register_count - 1) + ")");
  if (p.set_blob && p.config_blob.size() != info->config_blob_size)
    return make_error(errc::invalid_argument,
                      "config blob for " + format_device_id(p.id) + " must be " +
                          std::to_string(info->config_blob_size) + " bytes, got " +
                          std::to_string(p.config_blob.size()));
  if (p.security_level > static_cast<int8_t>(max_security_level) || p.security_level < -1)
    return make_error(errc::invalid_argument, "security level must be 0-4");
  if (p.enabled < -1 || p.enabled > 1)
    return make_error(errc::invalid_argument, "malformed patch: enabled must be -1, 0 or 1");
  return backend_->write(p);
}

} // namespace dsmil
