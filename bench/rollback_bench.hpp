// `dsmil-bench rollback`: latency of rollback sagas on the simulator, as a
// client sees it (request to answer), with everything a saga does: the
// validation, the pre-rollback checkpoint, the journal's fsyncs, the device
// writes and the read-back verification.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "dsmil/result.hpp"

namespace dsmil::bench {

struct rollback_bench_options {
  unsigned runs = 1000;
  std::string dir; ///< empty: a fresh one under /var/tmp, removed after
};

/// Keys: runs, full_p50_ms, full_p99_ms, incremental_p50_ms,
/// incremental_p99_ms, full_devices, incremental_devices, full_journal_records,
/// full_phase_p50_ms, incremental_phase_p50_ms (the saga's own phase timing).
result<nlohmann::json> run_rollback_bench(const rollback_bench_options& o);
void print_rollback_report(const nlohmann::json& r);

} // namespace dsmil::bench
