// Changing the system configuration by key, as `dsmilctl config set` does.
#pragma once

#include <string>

#include "dsmil/system_config.hpp"
#include "dsmil/result.hpp"

namespace dsmil {

/// Sets `key` to `value` (text) and bumps config_version. Keys:
/// agent_concurrency_limit (1-100000), thermal_threshold_c (0-150),
/// config_data (any text). avx512_present is detected and read-only.
/// On error `cfg` is unchanged.
status set_config_value(system_config& cfg, const std::string& key, const std::string& value);

/// The restorable fields of `target` applied over `cfg` (avx512 stays).
void restore_config(system_config& cfg, const system_config& target);

} // namespace dsmil
