// `dsmil-bench checkpoint`: throughput of the checkpoint store against the
// machine's own ceiling and, with --compare, against restic and borg.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/data_gen.hpp"

namespace dsmil::bench {

struct checkpoint_bench_options {
  uint64_t size = 1ull << 30;
  data_kind kind = data_kind::mixed;
  std::string input; ///< a file to checkpoint instead of generated data
  double change = 0.01;
  std::string dir; ///< work directory; a fresh one under /var/tmp when empty
  unsigned threads = 0;
  int deflate_level = 1; ///< the store's ISA-L level (the ceiling stays level 1)
  bool compare = false;
  bool keep = false; ///< keep the work directory
};

/// Runs the benchmark; the result has the keys documented in README.md.
/// Progress goes to stderr.
result<nlohmann::json> run_checkpoint_bench(const checkpoint_bench_options& o);

/// Prints the result for a person.
void print_checkpoint_report(const nlohmann::json& r);

} // namespace dsmil::bench
