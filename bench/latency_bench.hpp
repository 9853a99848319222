// `dsmil-bench latency`: how long `status` takes on an idle node, and while
// a checkpoint of a large stream (1 GiB by default) runs beside it. Measured
// side by side in one run, from a client in the node's process and from one
// over the loopback network (one kept connection to a plaintext CAF endpoint
// the bench opens: the node's own cost; `dsmil-bench control` measures TLS).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/data_gen.hpp"
#include "dsmil/result.hpp"

namespace dsmil::bench {

struct latency_bench_options {
  uint64_t size = uint64_t{1} << 30; ///< the stream's bytes
  data_kind kind = data_kind::mixed;
  unsigned requests = 500; ///< status requests on the idle node
  std::string dir;         ///< empty: a fresh one under /var/tmp, removed after
};

/// Keys: stream_bytes, idle {samples, p50_ms, p99_ms, max_ms}, during,
/// idle_remote, during_remote (the same), checkpoint_s, checkpoint_mib_s.
result<nlohmann::json> run_latency_bench(const latency_bench_options& o);
void print_latency_report(const nlohmann::json& r);

} // namespace dsmil::bench
