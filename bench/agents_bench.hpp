// `dsmil-bench agents`: the agents component with the reference host (80
// agents of --state-kib each), as a client of the node sees it: checkpoints
// of every agent with the devices and configuration after every agent did a
// task, incremental ones after 8 agents did, and full rollbacks of all 80
// agents (with the devices), with the longest pause one agent saw.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "dsmil/result.hpp"

namespace dsmil::bench {

struct agents_bench_options {
  /// 200: the p99 of 50 rounds is the slowest round alone (one stall of the
  /// disk decides it); of 200 it is a percentile, the third slowest.
  unsigned runs = 200;
  unsigned warmup = 3; ///< rounds before the measured ones (first use of memory and files)
  unsigned agents = 80;
  unsigned state_kib = 256;
  std::string dir; ///< empty: a fresh one under /var/tmp, removed after
};

/// Keys: runs, warmup, agents, state_kib, checkpoint_p50_ms, checkpoint_p99_ms,
/// incremental_p50_ms, incremental_p99_ms, rollback_p50_ms, rollback_p99_ms,
/// checkpoint_max_ms, incremental_max_ms, rollback_max_ms (the slowest round),
/// max_pause_ms (the longest any agent saw over every checkpoint),
/// checkpoint_new_bytes_p50, incremental_new_bytes_p50,
/// rollback_phase_p50_ms.
result<nlohmann::json> run_agents_bench(const agents_bench_options& o);
void print_agents_report(const nlohmann::json& r);

} // namespace dsmil::bench
