// `dsmil-bench control`: what the control endpoint's security costs. A node
// of its own (embedded in this process, listening as dsmild does) answers
// `status` over mutual TLS with signed requests, on a kept connection (each
// answer's nonce signs the next request: one round trip) and asking for a
// nonce each time (two), next to the same node's control actor over a
// plaintext CAF endpoint on loopback and called in-process, in one run,
// requests interleaved.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "dsmil/result.hpp"

namespace dsmil::bench {

struct control_bench_options {
  unsigned requests = 2000;  ///< status requests per path
  unsigned connections = 20; ///< fresh TLS connections (a dsmilctl invocation each)
  std::string dir;           ///< empty: a fresh one under /var/tmp, removed after
};

/// Keys: requests, status_p50_ms, status_p99_ms, status_max_ms (TLS, signed,
/// nonce carried), challenge_p50_ms, challenge_p99_ms (TLS, nonce asked),
/// plaintext_p50_ms, plaintext_p99_ms, in_process_p50_ms, in_process_p99_ms,
/// connect_p50_ms, connect_p99_ms (TLS handshake + first request), target_met.
result<nlohmann::json> run_control_bench(const control_bench_options& o);
void print_control_report(const nlohmann::json& r);

} // namespace dsmil::bench
