// restic and borg run on the same data in the same run, for side-by-side ratios.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace dsmil::bench {

/// Installs the peers when missing (bench/install-peers). False with a
/// message on stderr when they cannot be had.
bool ensure_peers();

/// Full backup of `input`, incremental after `changed`, restore of the
/// first snapshot, and a full check reading all data. Work under `dir`.
/// Keys as dsmil-bench's own: full_gbps, incremental_gbps, restore_gbps,
/// verify_gbps, incremental_new_bytes (plus full_stored_bytes, version).
nlohmann::json run_restic(const std::string& dir, const std::string& input,
                          const std::string& changed, uint64_t size);
nlohmann::json run_borg(const std::string& dir, const std::string& input,
                        const std::string& changed, uint64_t size);

} // namespace dsmil::bench
