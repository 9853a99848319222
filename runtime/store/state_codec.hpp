// Byte encodings of component state as stored in checkpoint chunks.
// Little-endian, versioned; decoding validates every length.
#pragma once

#include <string>

#include "dsmil/device.hpp"
#include "dsmil/system_config.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

/// "DSDV", version 1, id, enabled, level, registers, blob, temperature, last activity.
std::string encode_device(const device_state& s);
result<device_state> decode_device(const std::string& bytes);

/// Canonical JSON (sorted keys) of the configuration component.
std::string encode_config(const system_config& c);
result<system_config> decode_config(const std::string& bytes);

} // namespace dsmil
