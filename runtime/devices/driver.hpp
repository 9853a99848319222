// driver: the only code that touches a device. Backends implement it; the
// quarantine guard wraps every backend so no caller can bypass it.
#pragma once

#include <memory>

#include "dsmil/device.hpp"
#include "runtime/devices/device_map.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

class driver {
public:
  virtual ~driver() = default;

  /// Full state of one device. Reading a quarantined device is allowed.
  virtual result<device_state> read(device_id id) = 0;
  /// Applies a patch. The state after a successful write is what read() returns.
  virtual status write(const device_patch& patch) = 0;
  /// Extra time a call to this device takes, in milliseconds. The device
  /// actor delays its reply by this much on the actor clock instead of
  /// blocking a scheduler thread.
  virtual uint32_t latency_ms(device_id) const { return 0; }
};

/// Wraps a backend and enforces, below every caller: ids must exist (no
/// defaults for 0x800C), quarantined devices are never written (the backend
/// never sees the call), patches must fit the device (register index, blob
/// size, security level).
class guarded_driver final : public driver {
public:
  guarded_driver(std::shared_ptr<const device_map> map, std::shared_ptr<driver> backend);

  result<device_state> read(device_id id) override;
  status write(const device_patch& patch) override;
  uint32_t latency_ms(device_id id) const override { return backend_->latency_ms(id); }

private:
  std::shared_ptr<const device_map> map_;
  std::shared_ptr<driver> backend_;
};

} // namespace dsmil
