// `dsmil-bench soak`: memory that does not grow without cause. Runs a dsmild
// process, then N checkpoint create+delete cycles, N client requests (status)
// over one connection, and N connections of one request each (as dsmilctl
// makes them), and reports the node's resident set size growth per operation
// after a warm-up.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "dsmil/result.hpp"

namespace dsmil::bench {

struct soak_bench_options {
  unsigned cycles = 600;      ///< checkpoint create + delete
  unsigned requests = 2000;   ///< status requests over one connection
  unsigned connections = 600; ///< status requests over a connection of their own each
  unsigned warmup = 100;      ///< operations of each kind before the first measurement
  std::string dsmild;         ///< empty: cli/dsmild beside this program's build
  std::string dir;            ///< empty: a fresh one under /var/tmp, removed after
};

/// Keys: cycles, requests, warmup, rss_start_bytes, rss_end_bytes,
/// rss_growth_per_cycle_bytes, rss_growth_per_request_bytes, connections,
/// rss_growth_per_connection_bytes, target_bytes.
result<nlohmann::json> run_soak_bench(const soak_bench_options& o);
void print_soak_report(const nlohmann::json& r);

} // namespace dsmil::bench
