// Retention of automatic checkpoints: which to keep under keep_last /
// hourly / daily / weekly rules and a maximum count. Only type "automatic"
// is ever selected for removal; manual, emergency, pre-rollback and pinned
// checkpoints are kept whatever the policy says. Pure: no I/O.
#pragma once

#include <string>
#include <vector>

#include "dsmil/result.hpp"

namespace dsmil {

struct checkpoint_info; // store/manifest.hpp

struct retention_policy {
  uint32_t keep_last = 10;   ///< the newest N
  uint32_t keep_hourly = 24; ///< the newest of each of the last N hours that have one
  uint32_t keep_daily = 7;
  uint32_t keep_weekly = 4;
  uint32_t max_count = 100; ///< automatic checkpoints kept at most, newest first
};

/// Sets one field by name ("keep_last", ..., "max_count") from text.
status set_retention_value(retention_policy& p, const std::string& key, const std::string& value);

/// Ids of the checkpoints the policy removes, oldest first. `all` in any order.
std::vector<std::string> retention_victims(const retention_policy& p,
                                           const std::vector<checkpoint_info>& all);

} // namespace dsmil
