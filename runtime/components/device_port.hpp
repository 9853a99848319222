// How the devices component reaches devices: many at once, in parallel. In a
// node the device actors answer (with their breakers and retries); in tests a
// driver can.
#pragma once

#include <utility>
#include <vector>

#include "dsmil/device.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

/// The devices a call to many could not reach, each with its error.
using device_errors = std::vector<std::pair<device_id, error>>;

class device_port {
public:
  virtual ~device_port() = default;
  /// Reads `ids`; `errors` gets one entry per device that failed.
  virtual std::vector<device_state> read_many(const std::vector<device_id>& ids,
                                              std::vector<std::pair<device_id, error>>& errors) = 0;
  /// Writes `patches`; returns the states written, `errors` one entry per
  /// device that failed.
  virtual std::vector<device_state>
  write_many(const std::vector<device_patch>& patches,
             std::vector<std::pair<device_id, error>>& errors) = 0;
};

} // namespace dsmil
